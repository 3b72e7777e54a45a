//! Offers near a position and the geofence plan, on synthetic catalogs imported into a real
//! database: property tests against brute-force searches, and the edge cases (antimeridian,
//! poles, no stores, closed stores, consent withdrawn).

use proptest::prelude::*;
use tessera_core::Tessera;
use tessera_core::catalog::{Offer, OfferChannel, Store};
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::geo::{Position, distance_m};
use tessera_core::nearby::{
    anonymous_offers_near, anonymous_plan, offers_near_brute_force, qualifying_stores_brute_force,
};
use tessera_core::privacy::ConsentChoice;

mod common;
use common::offers::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Issue #15: chain-wide and tag offers are held once, not once per store; a retail chain's
    /// catalog (many of them, some on certain days, some for a tier) in shops of three time zones
    /// answers as a scan of every store does.
    #[test]
    fn chain_wide_and_tag_offers_match_a_brute_force_scan(
        centre in position(),
        offsets in prop::collection::vec((-0.02f64..0.02, -0.02f64..0.02), 1..80),
        shared in prop::collection::vec((0u8..4, 0u8..8, any::<bool>()), 0..120),
        radius in 100.0f64..5000.0,
        limit in 1usize..30,
    ) {
        let zones = ["Europe/Paris", "America/New_York", "Asia/Tokyo"];
        let tags = ["outlet", "cafe", "city"];
        let stores: Vec<Store> = offsets
            .iter()
            .enumerate()
            .map(|(i, (a, b))| {
                let mut s = store(i, (centre.0 + a).clamp(-90.0, 90.0), ((centre.1 + b + 540.0) % 360.0) - 180.0, 150);
                s.timezone = zones[i % 3].into();
                s.tags = (0..3).filter(|k| (i >> k) & 1 == 1).map(|k| tags[k].to_string()).collect();
                s
            })
            .collect();
        let mut offers: Vec<Offer> = stores
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 1)
            .map(|(i, s)| offer(i, vec![s.id.clone()], vec![], OfferChannel::InStore))
            .collect();
        for (n, (target, days, gold)) in shared.iter().enumerate() {
            let tags = match target {
                0 => vec![],
                t => vec![tags[*t as usize - 1].to_string()],
            };
            let mut o = offer(50_000 + n, vec![], tags, OfferChannel::Both);
            // Some only on certain weekdays (local to the store), some for a tier nobody has.
            o.days = match days % 4 {
                0 => vec![],
                1 => vec![1],
                2 => vec![7],
                _ => vec![1, 2, 3, 4, 5],
            };
            if *gold {
                o.tiers = vec!["Gold".into()];
            }
            offers.push(o);
        }
        let (_dir, t) = import(&stores, &offers);
        let idx = t.offer_index().unwrap();
        let at = Position { latitude: centre.0, longitude: centre.1 };
        // A Monday 02:00 UTC: Sunday evening in New York, Monday in Paris and Tokyo.
        let monday: i64 = "2026-11-30T02:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let fast = tessera_core::Db::open(t.path())
            .unwrap()
            .read(|c| anonymous_offers_near(c, &idx, at, radius, limit, monday))
            .unwrap();
        let slow = offers_near_brute_force(&idx, at, radius, limit, monday);
        let got: Vec<(String, String)> = fast.iter().map(|n| (n.offer.id.clone(), n.store_id.clone())).collect();
        prop_assert_eq!(&got, &slow);
    }

    #[test]
    fn the_plan_fits_its_budget_and_matches_a_brute_force_search(
        centre in position(),
        offsets in prop::collection::vec((-0.05f64..0.05, -0.05f64..0.05), 0..120),
        budget in 2usize..25,
    ) {
        let points: Vec<(f64, f64)> = offsets
            .iter()
            .map(|(a, b)| ((centre.0 + a).clamp(-90.0, 90.0), ((centre.1 + b + 540.0) % 360.0) - 180.0))
            .collect();
        let (stores, offers) = catalog(&points);
        let (_dir, t) = import(&stores, &offers);
        let idx = t.offer_index().unwrap();
        let at = Position { latitude: centre.0, longitude: centre.1 };
        let plan = anonymous_plan(&idx, at, budget, now());
        prop_assert!(plan.len() <= budget);
        let replan = plan.last().unwrap();
        prop_assert!(replan.id.starts_with("replan:"));
        prop_assert!(replan.store_id.is_none() && replan.radius_m >= 100.0);
        let expected = qualifying_stores_brute_force(&idx, at, now());
        let planned: Vec<String> = plan[..plan.len() - 1]
            .iter()
            .map(|r| r.store_id.clone().unwrap())
            .collect();
        let want: Vec<String> = expected.iter().take(budget - 1).map(|(_, id)| id.clone()).collect();
        prop_assert_eq!(&planned, &want);
        for r in &plan[..plan.len() - 1] {
            prop_assert!(r.radius_m >= 100.0);
        }
        // The re-plan region ends where the nearest store left out begins.
        if let Some((d, _)) = expected.get(budget - 1) {
            let want = (d - 150.0).clamp(100.0, 50_000.0).round();
            prop_assert!((replan.radius_m - want).abs() <= 1.0, "{} vs {}", replan.radius_m, want);
        }
    }

    #[test]
    fn offers_near_match_a_brute_force_scan(
        centre in position(),
        offsets in prop::collection::vec((-0.02f64..0.02, -0.02f64..0.02), 1..150),
        radius in 100.0f64..5000.0,
        limit in 1usize..30,
    ) {
        let points: Vec<(f64, f64)> = offsets
            .iter()
            .map(|(a, b)| ((centre.0 + a).clamp(-90.0, 90.0), ((centre.1 + b + 540.0) % 360.0) - 180.0))
            .collect();
        let (stores, offers) = catalog(&points);
        let (_dir, t) = import(&stores, &offers);
        let idx = t.offer_index().unwrap();
        let at = Position { latitude: centre.0, longitude: centre.1 };
        let fast = tessera_core::Db::open(t.path())
            .unwrap()
            .read(|c| anonymous_offers_near(c, &idx, at, radius, limit, now()))
            .unwrap();
        let slow = offers_near_brute_force(&idx, at, radius, limit, now());
        let got: Vec<(String, String)> = fast.iter().map(|n| (n.offer.id.clone(), n.store_id.clone())).collect();
        prop_assert_eq!(&got, &slow);
        for n in &fast {
            prop_assert!(n.distance_m <= radius);
            prop_assert!(n.offer.channel != OfferChannel::Online);
            let s = stores.iter().find(|s| s.id == n.store_id).unwrap();
            let d = distance_m(at, Position { latitude: s.latitude, longitude: s.longitude });
            prop_assert!((d - n.distance_m).abs() < 1e-6);
        }
        for pair in fast.windows(2) {
            prop_assert!(pair[0].distance_m <= pair[1].distance_m);
        }
    }
}

