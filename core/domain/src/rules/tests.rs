//! Unit tests of the engine's parts: the calendar, the checks, earning, events as read, the
//! trackers, and the engine against the whole-history evaluation on fixed cases. The property
//! test (core/tests/rules.rs) then holds the two evaluators equal on random histories.

use std::collections::BTreeMap;

use super::*;
use crate::event::PurchaseLine;

fn paris() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Europe/Paris").unwrap()
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn purchase(id: &str, at: &str, store: &str, cents: u64) -> RuleEvent {
    RuleEvent::of_purchase(
        id,
        store,
        &[PurchaseLine {
            sku: format!("sku-{id}"),
            category: Some("tea".into()),
            collection: None,
            quantity: 1,
            amount_cents: cents,
        }],
        cents,
        ms(at),
    )
}

fn challenge(id: &str, window: Window, goal: Goal) -> Challenge {
    Challenge {
        id: id.into(),
        title: format!("Challenge {id}"),
        description: String::new(),
        badge: None,
        window,
        goal,
        reward: RuleReward::Points { points: 100 },
        opt_in: false,
        repeat: Repeat::Once,
    }
}

fn set(challenges: Vec<Challenge>) -> RuleSet {
    RuleSet {
        version: RULES_VERSION,
        challenges,
        earning: None,
    }
}

fn purchases(target: u32) -> Goal {
    Goal::Count {
        filter: Filter {
            kinds: vec![RuleEventKind::Purchase],
            ..Filter::default()
        },
        target,
    }
}

// calendar

#[test]
fn months_and_weeks_are_the_members_across_daylight_saving() {
    let tz = paris();
    // 00:30 on 1 April in Paris (summer time, UTC+2) is still 31 March in UTC.
    let april = Local::of(ms("2026-03-31T22:30:00Z"), &tz);
    let march = Local::of(ms("2026-03-31T21:30:00Z"), &tz);
    assert_eq!(april.month, march.month + 1);
    // The month starts at local midnight: 22:00 UTC in summer, 23:00 UTC in winter.
    assert_eq!(
        period_start(Period::Month, i64::from(april.month), &tz),
        Some(ms("2026-03-31T22:00:00Z"))
    );
    let november = Local::of(ms("2026-11-15T12:00:00Z"), &tz);
    assert_eq!(
        period_start(Period::Month, i64::from(november.month), &tz),
        Some(ms("2026-10-31T23:00:00Z"))
    );
    // Weeks start on Monday: Sunday 29 March 2026 (the night clocks go forward) and Monday
    // 30 March are in different weeks, Monday and Tuesday in the same.
    let sunday = Local::of(ms("2026-03-29T12:00:00Z"), &tz);
    let monday = Local::of(ms("2026-03-30T00:30:00+02:00"), &tz);
    let tuesday = Local::of(ms("2026-03-31T12:00:00Z"), &tz);
    assert_eq!(monday.week, sunday.week + 1);
    assert_eq!(monday.week, tuesday.week);
    assert_eq!(
        period_start(Period::Week, i64::from(monday.week), &tz),
        Some(ms("2026-03-30T00:00:00+02:00"))
    );
}

#[test]
fn an_offset_span_asks_the_zone_again_only_after_a_transition() {
    let tz = paris();
    let mut span = OffsetSpan::EMPTY;
    let winter = span.local(ms("2026-03-28T23:30:00Z"), &tz);
    assert_eq!(span.offset_ms, 3_600_000);
    let before = span.until;
    // The next transition is the change to summer time, 01:00 UTC on 29 March.
    assert_eq!(before, ms("2026-03-29T01:00:00Z"));
    let summer = span.local(ms("2026-03-29T01:30:00Z"), &tz);
    assert_eq!(span.offset_ms, 7_200_000);
    // 00:30 and 03:30 local on 29 March: the same day, an hour apart in UTC minus the hour lost.
    assert_eq!(summer.day, winter.day);
    // The same answers as asking the zone per event.
    for at in [
        "2026-03-29T00:59:59Z",
        "2026-10-25T00:59:59Z",
        "2026-10-25T01:00:00Z",
    ] {
        assert_eq!(span.local(ms(at), &tz), Local::of(ms(at), &tz), "{at}");
    }
}

