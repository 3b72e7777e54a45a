//! The rules engine on the issue's example challenges: histories across time zones and
//! daylight-saving changes, repeat and opt-in rules, rolling windows, typed refusals.

use std::collections::BTreeMap;
use tessera_core::rules::{
    DistinctOf, Engine, Filter, Goal, Period, Repeat, RuleEvent, RuleEventKind, RuleSet,
    RulesError, SumOf, Window, evaluate,
};

mod common;
use common::rules::*;

#[test]
fn three_different_products_this_month_in_the_members_time_zone() {
    let rules = set(vec![three_from_the_new_collection()]);
    let events = [
        // 30 November 23:30 UTC is already 1 December in Paris.
        purchase(
            "e1",
            "2026-11-30T23:30:00Z",
            "st-1",
            &[("sku-x", "winter-26")],
        ),
        purchase(
            "e2",
            "2026-12-05T10:00:00Z",
            "st-1",
            &[("sku-a", "winter-26"), ("sku-a", "winter-26")],
        ),
        // Not the collection: does not count.
        purchase("e3", "2026-12-06T10:00:00Z", "st-1", &[("sku-z", "core")]),
    ];
    let now = ms("2026-12-10T12:00:00Z");
    let r = evaluate(&rules, PARIS, BTreeMap::new(), &events, now).unwrap();
    let p = &r.progress[0];
    assert_eq!((p.done, p.target, p.left), (2, 3, 1), "{p:?}");
    assert_eq!(p.deadline.as_deref(), Some("2026-12-31T23:00:00.000Z"));
    // In UTC the first purchase falls in November: only one product this month (e2's two lines
    // are the same product).
    let utc = evaluate(&rules, "UTC", BTreeMap::new(), &events, now).unwrap();
    assert_eq!(
        utc.progress[0].done, 1,
        "in UTC, sku-x was bought in November"
    );
    let mut more = events.to_vec();
    more.push(purchase(
        "e4",
        "2026-12-09T10:00:00Z",
        "st-2",
        &[("sku-c", "winter-26")],
    ));
    let r = evaluate(&rules, PARIS, BTreeMap::new(), &more, now).unwrap();
    assert!(r.progress[0].completed);
    assert_eq!(r.completions.len(), 1);
    assert_eq!(r.completions[0].event_id, "e4");
    // The same purchases for a member in UTC: two products this month, not done.
    let utc = evaluate(&rules, "UTC", BTreeMap::new(), &more, now).unwrap();
    assert!(!utc.progress[0].completed);
    assert_eq!(utc.progress[0].done, 2);
    assert_eq!(
        r.completions[0].badge.as_deref(),
        Some("badge-new-collection")
    );
}

#[test]
fn a_weekly_streak_across_the_october_clock_change() {
    let rules = set(vec![challenge(
        "weekly",
        Window::RollingDays { days: 35 },
        Goal::Streak {
            filter: kinds(RuleEventKind::Purchase),
            period: Period::Week,
            target: 4,
        },
    )]);
    // Paris leaves summer time on Sunday 25 October 2026 at 03:00. Monday 26 October 00:30
    // Paris is 25 October 23:30 UTC: a new week in Paris, the same week in UTC.
    let events = [
        purchase("w1", "2026-10-13T10:00:00Z", "st-1", &[("a", "x")]),
        purchase("w2", "2026-10-20T10:00:00Z", "st-1", &[("a", "x")]),
        purchase("w3", "2026-10-25T23:30:00Z", "st-1", &[("a", "x")]),
        purchase("w4", "2026-11-02T10:00:00Z", "st-1", &[("a", "x")]),
    ];
    let now = ms("2026-11-03T10:00:00Z");
    let paris = evaluate(&rules, PARIS, BTreeMap::new(), &events, now).unwrap();
    assert!(paris.progress[0].completed, "{:?}", paris.progress);
    let utc = evaluate(&rules, "UTC", BTreeMap::new(), &events, now).unwrap();
    assert!(!utc.progress[0].completed, "w2 and w3 share a UTC week");
    // In UTC the week of 26 October has no purchase: the run restarts with w4.
    assert_eq!(utc.progress[0].done, 1);
    // A week without a purchase breaks the streak shown.
    let later = evaluate(
        &rules,
        PARIS,
        BTreeMap::new(),
        &events[..3],
        ms("2026-11-12T10:00:00Z"),
    )
    .unwrap();
    assert_eq!(later.progress[0].done, 0);
}

