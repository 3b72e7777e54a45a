//! Offers near a position and the geofence plan, on synthetic catalogs imported into a real
//! database: property tests against brute-force searches, and the edge cases (antimeridian,
//! poles, no stores, closed stores, consent withdrawn).

use proptest::prelude::*;
use tessera_core::Tessera;
use tessera_core::api::{CatalogChange, CatalogPage};
use tessera_core::catalog::{Offer, OfferChannel, OfferKind, OpeningHours, Store};
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::geo::{Position, distance_m};
use tessera_core::nearby::{
    RegionAction, RegionEventKind, SuppressReason, anonymous_offers_near, anonymous_plan,
    offers_near_brute_force, qualifying_stores_brute_force,
};
use tessera_core::privacy::ConsentChoice;

fn store(id: usize, lat: f64, lon: f64, radius_m: u32) -> Store {
    Store {
        id: format!("s{id:05}"),
        name: format!("Store {id}"),
        address: "1 rue de la Paix".into(),
        postcode: "75002".into(),
        city: "Paris".into(),
        country: "FR".into(),
        latitude: lat,
        longitude: lon,
        radius_m,
        timezone: "Europe/Paris".into(),
        opening_hours: Vec::new(),
        tags: if id % 3 == 0 {
            vec!["outlet".into()]
        } else {
            vec![]
        },
    }
}

fn offer(id: usize, stores: Vec<String>, tags: Vec<String>, channel: OfferChannel) -> Offer {
    Offer {
        id: format!("o{id:05}"),
        title: format!("Offer {id}"),
        description: "10 % off".into(),
        kind: OfferKind::PercentOff { percent: 10 },
        valid_from: "2020-01-01T00:00:00Z".into(),
        valid_to: "2099-01-01T00:00:00Z".into(),
        channel,
        days: vec![],
        hours_from: None,
        hours_to: None,
        store_ids: stores,
        store_tags: tags,
        categories: vec![],
        tiers: vec![],
        segments: vec![],
        min_basket_cents: None,
        per_member_limit: None,
        requires_clip: false,
        points_cost: None,
    }
}

fn import(stores: &[Store], offers: &[Offer]) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = Tessera::open(dir.path().join("t.db")).unwrap();
    let changes = stores
        .iter()
        .map(|s| CatalogChange::Store { store: s.clone() })
        .chain(
            offers
                .iter()
                .map(|o| CatalogChange::Offer { offer: o.clone() }),
        )
        .collect();
    t.import_catalog_page(&CatalogPage {
        format: 1,
        changes,
        cursor: "c1.1".into(),
        has_more: false,
    })
    .unwrap();
    (dir, t)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Stores around a centre, a third of them with their own offer, every outlet with the outlet
/// offer, one online-only offer that must never show.
fn catalog(points: &[(f64, f64)]) -> (Vec<Store>, Vec<Offer>) {
    let stores: Vec<Store> = points
        .iter()
        .enumerate()
        .map(|(i, (lat, lon))| store(i, *lat, *lon, 150))
        .collect();
    let mut offers: Vec<Offer> = stores
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1)
        .map(|(i, s)| offer(i, vec![s.id.clone()], vec![], OfferChannel::InStore))
        .collect();
    offers.push(offer(
        90_000,
        vec![],
        vec!["outlet".into()],
        OfferChannel::Both,
    ));
    offers.push(offer(90_001, vec![], vec![], OfferChannel::Online));
    (stores, offers)
}