#[test]
fn civil_days_round_trip_with_the_calendar() {
    for (days, ymd) in [
        (0, (1970, 1, 1)),
        (-1, (1969, 12, 31)),
        (11_016, (2000, 2, 29)),
        (20_512, (2026, 2, 28)),
        (20_513, (2026, 3, 1)),
    ] {
        assert_eq!(civil_from_days(days), ymd, "day {days}");
    }
}

#[test]
fn a_window_spans_a_bounded_number_of_periods() {
    assert_eq!(periods_in(&Window::CalendarWeek, Period::Day), Some(8));
    assert_eq!(periods_in(&Window::CalendarMonth, Period::Week), Some(6));
    assert_eq!(
        periods_in(&Window::RollingDays { days: 28 }, Period::Week),
        Some(6)
    );
    let fixed = Window::Fixed {
        from: "2026-01-01T00:00:00Z".into(),
        to: "2026-01-31T00:00:00Z".into(),
    };
    assert_eq!(periods_in(&fixed, Period::Day), Some(32));
}

// validate

#[test]
fn a_rule_set_is_refused_by_the_field_that_breaks_it() {
    let field = |rules: RuleSet| match rules.validate() {
        Err(RulesError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(
        field(set(vec![challenge(
            "",
            Window::CalendarMonth,
            purchases(3)
        )])),
        "challenge.id"
    );
    assert_eq!(
        field(set(vec![challenge(
            "c",
            Window::RollingDays { days: 0 },
            purchases(3)
        )])),
        "window.days"
    );
    let mut deep = purchases(1);
    for _ in 0..6 {
        deep = Goal::AllOf { goals: vec![deep] };
    }
    assert_eq!(
        field(set(vec![challenge("c", Window::CalendarMonth, deep)])),
        "goal"
    );
    assert!(matches!(
        RuleSet {
            version: RULES_VERSION + 1,
            ..set(vec![])
        }
        .validate(),
        Err(RulesError::UnsupportedVersion { .. })
    ));
    // A streak longer than its window can never be met.
    assert!(matches!(
        set(vec![challenge(
            "c",
            Window::CalendarWeek,
            Goal::Streak {
                filter: Filter::default(),
                period: Period::Week,
                target: 3,
            }
        )])
        .validate(),
        Err(RulesError::Unsatisfiable { .. })
    ));
    set(vec![challenge("c", Window::CalendarMonth, purchases(3))])
        .validate()
        .unwrap();
}

#[test]
fn counts_says_which_kinds_some_challenge_reads() {
    let rules = set(vec![challenge("c", Window::CalendarMonth, purchases(3))]);
    assert!(rules.counts(RuleEventKind::Purchase));
    assert!(!rules.counts(RuleEventKind::AppOpened));
}

// earning

// (How earning weighs bonus lines, discounts, birthdays and tiers: core/tests/rules.rs.)

#[test]
fn earning_rules_are_bounded() {
    assert!(EarningRules::per_euro(10_001).validate().is_err());
    let mut r = EarningRules::per_euro(1);
    r.birthday_multiplier_percent = Some(50);
    assert!(r.validate().is_err());
}

// input

#[test]
fn a_purchase_reads_as_in_store_or_online_by_its_shop() {
    let shop = purchase("p1", "2026-05-05T10:00:00Z", "st-1", 500);
    assert_eq!(shop.channel, Some(RuleChannel::InStore));
    assert_eq!(shop.kind, RuleEventKind::Purchase);
    let web = purchase("p2", "2026-05-05T10:00:00Z", crate::catalog::WEB_STORE, 500);
    assert_eq!(web.channel, Some(RuleChannel::Online));
    // One visit per shop and local day: two scans that day are the same event.
    let tz = paris();
    let a = RuleEvent::visit_at_till("st-1", ms("2026-05-05T08:00:00Z"), &tz).unwrap();
    let b = RuleEvent::visit_at_till("st-1", ms("2026-05-05T20:00:00Z"), &tz).unwrap();
    let next = RuleEvent::visit_at_till("st-1", ms("2026-05-05T22:30:00Z"), &tz).unwrap();
    assert_eq!(a.event_id, b.event_id);
    assert_ne!(a.event_id, next.event_id, "00:30 in Paris is the next day");
    assert!(RuleEvent::visit_at_till(crate::catalog::WEB_STORE, 0, &tz).is_none());
}

// tracker

#[test]
fn a_multiset_counts_distinct_values_and_forgets_them_one_copy_at_a_time() {
    let mut m = Multiset::default();
    m.add(1);
    m.add(1);
    m.add(2);
    assert_eq!(m.distinct, 2);
    m.remove(1);
    assert_eq!(m.distinct, 2);
    m.remove(1);
    assert_eq!(m.distinct, 1);
    m.clear();
    assert_eq!(m.distinct, 0);
}

// engine and evaluate

#[test]
fn the_engine_completes_once_and_agrees_with_the_whole_history() {
    let rules = set(vec![challenge(
        "three",
        Window::CalendarMonth,
        purchases(3),
    )]);
    let now = ms("2026-05-31T12:00:00Z");
    let events = [
        purchase("a", "2026-05-01T08:00:00Z", "st-1", 500),
        purchase("b", "2026-05-02T08:00:00Z", "st-1", 500),
        purchase("b", "2026-05-02T08:00:00Z", "st-1", 500), // the same id counts once
        purchase("c", "2026-05-03T08:00:00Z", "st-2", 500),
        purchase("d", "2026-05-04T08:00:00Z", "st-2", 500),
    ];
    let mut engine = Engine::new(&rules, "Europe/Paris", BTreeMap::new()).unwrap();
    let mut done = Vec::new();
    for e in &events {
        done.extend(engine.apply(e, now).unwrap());
    }
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].event_id, "c");
    let whole = evaluate(&rules, "Europe/Paris", BTreeMap::new(), &events, now).unwrap();
    assert_eq!(whole.completions, done);
    assert_eq!(whole.progress, engine.progress(now));
    assert!(whole.progress[0].completed);
}

