//! Challenges against the real server: the rule set travels with the catalog feed, the phone
//! counts its own events at once (offline, an estimate), the server evaluates the same events,
//! till purchases and what the programme's systems report, pays each reward once (points, a
//! tier bonus, a coupon, a badge), and after sync the phone shows exactly what the server
//! computed. A property test drives random rule sets and histories (four time zones, the autumn
//! clock changes inside) through the server and checks the core gives identical progress and
//! rewards.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use tessera_core::Tessera;
use tessera_core::api::{EventKind, MemberState, PointsKind, PurchaseLine, PurchaseRequest};
use tessera_core::preferences::Preferences;
use tessera_core::rules::{RuleEvent, RuleEventKind, RuleSet, evaluate};
use tessera_e2e::{Server, admin, device, open_till};
use tessera_till::Done;

fn put_rules(server: &Server, rules: &Value) {
    let (status, body) = admin(
        reqwest::Method::PUT,
        server,
        "/admin/v1/challenges",
        rules.clone(),
    );
    assert_eq!(status, 204, "{body}");
}

fn member_state(phone: &Tessera) -> MemberState {
    phone.member_state().unwrap().expect("synced").state
}

/// The member as the server holds it (with the rule history the phone keeps apart).
fn server_state(server: &Server, member: &str) -> MemberState {
    let (status, export) = admin(
        reqwest::Method::GET,
        server,
        &format!("/admin/v1/members/{member}/export"),
        Value::Null,
    );
    assert_eq!(status, 200, "{export}");
    serde_json::from_value(export["member"].clone()).unwrap()
}

fn programme() -> Value {
    json!({"version": 1, "challenges": [
        {"id": "autumn-three", "title": "Three from the autumn collection",
         "badge": "autumn-leaf",
         "window": {"type": "calendar_month"},
         "goal": {"type": "distinct", "of": "sku", "target": 3,
                  "filter": {"kinds": ["purchase"], "collections": ["autumn"]}},
         "reward": {"type": "points", "points": 100}},
        {"id": "two-shops", "title": "Visit two of our shops", "badge": "explorer",
         "window": {"type": "rolling_days", "days": 30},
         "goal": {"type": "distinct", "of": "store", "target": 2,
                  "filter": {"kinds": ["store_visit"]}},
         "reward": {"type": "coupon", "offer_id": "of-012"}},
        {"id": "reviewer", "title": "Post a review", "opt_in": true,
         "window": {"type": "calendar_month"},
         "goal": {"type": "count", "target": 1, "filter": {"kinds": ["review_posted"]}},
         "reward": {"type": "tier_bonus", "points": 600}},
        {"id": "goodwill", "title": "Sorry it was late",
         "window": {"type": "rolling_days", "days": 365},
         "goal": {"type": "count", "target": 1, "filter": {"kinds": ["late_delivery"]}},
         "reward": {"type": "badge"}, "badge": "patience"}
    ]})
}

fn autumn(receipt: &str, card: &str, skus: &[&str]) -> PurchaseRequest {
    PurchaseRequest {
        receipt: receipt.into(),
        card_number: Some(card.into()),
        member_code: None,
        lines: skus
            .iter()
            .map(|s| PurchaseLine {
                sku: (*s).into(),
                category: Some("tea".into()),
                collection: Some("autumn".into()),
                quantity: 1,
                amount_cents: 1200,
            })
            .collect(),
        total_cents: 1200 * skus.len() as u64,
        occurred_offline_at: None,
    }
}

fn progress<'a>(
    view: &'a [tessera_core::rules::ChallengeProgress],
    id: &str,
) -> &'a tessera_core::rules::ChallengeProgress {
    view.iter().find(|c| c.challenge_id == id).unwrap()
}

