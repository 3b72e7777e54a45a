//! Coupons at the till against the real server: clip in the app, redeem at a till exactly once
//! under concurrency, typed refusals for every kind of bad code, idempotent retries.

use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_core::Tessera;
use tessera_core::api::CouponState;
use tessera_e2e::race::redeem;
use tessera_e2e::{ADMIN_TOKEN, Server, device, open_till, till_token};

const OFFER: &str = "of-009"; // in store, every shop, must be clipped

fn fresh_coupon(t: &Tessera) -> String {
    tessera_e2e::race::fresh_coupon(t, OFFER)
}

#[test]
fn concurrent_tills_redeem_a_coupon_exactly_once() {
    let trials: usize = std::env::var("TESSERA_REDEEM_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let tills = 50;
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&url, "Chloé Martin", device()).unwrap();
    let tokens: Vec<String> = (0..tills)
        .map(|_| till_token(&server, "st-paris-01"))
        .collect();

    tessera_e2e::race::race(
        tokens
            .into_iter()
            .map(|token| (token, url.clone()))
            .collect(),
        trials,
        || fresh_coupon(&t),
    );
    println!("{trials} trials × {tills} tills: exactly one redemption each, 0 over-redemptions");
}

#[test]
fn bad_codes_are_refused_with_reasons_and_retries_replay_the_first_answer() {
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&url, "Chloé Martin", device()).unwrap();
    let token = till_token(&server, "st-lyon-01");
    let http = Client::new();
    let code = fresh_coupon(&t);
    // The wallet shows it, offline, as available.
    assert!(t.wallet().unwrap().iter().any(|c| c.code == code));

    let refused = |c: &str| {
        let (status, body) = redeem(&http, &url, &token, "bad-code-key-1", c, 5000);
        assert_eq!(
            (status, body["code"].as_str().unwrap_or("")),
            (422, "coupon_refused"),
            "{body}"
        );
        body["detail"].as_str().unwrap_or("").to_owned()
    };
    // Altered: the claims name another offer, the signature kept.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (claims, signature) = code[4..].split_once('.').unwrap();
    let mut json: Value = serde_json::from_slice(&b64.decode(claims).unwrap()).unwrap();
    json["o"] = json!("of-001");
    let altered = format!(
        "TC1.{}.{signature}",
        b64.encode(serde_json::to_vec(&json).unwrap())
    );
    assert!(refused(&altered).contains("signature"));
    assert!(refused("TC1.not.valid").contains("not a valid coupon"));
    assert!(refused("hello").contains("not a valid coupon"));

    let (status, first) = redeem(&http, &url, &token, "redeem-key-0001", &code, 5000);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["store_id"], "st-lyon-01");
    // A retry with the same key gets the same answer; another attempt learns where and when.
    assert_eq!(
        redeem(&http, &url, &token, "redeem-key-0001", &code, 5000),
        (200, first.clone())
    );
    let (status, again) = redeem(&http, &url, &token, "redeem-key-0002", &code, 5000);
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("already_redeemed"))
    );
    assert!(again["detail"].as_str().unwrap().starts_with("st-lyon-01 "));
    // The same key with another body is refused.
    assert_eq!(
        redeem(&http, &url, &token, "redeem-key-0001", &code, 6000).0,
        422
    );
    // The member's wallet learns it at the next sync.
    t.sync().unwrap();
    let state = t
        .wallet()
        .unwrap()
        .into_iter()
        .find(|c| c.code == code)
        .unwrap()
        .state;
    assert!(
        matches!(state, CouponState::Redeemed { ref store_id, .. } if store_id == "st-lyon-01")
    );
    // Not a till, or an unknown shop.
    assert_eq!(
        redeem(&http, &url, "not-a-till-token", "k-000001", &code, 1).0,
        401
    );
    let status = http
        .post(format!("{url}/admin/v1/tills"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"store_id": "st-nowhere"}))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

#[test]
fn the_core_till_verifies_offline_and_redeems_once() {
    use tessera_core::coupon::CouponError;
    use tessera_till::{Done, TillError};
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&url, "Chloé Martin", device()).unwrap();
    let member = t.sync_status().unwrap().member_id.unwrap();
    let code = fresh_coupon(&t);
    let paris = open_till(&server, dir.path().join("paris.till"), "st-paris-01");
    let lyon = open_till(&server, dir.path().join("lyon.till"), "st-lyon-01");
    // Offline checks first: the card scanned with the coupon must be its member's.
    assert_eq!(
        paris.verify(&code, Some(&member), 100).unwrap().offer_id,
        OFFER
    );
    assert_eq!(
        paris.verify(&code, Some("m_other"), 100),
        Err(TillError::Coupon(CouponError::WrongMember))
    );
    // One character of the signature changed (not the last: its low bits are padding).
    let mut forged = code.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(matches!(
        paris.verify(&forged, None, 100),
        Err(TillError::Coupon(
            CouponError::BadSignature | CouponError::Malformed { .. }
        ))
    ));
    let Done::Online(done) = paris.redeem(&code, 2500, "R-0001").unwrap() else {
        panic!("the server is up: redeemed online");
    };
    assert_eq!(
        (done.store_id.as_str(), done.member_id.as_str()),
        ("st-paris-01", member.as_str())
    );
    // Where and when the server recorded it, whoever asks.
    let redeemed_where_and_when = |refusal: Result<String, TillError>| match refusal {
        Err(TillError::Coupon(CouponError::AlreadyRedeemed {
            store_id,
            redeemed_at,
        })) => (store_id, redeemed_at),
        other => panic!("{other:?}"),
    };
    let expected = ("st-paris-01".to_owned(), done.redeemed_at.clone());
    assert_eq!(
        redeemed_where_and_when(lyon.redeem(&code, 2500, "R-0002").map(|d| format!("{d:?}"))),
        expected
    );
    // A second scan at the same till is refused from its journal, before any network, with the
    // instant the server recorded (not the till's own clock).
    assert_eq!(
        redeemed_where_and_when(paris.verify(&code, None, 2500).map(|c| c.coupon_id)),
        expected
    );
}