#[test]
fn the_engine_refuses_events_out_of_order_or_in_the_future() {
    let rules = set(vec![challenge(
        "three",
        Window::CalendarMonth,
        purchases(3),
    )]);
    let now = ms("2026-05-31T12:00:00Z");
    let mut engine = Engine::new(&rules, "Europe/Paris", BTreeMap::new()).unwrap();
    engine
        .apply(&purchase("b", "2026-05-02T08:00:00Z", "st-1", 500), now)
        .unwrap();
    assert!(matches!(
        engine.apply(&purchase("a", "2026-05-01T08:00:00Z", "st-1", 500), now),
        Err(RulesError::OutOfOrder { .. })
    ));
    let at = |id: &str, at_ms: i64| RuleEvent {
        at_ms,
        ..purchase(id, "2026-05-02T08:00:00Z", "st-1", 500)
    };
    assert!(matches!(
        engine.apply(&at("z", now + FUTURE_SLACK_MS + 1), now),
        Err(RulesError::EventInFuture { .. })
    ));
    // Within the slack a device clock is allowed: applied.
    engine.apply(&at("y", now + FUTURE_SLACK_MS), now).unwrap();
    assert!(matches!(
        Engine::new(&rules, "Mars/Olympus", BTreeMap::new()),
        Err(RulesError::UnknownTimeZone { .. })
    ));
}

#[test]
fn an_opt_in_challenge_counts_only_after_the_member_joined() {
    let mut c = challenge("join", Window::CalendarMonth, purchases(2));
    c.opt_in = true;
    let rules = set(vec![c]);
    let now = ms("2026-05-31T12:00:00Z");
    let events = [
        purchase("a", "2026-05-01T08:00:00Z", "st-1", 500),
        purchase("b", "2026-05-10T08:00:00Z", "st-1", 500),
        purchase("c", "2026-05-11T08:00:00Z", "st-1", 500),
    ];
    let not_joined = evaluate(&rules, "Europe/Paris", BTreeMap::new(), &events, now).unwrap();
    assert!(!not_joined.progress[0].joined);
    assert_eq!(not_joined.progress[0].done, 0);
    let joined = BTreeMap::from([("join".to_owned(), ms("2026-05-05T00:00:00Z"))]);
    let after = evaluate(&rules, "Europe/Paris", joined, &events, now).unwrap();
    assert_eq!(after.completions.len(), 1);
    assert_eq!(after.completions[0].event_id, "c");
}