#[test]
fn the_phone_counts_offline_the_server_pays_once_and_after_sync_they_agree() {
    let server = Server::start();
    put_rules(&server, &programme());
    let dir = tempfile::tempdir().unwrap();
    let phone = tessera_e2e::phone(dir.path().join("m.db"));
    phone
        .enrol(&server.url(), "Chloé Martin", device())
        .unwrap();
    phone.sync().unwrap();
    let card = phone.card().unwrap().card_number;
    let member = phone.sync_status().unwrap().member_id.unwrap();

    // Two shops visited offline: the phone shows the challenge done at once, an estimate.
    for shop in ["st-paris-01", "st-paris-02"] {
        phone
            .record_event(EventKind::StoreVisit, Some(shop.into()), BTreeMap::new())
            .unwrap();
    }
    let offline = phone.challenges().unwrap();
    assert!(offline.estimated);
    let shops = progress(&offline.challenges, "two-shops");
    assert!(shops.completed && shops.done == 2, "{shops:?}");
    assert_eq!(offline.badges.len(), 1);
    assert_eq!(offline.badges[0].badge, "explorer");
    // The opt-in challenge counts nothing until joined.
    assert!(!progress(&offline.challenges, "reviewer").joined);

    // After sync the server's evaluation replaces the estimate: the coupon is in the wallet.
    phone.sync().unwrap();
    let synced = phone.challenges().unwrap();
    assert!(!synced.estimated);
    let state = member_state(&phone);
    assert_eq!(
        synced.challenges, state.challenges,
        "the phone shows the server's answer"
    );
    assert_eq!(state.badges.len(), 1);
    assert_eq!(state.badges[0].challenge_id, "two-shops");
    assert_eq!(state.wallet.len(), 1, "the challenge's coupon");
    assert_eq!(state.wallet[0].offer_id, "of-012");

    // Till purchases: three different autumn products this month pay 100 points, once.
    let till = open_till(&server, dir.path().join("till.journal"), "st-paris-01");
    let buy = |receipt: &str, skus: &[&str]| match till
        .record_purchase(&autumn(receipt, &card, skus))
        .unwrap()
    {
        Done::Online(r) => r,
        Done::Offline => panic!("the server is up"),
    };
    buy("R-1", &["sku-a", "sku-b"]);
    let third = buy("R-2", &["sku-b", "sku-c"]);
    // 24 + 24 points earned, plus the challenge's 100 paid with the purchase that completed it.
    assert_eq!(third.points_balance, 24 + 24 + 100);
    buy("R-3", &["sku-d", "sku-e", "sku-f"]);
    phone.sync().unwrap();
    let state = member_state(&phone);
    let bonuses: Vec<_> = state
        .points
        .ledger
        .iter()
        .filter(|e| e.kind == PointsKind::Bonus)
        .collect();
    assert_eq!(
        bonuses.len(),
        1,
        "a challenge completed once this month pays once"
    );
    assert_eq!(bonuses[0].points, 100);
    assert!(progress(&state.challenges, "autumn-three").completed);

    // A review before joining does not count; after joining, the tier bonus lifts the tier.
    phone
        .record_event(EventKind::ReviewPosted, None, BTreeMap::new())
        .unwrap();
    phone.sync().unwrap();
    assert_eq!(member_state(&phone).tier, "Member");
    phone.join_challenge("reviewer").unwrap();
    assert!(
        progress(&phone.challenges().unwrap().challenges, "reviewer").joined,
        "joined at once on the phone"
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    phone
        .record_event(EventKind::ReviewPosted, None, BTreeMap::new())
        .unwrap();
    phone.sync().unwrap();
    let state = member_state(&phone);
    assert_eq!(
        state.tier, "Silver",
        "600 qualifying points from the tier bonus"
    );
    assert!(progress(&state.challenges, "reviewer").completed);
    assert!(matches!(
        phone.join_challenge("no-such-challenge"),
        Err(tessera_core::Error::InvalidInput { .. })
    ));

    // The programme's systems report a late delivery; the same event again counts once.
    let late = json!({"events": [{"event_id": "late-1", "kind": "late_delivery",
        "at_ms": jiff::Timestamp::now().as_millisecond(),
        "store_id": null, "channel": "online", "amount_cents": 0, "lines": []}]});
    let path = format!("/admin/v1/members/{member}/rule-events");
    let (status, first) = admin(reqwest::Method::POST, &server, &path, late.clone());
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["accepted"].as_u64(), first["rewards_paid"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, again) = admin(reqwest::Method::POST, &server, &path, late);
    assert_eq!(
        (again["accepted"].as_u64(), again["rewards_paid"].as_u64()),
        (Some(0), Some(0))
    );
    phone.sync().unwrap();
    let state = member_state(&phone);
    let badges: Vec<&str> = state.badges.iter().map(|b| b.badge.as_str()).collect();
    assert_eq!(badges, ["explorer", "autumn-leaf", "patience"]);
    assert_eq!(phone.challenges().unwrap().badges, state.badges);

    // The core, given the server's inputs, computes exactly the server's progress.
    assert!(
        state.rule_events.is_empty(),
        "the phone keeps the history apart"
    );
    let state = server_state(&server, &member);
    assert_eq!(
        state.rule_events.len(),
        2 + 3 + 1 + 2 + 1,
        "visits, purchases, the tills' visit, reviews, late"
    );
    // Three purchases in one shop on one day are one visit there.
    let at_till: Vec<_> = state
        .rule_events
        .iter()
        .filter(|e| e.event_id.starts_with("visit-st-paris-01-"))
        .collect();
    assert_eq!(at_till.len(), 1);
    assert_eq!(at_till[0].kind, RuleEventKind::StoreVisit);
    let rules: RuleSet = serde_json::from_value(programme()).unwrap();
    let at = state.challenges_as_of.as_deref().unwrap();
    let joined = state
        .joined_challenges
        .iter()
        .map(|j| (j.challenge_id.clone(), j.joined_at_ms))
        .collect();
    let core = evaluate(
        &rules,
        &state.preferences.timezone,
        joined,
        &state.rule_events,
        at.parse::<jiff::Timestamp>().unwrap().as_millisecond(),
    )
    .unwrap();
    assert_eq!(core.progress, state.challenges);
}

#[test]
fn bad_rules_and_bad_events_get_typed_problems() {
    let server = Server::start();
    let bad = |rules: Value| admin(reqwest::Method::PUT, &server, "/admin/v1/challenges", rules);
    // A newer format, an unknown field, an unsatisfiable streak, a zero target.
    let (s, p) = bad(json!({"version": 2, "challenges": []}));
    assert_eq!(
        (s, p["code"].as_str()),
        (422, Some("validation_failed")),
        "{p}"
    );
    let (s, _) = bad(json!({"version": 1, "challenges": [], "extra": 1}));
    assert_eq!(s, 422, "an unknown field is refused, not ignored");
    assert_eq!(
        admin(
            reqwest::Method::PUT,
            &server,
            "/admin/v1/challenges",
            json!("{not json")
        )
        .0,
        422
    );
    let mut streak = programme();
    streak["challenges"][0]["goal"] =
        json!({"type": "streak", "period": "week", "target": 9, "filter": {}});
    let (s, p) = bad(streak);
    assert_eq!(s, 422);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be completed"),
        "{p}"
    );
    let mut zero = programme();
    zero["challenges"][1]["goal"]["target"] = json!(0);
    assert_eq!(bad(zero).0, 422);
    assert_eq!(
        admin(
            reqwest::Method::GET,
            &server,
            "/admin/v1/challenges",
            Value::Null
        )
        .0,
        404
    );

    put_rules(&server, &programme());
    let dir = tempfile::tempdir().unwrap();
    let phone = tessera_e2e::phone(dir.path().join("m.db"));
    phone.enrol(&server.url(), "Léa", device()).unwrap();
    let member = phone.sync_status().unwrap().member_id.unwrap();
    let path = format!("/admin/v1/members/{member}/rule-events");
    let event = |id: &str, at_ms: i64| {
        json!({"event_id": id, "kind": "online_order", "at_ms": at_ms, "store_id": null,
               "channel": "online", "amount_cents": 4500, "lines": []})
    };
    let now = jiff::Timestamp::now().as_millisecond();
    // From the future, an empty batch, a bad id, an unknown kind, an unknown member.
    let (s, p) = admin(
        reqwest::Method::POST,
        &server,
        &path,
        json!({"events": [event("e-1", now + 25 * 3_600_000)]}),
    );
    assert_eq!(
        (s, p["code"].as_str()),
        (422, Some("event_in_future")),
        "{p}"
    );
    let (s, _) = admin(reqwest::Method::POST, &server, &path, json!({"events": []}));
    assert_eq!(s, 422);
    // A time no calendar holds would poison every later evaluation: refused at the door.
    let (s, p) = admin(
        reqwest::Method::POST,
        &server,
        &path,
        json!({"events": [event("e-0", i64::MIN / 2)]}),
    );
    assert_eq!(s, 422, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("event.at_ms"), "{p}");
    let (s, _) = admin(
        reqwest::Method::POST,
        &server,
        &path,
        json!({"events": [event("bad id!", now)]}),
    );
    assert_eq!(s, 422);
    let mut odd = event("e-2", now);
    odd["kind"] = json!("teleported");
    assert_eq!(
        admin(
            reqwest::Method::POST,
            &server,
            &path,
            json!({"events": [odd]})
        )
        .0,
        422
    );
    let (s, _) = admin(
        reqwest::Method::POST,
        &server,
        "/admin/v1/members/nobody/rule-events",
        json!({"events": [event("e-3", now)]}),
    );
    assert_eq!(s, 404);
    // Nothing was recorded by the refused batches.
    phone.sync().unwrap();
    assert!(server_state(&server, &member).rule_events.is_empty());
}