#[test]
fn visiting_two_shops_counts_shops_not_visits_and_each_event_once() {
    let rules = set(vec![challenge(
        "two-shops",
        Window::CalendarMonth,
        Goal::Distinct {
            filter: kinds(RuleEventKind::StoreVisit),
            of: DistinctOf::Store,
            target: 2,
        },
    )]);
    let v = |id: &str, store: &str| {
        event(
            id,
            RuleEventKind::StoreVisit,
            "2026-11-10T10:00:00Z",
            Some(store),
        )
    };
    let now = ms("2026-11-20T10:00:00Z");
    let same = [v("v1", "st-1"), v("v2", "st-1"), v("v1", "st-2")];
    let r = evaluate(&rules, PARIS, BTreeMap::new(), &same, now).unwrap();
    assert_eq!(r.progress[0].done, 1, "a repeated event id counts once");
    let two = [v("v1", "st-1"), v("v3", "st-2")];
    assert!(
        evaluate(&rules, PARIS, BTreeMap::new(), &two, now)
            .unwrap()
            .progress[0]
            .completed
    );
}

#[test]
fn all_of_opt_in_and_monthly_repeats() {
    let profile = challenge(
        "welcome",
        Window::Fixed {
            from: "2026-01-01T00:00:00Z".into(),
            to: "2027-01-01T00:00:00Z".into(),
        },
        Goal::AllOf {
            goals: vec![
                Goal::Count {
                    filter: kinds(RuleEventKind::ProfileCompleted),
                    target: 1,
                },
                Goal::Count {
                    filter: kinds(RuleEventKind::ReviewPosted),
                    target: 1,
                },
            ],
        },
    );
    let mut spend = challenge(
        "spend-50",
        Window::CalendarMonth,
        Goal::Sum {
            filter: kinds(RuleEventKind::Purchase),
            of: SumOf::AmountCents,
            target: 5000,
        },
    );
    spend.opt_in = true;
    spend.repeat = Repeat::PerWindow { max_total: Some(2) };
    let rules = set(vec![profile, spend]);
    let mut events = vec![
        event(
            "p",
            RuleEventKind::ProfileCompleted,
            "2026-03-01T10:00:00Z",
            None,
        ),
        event(
            "r",
            RuleEventKind::ReviewPosted,
            "2026-03-02T10:00:00Z",
            None,
        ),
    ];
    for (i, month) in ["03", "04", "05"].iter().enumerate() {
        for d in ["05", "06", "07", "08", "09", "10"] {
            events.push(purchase(
                &format!("b{i}{d}"),
                &format!("2026-{month}-{d}T10:00:00Z"),
                "st-1",
                &[("a", "x")],
            ));
        }
    }
    let now = ms("2026-06-01T10:00:00Z");
    // Not joined: the welcome challenge completes, the opt-in one counts nothing.
    let r = evaluate(&rules, PARIS, BTreeMap::new(), &events, now).unwrap();
    assert!(r.progress[0].completed);
    assert!(!r.progress[1].joined);
    assert_eq!(r.progress[1].completions, 0);
    // Joined on 1 April: April and May complete (6 × 10 € ≥ 50 € each month), March does not
    // count, and the limit of 2 is reached.
    let joined = BTreeMap::from([("spend-50".to_owned(), ms("2026-04-01T00:00:00Z"))]);
    let r = evaluate(&rules, PARIS, joined, &events, now).unwrap();
    assert_eq!(r.progress[1].completions, 2);
    assert!(r.progress[1].completed);
    let spend: Vec<i64> = r
        .completions
        .iter()
        .filter(|c| c.challenge_id == "spend-50")
        .map(|c| c.at_ms)
        .collect();
    assert_eq!(
        spend,
        [ms("2026-04-09T10:00:00Z"), ms("2026-05-09T10:00:00Z")]
    );
}

#[test]
fn rolling_windows_forget_old_events() {
    let rules = set(vec![challenge(
        "three-visits",
        Window::RollingDays { days: 7 },
        Goal::Count {
            filter: kinds(RuleEventKind::StoreVisit),
            target: 3,
        },
    )]);
    let visits = [
        event(
            "a",
            RuleEventKind::StoreVisit,
            "2026-11-01T10:00:00Z",
            Some("s"),
        ),
        event(
            "b",
            RuleEventKind::StoreVisit,
            "2026-11-02T10:00:00Z",
            Some("s"),
        ),
        event(
            "c",
            RuleEventKind::StoreVisit,
            "2026-11-09T11:00:00Z",
            Some("s"),
        ),
    ];
    let r = evaluate(
        &rules,
        PARIS,
        BTreeMap::new(),
        &visits,
        ms("2026-11-09T12:00:00Z"),
    )
    .unwrap();
    assert_eq!(r.progress[0].done, 1, "a and b are more than 7 days old");
    assert!(r.completions.is_empty());
    // Shown at a later time, without new events, old ones leave the count too.
    let r = evaluate(
        &rules,
        PARIS,
        BTreeMap::new(),
        &visits[..2],
        ms("2026-11-08T12:00:00Z"),
    )
    .unwrap();
    assert_eq!(r.progress[0].done, 1);
}

