//! Store-to-web, points and tiers against the real server: a purchase at a till earns points in
//! the member's tier and a coupon for the website, which the web checkout redeems through the
//! same path; rewards are bought with points; returns and voids take points back without the
//! balance going below zero; every bad request gets its typed problem.

use serde_json::{Value, json};
use tessera_core::Tessera;
use tessera_core::api::{
    CouponState, PointsKind, PurchaseLine, PurchaseRequest, ReturnRequest, codes,
};
use tessera_e2e::{Server, admin, device, open_till, till_token};
use tessera_till::{Done, Till, TillError};

fn rules(server: &Server, edit: impl FnOnce(&mut Value)) {
    let (_, mut r) = admin(
        reqwest::Method::GET,
        server,
        "/admin/v1/loyalty-rules",
        Value::Null,
    );
    edit(&mut r);
    let (status, body) = admin(reqwest::Method::PUT, server, "/admin/v1/loyalty-rules", r);
    assert_eq!(status, 204, "{body}");
}

fn purchase(receipt: &str, card: Option<&str>, cents: u64) -> PurchaseRequest {
    PurchaseRequest {
        receipt: receipt.into(),
        card_number: card.map(str::to_owned),
        member_code: None,
        lines: vec![
            PurchaseLine {
                sku: "sku-teapot".into(),
                category: Some("tea".into()),
                collection: None,
                quantity: 1,
                amount_cents: cents / 2,
            },
            PurchaseLine {
                sku: "sku-tea-1".into(),
                category: Some("tea".into()),
                collection: None,
                quantity: 2,
                amount_cents: cents - cents / 2,
            },
        ],
        total_cents: cents,
        occurred_offline_at: None,
    }
}

fn online<T: std::fmt::Debug>(d: Result<Done<T>, TillError>) -> T {
    match d {
        Ok(Done::Online(t)) => t,
        other => panic!("expected an online answer: {other:?}"),
    }
}