#[test]
fn the_antimeridian_and_the_poles_are_ordinary_places() {
    // Two stores 220 m apart across the antimeridian, one 200 km west.
    let (stores, offers) = catalog(&[(0.0, 179.999), (0.0, -179.999), (0.0, 178.2)]);
    let (_dir, t) = import(&stores, &offers);
    let idx = t.offer_index().unwrap();
    let plan = anonymous_plan(
        &idx,
        Position {
            latitude: 0.0,
            longitude: 180.0,
        },
        3,
        now(),
    );
    let ids: Vec<_> = plan.iter().filter_map(|r| r.store_id.clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.contains(&"s00001".to_owned()),
        "the store across the line is nearest: {ids:?}"
    );
    // Near the North Pole every longitude is close.
    let (stores, offers) = catalog(&[
        (89.999, 0.0),
        (89.999, 90.0),
        (89.999, 180.0),
        (89.999, -90.0),
    ]);
    let (_dir, t) = import(&stores, &offers);
    let idx = t.offer_index().unwrap();
    let plan = anonymous_plan(
        &idx,
        Position {
            latitude: 90.0,
            longitude: 0.0,
        },
        10,
        now(),
    );
    assert_eq!(
        plan.len() - 1,
        qualifying_stores_brute_force(
            &idx,
            Position {
                latitude: 90.0,
                longitude: 0.0
            },
            now()
        )
        .len()
    );
}

