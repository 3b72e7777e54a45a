//! The rules engine: the issue's example challenges over histories that cross time zones and
//! daylight-saving changes, repeat and opt-in rules, typed refusals, and properties: a history
//! evaluated at once, in any order, equals the same events applied one by one.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tessera_core::rules::{
    Challenge, DistinctOf, Engine, Filter, Goal, Period, Repeat, RuleChannel, RuleEvent,
    RuleEventKind, RuleLine, RuleReward, RuleSet, RulesError, SumOf, Window, evaluate,
};

const PARIS: &str = "Europe/Paris";

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn purchase(id: &str, at: &str, store: &str, lines: &[(&str, &str)]) -> RuleEvent {
    RuleEvent {
        event_id: id.into(),
        kind: RuleEventKind::Purchase,
        at_ms: ms(at),
        store_id: Some(store.into()),
        channel: Some(RuleChannel::InStore),
        amount_cents: 1000 * lines.len() as u64,
        lines: lines
            .iter()
            .map(|(sku, collection)| RuleLine {
                sku: (*sku).into(),
                category: Some("tea".into()),
                collection: Some((*collection).into()),
                quantity: 1,
                amount_cents: 1000,
            })
            .collect(),
    }
}

fn event(id: &str, kind: RuleEventKind, at: &str, store: Option<&str>) -> RuleEvent {
    RuleEvent {
        event_id: id.into(),
        kind,
        at_ms: ms(at),
        store_id: store.map(str::to_owned),
        channel: None,
        amount_cents: 0,
        lines: vec![],
    }
}

fn challenge(id: &str, window: Window, goal: Goal) -> Challenge {
    Challenge {
        id: id.into(),
        title: format!("Challenge {id}"),
        description: String::new(),
        badge: Some(format!("badge-{id}")),
        window,
        goal,
        reward: RuleReward::Points { points: 100 },
        opt_in: false,
        repeat: Repeat::Once,
    }
}

fn kinds(k: RuleEventKind) -> Filter {
    Filter {
        kinds: vec![k],
        ..Filter::default()
    }
}

fn set(challenges: Vec<Challenge>) -> RuleSet {
    RuleSet {
        version: 1,
        challenges,
        earning: None,
    }
}

fn three_from_the_new_collection() -> Challenge {
    challenge(
        "new-collection",
        Window::CalendarMonth,
        Goal::Distinct {
            filter: Filter {
                kinds: vec![RuleEventKind::Purchase],
                collections: vec!["winter-26".into()],
                ..Filter::default()
            },
            of: DistinctOf::Sku,
            target: 3,
        },
    )
}

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

fn arb_event(i: usize) -> impl Strategy<Value = RuleEvent> {
    (
        0u8..4,
        0i64..(120 * 24),
        0u8..4,
        proptest::collection::vec((0u8..5, 0u8..3), 0..3),
    )
        .prop_map(move |(k, hour, store, lines)| RuleEvent {
            event_id: format!("e{i}"),
            kind: [
                RuleEventKind::Purchase,
                RuleEventKind::StoreVisit,
                RuleEventKind::ReviewPosted,
                RuleEventKind::AppOpened,
            ][k as usize],
            // 120 days from 1 September 2026: the October clock change inside.
            at_ms: ms("2026-09-01T00:00:00Z") + hour * 3_600_000 + (i as i64 % 7) * 60_000,
            store_id: Some(format!("st-{store}")),
            channel: Some(RuleChannel::InStore),
            amount_cents: lines.len() as u64 * 700,
            lines: lines
                .iter()
                .map(|(sku, col)| RuleLine {
                    sku: format!("sku-{sku}"),
                    category: Some("tea".into()),
                    collection: Some(format!("c{col}")),
                    quantity: 1,
                    amount_cents: 700,
                })
                .collect(),
        })
}

