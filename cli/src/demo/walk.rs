//! A walk through Paris: offers near the member, the geofence plan, region events.

use anyhow::Result;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::preferences::Preferences;
use tessera_core::privacy::ConsentChoice;
use tessera_core::{DeviceInfo, Tessera};

use super::*;

/// Step 16: a member walks across Paris on a Saturday morning with geofences on. Returns her
/// phone (and the directory it lives in) for the till steps.
pub(super) fn walk_step(server: &LocalServer) -> Result<(tempfile::TempDir, Tessera)> {
    use tessera_core::nearby::{OfferSettings, RegionAction};
    use tessera_core::simulate::{PARIS_WALK, path, walk};

    step(
        16,
        "Saturday morning, Léa walks across Paris with the app in her pocket",
    );
    let dir = tempfile::tempdir()?;
    let phone = crate::open_phone(&dir.path().join("lea.db"))?;
    phone.enrol(
        &server.url(),
        "Léa Bernard",
        DeviceInfo {
            platform: tessera_core::Platform::Ios,
            app_version: env!("CARGO_PKG_VERSION").into(),
        },
    )?;
    phone.sync()?;
    let grant = |purpose, channel| ConsentChoice {
        purpose,
        channel,
        decision: Decision::Granted,
    };
    phone.record_consent(
        &[
            grant(Purpose::GeolocatedOffers, Channel::Location),
            grant(Purpose::GeolocatedOffers, Channel::Push),
        ],
        &ConsentText {
            version: "geo-2026-11".into(),
            text: "Tell me about offers when I pass one of your shops.".into(),
        },
    )?;
    phone.set_preferences(&Preferences {
        timezone: "Europe/Paris".into(),
        caps: vec![tessera_core::preferences::FrequencyCap {
            channel: Channel::Push,
            per_day: Some(3),
            per_week: None,
        }],
        ..phone.preferences()?
    })?;
    // The walk runs on a simulated clock: next Saturday from 10:00, Paris time.
    phone.set_offer_settings(OfferSettings {
        max_event_age_ms: 8 * 86_400_000,
        ..OfferSettings::default()
    });
    let paris = jiff::tz::TimeZone::get("Europe/Paris")?;
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(paris.clone())
        .date();
    let ahead = (5 - today.weekday().to_monday_zero_offset() + 7) % 7;
    let saturday = today.checked_add(jiff::Span::new().days(i64::from(ahead)))?;
    let start = saturday
        .at(10, 0, 0, 0)
        .to_zoned_datetime(paris)?
        .timestamp()
        .as_millisecond();
    let steps = path(&PARIS_WALK, 25.0, start, 20_000);
    let report = walk(&phone, &steps, 20, 120_000)?;
    println!(
        "  {} positions over {:.1} km, {} plans, at most {} regions registered (iOS allows 20)",
        steps.len(),
        steps.len() as f64 * 25.0 / 1000.0,
        report.plans,
        report.max_registered
    );
    for e in report.notified() {
        if let RegionAction::Notify { notification } = &e.action {
            let at = jiff::Timestamp::from_millisecond(e.at_ms)?
                .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Paris")?);
            println!(
                "  {} notified: {} — {}",
                at.strftime("%H:%M"),
                notification.title,
                notification.body
            );
        }
    }
    let suppressed: Vec<String> = report
        .suppressed()
        .iter()
        .map(|(reason, n)| format!("{n} × {}", words(reason)))
        .collect();
    println!("  not notified: {}", suppressed.join(", "));
    let visits = report.events.iter().filter(|e| e.visit_recorded).count();
    let sent = phone.sync()?.pushed;
    println!("  {visits} store visits recorded on the way, {sent} actions synced");
    anyhow::ensure!(
        report.max_registered <= 20 && report.notified().count() > 0,
        "the walk did not behave: {report:?}"
    );

    Ok((dir, phone))
}