#[test]
fn degenerate_limits_answer_without_panicking() {
    let (stores, offers) = catalog(&[(48.85, 2.35), (48.86, 2.35)]);
    let (_dir, t) = import(&stores, &offers);
    let idx = t.offer_index().unwrap();
    let at = Position {
        latitude: 48.85,
        longitude: 2.35,
    };
    for budget in [0, 1] {
        let plan = anonymous_plan(&idx, at, budget, now());
        assert_eq!(plan.len(), 1, "only the re-plan region");
    }
    let none = tessera_core::Db::open(t.path())
        .unwrap()
        .read(|c| anonymous_offers_near(c, &idx, at, 1000.0, 0, now()))
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn no_stores_means_only_the_replan_region() {
    let (_dir, t) = import(&[], &[]);
    let idx = t.offer_index().unwrap();
    let plan = anonymous_plan(
        &idx,
        Position {
            latitude: 48.85,
            longitude: 2.35,
        },
        20,
        now(),
    );
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].radius_m, 50_000.0);
}

#[test]
fn the_plan_uses_exact_distances_where_the_sphere_orders_stores_otherwise() {
    // At 45°N the sphere shortens east-west distances more than north-south ones: a store
    // 10,020 m east looks nearer than one 10,000 m north. The plan must not stop at the sphere's
    // order: with one store monitored, the re-plan region ends at the north store (the nearer).
    let origin = (45.0, 0.0);
    let placed = [
        (at_distance(origin, 270.0, 500.0), 150),
        (at_distance(origin, 90.0, 10_020.0), 150),
        (at_distance(origin, 0.0, 10_000.0), 150),
    ];
    let stores: Vec<Store> = placed
        .iter()
        .enumerate()
        .map(|(i, ((lat, lon), r))| Store {
            tags: vec![],
            ..store(i, *lat, *lon, *r)
        })
        .collect();
    let offers: Vec<Offer> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| offer(i, vec![s.id.clone()], vec![], OfferChannel::InStore))
        .collect();
    let (_dir, t) = import(&stores, &offers);
    let idx = t.offer_index().unwrap();
    let at = Position {
        latitude: origin.0,
        longitude: origin.1,
    };
    let plan = anonymous_plan(&idx, at, 2, now());
    assert_eq!(plan[0].store_id.as_deref(), Some("s00000"));
    let expected = (10_000.0f64 - 150.0).round();
    assert!((plan[1].radius_m - expected).abs() <= 1.0, "{plan:?}");
}

#[test]
fn personalised_ranking_lets_a_farther_offer_of_interest_come_first() {
    let near_pos = at_distance((48.8566, 2.3522), 270.0, 100.0);
    let near = store(1, near_pos.0, near_pos.1, 150);
    let far_pos = at_distance((48.8566, 2.3522), 90.0, 150.0);
    let far = store(2, far_pos.0, far_pos.1, 150);
    let plain = offer(1, vec![near.id.clone()], vec![], OfferChannel::InStore);
    let mut tea = offer(2, vec![far.id.clone()], vec![], OfferChannel::InStore);
    tea.categories = vec!["tea".into()];
    let (_dir, t) = import(&[near, far], &[plain, tea]);
    tessera_e2e_free_session(&t);
    let here = Position {
        latitude: 48.8566,
        longitude: 2.3522,
    };
    let first = |t: &Tessera| t.offers_near(here, 1_000.0, 1).unwrap()[0].offer.id.clone();
    assert_eq!(
        first(&t),
        "o00001",
        "without personalisation: nearest first"
    );
    t.set_preferences(&tessera_core::preferences::Preferences {
        interests: vec!["tea".into()],
        ..t.preferences().unwrap()
    })
    .unwrap();
    let grant = ConsentChoice {
        purpose: Purpose::Personalisation,
        channel: Channel::InApp,
        decision: Decision::Granted,
    };
    t.record_consent(
        &[grant],
        &ConsentText {
            version: "v1".into(),
            text: "p".into(),
        },
    )
    .unwrap();
    assert_eq!(
        first(&t),
        "o00002",
        "her interest, 150 m away, before a plain offer 100 m away"
    );
}

