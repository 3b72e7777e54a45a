//! Region events as the OS reports them: consent, opening hours, cooldowns, visits recorded;
//! typed errors for bad positions, budgets, radii and times.

use tessera_core::catalog::{OfferChannel, OpeningHours};
use tessera_core::consent::ConsentText;
use tessera_core::geo::Position;
use tessera_core::nearby::{RegionAction, RegionEventKind, SuppressReason};

mod common;
use common::offers::*;

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
