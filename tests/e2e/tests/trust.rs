//! The server trusts nothing a phone or a till sends (issue #13), tried over real HTTP as an
//! attacker would with an ordinary client: every offer rule holds at clip, reward purchase and
//! redemption; the admin door needs an operator credential; no token is stored; rates and
//! bodies are bounded; text and money obey one rule each.

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_e2e::raw::*;
use tessera_e2e::{ADMIN_TOKEN, Server, admin, till_token};

fn me(server: &Server, token: &str) -> Value {
    Client::new()
        .get(format!("{}/v1/me", server.url()))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The code of the member's newest usable coupon of `offer`.
fn coupon(server: &Server, token: &str, offer: &str) -> String {
    me(server, token)["wallet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["offer_id"] == offer && c["state"]["state"] == "available")
        .unwrap_or_else(|| panic!("a coupon of {offer}"))["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn redeem(server: &Server, till: &str, code: &str, basket: u64) -> (u16, Value) {
    let resp = Client::new()
        .post(format!("{}/v1/till/redemptions", server.url()))
        .bearer_auth(till)
        .header("idempotency-key", key())
        .json(&json!({"code": code, "receipt": format!("R-{}", key()), "basket_cents": basket}))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

/// An in-store offer valid in every shop for a year from yesterday, changed by `edit`.
fn offer(id: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let now = jiff::Timestamp::now();
    let mut o = json!({
        "id": id,
        "title": format!("Offer {id}"),
        "description": "",
        "kind": {"type": "percent_off", "percent": 10},
        "valid_from": (now - jiff::SignedDuration::from_hours(24)).to_string(),
        "valid_to": (now + jiff::SignedDuration::from_hours(24 * 365)).to_string(),
        "channel": "in_store",
        "requires_clip": true,
    });
    edit(&mut o);
    o
}

fn put_offer(server: &Server, o: &Value) {
    let id = o["id"].as_str().unwrap();
    let (status, body) = admin(
        Method::PUT,
        server,
        &format!("/admin/v1/offers/{id}"),
        o.clone(),
    );
    assert_eq!(status, 204, "{body}");
}

fn refused(answer: &(u16, Value), rule: &str) {
    assert_eq!(answer.0, 422, "{}", answer.1);
    assert_eq!(answer.1["code"], "offer_refused", "{}", answer.1);
    assert_eq!(answer.1["rule"], rule, "{}", answer.1);
}

#[test]
fn every_offer_rule_holds_at_clip_purchase_and_redemption() {
    let server = Server::start();
    let (member, token, _) = enrol(&server);

    // A base-tier member clips a Gold-only offer.
    put_offer(
        &server,
        &offer("of-t-gold", |o| o["tiers"] = json!(["Gold"])),
    );
    refused(&clip(&server, &token, "of-t-gold"), "tier");

    // A member outside the offer's segment; admitted once the programme puts them in it.
    put_offer(
        &server,
        &offer("of-t-seg", |o| o["segments"] = json!(["students"])),
    );
    refused(&clip(&server, &token, "of-t-seg"), "segment");
    let (status, _) = admin(
        Method::PUT,
        &server,
        &format!("/admin/v1/members/{member}/segments"),
        json!(["students"]),
    );
    assert_eq!(status, 204);
    assert_eq!(clip(&server, &token, "of-t-seg").0, 200);

    // One per member: clipped, redeemed, clipped again.
    put_offer(
        &server,
        &offer("of-t-once", |o| o["per_member_limit"] = json!(1)),
    );
    assert_eq!(clip(&server, &token, "of-t-once").0, 200);
    let till = till_token(&server, "st-paris-01");
    let code = coupon(&server, &token, "of-t-once");
    assert_eq!(redeem(&server, &till, &code, 5000).0, 200);
    refused(&clip(&server, &token, "of-t-once"), "per_member_limit");

    // Starting in 30 days: neither clipped nor bought today.
    let later = |o: &mut Value| {
        let now = jiff::Timestamp::now();
        o["valid_from"] = json!((now + jiff::SignedDuration::from_hours(24 * 30)).to_string());
    };
    put_offer(&server, &offer("of-t-later", later));
    refused(&clip(&server, &token, "of-t-later"), "not_started");

    // A reward for Gold members only, bought by a base member with the points to pay.
    put_offer(
        &server,
        &offer("of-t-reward", |o| {
            o["points_cost"] = json!(10);
            o["tiers"] = json!(["Gold"]);
        }),
    );
    let (status, _) = admin(
        Method::POST,
        &server,
        &format!("/admin/v1/members/{member}/points"),
        json!({"points": 100, "reason": "goodwill"}),
    );
    assert_eq!(status, 200);
    refused(
        &mutate(
            &server,
            &token,
            &json!({"type": "buy_reward", "offer_id": "of-t-reward"}).to_string(),
        ),
        "tier",
    );
    // And a reward is never clipped for free.
    refused(&clip(&server, &token, "of-t-reward"), "reward");

    // Only in outlets: the coupon carries the tag; a shop without it refuses, online and at the
    // till offline; an outlet takes it.
    put_offer(
        &server,
        &offer("of-t-outlet", |o| o["store_tags"] = json!(["outlet"])),
    );
    assert_eq!(clip(&server, &token, "of-t-outlet").0, 200);
    let code = coupon(&server, &token, "of-t-outlet");
    let plain = till_token(&server, "st-paris-03"); // no "outlet" tag
    let answer = redeem(&server, &plain, &code, 5000);
    assert_eq!(answer.0, 422, "{}", answer.1);
    assert_eq!(answer.1["code"], "coupon_refused");
    let dir = tempfile::tempdir().unwrap();
    let offline_till = tessera_till::Till::open(
        dir.path().join("t.db"),
        &server.url(),
        &plain,
        "st-paris-03",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap();
    assert!(matches!(
        offline_till.verify(&code, None, 5000),
        Err(tessera_till::TillError::Coupon(
            tessera_core::coupon::CouponError::WrongStore
        ))
    ));
    let outlet = till_token(&server, "st-paris-02");
    assert_eq!(redeem(&server, &outlet, &code, 5000).0, 200);
}

#[test]
fn redemptions_online_and_offline_follow_the_offer_as_it_stands() {
    let server = Server::start();
    let (_, token, _) = enrol(&server);
    let till = till_token(&server, "st-paris-01");
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let weekday = at
        .in_tz("Europe/Paris")
        .unwrap()
        .weekday()
        .to_monday_one_offset();
    let other_days: Vec<i8> = (1..=7).filter(|d| *d != weekday).collect();

    // Clipped while valid every day; then the merchant restricts it to the other days. A till
    // that redeemed it offline a minute ago (today, in Paris) reports it now: refused by the day.
    put_offer(&server, &offer("of-t-days", |_| {}));
    assert_eq!(clip(&server, &token, "of-t-days").0, 200);
    let code = coupon(&server, &token, "of-t-days");
    put_offer(
        &server,
        &offer("of-t-days", |o| o["days"] = json!(other_days)),
    );
    let resp = Client::new()
        .post(format!("{}/v1/till/redemptions", server.url()))
        .bearer_auth(&till)
        .header("idempotency-key", key())
        .json(
            &json!({"code": code, "receipt": "R-offline-1", "basket_cents": 5000,
            "redeemed_offline_at": at.to_string()}),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["code"], "offer_refused", "{body}");
    assert_eq!(body["rule"], "day", "{body}");

    // Clipped, then the offer ends early: an online redemption is refused by its end.
    put_offer(&server, &offer("of-t-ends", |_| {}));
    assert_eq!(clip(&server, &token, "of-t-ends").0, 200);
    let code = coupon(&server, &token, "of-t-ends");
    put_offer(
        &server,
        &offer("of-t-ends", |o| {
            o["valid_to"] =
                json!((jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5)).to_string())
        }),
    );
    refused(&redeem(&server, &till, &code, 5000), "ended");
}

#[test]
fn money_text_and_json_are_bounded_at_the_door() {
    let server = Server::start();
    let (_, token, _) = enrol(&server);
    // A basket of 2^63 cents.
    assert_eq!(clip(&server, &token, "of-009").0, 200);
    let code = coupon(&server, &token, "of-009");
    let till = till_token(&server, "st-paris-01");
    let answer = redeem(&server, &till, &code, 1 << 63);
    assert_eq!(answer.0, 422, "{}", answer.1);
    assert_eq!(answer.1["code"], "validation_failed");
    assert!(
        answer.1["detail"]
            .as_str()
            .unwrap()
            .contains("basket_cents")
    );
    // One bound for offers too.
    let rich = offer(
        "of-t-rich",
        |o| {
            o["kind"] = json!({"type": "amount_off", "amount_cents": 1u64 << 62, "currency": "EUR"})
        },
    );
    assert_eq!(
        admin(Method::PUT, &server, "/admin/v1/offers/of-t-rich", rich).0,
        422
    );

    // Display text: invisible, overriding, and clean.
    let store = |name: &str| {
        let mut s = serde_json::to_value(&tessera_e2e::seed().stores[0]).unwrap();
        s["id"] = json!("st-t-1");
        s["name"] = json!(name);
        s
    };
    for bad in ["\u{200B}", "\u{200B}\u{2060}", "Caf\u{202E}e"] {
        let (status, body) = admin(Method::PUT, &server, "/admin/v1/stores/st-t-1", store(bad));
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert_eq!(body["code"], "validation_failed");
    }
    let (status, _) = admin(
        Method::PUT,
        &server,
        "/admin/v1/stores/st-t-1",
        store("  Cafe\u{301} du Port "),
    );
    assert_eq!(status, 204);
    let feed: Value = Client::new()
        .get(format!("{}/v1/catalog?limit=5000", server.url()))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let stored = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "store" && c["store"]["id"] == "st-t-1")
        .unwrap()
        .clone();
    assert_eq!(stored["store"]["name"], "Caf\u{e9} du Port", "{stored}");

    // A push campaign's title is display text too.
    let campaign = json!({
        "id": "c-invisible",
        "offer": offer("of-t-push", |_| {}),
        "title": "\u{200B}",
        "expires_at": (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string(),
    });
    let (status, body) = admin(Method::POST, &server, "/admin/v1/campaigns", campaign);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("campaign.title"),
        "{body}"
    );

    // A member given twice: refused, not "the last one wins".
    let twice = r#"{"type": "clip_offer", "offer_id": "of-009", "offer_id": "of-t-gold"}"#;
    let answer = mutate(&server, &token, twice);
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(
        answer.1["detail"].as_str().unwrap().contains("given twice"),
        "{}",
        answer.1
    );
    let twice_tag = r#"{"type": "clip_offer", "type": "buy_reward", "offer_id": "of-009"}"#;
    assert_eq!(mutate(&server, &token, twice_tag).0, 400);
    let resp = Client::new()
        .put(format!("{}/admin/v1/members/m_x/segments", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(r#"["a", {"k": 1, "k": 2}]"#)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // An admin body is bounded by what its route needs (one shop: 64 KiB).
    let mut huge = store("Big");
    huge["address"] = json!("x".repeat(100 * 1024));
    let (status, body) = admin(Method::PUT, &server, "/admin/v1/stores/st-t-1", huge);
    assert_eq!(status, 413, "{body}");
}

#[test]
fn a_phone_clock_a_few_minutes_ahead_does_not_stop_the_members_challenges() {
    let server = Server::start();
    let rules = json!({"version": 1, "challenges": [{
        "id": "two-visits", "title": "Two visits",
        "window": {"type": "rolling_days", "days": 30},
        "goal": {"type": "count", "target": 2, "filter": {"kinds": ["store_visit"]}},
        "reward": {"type": "points", "points": 10}
    }]});
    let (status, body) = admin(Method::PUT, &server, "/admin/v1/challenges", rules);
    assert_eq!(status, 204, "{body}");
    let (_, token, _) = enrol(&server);
    let visit = |id: &str, ahead_min: i64| {
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(ahead_min);
        let m = json!({"type": "record_event", "event": {"event_id": id, "kind": "store_visit",
            "occurred_at": at.to_string(), "store_id": "st-paris-01"}});
        mutate(&server, &token, &m.to_string())
    };
    // The server accepts a phone's clock up to a day ahead (its one rule for device clocks), so
    // the rules engine must evaluate such an event too, not fail on every later evaluation.
    assert_eq!(visit("v-ahead", 10).0, 200);
    assert_eq!(visit("v-now", 0).0, 200);
    let state = me(&server, &token);
    let progress = &state["challenges"][0];
    assert_eq!(progress["done"], 2, "{state}");
    assert_eq!(progress["completed"], true, "{state}");
}

#[test]
fn a_coupon_of_an_online_only_offer_is_for_the_website_only() {
    let server = Server::start();
    let (member, token, _) = enrol(&server);
    // A reward for the website only, bought with points.
    put_offer(
        &server,
        &offer("of-t-online", |o| {
            o["channel"] = json!("online");
            o["points_cost"] = json!(10);
        }),
    );
    let (status, _) = admin(
        Method::POST,
        &server,
        &format!("/admin/v1/members/{member}/points"),
        json!({"points": 100, "reason": "goodwill"}),
    );
    assert_eq!(status, 200);
    let bought = mutate(
        &server,
        &token,
        &json!({"type": "buy_reward", "offer_id": "of-t-online"}).to_string(),
    );
    assert_eq!(bought.0, 200, "{}", bought.1);
    let code = coupon(&server, &token, "of-t-online");
    // A shop's till refuses it (the coupon names the website), the web checkout takes it.
    let shop = redeem(&server, &till_token(&server, "st-paris-01"), &code, 5000);
    assert_eq!(shop.0, 422, "{}", shop.1);
    assert_eq!(shop.1["code"], "coupon_refused");
    let web = redeem(&server, &till_token(&server, "web"), &code, 5000);
    assert_eq!(web.0, 200, "{}", web.1);
}