// --- core and server agree on random programmes and histories ---------------------------------

const ZONES: [&str; 4] = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"];
const KINDS: [RuleEventKind; 4] = [
    RuleEventKind::StoreVisit,
    RuleEventKind::ReviewPosted,
    RuleEventKind::OnlineOrder,
    RuleEventKind::AppOpened,
];

fn arb_challenge(i: usize) -> impl Strategy<Value = Value> {
    (0..4usize, 0..4usize, 0..3usize, 1..4u32, any::<bool>()).prop_map(
        move |(kind, goal, window, target, repeat)| {
            let kind = serde_json::to_value(KINDS[kind]).unwrap();
            let filter = json!({"kinds": [kind]});
            let goal = match goal {
                0 => json!({"type": "count", "filter": filter, "target": target}),
                1 => json!({"type": "distinct", "of": "store", "filter": filter, "target": target}),
                2 => json!({"type": "sum", "of": "amount_cents", "filter": filter,
                            "target": u64::from(target) * 3000}),
                _ => json!({"type": "streak", "period": "day", "filter": filter, "target": target}),
            };
            let window = [
                json!({"type": "calendar_week"}),
                json!({"type": "calendar_month"}),
                json!({"type": "rolling_days", "days": 10}),
            ][window]
                .clone();
            json!({"id": format!("c-{i}"), "title": format!("Challenge {i}"),
                   "badge": format!("b-{i}"), "window": window, "goal": goal,
                   "reward": {"type": "badge"},
                   "repeat": if repeat { json!({"type": "per_window"}) } else { json!({"type": "once"}) }})
        },
    )
}

