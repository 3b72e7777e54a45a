//! A scripted walk across Paris through the seed catalog's 40 Paris shops, replayed through the
//! geofence plan and region events as iOS would drive them (20 regions), against the real server:
//! which notifications fired, why the others did not, and the visits reaching the server.

use tessera_core::Tessera;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::nearby::{OfferSettings, RegionAction, RegionEventKind};
use tessera_core::preferences::{FrequencyCap, Preferences};
use tessera_core::privacy::ConsentChoice;
use tessera_core::simulate::{PARIS_WALK, path, walk};
use tessera_e2e::{Server, device};

fn saturday_10am() -> i64 {
    // Saturday 2026-11-28 10:00 Paris (UTC+1): within a week of any run this year; the walk runs
    // on its own clock, so the age check is relaxed below.
    "2026-11-28T09:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

fn member(server: &Server, cap: Option<u32>) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("walker.db"));
    t.enrol(&server.url(), "Léa Bernard", device()).unwrap();
    t.sync().unwrap();
    let grant = |purpose, channel| ConsentChoice {
        purpose,
        channel,
        decision: Decision::Granted,
    };
    t.record_consent(
        &[
            grant(Purpose::GeolocatedOffers, Channel::Location),
            grant(Purpose::GeolocatedOffers, Channel::Push),
        ],
        &ConsentText {
            version: "geo-1".into(),
            text: "Offers when I pass a shop.".into(),
        },
    )
    .unwrap();
    t.set_preferences(&Preferences {
        timezone: "Europe/Paris".into(),
        caps: cap
            .map(|n| {
                vec![FrequencyCap {
                    channel: Channel::Push,
                    per_day: Some(n),
                    per_week: None,
                }]
            })
            .unwrap_or_default(),
        ..t.preferences().unwrap()
    })
    .unwrap();
    t.set_offer_settings(OfferSettings {
        max_event_age_ms: i64::MAX / 4,
        ..OfferSettings::default()
    });
    (dir, t)
}

#[test]
fn a_walk_across_paris_notifies_within_the_rules_and_records_the_visits() {
    let server = Server::start();
    let (_dir, t) = member(&server, Some(2));
    let steps = path(&PARIS_WALK, 25.0, saturday_10am(), 20_000);
    let report = walk(&t, &steps, 20, 120_000).unwrap();
    assert!(report.max_registered <= 20, "{}", report.max_registered);
    assert!(
        report.plans >= 2,
        "the walk leaves the re-plan region: {} plans",
        report.plans
    );
    let notified: Vec<_> = report.notified().collect();
    assert_eq!(
        notified.len(),
        2,
        "the daily cap of 2: {:?}",
        report.suppressed()
    );
    let offers: std::collections::BTreeSet<_> = notified
        .iter()
        .map(|e| match &e.action {
            RegionAction::Notify { notification } => notification.offer_id.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(offers.len(), 2, "never the same offer twice");
    let suppressed = report.suppressed();
    assert!(suppressed.contains_key("CapReached"), "{suppressed:?}");
    assert!(
        suppressed.contains_key("Cooldown"),
        "a dwell after an enter: {suppressed:?}"
    );
    // Every dwell became a store visit, and they reach the server.
    let dwells = report
        .events
        .iter()
        .filter(|e| e.kind == RegionEventKind::Dwell)
        .count();
    let visits = report.events.iter().filter(|e| e.visit_recorded).count();
    assert_eq!(dwells, visits);
    assert!(visits > 0);
    t.sync().unwrap();
    let member = t.sync_status().unwrap().member_id.unwrap();
    assert_eq!(server.event_counts(&member).len(), visits);
}

#[test]
fn on_a_sunday_night_nothing_is_notified_and_without_consent_nothing_is_planned() {
    let server = Server::start();
    let (_dir, t) = member(&server, None);
    // Sunday 2026-11-29 23:00 Paris: shops closed, and within default quiet hours.
    let night = "2026-11-29T22:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let report = walk(&t, &path(&PARIS_WALK, 25.0, night, 20_000), 20, 120_000).unwrap();
    assert_eq!(report.notified().count(), 0);
    assert!(
        report.suppressed().contains_key("StoreClosed"),
        "{:?}",
        report.suppressed()
    );
    t.withdraw_all_consents(&ConsentText {
        version: "geo-1".into(),
        text: "x".into(),
    })
    .unwrap();
    let report = walk(
        &t,
        &path(&PARIS_WALK, 25.0, saturday_10am(), 20_000),
        20,
        120_000,
    )
    .unwrap();
    assert_eq!((report.max_registered, report.events.len()), (0, 0));
}
