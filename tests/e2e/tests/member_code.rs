//! The rotating member code against the real server (issue #18): a device key certified over
//! HTTP, codes made with it, verified as a till does offline with the keys and the revocation
//! list it fetched; screenshots replayed after the window, revoked devices and erased members
//! refused by name; bad requests get typed problems.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::blocking::Client;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tessera_core::coupon::CouponKey;
use tessera_core::member_code::{
    DeviceCertificate, MemberCodeError, TillCheck, member_code, verify,
};
use tessera_e2e::{Server, admin, till_token};

/// A member enrolled over HTTP: (member id, card number, access token).
fn enrol(server: &Server) -> (String, String, String) {
    let answer = tessera_e2e::raw::enrolment(server);
    (
        answer["member_id"].as_str().unwrap().to_owned(),
        answer["card"]["card_number"].as_str().unwrap().to_owned(),
        answer["tokens"]["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

fn certify(http: &Client, server: &Server, token: &str, public_key: &str) -> (u16, Value) {
    let resp = http
        .post(format!("{}/v1/card/certificate", server.url()))
        .header("tessera-api-version", "1")
        .bearer_auth(token)
        .json(&json!({ "public_key": public_key }))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

/// What a till fetches with its key refresh: the keys and the revoked serials.
fn till_refresh(http: &Client, server: &Server, till: &str) -> (Vec<CouponKey>, Vec<u64>) {
    let keys: Vec<CouponKey> = http
        .get(format!("{}/v1/coupon-keys", server.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let revocations: Value = http
        .get(format!("{}/v1/till/revocations", server.url()))
        .bearer_auth(till)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let revoked = revocations["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    (keys, revoked)
}

fn device(seed: u8) -> (Ed25519KeyPair, String) {
    let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
    let public = B64.encode(pair.public_key().as_ref());
    (pair, public)
}

#[test]
fn a_certified_device_shows_codes_a_till_verifies_offline_until_revoked() {
    let server = Server::start();
    let http = Client::new();
    let (member, card, token) = enrol(&server);
    let (pair, public) = device(1);
    let (status, answer) = certify(&http, &server, &token, &public);
    assert_eq!(status, 200, "{answer}");
    let bytes = B64.decode(answer["certificate"].as_str().unwrap()).unwrap();
    let (cert, used) = DeviceCertificate::from_bytes(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(
        cert.card_number, card,
        "the certificate names the member's card"
    );
    assert_eq!(cert.serial, answer["serial"].as_u64().unwrap());
    assert_eq!(cert.period_s, 30);
    let till = till_token(&server, "st-paris-01");
    let (keys, revoked) = till_refresh(&http, &server, &till);
    assert!(revoked.is_empty());
    let now = jiff::Timestamp::now().as_second();
    let check = |code: &str, now_s: i64, revoked: &[u64], keys: &[CouponKey]| {
        verify(
            code,
            &TillCheck {
                keys,
                revoked,
                now_s,
                skew_steps: 1,
                expected_card: None,
            },
        )
    };
    let code = member_code(&cert, &pair, now).unwrap();
    assert_eq!(
        check(&code, now, &revoked, &keys).unwrap().card_number,
        card
    );

    // A screenshot of it, shown again from two steps later on: refused each time.
    for k in 0..50 {
        let later = now + 61 + k * 7;
        assert!(
            matches!(
                check(&code, later, &revoked, &keys),
                Err(MemberCodeError::Stale { .. })
            ),
            "replay {k}"
        );
    }
    // A new code at that time passes: the phone keeps making them.
    let fresh = member_code(&cert, &pair, now + 400).unwrap();
    assert!(check(&fresh, now + 400, &revoked, &keys).is_ok());

    // A lost phone: the operator revokes the member's devices; the till refuses after refresh.
    let (s, b) = admin(
        reqwest::Method::POST,
        &server,
        &format!("/admin/v1/members/{member}/devices/revoke"),
        json!({}),
    );
    assert_eq!((s, &b["revoked"]), (200, &json!(1)), "{b}");
    let (keys, revoked) = till_refresh(&http, &server, &till);
    assert_eq!(revoked, [cert.serial]);
    assert_eq!(
        check(&fresh, now + 400, &revoked, &keys),
        Err(MemberCodeError::Revoked {
            serial: cert.serial
        })
    );
    // A new phone gets a new certificate, which passes.
    let (pair2, public2) = device(2);
    let (status, answer) = certify(&http, &server, &token, &public2);
    assert_eq!(status, 200);
    let (cert2, _) = DeviceCertificate::from_bytes(
        &B64.decode(answer["certificate"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_ne!(cert2.serial, cert.serial);
    let code2 = member_code(&cert2, &pair2, now).unwrap();
    assert!(check(&code2, now, &revoked, &keys).is_ok());

    // An erased member's devices are revoked with the erasure.
    let (s, _) = admin(
        reqwest::Method::DELETE,
        &server,
        &format!("/admin/v1/members/{member}"),
        Value::Null,
    );
    assert_eq!(s, 200);
    let (keys, revoked) = till_refresh(&http, &server, &till);
    assert!(revoked.contains(&cert2.serial), "{revoked:?}");
    assert_eq!(
        check(&code2, now, &revoked, &keys),
        Err(MemberCodeError::Revoked {
            serial: cert2.serial
        })
    );
}

#[test]
fn bad_certificate_requests_get_typed_problems() {
    let server = Server::start();
    let http = Client::new();
    let (_, _, token) = enrol(&server);
    for bad in [
        "",
        "not base64!",
        &B64.encode([1u8; 31]),
        &B64.encode([1u8; 33]),
    ] {
        let (status, body) = certify(&http, &server, &token, bad);
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["code"], "validation_failed");
    }
    let (status, body) = certify(&http, &server, "not-a-token", &device(1).1);
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let extra = http
        .post(format!("{}/v1/card/certificate", server.url()))
        .header("tessera-api-version", "1")
        .bearer_auth(&token)
        .json(&json!({"public_key": device(1).1, "serial": 7}))
        .send()
        .unwrap();
    assert_eq!(extra.status(), 422, "unknown fields are refused");
    let no_till = http
        .get(format!("{}/v1/till/revocations", server.url()))
        .send()
        .unwrap();
    assert_eq!(no_till.status(), 401);
    let (s, b) = admin(
        reqwest::Method::POST,
        &server,
        "/admin/v1/members/m_nobody/devices/revoke",
        json!({}),
    );
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")));
}

/// The phone's side: enrolment certifies a key made on the device; the card screen's code,
/// made offline, passes the till's check and names the member's card; the key lives in the
/// app's secret store, not in the file; a new code each step; sign-out forgets the key.
#[test]
fn the_phone_shows_a_rotating_code_the_till_accepts_with_its_key_in_the_secret_store() {
    use std::sync::Arc;
    use tessera_core::card_code::MemberCodeUnavailable;
    use tessera_e2e::memory_store::Memory;
    let server = Server::start();
    let http = Client::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let phone = tessera_e2e::phone(&path);
    let store = Arc::new(Memory::default());
    phone.set_secret_store(store.clone()).unwrap();
    assert_eq!(
        phone.member_code().unwrap_err(),
        MemberCodeUnavailable::NotEnrolled
    );
    phone
        .enrol(&server.url(), "Zoé", tessera_e2e::device())
        .unwrap();
    let card = phone.card().unwrap().card_number;
    let view = phone.member_code().unwrap();
    assert_eq!(view.matrix.width, view.matrix.height, "a QR code");
    assert!(view.changes_in_ms <= 30_000);
    let till = till_token(&server, "st-paris-01");
    let (keys, revoked) = till_refresh(&http, &server, &till);
    let check = TillCheck {
        keys: &keys,
        revoked: &revoked,
        now_s: jiff::Timestamp::now().as_second(),
        skew_steps: 1,
        expected_card: Some(&card),
    };
    assert_eq!(verify(&view.code, &check).unwrap().card_number, card);
    // The key is in the store, under the session's namespace; the file keeps ''.
    let items = store.snapshot();
    let key = items
        .iter()
        .find(|(k, _)| k.ends_with("/device_key"))
        .expect("the device key in the store");
    let in_file: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT pkcs8 FROM device_key", [], |r| r.get(0))
        .unwrap();
    assert_eq!(in_file, "", "no private key in the file");
    assert!(!key.1.is_empty());
    // A sync does not ask again while the certificate has weeks left (one certificate issued).
    phone.sync().unwrap();
    assert_eq!(
        server.integers("SELECT count(*) FROM device_certificate"),
        [1]
    );
    // Sign-out forgets the key, here and in the store.
    phone.sign_out(true).unwrap();
    assert!(store.snapshot().keys().all(|k| !k.ends_with("/device_key")));
    assert_eq!(
        phone.member_code().unwrap_err(),
        MemberCodeUnavailable::NotEnrolled
    );
}

/// Enrolled while the server could not certify (an older server without the route, say): the
/// card shows its static number (`NotCertified` for the rotating code) and the next sync
/// fetches the certificate.
#[test]
fn a_phone_without_a_certificate_gets_one_at_the_next_sync() {
    use tessera_core::card_code::MemberCodeUnavailable;
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let phone = tessera_e2e::phone(&path);
    phone
        .enrol(&server.url(), "Zoé", tessera_e2e::device())
        .unwrap();
    assert!(phone.member_code().is_ok());
    // As if the certificate never came.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE device_key SET certificate = NULL, not_after = NULL",
            [],
        )
        .unwrap();
    assert_eq!(
        phone.member_code().unwrap_err(),
        MemberCodeUnavailable::NotCertified
    );
    phone.sync().unwrap();
    assert!(phone.member_code().is_ok(), "certified at sync");
    assert_eq!(
        server.integers("SELECT count(*) FROM device_certificate"),
        [2]
    );
}
