//! Consent, preferences and the notification policy.

use anyhow::Result;
use tessera_core::Tessera;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::preferences::{NotificationRequest, NotificationVerdict, Preferences};
use tessera_core::privacy::ConsentChoice;
use tessera_server::service::Services;
use tessera_server::storage::Storage;

use super::*;

/// `QuietHours` → "quiet hours".
pub(super) fn words(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

pub(super) fn verdict(v: &NotificationVerdict) -> String {
    match v {
        NotificationVerdict::Send => "shown".into(),
        NotificationVerdict::NoConsent { feature } => {
            format!("blocked: no consent ({})", words(&format!("{feature:?}")))
        }
        NotificationVerdict::NotOfInterest => "blocked: not among her interests".into(),
        other => format!("blocked: {other:?}"),
    }
}

pub(super) fn consent_steps(
    server: &mut LocalServer,
    phone: &Tessera,
    rt: &tokio::runtime::Runtime,
) -> Result<()> {
    let text = ConsentText {
        version: "consent-2026-11".into(),
        text: "Maison Dupont would like to send you offers by push and to choose them from \
               your visits and favourite stores. You can change your mind at any time."
            .into(),
    };
    let tea = NotificationRequest {
        purpose: Purpose::MarketingOffers,
        channel: Channel::Push,
        categories: vec!["tea".into()],
    };
    let coffee = NotificationRequest {
        categories: vec!["coffee".into()],
        ..tea.clone()
    };
    let audience = |server: &LocalServer| -> Result<usize> {
        Ok(rt
            .block_on(
                server
                    .storage
                    .audience(Purpose::MarketingOffers, Channel::Push),
            )?
            .len())
    };

    step(
        12,
        "Consent is opt-in: nothing reaches Chloé before she chooses",
    );
    println!(
        "  push about a tea offer: {}",
        verdict(&phone.claim_notification(&tea)?)
    );
    let offers = phone.offers(3)?;
    println!(
        "  offers screen: {} offers, personalised: {}",
        offers.offers.len(),
        offers.personalised
    );

    step(
        13,
        "She allows offers by push and personalisation, and says she likes tea and pastry",
    );
    let grant = |purpose, channel| ConsentChoice {
        purpose,
        channel,
        decision: Decision::Granted,
    };
    phone.record_consent(
        &[
            grant(Purpose::MarketingOffers, Channel::Push),
            grant(Purpose::Personalisation, Channel::InApp),
        ],
        &text,
    )?;
    phone.set_preferences(&Preferences {
        interests: vec!["tea".into(), "pastry".into()],
        quiet_hours: None,
        timezone: "Europe/Paris".into(),
        language: "fr-FR".into(),
        ..phone.preferences()?
    })?;
    println!(
        "  push about a tea offer: {}",
        verdict(&phone.claim_notification(&tea)?)
    );
    println!(
        "  push about a coffee offer: {}",
        verdict(&phone.claim_notification(&coffee)?)
    );
    let offers = phone.offers(3)?;
    println!("  offers screen, personalised: {}", offers.personalised);
    for o in &offers.offers {
        println!("    {} [{}]", o.title, o.categories.join(", "));
    }
    phone.sync()?;
    println!(
        "  synced: the server may target {} member(s) with push offers",
        audience(server)?
    );

    step(
        14,
        "No network, and she changes her mind: one call withdraws everything",
    );
    server.pause();
    let withdrawn = phone.withdraw_all_consents(&text)?;
    println!(
        "  {} consents withdrawn, effective now on the phone",
        withdrawn.len()
    );
    println!(
        "  push about a tea offer: {}",
        verdict(&phone.claim_notification(&tea)?)
    );
    println!(
        "  offers screen, personalised: {}",
        phone.offers(3)?.personalised
    );
    server.resume()?;
    phone.sync()?;
    let targeted = audience(server)?;
    println!(
        "  back online and synced: the server may target {targeted} member(s) with push offers"
    );
    anyhow::ensure!(
        targeted == 0,
        "the server still targets a member who withdrew"
    );

    step(15, "Her rights: everything held about her, then erasure");
    let export: serde_json::Value = serde_json::from_str(&phone.export_my_data()?)?;
    let count = |v: &serde_json::Value| v.as_array().map_or(0, |a| a.len());
    println!(
        "  export: {} events and {} consent records on the server, {} on the phone",
        count(&export["server"]["events"]),
        count(&export["server"]["member"]["consents"]),
        count(&export["device"]["consent_records"])
    );
    let member = phone
        .sync_status()?
        .member_id
        .ok_or_else(|| anyhow::anyhow!("no member"))?;
    let receipt = phone.erase_member()?;
    let left = rt.block_on(server.storage.export(member, 0))?;
    println!(
        "  erased: server holds her data: {}; {} consent records kept detached as proof; phone enrolled: {}",
        left.is_some(),
        receipt.consent_records_anonymised,
        phone.sync_status()?.enrolled
    );
    anyhow::ensure!(left.is_none(), "the server still holds the erased member");

    let (_lea_dir, lea) = walk_step(server)?;
    till_steps(server, &lea, rt)?;
    lea.close();
    Ok(())
}