/// The end of a fixed 45-day span holding both autumn clock changes (Paris 25 October, New York
/// 1 November 2026): histories in it cross them whatever day the test runs, and a committed
/// regression seed replays the same instants.
const AUTUMN_2026: i64 = 1_793_620_800_000; // 2026-11-02T12:00:00Z
/// The same in spring (Paris 29 March, New York 8 March 2026).
const SPRING_2026: i64 = 1_775_131_200_000; // 2026-04-02T12:00:00Z

/// Events in three spans: before the autumn clock changes, before the spring ones (both fixed,
/// so the daylight-saving coverage does not depend on the day the test runs), and the last 45
/// days before now (the windows the server evaluates progress in are the current ones).
fn arb_history() -> impl Strategy<Value = Vec<RuleEvent>> {
    let now = jiff::Timestamp::now().as_millisecond();
    prop::collection::vec(
        (0..4usize, 0..(45 * 24u32), 0..3usize, 0..5000u64, 0..3usize),
        1..40,
    )
    .prop_map(move |raw| {
        raw.into_iter()
            .enumerate()
            .map(|(n, (kind, hours_ago, store, cents, span))| RuleEvent {
                event_id: format!("ev-{n}"),
                kind: KINDS[kind],
                at_ms: [AUTUMN_2026, SPRING_2026, now][span]
                    - i64::from(hours_ago) * 3_600_000
                    - 60_000,
                store_id: Some(format!("st-paris-0{}", store + 1)),
                channel: None,
                amount_cents: cents,
                lines: Vec::new(),
            })
            .collect()
    })
}