/// The offers screen from the index (issue #15) against the reference that parses every cached
/// offer and applies the domain's rules: the same offers in the same order, personalised or not,
/// whatever the dates, tiers, segments, limits, interests, favourites and visits.
mod screen {
    use super::*;
    use tessera_core::nearby::offers_screen_brute_force;

    fn iso(ms: i64) -> String {
        tessera_core::rfc3339_ms(ms)
    }

    #[derive(Debug, Clone)]
    struct Shape {
        stores: u8,
        window: u8,
        tier: u8,
        segment: bool,
        category: u8,
        limit: bool,
        used: bool,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        (
            0u8..16,
            0u8..5,
            0u8..3,
            any::<bool>(),
            0u8..3,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(stores, window, tier, segment, category, limit, used)| Shape {
                    stores,
                    window,
                    tier,
                    segment,
                    category,
                    limit,
                    used,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn the_index_lists_what_the_rules_over_every_offer_list(
            shapes in prop::collection::vec(shape(), 1..60),
            gold in any::<bool>(),
            vip in any::<bool>(),
            tea in any::<bool>(),
            personalised in any::<bool>(),
            favourites in 0u8..16,
            visits in prop::collection::vec(0usize..4, 0..12),
            limit in 1u32..40,
        ) {
            let now = now();
            let day = 86_400_000;
            let stores: Vec<Store> = (0..4).map(|i| store(i, 48.85 + i as f64 * 0.01, 2.35, 100)).collect();
            let offers: Vec<Offer> = shapes.iter().enumerate().map(|(i, s)| {
                let ids = (0..4).filter(|k| s.stores & (1 << k) != 0).map(|k| stores[k].id.clone()).collect();
                let mut o = offer(i, ids, vec![], OfferChannel::Both);
                // Ending at different times (and some ties), some over, some not started.
                let (from, to) = match s.window {
                    0 => (now - 10 * day, now - day),
                    1 => (now + day, now + 10 * day),
                    w => (now - day, now + i64::from(w) * day + (i as i64 % 3) * 3_600_000),
                };
                o.valid_from = iso(from);
                o.valid_to = iso(to);
                o.tiers = match s.tier { 0 => vec![], 1 => vec!["Gold".into()], _ => vec!["Silver".into()] };
                if s.segment { o.segments = vec!["vip".into()]; }
                o.categories = match s.category { 0 => vec![], 1 => vec!["tea".into()], _ => vec!["coffee".into()] };
                if s.limit { o.per_member_limit = Some(1); }
                o
            }).collect();
            let (_dir, t) = import(&stores, &offers);
            tessera_e2e_free_session(&t);
            let db = rusqlite::Connection::open(t.path()).unwrap();
            let state = serde_json::json!({
                "tier": if gold { "Gold" } else { "Member" },
                "segments": if vip { vec!["vip"] } else { vec![] },
            });
            db.execute("INSERT INTO member_state (id, data, as_of) VALUES (1, ?1, 0)", [state.to_string()]).unwrap();
            for (i, s) in shapes.iter().enumerate() {
                if s.used {
                    db.execute("INSERT INTO offer_state (offer_id, used_count) VALUES (?1, 1)", [&offers[i].id]).unwrap();
                }
            }
            for (k, st) in stores.iter().enumerate() {
                if favourites & (1 << k) != 0 {
                    t.set_favourite_store(&st.id, true).unwrap();
                }
            }
            for (n, k) in visits.iter().enumerate() {
                db.execute(
                    "INSERT INTO activity (event_id, kind, occurred_at, store_id, attributes)
                     VALUES (?1, 'store_visit', '2026-01-01T10:00:00Z', ?2, '{}')",
                    [format!("ev-{n}"), stores[*k].id.clone()],
                ).unwrap();
            }
            let mut prefs = t.preferences().unwrap();
            prefs.interests = if tea { vec!["tea".into()] } else { vec![] };
            t.set_preferences(&prefs).unwrap();
            if personalised {
                t.record_consent(
                    &[ConsentChoice { purpose: Purpose::Personalisation, channel: Channel::InApp, decision: Decision::Granted }],
                    &ConsentText { version: "v1".into(), text: "rank".into() },
                ).unwrap();
            }
            let listed = t.offers(limit).unwrap();
            let reference = offers_screen_brute_force(&db, t.consent_gate(), limit, now).unwrap();
            prop_assert_eq!(listed.personalised, personalised);
            let ids = |l: &tessera_core::privacy::OfferList| l.offers.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
            prop_assert_eq!(ids(&listed), ids(&reference));
        }
    }
}

/// The index is written out and mapped from an unnamed file next to the database (nothing is
/// left in the directory); built from a database with no file (in memory) it keeps the same
/// sections in the heap; both answer exactly what the brute-force search answers.
#[test]
fn the_index_is_mapped_from_a_file_and_answers_like_the_heap_copy() {
    let points: Vec<(f64, f64)> = (0..300)
        .map(|i| {
            (
                48.80 + f64::from(i % 20) * 0.01,
                2.25 + f64::from(i / 20) * 0.01,
            )
        })
        .collect();
    let (stores, offers) = catalog(&points);
    let (dir, t) = import(&stores, &offers);
    let mapped = t.offer_index().unwrap();
    assert!(mapped.is_mapped(), "a file database: mapped");
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("t.db"))
        .collect();
    files.sort();
    assert_eq!(files, Vec::<String>::new(), "no file left in the directory");