fn refused<T: std::fmt::Debug>(d: Result<Done<T>, TillError>) -> (u16, String) {
    match d {
        Err(TillError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal: {other:?}"),
    }
}

struct Shop {
    server: Server,
    _dir: tempfile::TempDir,
    phone: Tessera,
    card: String,
    member: String,
    till: Till,
    web: Till,
}

fn shop() -> Shop {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let phone = tessera_e2e::phone(dir.path().join("m.db"));
    phone
        .enrol(&server.url(), "Chloé Martin", device())
        .unwrap();
    let card = phone.card().unwrap().card_number;
    let member = phone.sync_status().unwrap().member_id.unwrap();
    let till = open_till(&server, dir.path().join("paris.journal"), "st-paris-01");
    let web = open_till(&server, dir.path().join("web.journal"), "web");
    Shop {
        server,
        _dir: dir,
        phone,
        card,
        member,
        till,
        web,
    }
}

#[test]
fn a_purchase_earns_points_in_the_tier_and_a_web_coupon_the_website_redeems_once() {
    let s = shop();
    // A purchase of 40 € or more earns a coupon for the website (an online offer).
    rules(&s.server, |r| {
        r["web_coupon"] = json!({"min_total_cents": 4000, "offer_id": "of-005"})
    });
    let receipt = online(
        s.till
            .record_purchase(&purchase("R-100", Some(&s.card), 4599)),
    );
    assert_eq!(receipt.member_id.as_deref(), Some(s.member.as_str()));
    assert_eq!((receipt.points_earned, receipt.points_balance), (45, 45));
    let code = receipt.web_coupon.expect("a web coupon for 45.99 €");
    // A shop's till refuses a web coupon; the web checkout takes it, once.
    assert!(matches!(
        s.till.verify(&code, None, 5000),
        Err(TillError::Coupon(
            tessera_core::coupon::CouponError::WrongStore
        ))
    ));
    let r = online(s.web.redeem(&code, 5000, "W-1"));
    assert_eq!(r.store_id, "web");
    assert!(matches!(
        s.web.redeem(&code, 5000, "W-2"),
        Err(TillError::Coupon(
            tessera_core::coupon::CouponError::AlreadyRedeemed { .. }
        ))
    ));
    // A purchase under the threshold and one without a card: points only, or nothing.
    assert_eq!(
        online(
            s.till
                .record_purchase(&purchase("R-101", Some(&s.card), 1000))
        )
        .web_coupon,
        None
    );
    let anonymous = online(s.till.record_purchase(&purchase("R-102", None, 9000)));
    assert_eq!((anonymous.member_id, anonymous.points_earned), (None, 0));
    // The phone sees the balance, the ledger, the tier progress and the wallet.
    s.phone.sync().unwrap();
    let points = s.phone.points().unwrap();
    assert_eq!(points.balance, 55, "{points:?}");
    assert_eq!(points.ledger.len(), 2);
    assert!(points.ledger.iter().all(|e| e.kind == PointsKind::Earn));
    assert_eq!(points.next_expiry.as_ref().unwrap().points, 55);
    let tier = s.phone.tier_progress().unwrap().unwrap();
    assert_eq!(
        (tier.tier.as_str(), tier.next_tier.as_deref()),
        ("Member", Some("Silver"))
    );
    assert_eq!(tier.points_to_next, 500 - 55);
    let web = s
        .phone
        .wallet()
        .unwrap()
        .into_iter()
        .find(|c| c.code == code)
        .unwrap();
    assert!(matches!(web.state, CouponState::Redeemed { ref store_id, .. } if store_id == "web"));
}

#[test]
fn tiers_go_up_at_once_and_multiply_later_earnings() {
    let s = shop();
    let first = online(
        s.till
            .record_purchase(&purchase("R-1", Some(&s.card), 52_000)),
    );
    assert_eq!(first.points_earned, 520, "earned as Member (×1)");
    s.phone.sync().unwrap();
    let tier = s.phone.tier_progress().unwrap().unwrap();
    assert_eq!(tier.tier, "Silver", "upgraded at once: {tier:?}");
    assert_eq!(
        s.phone.member_state().unwrap().unwrap().state.tier,
        "Silver"
    );
    let second = online(
        s.till
            .record_purchase(&purchase("R-2", Some(&s.card), 10_000)),
    );
    assert_eq!(second.points_earned, 125, "earned as Silver (×1.25)");
}

#[test]
fn rewards_are_bought_with_points_and_refused_without_enough() {
    let s = shop();
    let reward = json!({
        "id": "rw-tote", "title": "A tote bag", "description": "For 100 points",
        "kind": {"type": "gift", "item": "tote bag"},
        "valid_from": "2026-01-01T00:00:00Z", "valid_to": "2030-01-01T00:00:00Z",
        "channel": "in_store", "points_cost": 100
    });
    let (status, body) = admin(
        reqwest::Method::PUT,
        &s.server,
        "/admin/v1/offers/rw-tote",
        reward,
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    s.phone.sync().unwrap();
    let rewards = s.phone.rewards().unwrap();
    assert_eq!(rewards.len(), 1);
    assert!(!rewards[0].affordable);
    // Not enough points: the server refuses when the action arrives.
    s.phone.buy_reward("rw-tote").unwrap();
    let report = s.phone.sync().unwrap();
    assert_eq!(report.rejected, 1, "{report:?}");
    let rejected = s.phone.rejected_actions().unwrap();
    assert!(
        rejected
            .iter()
            .any(|r| r.code == codes::INSUFFICIENT_POINTS),
        "{rejected:?}"
    );
    online(
        s.till
            .record_purchase(&purchase("R-1", Some(&s.card), 15_000)),
    );
    s.phone.sync().unwrap();
    assert!(s.phone.rewards().unwrap()[0].affordable);
    s.phone.buy_reward("rw-tote").unwrap();
    s.phone.sync().unwrap();
    let points = s.phone.points().unwrap();
    assert_eq!(points.balance, 50);
    assert_eq!(points.ledger[0].kind, PointsKind::Burn);
    assert_eq!(points.ledger[0].points, -100);
    let coupon = s
        .phone
        .wallet()
        .unwrap()
        .into_iter()
        .find(|c| c.offer_id == "rw-tote")
        .expect("the reward's coupon");
    online(s.till.redeem(&coupon.code, 0, "R-2"));
    // Clipping a reward instead of buying it is refused.
    s.phone.clip_offer("rw-tote").unwrap();
    assert_eq!(s.phone.sync().unwrap().rejected, 1);
}

#[test]
fn returns_and_voids_take_points_back_and_the_balance_never_goes_below_zero() {
    let s = shop();
    online(
        s.till
            .record_purchase(&purchase("R-1", Some(&s.card), 20_000)),
    );
    // Half brought back: half the points.
    let back = online(s.till.return_goods(&ReturnRequest {
        receipt: "R-1".into(),
        store_id: None,
        refunded_cents: 10_000,
    }));
    assert_eq!(
        (
            back.points_reversed,
            back.points_unrecovered,
            back.points_balance
        ),
        (100, 0, 100)
    );
    // More than is left of the purchase: refused.
    assert_eq!(
        refused(s.till.return_goods(&ReturnRequest {
            receipt: "R-1".into(),
            store_id: None,
            refunded_cents: 10_001,
        })),
        (422, codes::RETURN_REFUSED.to_owned())
    );
    // The member spends the rest, then returns the other half: the balance stops at zero and
    // the shortfall is reported.
    let (status, body) = admin(
        reqwest::Method::POST,
        &s.server,
        &format!("/admin/v1/members/{}/points", s.member),
        json!({"points": -80, "reason": "goodwill correction"}),
    );
    assert_eq!((status, body["balance"].as_u64()), (200, Some(20)));
    let (status, body) = admin(
        reqwest::Method::POST,
        &s.server,
        &format!("/admin/v1/members/{}/points", s.member),
        json!({"points": -21, "reason": "too much"}),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some(codes::INSUFFICIENT_POINTS))
    );
    let back = online(s.till.return_goods(&ReturnRequest {
        receipt: "R-1".into(),
        store_id: Some("st-paris-01".into()),
        refunded_cents: 10_000,
    }));
    assert_eq!(
        (
            back.points_reversed,
            back.points_unrecovered,
            back.points_balance
        ),
        (20, 80, 0)
    );
    // A void within the window undoes a purchase and a redemption on the same receipt.
    online(
        s.till
            .record_purchase(&purchase("R-2", Some(&s.card), 3_000)),
    );
    s.phone.clip_offer("of-009").unwrap();
    s.phone.sync().unwrap();
    let code = s.phone.wallet().unwrap()[0].code.clone();
    online(s.till.redeem(&code, 3_000, "R-2"));
    let void = online(s.till.void("R-2"));
    assert!(void.purchase_voided);
    assert_eq!(void.points_reversed, 30);
    assert_eq!(void.coupons_restored.len(), 1);
    // The coupon can be used again, here and on the server.
    online(s.till.redeem(&code, 3_000, "R-3"));
    // Nothing under that receipt any more.
    assert_eq!(
        refused(s.till.void("R-2")),
        (404, codes::NOTHING_TO_VOID.to_owned())
    );
    // Past the window: refused.
    rules(&s.server, |r| r["void_window_minutes"] = json!(0));
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(
        refused(s.till.void("R-3")),
        (422, codes::VOID_WINDOW_CLOSED.to_owned())
    );
    s.phone.sync().unwrap();
    let points = s.phone.points().unwrap();
    assert_eq!(points.balance, 0);
    let kinds: Vec<PointsKind> = points.ledger.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            PointsKind::Reverse,
            PointsKind::Earn,
            PointsKind::Reverse,
            PointsKind::Adjust,
            PointsKind::Reverse,
            PointsKind::Earn
        ]
    );
}

