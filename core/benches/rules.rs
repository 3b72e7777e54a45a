//! Figures for the rules engine (issue #7): 100 active challenges (counts, distinct products and
//! shops, sums, weekly streaks, all-of combinations; calendar and rolling windows in
//! Europe/Paris) over a 10,000-event history. Targets: the whole evaluation ≤ 5 ms median, one
//! new event applied incrementally ≤ 50 µs.
//!
//! And what the server does per event (issue #17), at 100 and 100,000 events of history: the
//! kept engine restored from its JSON, one event applied, the engine saved to JSON again, next to
//! the whole history evaluated with that event (what the server did before, the baseline).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::rules::{
    Challenge, DistinctOf, Engine, EngineState, Filter, Goal, Period, Repeat, RuleChannel,
    RuleEvent, RuleEventKind, RuleLine, RuleReward, RuleSet, SumOf, Window, evaluate,
};

const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const HOUR: i64 = 3_600_000;

fn rules() -> RuleSet {
    let kinds = [
        RuleEventKind::Purchase,
        RuleEventKind::StoreVisit,
        RuleEventKind::ReviewPosted,
        RuleEventKind::AppOpened,
    ];
    let challenges = (0..100)
        .map(|i| {
            let filter = Filter {
                kinds: vec![kinds[i % 4]],
                collections: if i % 5 == 0 {
                    vec![format!("col-{}", i % 3)]
                } else {
                    vec![]
                },
                ..Filter::default()
            };
            let goal = match i % 5 {
                0 => Goal::Distinct {
                    filter,
                    of: DistinctOf::Sku,
                    target: 30,
                },
                1 => Goal::Distinct {
                    filter,
                    of: DistinctOf::Store,
                    target: 40,
                },
                2 => Goal::Sum {
                    filter,
                    of: SumOf::AmountCents,
                    target: 5_000_000,
                },
                3 => Goal::Streak {
                    filter,
                    period: Period::Week,
                    target: 4,
                },
                _ => Goal::AllOf {
                    goals: vec![
                        Goal::Count {
                            filter: filter.clone(),
                            target: 500,
                        },
                        Goal::Count {
                            filter: Filter {
                                kinds: vec![RuleEventKind::ReviewPosted],
                                ..Filter::default()
                            },
                            target: 200,
                        },
                    ],
                },
            };
            Challenge {
                id: format!("ch-{i}"),
                title: format!("Challenge {i}"),
                description: String::new(),
                badge: None,
                window: match i % 3 {
                    0 => Window::CalendarMonth,
                    1 => Window::RollingDays { days: 30 },
                    _ => Window::CalendarWeek,
                },
                goal,
                reward: RuleReward::Points { points: 50 },
                opt_in: false,
                repeat: Repeat::PerWindow { max_total: None },
            }
        })
        .filter(|c| {
            // A 4-week streak does not fit a calendar week: drop those combinations.
            !(matches!(c.window, Window::CalendarWeek) && matches!(c.goal, Goal::Streak { .. }))
        })
        .collect::<Vec<_>>();
    let mut all = challenges;
    let mut i = 100;
    while all.len() < 100 {
        all.push(Challenge {
            id: format!("ch-{i}"),
            title: "Visit".into(),
            description: String::new(),
            badge: None,
            window: Window::CalendarMonth,
            goal: Goal::Count {
                filter: Filter {
                    kinds: vec![RuleEventKind::StoreVisit],
                    ..Filter::default()
                },
                target: 10,
            },
            reward: RuleReward::Badge,
            opt_in: false,
            repeat: Repeat::Once,
        });
        i += 1;
    }
    RuleSet {
        version: 1,
        challenges: all,
        earning: None,
    }
}

fn event(i: i64) -> RuleEvent {
    let kind = [
        RuleEventKind::Purchase,
        RuleEventKind::StoreVisit,
        RuleEventKind::ReviewPosted,
        RuleEventKind::AppOpened,
    ][(i % 4) as usize];
    RuleEvent {
        event_id: format!("ev-{i:06}"),
        kind,
        at_ms: START + i * HOUR / 2,
        store_id: Some(format!("st-{}", i % 60)),
        channel: Some(RuleChannel::InStore),
        amount_cents: 2599,
        lines: (0..(i % 3 + 1))
            .map(|k| RuleLine {
                sku: format!("sku-{}", (i * 7 + k) % 400),
                category: Some(format!("cat-{}", k)),
                collection: Some(format!("col-{}", (i + k) % 3)),
                quantity: 1,
                amount_cents: 2599 / (i % 3 + 1) as u64,
            })
            .collect(),
    }
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    assert_eq!(rules.challenges.len(), 100);
    let events: Vec<RuleEvent> = (0..10_000).map(event).collect();
    let now = START + 10_001 * HOUR / 2;
    c.bench_function("rules/evaluate_100_challenges_10k_events", |b| {
        b.iter(|| {
            black_box(
                evaluate(
                    &rules,
                    "Europe/Paris",
                    BTreeMap::new(),
                    black_box(&events),
                    now,
                )
                .unwrap(),
            )
        })
    });
    let mut engine = Engine::new(&rules, "Europe/Paris", BTreeMap::new()).unwrap();
    for e in &events {
        engine.apply(e, now).unwrap();
    }
    // Events applied one after another on top of the 10,000 (as a phone does), the cost of
    // each averaged; the engine is cloned outside the timing.
    let later: Vec<RuleEvent> = (10_000..20_000).map(event).collect();
    let far = START + 20_001 * HOUR / 2;
    c.bench_function("rules/apply_one_new_event", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(later.len());
                let mut e = engine.clone();
                let start = std::time::Instant::now();
                for ev in &later[..n] {
                    black_box(e.apply(ev, far).unwrap());
                }
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });
}

/// One more event for a member, as the server counts it, after `n` events of history: kept
/// (restore, apply, save, through JSON) and evaluated whole (the baseline).
fn kept(c: &mut Criterion) {
    let rules = rules();
    let mut group = c.benchmark_group("rules/one_more_event");
    for n in [100i64, 100_000] {
        let events: Vec<RuleEvent> = (0..n).map(event).collect();
        let next = event(n);
        let now = START + (n + 2) * HOUR / 2;
        let (engine, _) =
            Engine::replay(&rules, "Europe/Paris", BTreeMap::new(), &events, now).unwrap();
        let state = serde_json::to_string(&engine.save()).unwrap();
        group.bench_function(format!("kept/{n}_events"), |b| {
            b.iter(|| {
                let saved: EngineState = serde_json::from_str(black_box(&state)).unwrap();
                let mut e =
                    Engine::restore(&rules, "Europe/Paris", BTreeMap::new(), &saved).unwrap();
                black_box(e.apply(&next, now).unwrap());
                black_box(serde_json::to_string(&e.save()).unwrap())
            })
        });
        let mut all = events.clone();
        all.push(next.clone());
        // The whole history at 100,000 events takes long: fewer samples.
        group.sample_size(if n > 10_000 { 10 } else { 100 });
        group.bench_function(format!("whole_history/{n}_events"), |b| {
            b.iter(|| {
                black_box(
                    evaluate(
                        &rules,
                        "Europe/Paris",
                        BTreeMap::new(),
                        black_box(&all),
                        now,
                    )
                    .unwrap(),
                )
            })
        });
        eprintln!("kept state after {n} events: {} bytes of JSON", state.len());
    }
    group.finish();
}

criterion_group!(benches, bench, kept);
criterion_main!(benches);