fn position() -> impl Strategy<Value = (f64, f64)> {
    (-89.9f64..89.9, -180.0f64..180.0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

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

/// An enrolled-looking member (a session row) with every consent granted.
fn member(t: &Tessera) {
    tessera_e2e_free_session(t);
    let choices: Vec<ConsentChoice> = Purpose::ALL
        .iter()
        .flat_map(|p| Channel::ALL.iter().map(move |c| (*p, *c)))
        .map(|(purpose, channel)| ConsentChoice {
            purpose,
            channel,
            decision: Decision::Granted,
        })
        .collect();
    t.record_consent(
        &choices,
        &ConsentText {
            version: "v1".into(),
            text: "all".into(),
        },
    )
    .unwrap();
    let p = t.preferences().unwrap();
    t.set_preferences(&tessera_core::preferences::Preferences {
        quiet_hours: None,
        ..p
    })
    .unwrap();
}

fn tessera_e2e_free_session(t: &Tessera) {
    rusqlite::Connection::open(t.path())
        .unwrap()
        .execute(
            "INSERT INTO session VALUES (1, 'http://127.0.0.1:9', 'm1', 'd1', 'a', 0, 'r', 0)",
            [],
        )
        .unwrap();
}

#[test]
fn region_events_respect_consent_hours_cooldowns_and_record_visits() {
    let mut s = store(1, 48.8566, 2.3522, 200);
    // Open 09:00-19:00 Paris time, Monday to Saturday.
    s.opening_hours = (1..=6)
        .map(|day| OpeningHours {
            day,
            opens: "09:00".into(),
            closes: "19:00".into(),
        })
        .collect();
    let o = offer(1, vec![s.id.clone()], vec![], OfferChannel::InStore);
    let (_dir, t) = import(&[s], &[o]);
    let region = "store:s00001";
    // Without consent: no plan, no notification.
    let plan = t
        .plan_geofences(
            Position {
                latitude: 48.8566,
                longitude: 2.3522,
            },
            20,
            &["store:old".into()],
        )
        .unwrap();
    assert!(plan.regions.is_empty());
    assert_eq!(plan.remove, ["store:old"]);
    member(&t);
    t.set_offer_settings(tessera_core::nearby::OfferSettings {
        max_event_age_ms: i64::MAX / 4,
        ..Default::default()
    });
    let plan = t
        .plan_geofences(
            Position {
                latitude: 48.8566,
                longitude: 2.3522,
            },
            20,
            &[],
        )
        .unwrap();
    assert_eq!(plan.regions.len(), 2);
    assert_eq!(plan.add.len(), 2);
    // The same plan moments later and nearby is throttled and changes nothing.
    let registered: Vec<String> = plan.regions.iter().map(|r| r.id.clone()).collect();
    let again = t
        .plan_geofences(
            Position {
                latitude: 48.8567,
                longitude: 2.3522,
            },
            20,
            &registered,
        )
        .unwrap();
    assert!(again.throttled && again.add.is_empty() && again.remove.is_empty());

    // Wednesday 2026-06-03 11:00 Paris = 09:00 UTC: open.
    let open_at: i64 = "2026-06-03T09:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let first = t
        .on_region_event(region, RegionEventKind::Enter, open_at)
        .unwrap();
    let RegionAction::Notify { notification } = &first.action else {
        panic!("{first:?}")
    };
    assert_eq!(notification.offer_id, "o00001");
    assert_eq!(
        notification.deep_link,
        "tessera://offer/o00001?store=s00001"
    );
    let second = t
        .on_region_event(region, RegionEventKind::Dwell, open_at + 60_000)
        .unwrap();
    assert!(second.visit_recorded);
    assert!(matches!(
        second.action,
        RegionAction::Suppress {
            reason: SuppressReason::Cooldown { .. }
        }
    ));
    // Sunday: closed.
    let sunday: i64 = "2026-06-07T09:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let closed = t
        .on_region_event(region, RegionEventKind::Enter, sunday)
        .unwrap();
    assert_eq!(
        closed.action,
        RegionAction::Suppress {
            reason: SuppressReason::StoreClosed
        }
    );
    // Leaving a store does nothing; leaving the re-plan region asks for a plan.
    assert_eq!(
        t.on_region_event(region, RegionEventKind::Exit, open_at)
            .unwrap()
            .action,
        RegionAction::Nothing
    );
    let replan = plan.regions.last().unwrap().id.clone();
    assert_eq!(
        t.on_region_event(&replan, RegionEventKind::Exit, open_at)
            .unwrap()
            .action,
        RegionAction::Replan
    );
    assert_eq!(
        t.on_region_event("store:nope", RegionEventKind::Enter, open_at)
            .unwrap()
            .action,
        RegionAction::Suppress {
            reason: SuppressReason::UnknownRegion
        }
    );
    // A used-up offer is not offered again.
    rusqlite::Connection::open(t.path())
        .unwrap()
        .execute(
            "INSERT INTO offer_state (offer_id, clipped_at, used_count) VALUES ('o00001', 1, 0)",
            [],
        )
        .unwrap();
    let later = open_at + 7 * 3_600_000;
    assert_eq!(
        t.on_region_event(region, RegionEventKind::Enter, later)
            .unwrap()
            .action,
        RegionAction::Suppress {
            reason: SuppressReason::NoEligibleOffer
        }
    );
    // Withdrawn: no plan and no notification, at once.
    t.withdraw_all_consents(&ConsentText {
        version: "v1".into(),
        text: "all".into(),
    })
    .unwrap();
    assert!(
        t.plan_geofences(
            Position {
                latitude: 48.8566,
                longitude: 2.3522
            },
            20,
            &registered
        )
        .unwrap()
        .regions
        .is_empty()
    );
    assert_eq!(
        t.on_region_event(region, RegionEventKind::Enter, later)
            .unwrap()
            .action,
        RegionAction::Suppress {
            reason: SuppressReason::NoConsent
        }
    );
    assert_eq!(
        t.activity(10).unwrap().len(),
        1,
        "one visit recorded, on the dwell"
    );
}

#[test]
fn bad_positions_budgets_and_radii_are_typed() {
    let (_dir, t) = import(&[], &[]);
    let bad = |r: tessera_core::Result<_>| match r {
        Err(tessera_core::Error::InvalidInput { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let paris = Position {
        latitude: 48.85,
        longitude: 2.35,
    };
    assert_eq!(
        bad(t
            .offers_near(
                Position {
                    latitude: 95.0,
                    longitude: 0.0
                },
                1000.0,
                10
            )
            .map(|_| ())),
        "position.latitude"
    );
    assert_eq!(bad(t.offers_near(paris, 0.0, 10).map(|_| ())), "radius_m");
    assert_eq!(
        bad(t.offers_near(paris, f64::NAN, 10).map(|_| ())),
        "radius_m"
    );
    assert_eq!(bad(t.offers_near(paris, 1000.0, 0).map(|_| ())), "limit");
    assert_eq!(bad(t.plan_geofences(paris, 1, &[]).map(|_| ())), "budget");
    assert_eq!(
        bad(t
            .plan_geofences(
                Position {
                    latitude: 0.0,
                    longitude: f64::INFINITY
                },
                20,
                &[]
            )
            .map(|_| ())),
        "position.longitude"
    );
}

fn at_distance(from: (f64, f64), azimuth: f64, metres: f64) -> (f64, f64) {
    use geographiclib_rs::{DirectGeodesic, Geodesic};
    let (lat, lon, _az): (f64, f64, f64) =
        Geodesic::wgs84().direct(from.0, from.1, azimuth, metres);
    (lat, lon)
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

#[test]
fn event_times_out_of_any_calendar_are_typed_errors_not_overflows() {
    let s = store(1, 48.8566, 2.3522, 200);
    let o = offer(1, vec![s.id.clone()], vec![], OfferChannel::InStore);
    let (_dir, t) = import(&[s], &[o]);
    member(&t);
    for at in [i64::MIN, i64::MAX] {
        for kind in [RegionEventKind::Enter, RegionEventKind::Dwell] {
            match t.on_region_event("store:s00001", kind, at) {
                Err(tessera_core::Error::InvalidInput { field, .. }) => assert_eq!(field, "at_ms"),
                other => panic!("{other:?}"),
            }
        }
        let sync = r#"{"tessera":{"v":1,"id":"s-1","kind":"sync"}}"#;
        assert!(matches!(
            t.handle_push(sync, at),
            Err(tessera_core::push::PushHandlingError::Message(
                tessera_core::push::PushError::Invalid { .. }
            ))
        ));
    }
}