#[test]
fn bad_till_requests_get_typed_problems() {
    let s = shop();
    let token = till_token(&s.server, "st-paris-01");
    let post = |path: &str, key: &str, body: Value| -> (u16, Value) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}{path}", s.server.url()))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    };
    let code = |r: (u16, Value)| (r.0, r.1["code"].as_str().unwrap_or("").to_owned());
    let line = json!([{"sku": "sku-1", "quantity": 1, "amount_cents": 1000}]);
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00001",
            json!({"receipt": "R-1", "lines": line, "total_cents": 1001})
        )),
        (422, codes::VALIDATION_FAILED.into()),
        "a total above its lines"
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00002",
            json!({"receipt": "R-1", "card_number": "0000", "lines": line, "total_cents": 1000})
        )),
        (422, codes::UNKNOWN_CARD.into())
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00003",
            json!({"receipt": "R-1", "lines": line, "total_cents": 1000})
        ))
        .0,
        200
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00004",
            json!({"receipt": "R-1", "lines": line, "total_cents": 1000})
        )),
        (409, codes::RECEIPT_REUSED.into()),
        "a second purchase under one receipt"
    );
    // The same key replays the first answer.
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00003",
            json!({"receipt": "R-1", "lines": line, "total_cents": 1000})
        ))
        .0,
        200
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00005",
            json!({"receipt": "R-9", "lines": line, "total_cents": 1000,
                   "occurred_offline_at": "2020-01-01T00:00:00Z"})
        )),
        (422, codes::REPORT_TOO_OLD.into())
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00006",
            json!({"receipt": "R-9", "lines": line, "total_cents": 1000,
                   "occurred_offline_at": "2099-01-01T00:00:00Z"})
        )),
        (422, codes::CLOCK_SKEW.into())
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00007",
            json!({"receipt": "", "lines": line, "total_cents": 1000})
        )),
        (422, codes::VALIDATION_FAILED.into())
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00008",
            json!({"receipt": "R-10", "lines": [], "total_cents": 0})
        )),
        (422, codes::VALIDATION_FAILED.into())
    );
    assert_eq!(
        code(post(
            "/v1/till/purchases",
            "key-00009",
            json!({"receipt": "R-10", "lines": line, "total_cents": "ten"})
        )),
        (422, codes::INVALID_BODY.into())
    );
    assert_eq!(
        code(post(
            "/v1/till/returns",
            "key-00010",
            json!({"receipt": "R-404", "refunded_cents": 100})
        )),
        (404, codes::RETURN_REFUSED.into())
    );
    // The core refuses the same bad purchase before sending anything.
    let mut bad = purchase("R-11", None, 1000);
    bad.total_cents = 5000;
    assert!(matches!(
        s.till.record_purchase(&bad),
        Err(TillError::InvalidInput { .. })
    ));
    // Invalid rules are refused.
    let (status, body) = admin(
        reqwest::Method::PUT,
        &s.server,
        "/admin/v1/loyalty-rules",
        json!({"points_per_euro": 1, "points_validity_days": 0, "tiers": [{"name": "A", "threshold": 5, "multiplier_percent": 100}],
               "tier_window_days": 365, "tier_hold_days": 0, "void_window_minutes": 5}),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let (status, _) = admin(
        reqwest::Method::PUT,
        &s.server,
        "/admin/v1/loyalty-rules",
        json!({"points_per_euro": 1, "points_validity_days": 0, "tiers": [{"name": "A", "threshold": 0, "multiplier_percent": 100}],
               "tier_window_days": 365, "tier_hold_days": 0, "void_window_minutes": 5,
               "web_coupon": {"min_total_cents": 1, "offer_id": "of-nope"}}),
    );
    assert_eq!(status, 422, "a web coupon for an offer that does not exist");
}
