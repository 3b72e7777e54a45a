//! `tessera member`: the member shell over the same core the apps link.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use tessera_core::api::CouponState;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::preferences::QuietHours;
use tessera_core::privacy::ConsentChoice;
use tessera_core::{DeviceInfo, EventKind, Tessera};

#[derive(clap::Subcommand, Debug)]
pub enum MemberAction {
    /// Enrol a new member and this device at a server.
    Enrol {
        #[arg(long, env = "TESSERA_SERVER")]
        server: String,
        #[arg(long)]
        name: String,
    },
    /// Send pending actions, then bring the catalog and the member's state up to date.
    Sync,
    /// Print the member's card number (what a till scans), for scripts.
    CardNumber,
    /// Print the rotating member code the card screen shows now (made offline; a till checks
    /// it with `tessera till scan`), and when it changes.
    MemberCode {
        /// Also draw it as a PNG (QR code).
        #[arg(long)]
        png: Option<std::path::PathBuf>,
    },
    /// Fetch the card (or a coupon) for a wallet: `apple` writes the signed `.pkpass`, `google`
    /// prints the "Save to Google Wallet" link.
    WalletPass {
        #[arg(value_parser = ["apple", "google"])]
        wallet: String,
        /// A coupon of the wallet instead of the card.
        #[arg(long)]
        coupon: Option<String>,
        /// Where to write the `.pkpass` (apple).
        #[arg(long, default_value = "card.pkpass")]
        out: std::path::PathBuf,
    },
    /// Record an event (works offline): app_opened, store_visit, review_posted, …
    Event {
        kind: String,
        #[arg(long)]
        store: Option<String>,
        /// key=value, repeatable.
        #[arg(long = "attr")]
        attributes: Vec<String>,
    },
    /// Mark a store as a favourite (works offline); --off to unmark.
    Favourite {
        store: String,
        #[arg(long)]
        off: bool,
    },
    /// Sync status, pending actions, the cached member state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The member's latest actions on this device.
    Activity {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Stores from the cache.
    Stores {
        #[arg(long)]
        city: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Forget the member on this device (refused while actions are pending, unless --discard).
    SignOut {
        #[arg(long)]
        discard: bool,
    },
    /// Consent: `show`, `history`, or decide: `grant|deny|withdraw PURPOSE CHANNEL…`, `withdraw-all`.
    Consent {
        #[command(subcommand)]
        action: ConsentAction,
    },
    /// The preference centre: show it, or change fields.
    Preferences {
        /// Offer categories of interest, comma-separated ("" for all).
        #[arg(long)]
        interests: Option<String>,
        /// Preferred channels, comma-separated ("" for any).
        #[arg(long)]
        channels: Option<String>,
        /// Quiet hours `HH:MM-HH:MM`, or `off`.
        #[arg(long)]
        quiet: Option<String>,
        /// IANA time zone.
        #[arg(long)]
        timezone: Option<String>,
        /// BCP 47 language tag.
        #[arg(long)]
        language: Option<String>,
    },
    /// Offers valid now, as the offers screen lists them.
    Offers {
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Clip an offer (works offline): its coupon arrives in the wallet at the next sync.
    Clip { offer: String },
    /// The wallet: coupons, their state and their codes (as last synced).
    Wallet {
        /// Everything, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Points, the next expiry, the tier and the latest ledger lines (as last synced).
    Points,
    /// Rewards bought with points.
    Rewards,
    /// Spend points on a reward (works offline; refused at sync if the balance is short).
    BuyReward { offer: String },
    /// Challenges with progress, deadline and reward, and the badges earned (offline:
    /// unsent events count at once).
    Challenges,
    /// Join an opt-in challenge (works offline).
    Join { challenge: String },
    /// Everything held about the member, as JSON (`--device-only` works offline).
    Export {
        #[arg(long)]
        device_only: bool,
    },
    /// Erase the member on the server and wipe this device.
    Erase {
        /// Required: erasure cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ConsentAction {
    /// The current decision per purpose and channel.
    Show,
    /// Every decision, oldest first, with where it came from.
    History,
    Grant {
        purpose: String,
        channels: Vec<String>,
    },
    Deny {
        purpose: String,
        channels: Vec<String>,
    },
    Withdraw {
        purpose: String,
        channels: Vec<String>,
    },
    /// Withdraw everything granted, in one call.
    WithdrawAll,
}

/// The wording the member shell shows before a decision (its hash goes in the ledger).
fn cli_text() -> ConsentText {
    ConsentText {
        version: "cli-2026-11".into(),
        text: "Tessera may contact you and use your data for the purposes you choose. You can \
               change your mind at any time with `tessera member consent`."
            .into(),
    }
}

fn decide(t: &Tessera, purpose: &str, channels: &[String], decision: Decision) -> Result<()> {
    let purpose = Purpose::parse(purpose)
        .ok_or_else(|| anyhow::anyhow!("unknown purpose {purpose:?}: marketing_offers, geolocated_offers, personalisation or analytics"))?;
    if channels.is_empty() {
        bail!("name at least one channel: push, email, sms, in_app, location");
    }
    let choices = channels
        .iter()
        .map(|c| {
            Channel::parse(c)
                .map(|channel| ConsentChoice {
                    purpose,
                    channel,
                    decision,
                })
                .ok_or_else(|| {
                    anyhow::anyhow!("unknown channel {c:?}: push, email, sms, in_app, location")
                })
        })
        .collect::<Result<Vec<_>>>()?;
    for r in t.record_consent(&choices, &cli_text())? {
        println!(
            "{} {} on {} (sent at the next sync)",
            r.decision.as_str(),
            r.purpose.as_str(),
            r.channel.as_str()
        );
    }
    Ok(())
}

fn list<T>(s: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| parse(x).ok_or_else(|| anyhow::anyhow!("unknown value {x:?}")))
        .collect()
}

pub fn run(t: &Tessera, action: MemberAction) -> Result<()> {
    match action {
        MemberAction::Enrol { server, name } => {
            let view = t.enrol(
                &server,
                &name,
                DeviceInfo {
                    platform: tessera_core::api::Platform::Cli,
                    app_version: env!("CARGO_PKG_VERSION").into(),
                },
            )?;
            crate::print_card(&view);
        }
        MemberAction::Sync => {
            let r = t.sync()?;
            println!(
                "sent {} (already there: {}, refused: {}), catalog changes {} in {} pages, {} requests ({} retries), {} bytes",
                r.pushed,
                r.replayed,
                r.rejected,
                r.catalog_changes,
                r.catalog_pages,
                r.requests,
                r.retries,
                r.bytes_received
            );
        }
        MemberAction::Event {
            kind,
            store,
            attributes,
        } => {
            let kind: EventKind = serde_json::from_value(serde_json::Value::String(kind.clone()))
                .map_err(|_| anyhow::anyhow!("unknown event kind {kind}"))?;
            let mut attrs = BTreeMap::new();
            for a in attributes {
                let Some((k, v)) = a.split_once('=') else {
                    bail!("--attr takes key=value");
                };
                attrs.insert(k.to_owned(), v.to_owned());
            }
            let id = t.record_event(kind, store, attrs)?;
            println!("recorded {id} (sent at the next sync)");
        }
        MemberAction::Favourite { store, off } => {
            t.set_favourite_store(&store, !off)?;
            println!("{} {store}", if off { "unmarked" } else { "marked" });
        }
        MemberAction::Status { json } => {
            let status = t.sync_status()?;
            let state = t.member_state()?;
            let catalog = t.catalog_summary()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "sync": status, "member": state, "catalog": catalog
                    }))?
                );
            } else {
                println!(
                    "enrolled: {} · pending {} · refused {} · last error {}",
                    status.enrolled,
                    status.pending,
                    status.rejected,
                    status.last_error.as_deref().unwrap_or("none")
                );
                println!(
                    "catalog: {} stores, {} offers",
                    catalog.stores, catalog.offers
                );
                if let Some(m) = state {
                    println!(
                        "member {} · tier {} · {} points · {} events on the server",
                        m.state.member_id,
                        m.state.tier,
                        m.state.points_balance,
                        m.state.events_recorded
                    );
                }
            }
        }
        MemberAction::Activity { limit } => {
            for a in t.activity(limit)? {
                println!(
                    "{} {:<22} {} {}",
                    a.occurred_at,
                    a.kind.as_str(),
                    a.store_id.as_deref().unwrap_or("-"),
                    if a.synced_at.is_some() {
                        "synced"
                    } else {
                        "pending"
                    }
                );
            }
        }
        MemberAction::Stores { city, limit } => {
            for s in t.stores(city.as_deref(), limit)? {
                println!(
                    "{:<28} {:<36} {:.5},{:.5} {}",
                    s.id, s.name, s.latitude, s.longitude, s.city
                );
            }
        }
        MemberAction::SignOut { discard } => {
            t.sign_out(discard)?;
            println!("signed out");
        }
        MemberAction::Consent { action } => match action {
            ConsentAction::Show => {
                for s in t.consent_state()? {
                    let decision = s.decision.map_or("never asked", |d| d.as_str());
                    println!(
                        "{:<18} {:<9} {:<12} {}",
                        s.purpose.as_str(),
                        s.channel.as_str(),
                        decision,
                        s.since.as_deref().unwrap_or("")
                    );
                }
            }
            ConsentAction::History => {
                for r in t.consent_history()? {
                    println!(
                        "{} {:<18} {:<9} {:<10} {:<11} {} {}",
                        r.effective_at,
                        r.purpose.as_str(),
                        r.channel.as_str(),
                        r.decision.as_str(),
                        r.source.as_str(),
                        r.recorded_by.as_deref().unwrap_or("member"),
                        if r.recorded_at.is_some() {
                            "recorded"
                        } else {
                            "pending"
                        }
                    );
                }
            }
            ConsentAction::Grant { purpose, channels } => {
                decide(t, &purpose, &channels, Decision::Granted)?
            }
            ConsentAction::Deny { purpose, channels } => {
                decide(t, &purpose, &channels, Decision::Denied)?
            }
            ConsentAction::Withdraw { purpose, channels } => {
                decide(t, &purpose, &channels, Decision::Withdrawn)?
            }
            ConsentAction::WithdrawAll => {
                let n = t.withdraw_all_consents(&cli_text())?.len();
                println!("withdrew {n} consents (effective now, sent at the next sync)");
            }
        },
        MemberAction::Preferences {
            interests,
            channels,
            quiet,
            timezone,
            language,
        } => {
            let mut p = t.preferences()?;
            if let Some(i) = interests {
                p.interests = list(&i, |x| Some(x.to_owned()))?;
            }
            if let Some(c) = channels {
                p.channels = list(&c, Channel::parse)?;
            }
            if let Some(q) = quiet {
                p.quiet_hours = match q.as_str() {
                    "off" => None,
                    window => {
                        let (start, end) = window
                            .split_once('-')
                            .ok_or_else(|| anyhow::anyhow!("quiet hours are HH:MM-HH:MM or off"))?;
                        Some(QuietHours {
                            start: start.into(),
                            end: end.into(),
                        })
                    }
                };
            }
            if let Some(tz) = timezone {
                p.timezone = tz;
            }
            if let Some(l) = language {
                p.language = l;
            }
            let p = t.set_preferences(&p)?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
        MemberAction::Offers { limit } => {
            let list = t.offers(limit)?;
            println!(
                "{} offers ({})",
                list.offers.len(),
                if list.personalised {
                    "personalised"
                } else {
                    "same order for everyone: no personalisation consent"
                }
            );
            for o in list.offers {
                println!("{:<10} {:<48} {}", o.id, o.title, o.categories.join(","));
            }
        }
        MemberAction::Clip { offer } => {
            t.clip_offer(&offer)?;
            println!("clipped {offer}: the coupon arrives at the next sync");
        }
        MemberAction::Wallet { json: true } => {
            println!("{}", serde_json::to_string_pretty(&t.wallet()?)?);
        }
        MemberAction::Wallet { json: false } => {
            for c in t.wallet()? {
                let state = match c.state {
                    CouponState::Available => format!("available until {}", c.expires_at),
                    CouponState::Redeemed {
                        store_id,
                        redeemed_at,
                    } => format!("redeemed at {store_id} on {redeemed_at}"),
                    CouponState::Expired => "expired".into(),
                    CouponState::Revoked => "revoked".into(),
                };
                println!("{} {:<8} {state}\n  {}", c.coupon_id, c.offer_id, c.code);
            }
        }
        MemberAction::Points => {
            let p = t.points()?;
            println!("{} points", p.balance);
            if let Some(e) = p.next_expiry {
                println!("{} expire on {}", e.points, e.expires_at);
            }
            if let Some(tier) = t.tier_progress()? {
                match &tier.next_tier {
                    Some(next) => println!(
                        "{} tier: {} qualifying points, {} more for {next}",
                        tier.tier, tier.qualifying_points, tier.points_to_next
                    ),
                    None => println!("{} tier (the top)", tier.tier),
                }
                if tier.points_to_keep > 0 {
                    println!(
                        "  {} more points by {} to keep it",
                        tier.points_to_keep, tier.review_at
                    );
                }
            }
            for e in p.ledger {
                println!("  {} {:>+6} {:?} {}", e.at, e.points, e.kind, e.reason);
            }
        }
        MemberAction::Rewards => {
            for r in t.rewards()? {
                let mark = if r.affordable { "✓" } else { " " };
                println!(
                    "{mark} {:<10} {:>6} points  {}",
                    r.offer_id, r.points_cost, r.title
                );
            }
        }
        MemberAction::BuyReward { offer } => {
            t.buy_reward(&offer)?;
            println!("queued: {offer} is bought at the next sync");
        }
        MemberAction::CardNumber => println!("{}", t.card()?.card_number),
        MemberAction::MemberCode { png } => {
            let view = t.member_code()?;
            println!("{}", view.code);
            eprintln!(
                "changes at {} (in {} ms)",
                view.changes_at, view.changes_in_ms
            );
            if let Some(path) = png {
                std::fs::write(&path, view.matrix.png(4)?)?;
            }
        }
        MemberAction::WalletPass {
            wallet,
            coupon,
            out,
        } => {
            use tessera_core::sync::WalletKind;
            let kind = if wallet == "apple" {
                WalletKind::Apple
            } else {
                WalletKind::Google
            };
            let bytes = t.wallet_pass(kind, coupon.as_deref(), None)?;
            match kind {
                WalletKind::Apple => {
                    std::fs::write(&out, &bytes)?;
                    println!("{} ({} bytes)", out.display(), bytes.len());
                }
                WalletKind::Google => println!("{}", String::from_utf8_lossy(&bytes)),
            }
        }
        MemberAction::Challenges => {
            let view = t.challenges()?;
            if view.challenges.is_empty() && view.badges.is_empty() {
                println!(
                    "no challenges in this programme yet (an operator publishes them with \
                     PUT /admin/v1/challenges)"
                );
            }
            for c in &view.challenges {
                let state = match (c.joined, c.completed) {
                    (false, _) => "join to take part".to_owned(),
                    (true, true) => "completed".to_owned(),
                    (true, false) => format!("{} left", c.left),
                };
                println!(
                    "{:<16} {:>4}/{:<4} {:<18} until {:<24} {}",
                    c.challenge_id,
                    c.done,
                    c.target,
                    state,
                    c.deadline.as_deref().unwrap_or("(rolling)"),
                    c.title
                );
            }
            for b in &view.badges {
                println!("badge {} — {} ({})", b.badge, b.title, b.earned_at);
            }
            if view.estimated {
                println!("(estimate: unsent events count; the server confirms at the next sync)");
            }
        }
        MemberAction::Join { challenge } => {
            t.join_challenge(&challenge)?;
            println!("joined {challenge} (sent at the next sync)");
        }
        MemberAction::Export { device_only } => {
            let json = if device_only {
                t.export_device_data()?
            } else {
                t.export_my_data()?
            };
            println!("{json}");
        }
        MemberAction::Erase { yes } => {
            if !yes {
                bail!("erasure deletes the member everywhere and cannot be undone: add --yes");
            }
            let receipt = t.erase_member()?;
            println!(
                "erased at {}; {} consent records kept detached as proof; this device is wiped",
                receipt.erased_at, receipt.consent_records_anonymised
            );
        }
    }
    Ok(())
}
