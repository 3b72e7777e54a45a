//! One eligibility function on both sides (issue #13): for random offers, members and times, the
//! server accepts a clip (or, for a reward, a purchase with points) exactly when the phone shows
//! the offer as available, and refuses it by the same rule the phone names.

use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_core::Tessera;
use tessera_e2e::{Server, admin, device, till_token};

#[derive(Debug, Clone)]
struct OfferSpec {
    /// Hours from now to the start.
    start_h: i64,
    /// Hours it lasts.
    length_h: i64,
    channel: &'static str,
    tiers: Vec<&'static str>,
    segments: Vec<&'static str>,
    limit: Option<u32>,
    reward: bool,
    /// Clipped and redeemed once before the comparison (when the rules let it).
    used_before: bool,
}

fn offer_spec() -> impl Strategy<Value = OfferSpec> {
    (
        prop::sample::select(vec![-24 * 30, -2, -2, 1, 24 * 30]),
        prop::sample::select(vec![1, 24 * 60, 24 * 60]),
        prop::sample::select(vec!["in_store", "online", "both"]),
        prop::sample::subsequence(vec!["Member", "Silver", "Gold"], 0..=2),
        prop::sample::subsequence(vec!["students", "families"], 0..=2),
        prop::option::of(1u32..=2),
        prop::bool::weighted(0.2),
        any::<bool>(),
    )
        .prop_map(
            |(start_h, length_h, channel, tiers, segments, limit, reward, used_before)| OfferSpec {
                start_h,
                length_h,
                channel,
                tiers,
                segments,
                limit,
                reward,
                used_before,
            },
        )
}

static CASE: AtomicU32 = AtomicU32::new(0);

fn offer_json(id: &str, s: &OfferSpec) -> Value {
    let now = jiff::Timestamp::now();
    let from = now + jiff::SignedDuration::from_hours(s.start_h);
    let mut o = json!({
        "id": id,
        "title": format!("Offer {id}"),
        "description": "",
        "kind": {"type": "percent_off", "percent": 10},
        "valid_from": from.to_string(),
        "valid_to": (from + jiff::SignedDuration::from_hours(s.length_h)).to_string(),
        "channel": s.channel,
        "tiers": s.tiers,
        "segments": s.segments,
        "requires_clip": true,
    });
    if let Some(l) = s.limit {
        o["per_member_limit"] = json!(l);
    }
    if s.reward {
        o["points_cost"] = json!(10);
    }
    o
}

fn session_token(t: &Tessera) -> String {
    tessera_e2e::rusqlite::Connection::open(t.path())
        .unwrap()
        .query_row("SELECT access_token FROM session", [], |r| r.get(0))
        .unwrap()
}

/// The server's answer to the member's clip (a reward: its purchase): `None` when accepted,
/// else the rule it names.
fn server_answer(server: &Server, token: &str, id: &str, reward: bool) -> Option<String> {
    let kind = if reward { "buy_reward" } else { "clip_offer" };
    let resp = Client::new()
        .post(format!("{}/v1/mutations", server.url()))
        .bearer_auth(token)
        .header(
            "idempotency-key",
            tessera_server::auth::random_token().unwrap(),
        )
        .json(&json!({"type": kind, "offer_id": id}))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().unwrap_or(Value::Null);
    match status {
        200 => None,
        422 if body["code"] == "offer_refused" => Some(body["rule"].as_str().unwrap().to_owned()),
        _ => panic!("unexpected answer {status}: {body}"),
    }
}

fn redeem_once(server: &Server, till: &str, code: &str) {
    let resp = Client::new()
        .post(format!("{}/v1/till/redemptions", server.url()))
        .bearer_auth(till)
        .header("idempotency-key", tessera_server::auth::random_token().unwrap())
        .json(&json!({"code": code, "receipt": tessera_server::auth::random_token().unwrap()[..20], "basket_cents": 10000}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_server_accepts_a_clip_exactly_when_the_phone_shows_the_offer(
        offers in prop::collection::vec(offer_spec(), 1..10),
        segments in prop::sample::subsequence(vec!["students", "families"], 0..=2),
    ) {
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        // Every case also has an offer for everyone, once per member, used already: the limit
        // path is always taken.
        let mut offers = offers;
        offers.push(OfferSpec {
            start_h: -2,
            length_h: 24 * 60,
            channel: "in_store",
            tiers: Vec::new(),
            segments: Vec::new(),
            limit: Some(1),
            reward: false,
            used_before: true,
        });
        let server = Server::start_with(
            tessera_server::ServerConfig {
                rate_limits: tessera_server::guard::RateLimits::off(),
                ..tessera_server::ServerConfig::default()
            },
            Some(tessera_e2e::small_catalog(5, 0)),
        );
        let ids: Vec<String> = (0..offers.len()).map(|i| format!("of-p{case}-{i}")).collect();
        for (id, spec) in ids.iter().zip(&offers) {
            let (status, body) = admin(Method::PUT, &server, &format!("/admin/v1/offers/{id}"), offer_json(id, spec));
            prop_assert_eq!(status, 204, "{}", body);
        }
        let dir = tempfile::tempdir().unwrap();
        let t = tessera_e2e::phone(dir.path().join("m.db"));
        t.enrol(&server.url(), "Prop Tester", device()).unwrap();
        t.sync().unwrap();
        let member = t.member_state().unwrap().unwrap().state.member_id;
        let token = session_token(&t);
        admin(Method::PUT, &server, &format!("/admin/v1/members/{member}/segments"), json!(segments));
        // Points enough for every reward: the ledger is not what is compared.
        admin(Method::POST, &server, &format!("/admin/v1/members/{member}/points"),
            json!({"points": 100_000, "reason": "property test"}));
        // Uses before: clip and redeem where the rules let it.
        let till = till_token(&server, "st-paris-01");
        for (id, spec) in ids.iter().zip(&offers) {
            if spec.used_before && !spec.reward && server_answer(&server, &token, id, false).is_none() {
                let me: Value = Client::new().get(format!("{}/v1/me", server.url()))
                    .bearer_auth(&token).send().unwrap().json().unwrap();
                let code = me["wallet"].as_array().unwrap().iter()
                    .find(|c| c["offer_id"] == id.as_str() && c["state"]["state"] == "available")
                    .unwrap()["code"].as_str().unwrap().to_owned();
                redeem_once(&server, &till, &code);
            }
        }
        t.sync().unwrap();
        for (id, spec) in ids.iter().zip(&offers) {
            let phone = t.offer_refusal(id).unwrap().map(|r| r.rule().to_owned());
            let server_says = server_answer(&server, &token, id, spec.reward);
            prop_assert_eq!(&phone, &server_says, "offer {:?}", spec);
        }
    }
}
