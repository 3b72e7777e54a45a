//! `tessera member`: the member shell over the same core the apps link.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
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
    }
    Ok(())
}