    let memory = rusqlite::Connection::open_in_memory().unwrap();
    memory
        .execute_batch(&format!(
            "ATTACH DATABASE '{}' AS src;
             CREATE TABLE store AS SELECT * FROM src.store;
             CREATE TABLE offer AS SELECT * FROM src.offer;
             DETACH DATABASE src;",
            t.path().display()
        ))
        .unwrap();
    let heap = tessera_core::nearby::OfferIndex::build(&memory).unwrap();
    assert!(!heap.is_mapped(), "an in-memory database: the heap");
    assert_eq!(heap.stores(), mapped.stores());
    for (lat, lon) in [(48.85, 2.30), (48.80, 2.25), (48.95, 2.40)] {
        let at = Position {
            latitude: lat,
            longitude: lon,
        };
        let from_file = offers_near_brute_force(&mapped, at, 2_000.0, 20, now());
        assert_eq!(
            offers_near_brute_force(&heap, at, 2_000.0, 20, now()),
            from_file
        );
        let fast = tessera_core::Db::open(t.path())
            .unwrap()
            .read(|c| anonymous_offers_near(c, &mapped, at, 2_000.0, 20, now()))
            .unwrap();
        let got: Vec<(String, String)> = fast
            .iter()
            .map(|n| (n.offer.id.clone(), n.store_id.clone()))
            .collect();
        assert_eq!(got, from_file);
        assert!(!got.is_empty());
        assert_eq!(
            anonymous_plan(&heap, at, 20, now()),
            anonymous_plan(&mapped, at, 20, now())
        );
    }
}