#[test]
fn a_repeatable_rolling_challenge_completes_again_with_fresh_events() {
    let mut rules = set(vec![challenge(
        "three-visits",
        Window::RollingDays { days: 7 },
        Goal::Count {
            filter: kinds(RuleEventKind::StoreVisit),
            target: 3,
        },
    )]);
    rules.challenges[0].repeat = Repeat::PerWindow { max_total: None };
    let visits: Vec<RuleEvent> = (0..7)
        .map(|d| {
            event(
                &format!("v{d}"),
                RuleEventKind::StoreVisit,
                &format!("2026-11-0{}T10:00:00Z", d + 1),
                Some("s"),
            )
        })
        .collect();
    let now = ms("2026-11-07T12:00:00Z");
    let r = evaluate(&rules, PARIS, BTreeMap::new(), &visits, now).unwrap();
    let by: Vec<&str> = r.completions.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(by, ["v2", "v5"], "each completion uses three new visits");
    assert_eq!(r.progress[0].done, 1, "v6 counts towards the third");
    assert!(!r.progress[0].completed);
    rules.challenges[0].repeat = Repeat::PerWindow { max_total: Some(1) };
    let r = evaluate(&rules, PARIS, BTreeMap::new(), &visits, now).unwrap();
    assert_eq!(r.completions.len(), 1);
    assert!(r.progress[0].completed);
}

#[test]
fn bad_rules_and_events_are_typed_errors() {
    let ok = set(vec![three_from_the_new_collection()]);
    assert_eq!(ok.validate(), Ok(()));
    // A streak longer than its window can hold.
    let long = set(vec![challenge(
        "x",
        Window::CalendarMonth,
        Goal::Streak {
            filter: Filter::default(),
            period: Period::Week,
            target: 7,
        },
    )]);
    assert!(matches!(
        long.validate(),
        Err(RulesError::Unsatisfiable { .. })
    ));
    let zero = set(vec![challenge(
        "x",
        Window::CalendarWeek,
        Goal::Count {
            filter: Filter::default(),
            target: 0,
        },
    )]);
    assert!(matches!(zero.validate(), Err(RulesError::Invalid { .. })));
    let backwards = set(vec![challenge(
        "x",
        Window::Fixed {
            from: "2027-01-01T00:00:00Z".into(),
            to: "2026-01-01T00:00:00Z".into(),
        },
        Goal::Count {
            filter: Filter::default(),
            target: 1,
        },
    )]);
    assert!(matches!(
        backwards.validate(),
        Err(RulesError::Unsatisfiable { .. })
    ));
    let twice = set(vec![
        three_from_the_new_collection(),
        three_from_the_new_collection(),
    ]);
    assert!(matches!(twice.validate(), Err(RulesError::Invalid { .. })));
    let newer = RuleSet {
        version: 2,
        challenges: vec![],
        earning: None,
    };
    assert_eq!(
        newer.validate(),
        Err(RulesError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    );
    // Unknown fields and kinds are refused by the format itself.
    let unknown = r#"{"version":1,"challenges":[{"id":"x","title":"X","window":{"type":"calendar_week"},
        "goal":{"type":"count","filter":{"colour":"red"},"target":1},"reward":{"type":"badge"}}]}"#;
    assert!(serde_json::from_str::<RuleSet>(unknown).is_err());
    let kind = r#"{"version":1,"challenges":[{"id":"x","title":"X","window":{"type":"calendar_week"},
        "goal":{"type":"count","filter":{"kinds":["teleported"]},"target":1},"reward":{"type":"badge"}}]}"#;
    assert!(serde_json::from_str::<RuleSet>(kind).is_err());
    assert!(matches!(
        Engine::new(&ok, "Mars/Olympus", BTreeMap::new()),
        Err(RulesError::UnknownTimeZone { .. })
    ));
    // Events from the future, and older than what was applied.
    let mut engine = Engine::new(&ok, PARIS, BTreeMap::new()).unwrap();
    let now = ms("2026-12-01T12:00:00Z");
    // More than the protocol's day ahead (api::MAX_CLOCK_AHEAD_MS).
    let e = purchase("f", "2026-12-02T12:00:01Z", "s", &[("a", "winter-26")]);
    assert!(matches!(
        engine.apply(&e, now),
        Err(RulesError::EventInFuture { .. })
    ));
    engine
        .apply(
            &purchase("n", "2026-12-01T11:00:00Z", "s", &[("a", "winter-26")]),
            now,
        )
        .unwrap();
    assert!(matches!(
        engine.apply(
            &purchase("o", "2026-12-01T10:00:00Z", "s", &[("b", "winter-26")]),
            now
        ),
        Err(RulesError::OutOfOrder { .. })
    ));
    // Times outside any calendar: a typed error, and progress at any clock without a panic.
    let mut ancient = purchase("x", "2026-12-01T12:00:00Z", "s", &[("a", "winter-26")]);
    ancient.at_ms = i64::MIN;
    assert!(matches!(
        engine.apply(&ancient, now),
        Err(RulesError::Invalid { field, .. }) if field == "event.at_ms"
    ));
    for clock in [i64::MIN, i64::MAX, 0] {
        assert_eq!(engine.progress(clock).len(), 1);
    }
}
