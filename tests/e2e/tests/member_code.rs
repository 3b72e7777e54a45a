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
fn enrol(http: &Client, server: &Server) -> (String, String, String) {
    let answer: Value = http
        .post(format!("{}/v1/enrol", server.url()))
        .header("tessera-api-version", "1")
        .json(&json!({"holder_name": "Zoé", "device": {"platform": "android", "app_version": "3.2.0"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
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
    let (member, card, token) = enrol(&http, &server);
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
    let (_, _, token) = enrol(&http, &server);
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
