//! The rules engine: the issue's example challenges over histories that cross time zones and
//! daylight-saving changes, repeat and opt-in rules, typed refusals, and properties: a history
//! evaluated at once, in any order, equals the same events applied one by one.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tessera_core::rules::{
    DistinctOf, ENGINE_STATE_VERSION, Engine, EngineState, Filter, Goal, Period, Repeat,
    RuleChannel, RuleEvent, RuleEventKind, RuleLine, RuleSet, RulesError, SumOf, Window, evaluate,
};

mod common;
use common::rules::*;

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
    let leaf = (filter, 0u8..6, 1u32..6).prop_map(|(filter, g, target)| match g {
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
        3 => Goal::Distinct {
            filter,
            of: DistinctOf::Sku,
            target: target.min(4),
        },
        4 => Goal::Sum {
            filter,
            of: SumOf::Quantity,
            target: u64::from(target),
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// An engine saved and restored (through JSON, as the server keeps it) carries on exactly as
    /// one that never stopped: a history replayed up to some event, then the rest applied one
    /// by one with the engine saved and restored before each, gives the whole history's
    /// completions and progress; with an opt-in challenge joined at some point too.
    #[test]
    fn an_engine_saved_and_restored_carries_on_as_if_it_never_stopped(
        rules in arb_rules(),
        events in (1usize..60).prop_flat_map(|n| (0..n).map(arb_event).collect::<Vec<_>>()),
        split in 0usize..60,
        join in proptest::option::of(0i64..(120 * 24)),
        tz in prop_oneof![Just("Europe/Paris"), Just("America/New_York"), Just("UTC"), Just("Asia/Kolkata")],
    ) {
        let mut rules = rules;
        rules.challenges[0].opt_in = join.is_some();
        prop_assume!(rules.validate().is_ok());
        let joined: BTreeMap<String, i64> = join
            .map(|h| ("c0".to_owned(), ms("2026-09-01T00:00:00Z") + h * 3_600_000))
            .into_iter()
            .collect();
        let now = ms("2027-01-05T00:00:00Z");
        let whole = evaluate(&rules, tz, joined.clone(), &events, now).unwrap();
        let mut sorted = events.clone();
        sorted.sort_by(|a, b| (a.at_ms, &a.event_id).cmp(&(b.at_ms, &b.event_id)));
        let (early, late) = sorted.split_at(split.min(sorted.len()));
        let (engine, mut completions) =
            Engine::replay(&rules, tz, joined.clone(), early, now).unwrap();
        let mut state = engine.save();
        for e in late {
            let json = serde_json::to_string(&state).unwrap();
            let back: EngineState = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &state);
            let mut engine = Engine::restore(&rules, tz, joined.clone(), &back).unwrap();
            completions.extend(engine.apply(e, now).unwrap());
            state = engine.save();
        }
        prop_assert_eq!(&completions, &whole.completions);
        let engine = Engine::restore(&rules, tz, joined.clone(), &state).unwrap();
        prop_assert_eq!(engine.progress(now), whole.progress.clone());
        let counts: Vec<u32> = whole.progress.iter().map(|p| p.completions).collect();
        prop_assert_eq!(engine.completion_counts(), counts);
        prop_assert_eq!(engine.last(), sorted.last().map(|e| (e.at_ms, e.event_id.as_str())));
    }
}

#[test]
fn a_state_that_does_not_fit_the_rules_is_refused_by_name() {
    let rules = arb_rules_example();
    let (engine, _) = Engine::replay(&rules, "UTC", BTreeMap::new(), &[], 0).unwrap();
    let state = engine.save();
    let mut fewer = rules.clone();
    fewer.challenges.pop();
    let mut other = serde_json::to_value(&state).unwrap();
    other["version"] = (ENGINE_STATE_VERSION + 1).into();
    let other: EngineState = serde_json::from_value(other).unwrap();
    for (rules, state, reason) in [
        (&fewer, &state, "another number of challenges"),
        (&rules, &other, "another version"),
    ] {
        match Engine::restore(rules, "UTC", BTreeMap::new(), state) {
            Err(RulesError::Invalid { field, reason: r }) => {
                assert_eq!(field, "state");
                assert!(r.contains(reason), "{r}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Two challenges, one a count and one distinct SKUs in a rolling window.
fn arb_rules_example() -> RuleSet {
    set(vec![
        challenge(
            "count",
            Window::CalendarMonth,
            Goal::Count {
                filter: Filter::default(),
                target: 2,
            },
        ),
        challenge(
            "skus",
            Window::RollingDays { days: 7 },
            Goal::Distinct {
                filter: Filter::default(),
                of: DistinctOf::Sku,
                target: 3,
            },
        ),
    ])
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
