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

fn basket(
    receipt: &str,
    card: Option<&str>,
    code: Option<&str>,
) -> tessera_core::api::PurchaseRequest {
    tessera_core::api::PurchaseRequest {
        receipt: receipt.into(),
        card_number: card.map(str::to_owned),
        member_code: code.map(str::to_owned),
        lines: vec![tessera_core::api::PurchaseLine {
            sku: "sku-teapot".into(),
            category: Some("tea".into()),
            collection: None,
            quantity: 1,
            amount_cents: 4_500,
        }],
        total_cents: 4_500,
        occurred_offline_at: None,
    }
}

/// A purchase posted over HTTP by a till: (status, problem code, rule).
fn post_purchase(
    server: &Server,
    till: &str,
    req: &tessera_core::api::PurchaseRequest,
) -> (u16, Value) {
    let resp = Client::new()
        .post(format!("{}/v1/till/purchases", server.url()))
        .bearer_auth(till)
        .header("idempotency-key", tessera_e2e::raw::key())
        .json(req)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

fn certificate_of(answer: &Value) -> DeviceCertificate {
    DeviceCertificate::from_bytes(&B64.decode(answer["certificate"].as_str().unwrap()).unwrap())
        .unwrap()
        .0
}

/// The till scans the code on the phone's screen (offline checks, a second scan of the same
/// step flagged), the purchase carries it, and the server checks it again: the points go to the
/// card the code names; a forged, altered, stale or other member's code is refused by name.
#[test]
fn the_till_scans_the_phone_and_the_server_checks_the_code_again() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let phone = tessera_e2e::phone(dir.path().join("m.db"));
    phone
        .enrol(&server.url(), "Zoé", tessera_e2e::device())
        .unwrap();
    let card = phone.card().unwrap().card_number;
    let till = tessera_e2e::open_till(&server, dir.path().join("t.journal"), "st-paris-01");
    let shown = phone.member_code().unwrap();
    let scanned = till.scan_member(&shown.code).unwrap();
    assert_eq!(scanned.card_number, card);
    assert!(!scanned.seen_before);
    assert!(
        till.scan_member(&shown.code).unwrap().seen_before,
        "one device's code for one step twice at one till is flagged"
    );
    let tessera_till::Done::Online(receipt) = till
        .record_purchase(&basket("r-1", None, Some(&scanned.code)))
        .unwrap()
    else {
        panic!("online")
    };
    assert!(receipt.points_earned > 0);
    phone.sync().unwrap();
    assert_eq!(
        phone.points().unwrap().balance,
        receipt.points_balance,
        "the points are the scanned member's"
    );

    // What a till posts is checked again. A device certified for another member:
    let http = Client::new();
    let token = till_token(&server, "st-paris-01");
    let (_, other_card, other_token) = enrol(&server);
    let (pair, public) = device(7);
    let (_, answer) = certify(&http, &server, &other_token, &public);
    let cert = certificate_of(&answer);
    let now = jiff::Timestamp::now().as_second();
    let good = member_code(&cert, &pair, now).unwrap();
    let (s, b) = post_purchase(&server, &token, &basket("r-2", Some(&card), Some(&good)));
    assert_eq!(
        (s, &b["code"], &b["rule"]),
        (422, &json!("member_code_refused"), &json!("wrong_member")),
        "{b}"
    );
    let (s, b) = post_purchase(
        &server,
        &token,
        &basket("r-2", Some(&other_card), Some(&good)),
    );
    assert_eq!(s, 200, "{b}");
    // A code shown 20 minutes ago (the server allows 10 between the scan and the purchase).
    let old = member_code(&cert, &pair, now - 1_200).unwrap();
    let (s, b) = post_purchase(&server, &token, &basket("r-3", None, Some(&old)));
    assert_eq!((s, &b["rule"]), (422, &json!("stale")), "{b}");
    // The device's signature altered (its last byte).
    let mut bytes = base45::decode(good.strip_prefix("TM1:").unwrap()).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let forged = format!("TM1:{}", base45::encode(&bytes));
    let (s, b) = post_purchase(&server, &token, &basket("r-3", None, Some(&forged)));
    assert_eq!((s, &b["rule"]), (422, &json!("bad_signature")), "{b}");
    // The certificate altered to name the first member's card.
    let mut altered = cert.clone();
    altered.card_number = card.clone();
    let forged = member_code(&altered, &pair, now).unwrap();
    let (s, b) = post_purchase(&server, &token, &basket("r-3", None, Some(&forged)));
    assert_eq!((s, &b["rule"]), (422, &json!("forged_certificate")), "{b}");
    for junk in ["TM1:", "TM1:!!!!", "4006381333931"] {
        let (s, b) = post_purchase(&server, &token, &basket("r-3", None, Some(junk)));
        assert_eq!((s, &b["rule"]), (422, &json!("malformed")), "{junk}: {b}");
    }
    let (s, b) = post_purchase(
        &server,
        &token,
        &basket("r-3", None, Some(&"x".repeat(2000))),
    );
    assert_eq!((s, &b["code"]), (422, &json!("validation_failed")), "{b}");
}