#[test]
fn the_fixed_spans_hold_the_clock_changes_they_claim() {
    for (end, zone, change) in [
        (AUTUMN_2026, "Europe/Paris", "2026-10-25T01:00:00Z"),
        (AUTUMN_2026, "America/New_York", "2026-11-01T06:00:00Z"),
        (SPRING_2026, "Europe/Paris", "2026-03-29T01:00:00Z"),
        (SPRING_2026, "America/New_York", "2026-03-08T07:00:00Z"),
    ] {
        let change: jiff::Timestamp = change.parse().unwrap();
        let tz = jiff::tz::TimeZone::get(zone).unwrap();
        let before = tz.to_offset(change - jiff::SignedDuration::from_secs(1));
        assert_ne!(before, tz.to_offset(change), "{zone} changes at {change}");
        let start = end - 45 * 24 * 3_600_000;
        assert!(
            (start..end).contains(&change.as_millisecond()),
            "{zone} {change}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn core_and_server_give_identical_progress_and_rewards(
        challenges in prop::collection::vec(0..1usize, 1..6)
            .prop_flat_map(|v| (0..v.len()).map(arb_challenge).collect::<Vec<_>>()),
        history in arb_history(),
        zone in 0..ZONES.len(),
    ) {
        let rules = json!({"version": 1, "challenges": challenges});
        let parsed: RuleSet = serde_json::from_value(rules.clone()).unwrap();
        prop_assume!(parsed.validate().is_ok());
        let server = Server::start();
        put_rules(&server, &rules);
        let dir = tempfile::tempdir().unwrap();
        let phone = tessera_e2e::phone(dir.path().join("m.db"));
        phone.enrol(&server.url(), "Prop", device()).unwrap();
        phone.sync().unwrap();
        let prefs = Preferences { timezone: ZONES[zone].into(), ..phone.preferences().unwrap() };
        phone.set_preferences(&prefs).unwrap();
        phone.sync().unwrap();
        let member = phone.sync_status().unwrap().member_id.unwrap();
        // Sent in two batches in time order: the server evaluates and pays after each, and a
        // completion depends only on the events before it, so the first batch's payments are
        // the start of the whole history's.
        let path = format!("/admin/v1/members/{member}/rule-events");
        let mut history = history;
        history.sort_by_key(|e| e.at_ms);
        let (early, late) = history.split_at(history.len() / 2);
        for batch in [early, late] {
            if batch.is_empty() { continue; }
            let (s, b) = admin(reqwest::Method::POST, &server, &path, json!({"events": batch}));
            prop_assert_eq!(s, 200, "{}", b);
        }
        phone.sync().unwrap();
        let state = member_state(&phone);
        let at = state.challenges_as_of.as_deref().unwrap()
            .parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let core = evaluate(&parsed, ZONES[zone], BTreeMap::new(), &history, at).unwrap();
        prop_assert_eq!(&core.progress, &state.challenges);
        // Every completion the core finds was paid once by the server (a badge each), in the
        // same order per challenge; none more.
        let mut expected: Vec<(String, String)> = core.completions.iter()
            .map(|c| (c.challenge_id.clone(), tessera_core::rfc3339_ms(c.at_ms)))
            .collect();
        let mut paid: Vec<(String, String)> = state.badges.iter()
            .map(|b| (b.challenge_id.clone(), b.earned_at.clone()))
            .collect();
        expected.sort();
        paid.sort();
        prop_assert_eq!(paid, expected);
        // And the phone, given the server's history, shows the same.
        prop_assert_eq!(phone.challenges().unwrap().challenges, state.challenges);
    }
}

/// The server pays in the member's calendar: two reviews 11 hours apart, on 31 October at 23:30
/// UTC and 1 November at 10:30 UTC, are both in November in Paris (UTC+1 then) and in Tokyo, but
/// in two months in UTC; a "two this month" challenge is paid in Paris and Tokyo only, and the
/// phone shows what the server paid. (The property test compares two users of the same engine;
/// this holds the server to the member's zone on a case whose answer is known.)
#[test]
fn the_server_pays_in_the_members_calendar_not_utcs() {
    let rules = json!({"version": 1, "challenges": [{
        "id": "two-reviews", "title": "Two reviews this month", "badge": "critic",
        "window": {"type": "calendar_month"},
        "goal": {"type": "count", "target": 2, "filter": {"kinds": ["review_posted"]}},
        "reward": {"type": "badge"}}]});
    let review = |id: &str, at: &str| RuleEvent {
        event_id: id.into(),
        kind: RuleEventKind::ReviewPosted,
        at_ms: at.parse::<jiff::Timestamp>().unwrap().as_millisecond(),
        store_id: None,
        channel: None,
        amount_cents: 0,
        lines: Vec::new(),
    };
    let events = [
        review("rv-1", "2026-10-31T23:30:00Z"),
        review("rv-2", "2026-11-01T10:30:00Z"),
    ];
    for (zone, paid) in [("Europe/Paris", true), ("Asia/Tokyo", true), ("UTC", false)] {
        let server = Server::start();
        put_rules(&server, &rules);
        let dir = tempfile::tempdir().unwrap();
        let phone = tessera_e2e::phone(dir.path().join("m.db"));
        phone.enrol(&server.url(), "Zoé", device()).unwrap();
        let prefs = Preferences {
            timezone: zone.into(),
            ..phone.preferences().unwrap()
        };
        phone.set_preferences(&prefs).unwrap();
        phone.sync().unwrap();
        let member = phone.sync_status().unwrap().member_id.unwrap();
        let path = format!("/admin/v1/members/{member}/rule-events");
        let (s, b) = admin(
            reqwest::Method::POST,
            &server,
            &path,
            json!({"events": events}),
        );
        assert_eq!(s, 200, "{b}");
        phone.sync().unwrap();
        let badges = member_state(&phone).badges;
        assert_eq!(badges.len(), usize::from(paid), "{zone}: {badges:?}");
        assert_eq!(
            phone.challenges().unwrap().badges.len(),
            usize::from(paid),
            "{zone}"
        );
    }
}

#[test]
fn earning_rules_in_the_rule_set_price_purchases_with_bonuses_and_birthdays() {
    let server = Server::start();
    put_rules(
        &server,
        &json!({"version": 1, "challenges": [], "earning": {
            "points_per_euro": 1,
            "bonuses": [{"filter": {"categories": ["tea"]}, "extra_percent": 100}],
            "birthday_multiplier_percent": 200}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let phone = tessera_e2e::phone(dir.path().join("m.db"));
    phone.enrol(&server.url(), "Inès", device()).unwrap();
    let card = phone.card().unwrap().card_number;
    let member = phone.sync_status().unwrap().member_id.unwrap();
    let till = open_till(&server, dir.path().join("till.journal"), "st-paris-01");
    let basket = |receipt: &str| PurchaseRequest {
        receipt: receipt.into(),
        card_number: Some(card.clone()),
        member_code: None,
        lines: vec![
            PurchaseLine {
                sku: "sku-darjeeling".into(),
                category: Some("tea".into()),
                collection: None,
                quantity: 1,
                amount_cents: 2000,
            },
            PurchaseLine {
                sku: "sku-cake".into(),
                category: Some("pastry".into()),
                collection: None,
                quantity: 1,
                amount_cents: 1000,
            },
        ],
        total_cents: 3000,
        occurred_offline_at: None,
    };
    let earned = |receipt: &str| match till.record_purchase(&basket(receipt)).unwrap() {
        Done::Online(r) => r.points_earned,
        Done::Offline => panic!("the server is up"),
    };
    // 20 € of tea counts double: 40 + 10.
    assert_eq!(earned("E-1"), 50);
    // Today is her birthday (in her time zone, UTC by default): twice that.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let path = format!("/admin/v1/members/{member}/birthday");
    let birthday = format!("{:02}-{:02}", today.month(), today.day());
    let (s, b) = admin(
        reqwest::Method::PUT,
        &server,
        &path,
        json!({"birthday": birthday}),
    );
    assert_eq!(s, 204, "{b}");
    assert_eq!(earned("E-2"), 100);
    let other = if today.month() == 1 { "02-01" } else { "01-15" };
    admin(
        reqwest::Method::PUT,
        &server,
        &path,
        json!({"birthday": other}),
    );
    assert_eq!(earned("E-3"), 50);
    // A day that does not exist, and a member who does not.
    let (s, _) = admin(
        reqwest::Method::PUT,
        &server,
        &path,
        json!({"birthday": "02-30"}),
    );
    assert_eq!(s, 422);
    let (s, _) = admin(
        reqwest::Method::PUT,
        &server,
        "/admin/v1/members/nobody/birthday",
        json!({"birthday": null}),
    );
    assert_eq!(s, 404);
}

// --- the server's kept engines pay what evaluating the whole history would --------------------

/// What arrives for the member, in the order it arrives: each arrival 40 minutes after the one
/// before (the last ones now), most of them on time, some late (recorded offline) by up to 10
/// hours.
#[derive(Debug, Clone)]
enum Arrival {
    /// Events the programme's systems report, each `late` minutes (an id already reported is
    /// ignored).
    Report(Vec<(RuleEvent, u32)>),
    /// A till purchase at a shop, `late` minutes (a purchase and a visit).
    Buy { store: usize, late: u32 },
    /// The n-th purchase so far (modulo) voided: the history loses it and maybe its visit.
    Void(usize),
    /// The other rule set put.
    SwitchRules,
}

const STEP_MS: i64 = 40 * 60_000;

fn arb_late() -> impl Strategy<Value = u32> {
    prop_oneof![4 => Just(0u32), 1 => 0..600u32]
}

fn arb_arrivals() -> impl Strategy<Value = Vec<Arrival>> {
    let report = prop::collection::vec((0..4usize, arb_late(), 0..3usize, 0..5000u64), 1..4);
    let arrival = prop_oneof![
        4 => report.prop_map(|raw| Arrival::Report(raw.into_iter().map(|(kind, late, store, cents)| {
            (RuleEvent {
                // Numbered and timed when sent.
                event_id: String::new(),
                kind: KINDS[kind],
                at_ms: 0,
                store_id: Some(format!("st-paris-0{}", store + 1)),
                channel: None,
                amount_cents: cents,
                lines: Vec::new(),
            }, late)
        }).collect())),
        3 => (0..2usize, arb_late()).prop_map(|(store, late)| Arrival::Buy { store, late }),
        1 => any::<usize>().prop_map(Arrival::Void),
        1 => Just(Arrival::SwitchRules),
    ];
    prop::collection::vec(arrival, 1..40)
}

/// The same challenges with every target one higher: a rule set a kept engine still restores
/// into (same challenges, same goals), so only its version tells them apart.
fn harder(rules: &Value) -> Value {
    let mut rules = rules.clone();
    fn raise(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match (k.as_str(), v.as_u64()) {
                        ("target", Some(t)) => *v = json!(t + 1),
                        _ => raise(v),
                    }
                }
            }
            Value::Array(list) => list.iter_mut().for_each(raise),
            _ => {}
        }
    }
    raise(&mut rules);
    rules
}

/// The server as it was before engines were kept: at every arrival that a challenge counts, the
/// whole history evaluated and the completions not paid yet paid.
#[derive(Default)]
struct WholeHistory {
    reported: Vec<RuleEvent>,
    /// (purchase id, shop, time, voided, receipt, till)
    purchases: Vec<(String, String, i64, bool, String, usize)>,
    paid: BTreeMap<String, u32>,
    badges: Vec<(String, String)>,
}

impl WholeHistory {
    fn history(&self, zone: &str) -> Vec<RuleEvent> {
        let tz = jiff::tz::TimeZone::get(zone).unwrap();
        let mut events = self.reported.clone();
        for (id, store, at, voided, ..) in &self.purchases {
            if !voided {
                events.push(RuleEvent::of_purchase(
                    id,
                    store,
                    &[basket_line()],
                    1000,
                    *at,
                ));
                events.extend(RuleEvent::visit_at_till(store, *at, &tz));
            }
        }
        events
    }

    fn settle(&mut self, rules: &RuleSet, zone: &str, kinds: &[RuleEventKind], now: i64) {
        if !kinds.iter().any(|k| rules.counts(*k)) {
            return;
        }
        let whole = evaluate(rules, zone, BTreeMap::new(), &self.history(zone), now).unwrap();
        let mut n: BTreeMap<&str, u32> = BTreeMap::new();
        for c in &whole.completions {
            let k = n.entry(&c.challenge_id).or_default();
            *k += 1;
            let paid = self.paid.entry(c.challenge_id.clone()).or_default();
            if *k > *paid {
                *paid = *k;
                self.badges
                    .push((c.challenge_id.clone(), tessera_core::rfc3339_ms(c.at_ms)));
            }
        }
    }
}

fn basket_line() -> PurchaseLine {
    PurchaseLine {
        sku: "sku-tea".into(),
        category: Some("tea".into()),
        collection: None,
        quantity: 1,
        amount_cents: 1000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The server keeps each member's engine and counts one event at a time; what it pays must
    /// be what evaluating the whole history at every arrival pays: for reports and till
    /// purchases arriving out of time order (offline), ids sent again, several purchases in a
    /// shop on one day (one visit), voided purchases, and the rule set changed in between.
    #[test]
    fn kept_engines_pay_what_evaluating_the_whole_history_pays(
        challenges in prop::collection::vec(0..1usize, 1..6)
            .prop_flat_map(|v| (0..v.len()).map(arb_challenge).collect::<Vec<_>>()),
        arrivals in arb_arrivals(),
        zone in 0..ZONES.len(),
    ) {
        // With two challenges that repeat as soon as completed (rolling windows): many
        // completions, each depending on every event counted once and in order.
        let mut challenges = challenges;
        challenges.push(json!({"id": "visits", "title": "Two visits", "badge": "v",
            "window": {"type": "rolling_days", "days": 2}, "repeat": {"type": "per_window"},
            "goal": {"type": "count", "target": 2, "filter": {"kinds": ["store_visit"]}},
            "reward": {"type": "badge"}}));
        challenges.push(json!({"id": "spend", "title": "Spend", "badge": "s",
            "window": {"type": "rolling_days", "days": 1}, "repeat": {"type": "per_window"},
            "goal": {"type": "sum", "of": "amount_cents", "target": 4000, "filter": {}},
            "reward": {"type": "badge"}}));
        let first = json!({"version": 1, "challenges": challenges});
        let sets = [harder(&first), first];
        let parsed: Vec<RuleSet> = sets.iter().map(|s| serde_json::from_value(s.clone()).unwrap()).collect();
        prop_assume!(parsed.iter().all(|r| r.validate().is_ok()));
        let zone = ZONES[zone];
        let server = Server::start();
        let mut current = 0;
        put_rules(&server, &sets[current]);
        let dir = tempfile::tempdir().unwrap();
        let phone = tessera_e2e::phone(dir.path().join("m.db"));
        phone.enrol(&server.url(), "Kept", device()).unwrap();
        phone.sync().unwrap();
        let prefs = Preferences { timezone: zone.into(), ..phone.preferences().unwrap() };
        phone.set_preferences(&prefs).unwrap();
        phone.sync().unwrap();
        let member = phone.sync_status().unwrap().member_id.unwrap();
        let card = phone.card().unwrap().card_number;
        let tokens: Vec<String> = (1..=3)
            .map(|s| tessera_e2e::till_token(&server, &format!("st-paris-0{s}")))
            .collect();
        let http = reqwest::blocking::Client::new();
        let mut model = WholeHistory::default();
        let mut n = 0;
        let start = jiff::Timestamp::now().as_millisecond() - arrivals.len() as i64 * STEP_MS;
        for (step, arrival) in arrivals.into_iter().enumerate() {
            let now = jiff::Timestamp::now().as_millisecond();
            let clock = start + step as i64 * STEP_MS;
            match arrival {
                Arrival::Report(timed) => {
                    let mut events = Vec::new();
                    for (k, (mut e, late)) in timed.into_iter().enumerate() {
                        // Every fourth id one sent before (ignored by the server, kept first).
                        e.event_id = if n % 4 == 3 { format!("ev-{}", n / 8) } else { format!("ev-{n}") };
                        e.at_ms = clock - i64::from(late) * 60_000 + k as i64 * 1000;
                        events.push(e);
                        n += 1;
                    }
                    let path = format!("/admin/v1/members/{member}/rule-events");
                    let (s, b) = admin(reqwest::Method::POST, &server, &path, json!({"events": events}));
                    prop_assert_eq!(s, 200, "{}", b);
                    let mut sent = std::collections::BTreeSet::new();
                    for e in &events {
                        if !model.reported.iter().any(|r| r.event_id == e.event_id) && sent.insert(e.event_id.clone()) {
                            model.reported.push(e.clone());
                        }
                    }
                    let kinds: Vec<RuleEventKind> = events.iter().map(|e| e.kind).collect();
                    model.settle(&parsed[current], zone, &kinds, now);
                }
                Arrival::Buy { store, late } => {
                    let at = (clock - i64::from(late) * 60_000) / 1000 * 1000;
                    let receipt = format!("R-{step}");
                    let resp = http
                        .post(format!("{}/v1/till/purchases", server.url()))
                        .bearer_auth(&tokens[store])
                        .header("idempotency-key", format!("buy-{step}-0000"))
                        .json(&PurchaseRequest {
                            receipt: receipt.clone(),
                            card_number: Some(card.clone()),
                            member_code: None,
                            lines: vec![basket_line()],
                            total_cents: 1000,
                            occurred_offline_at: Some(tessera_core::rfc3339_ms(at)),
                        })
                        .send()
                        .unwrap();
                    prop_assert_eq!(resp.status().as_u16(), 200);
                    let answer: Value = resp.json().unwrap();
                    let id = answer["purchase_id"].as_str().unwrap().to_owned();
                    model.purchases.push((id, format!("st-paris-0{}", store + 1), at, false, receipt, store));
                    model.settle(&parsed[current], zone, &[RuleEventKind::Purchase, RuleEventKind::StoreVisit], now);
                }
                Arrival::Void(which) => {
                    let live: Vec<usize> = (0..model.purchases.len()).filter(|&i| !model.purchases[i].3).collect();
                    if live.is_empty() {
                        continue;
                    }
                    let i = live[which % live.len()];
                    let (_, _, _, _, receipt, store) = &model.purchases[i];
                    let resp = http
                        .post(format!("{}/v1/till/voids", server.url()))
                        .bearer_auth(&tokens[*store])
                        .header("idempotency-key", format!("void-{step}-0000"))
                        .json(&json!({"receipt": receipt}))
                        .send()
                        .unwrap();
                    prop_assert_eq!(resp.status().as_u16(), 200);
                    model.purchases[i].3 = true;
                }
                Arrival::SwitchRules => {
                    current = 1 - current;
                    put_rules(&server, &sets[current]);
                }
            }
        }
        let state = server_state(&server, &member);
        let mut paid: Vec<(String, String)> = state.badges.iter()
            .map(|b| (b.challenge_id.clone(), b.earned_at.clone()))
            .collect();
        let mut expected = model.badges.clone();
        paid.sort();
        expected.sort();
        prop_assert_eq!(paid, expected);
    }
}