fn arb_goal() -> impl Strategy<Value = Goal> {
    let filter = (0u8..3, proptest::option::of(0u8..3)).prop_map(|(k, col)| Filter {
        kinds: match k {
            0 => vec![],
            1 => vec![RuleEventKind::Purchase],
            _ => vec![RuleEventKind::StoreVisit, RuleEventKind::ReviewPosted],
        },
        collections: col.map(|c| vec![format!("c{c}")]).unwrap_or_default(),
        ..Filter::default()
    });
    let leaf = (filter, 0u8..4, 1u32..6).prop_map(|(filter, g, target)| match g {
        0 => Goal::Count { filter, target },
        1 => Goal::Distinct {
            filter,
            of: DistinctOf::Store,
            target: target.min(4),
        },
        2 => Goal::Sum {
            filter,
            of: SumOf::AmountCents,
            target: u64::from(target) * 700,
        },
        _ => Goal::Streak {
            filter,
            period: Period::Day,
            target: target.min(3),
        },
    });
    leaf.prop_recursive(1, 4, 3, |inner| {
        proptest::collection::vec(inner, 1..3).prop_map(|goals| Goal::AllOf { goals })
    })
}

fn arb_rules() -> impl Strategy<Value = RuleSet> {
    proptest::collection::vec((arb_goal(), 0u8..3, any::<bool>()), 1..6).prop_map(|cs| {
        set(cs
            .into_iter()
            .enumerate()
            .map(|(i, (goal, w, repeat))| {
                let window = match w {
                    0 => Window::CalendarWeek,
                    1 => Window::CalendarMonth,
                    _ => Window::RollingDays { days: 10 },
                };
                let mut c = challenge(&format!("c{i}"), window, goal);
                if repeat {
                    c.repeat = Repeat::PerWindow { max_total: None };
                }
                c
            })
            .collect())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The same history gives the same progress and rewards whether it arrives at once in any
    /// order (as on the server) or event by event (as on the phone), duplicates included.
    #[test]
    fn order_and_increments_do_not_change_the_outcome(
        rules in arb_rules(),
        events in (1usize..60).prop_flat_map(|n| (0..n).map(arb_event).collect::<Vec<_>>()),
        seed in any::<u64>(),
        tz in prop_oneof![Just("Europe/Paris"), Just("America/New_York"), Just("UTC"), Just("Asia/Kolkata")],
    ) {
        prop_assume!(rules.validate().is_ok());
        let now = ms("2027-01-05T00:00:00Z");
        let whole = evaluate(&rules, tz, BTreeMap::new(), &events, now).unwrap();
        // Shuffled, with every third event repeated.
        let mut shuffled = events.clone();
        shuffled.extend(events.iter().step_by(3).cloned());
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(&evaluate(&rules, tz, BTreeMap::new(), &shuffled, now).unwrap(), &whole);
        // One by one, in time order.
        let mut sorted = events.clone();
        sorted.sort_by(|a, b| (a.at_ms, &a.event_id).cmp(&(b.at_ms, &b.event_id)));
        let mut engine = Engine::new(&rules, tz, BTreeMap::new()).unwrap();
        let mut completions = Vec::new();
        for e in &sorted {
            completions.extend(engine.apply(e, now).unwrap());
        }
        prop_assert_eq!(&completions, &whole.completions);
        prop_assert_eq!(engine.progress(now), whole.progress.clone());
        for p in &whole.progress {
            prop_assert!(p.done <= p.target);
            prop_assert_eq!(p.left, p.target - p.done);
        }
    }
}

#[test]
fn earning_rules_weigh_bonus_lines_discounts_birthdays_and_tiers() {
    use tessera_core::rules::{EarningBonus, EarningRules};
    let tea = EarningRules {
        points_per_euro: 1,
        bonuses: vec![EarningBonus {
            filter: Filter {
                categories: vec!["tea".into()],
                ..Filter::default()
            },
            extra_percent: 100,
        }],
        birthday_multiplier_percent: Some(200),
    };
    let line = |sku: &str, category: &str, cents: u64| RuleLine {
        sku: sku.into(),
        category: Some(category.into()),
        collection: None,
        quantity: 1,
        amount_cents: cents,
    };
    let mut basket = RuleEvent {
        event_id: "p-1".into(),
        kind: RuleEventKind::Purchase,
        at_ms: ms("2026-11-20T10:00:00Z"),
        store_id: Some("st-paris-01".into()),
        channel: None,
        amount_cents: 3000,
        lines: vec![
            line("sku-darjeeling", "tea", 2000),
            line("sku-cake", "pastry", 1000),
        ],
    };
    // 20 € of tea counts double: 40 + 10.
    assert_eq!(tea.points(&basket, 100, false), 50);
    assert_eq!(EarningRules::per_euro(1).points(&basket, 100, false), 30);
    // A 10 % discount is spread over the lines.
    basket.amount_cents = 2700;
    assert_eq!(tea.points(&basket, 100, false), 45);
    basket.amount_cents = 3000;
    // The birthday doubles it, the Gold tier adds half, in whole points.
    assert_eq!(tea.points(&basket, 100, true), 100);
    assert_eq!(tea.points(&basket, 150, false), 75);
    assert_eq!(tea.points(&basket, 150, true), 150);
    // Without lines the total counts, in whole euros (as the loyalty rules always did).
    basket.lines.clear();
    basket.amount_cents = 4599;
    assert_eq!(tea.points(&basket, 125, false), 56);
    // Bad earning rules are typed errors.
    let mut bad = set(vec![]);
    bad.earning = Some(EarningRules {
        birthday_multiplier_percent: Some(50),
        ..tea.clone()
    });
    assert!(matches!(
        bad.validate(),
        Err(RulesError::Invalid { field, .. }) if field == "earning.birthday_multiplier_percent"
    ));
    bad.earning = Some(EarningRules {
        bonuses: vec![EarningBonus {
            filter: Filter::default(),
            extra_percent: 0,
        }],
        ..tea
    });
    assert!(matches!(bad.validate(), Err(RulesError::Invalid { .. })));
    let from_json: RuleSet = serde_json::from_str(
        r#"{"version": 1, "challenges": [], "earning": {"points_per_euro": 2,
            "bonuses": [{"filter": {"categories": ["tea"]}, "extra_percent": 50}]}}"#,
    )
    .unwrap();
    assert_eq!(from_json.validate(), Ok(()));
    assert!(
        serde_json::from_str::<RuleSet>(
            r#"{"version": 1, "challenges": [], "earning": {"points_per_euro": 2, "x": 1}}"#
        )
        .is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn a_rule_set_says_which_event_kinds_it_counts() {
    let visits = set(vec![challenge(
        "visits",
        Window::CalendarMonth,
        Goal::AllOf {
            goals: vec![
                Goal::Count {
                    filter: kinds(RuleEventKind::StoreVisit),
                    target: 1,
                },
                Goal::Count {
                    filter: kinds(RuleEventKind::ReviewPosted),
                    target: 1,
                },
            ],
        },
    )]);
    assert!(visits.counts(RuleEventKind::StoreVisit));
    assert!(visits.counts(RuleEventKind::ReviewPosted));
    assert!(!visits.counts(RuleEventKind::AppOpened));
    let any = set(vec![challenge(
        "anything",
        Window::CalendarWeek,
        Goal::Count {
            filter: Filter::default(),
            target: 3,
        },
    )]);
    assert!(any.counts(RuleEventKind::AppOpened), "no kinds: every kind");
    assert!(!set(vec![]).counts(RuleEventKind::Purchase));
}

#[test]
fn the_documented_example_rule_set_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/rules.example.json"
    ))
    .unwrap();
    let rules: RuleSet = serde_json::from_str(&text).unwrap();
    rules.validate().unwrap();
    assert_eq!(rules.challenges.len(), 3);
}