/// A till offline keeps scanning with the revocation list it fetched; a purchase it made
/// before a device was revoked still counts when reported, one made after (the till had not
/// refreshed) is refused at the report.
#[test]
fn offline_purchases_are_judged_by_the_revocation_at_their_time() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let http = Client::new();
    let (member, card, token) = enrol(&server);
    let (pair, public) = device(3);
    let (_, answer) = certify(&http, &server, &token, &public);
    let cert = certificate_of(&answer);
    let journal = dir.path().join("t.journal");
    let till_token = till_token(&server, "st-lyon-01");
    let open = |url: &str| {
        tessera_till::Till::open(
            &journal,
            url,
            &till_token,
            "st-lyon-01",
            tessera_core::sync::ReqwestClient::shared(),
        )
        .unwrap()
    };
    drop(open(&server.url()));
    let offline = open(&tessera_e2e::dead_url());
    let now = jiff::Timestamp::now().as_second();
    let before = offline
        .scan_member(&member_code(&cert, &pair, now).unwrap())
        .unwrap();
    assert_eq!(before.card_number, card);
    assert_eq!(
        offline
            .record_purchase(&basket("r-before", None, Some(&before.code)))
            .unwrap(),
        tessera_till::Done::Offline
    );
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let (s, _) = admin(
        reqwest::Method::POST,
        &server,
        &format!("/admin/v1/members/{member}/devices/revoke"),
        json!({}),
    );
    assert_eq!(s, 200);
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    // The offline till does not know yet: it accepts the code, the server will not.
    let after = offline
        .scan_member(&member_code(&cert, &pair, jiff::Timestamp::now().as_second()).unwrap())
        .unwrap();
    offline
        .record_purchase(&basket("r-after", None, Some(&after.code)))
        .unwrap();
    drop(offline);
    let online = open(&server.url());
    let report = online.sync().unwrap();
    assert_eq!(report.accepted, 1, "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].receipt, "r-after");
    assert_eq!(
        report.refused[0].code.as_deref(),
        Some("member_code_refused")
    );
    // Online again, the till has the list: the device is refused at the scan.
    assert!(matches!(
        online.scan_member(&member_code(&cert, &pair, jiff::Timestamp::now().as_second()).unwrap()),
        Err(tessera_till::TillError::MemberCode(
            MemberCodeError::Revoked { .. }
        ))
    ));
    // And offline too, from the journal.
    drop(online);
    let offline = open(&tessera_e2e::dead_url());
    assert!(matches!(
        offline
            .scan_member(&member_code(&cert, &pair, jiff::Timestamp::now().as_second()).unwrap()),
        Err(tessera_till::TillError::MemberCode(
            MemberCodeError::Revoked { .. }
        ))
    ));
}
