//! Enrolment, offline actions and sync.

use anyhow::Result;
use tessera_core::{DeviceInfo, EventKind, SyncError};
use tessera_server::storage::Storage;

use super::*;

pub(super) fn sync_steps(dir: &std::path::Path) -> Result<()> {
    step(
        7,
        "A loyalty server on loopback, with 321 stores in 40 French cities",
    );
    let mut server = LocalServer::start(&dir.join("server.db"))?;
    println!("  {} (OpenAPI at /openapi.json)", server.url());

    step(8, "Chloé installs the app and enrols: card, catalog, state");
    let phone = crate::open_phone(&dir.join("phone.db"))?;
    let device = DeviceInfo {
        platform: tessera_core::api::Platform::Cli,
        app_version: env!("CARGO_PKG_VERSION").into(),
    };
    let view = phone.enrol(&server.url(), "Chloé Martin", device)?;
    println!(
        "  card {} ({}) for {}",
        view.display_number, view.barcode.symbology, view.holder_name
    );
    let report = phone.sync()?;
    println!(
        "  first sync: {} catalog changes (pages: {}), {} bytes",
        report.catalog_changes, report.catalog_pages, report.bytes_received
    );
    let lyon = phone.stores(Some("Lyon"), 3)?;
    for s in &lyon {
        println!("  cached: {} — {}, {}", s.name, s.address, s.city);
    }

    step(9, "In the metro, no network: she keeps using the app");
    server.pause();
    let store = lyon
        .first()
        .map(|s| s.id.clone())
        .ok_or_else(|| anyhow::anyhow!("the seed catalog has no store in Lyon"))?;
    phone.record_event(EventKind::AppOpened, None, Default::default())?;
    phone.record_event(
        EventKind::StoreVisit,
        Some(store.clone()),
        Default::default(),
    )?;
    phone.set_favourite_store(&store, true)?;
    match phone.sync() {
        Err(e @ SyncError::Offline) => println!("  sync: {e} (typed error, nothing lost)"),
        other => anyhow::bail!("a sync with the server down answered {other:?}"),
    }
    let status = phone.sync_status()?;
    println!(
        "  {} actions wait on the phone; the catalog is still read from the cache ({} stores)",
        status.pending,
        phone.catalog_summary()?.stores
    );

    step(
        10,
        "Back online: one sync delivers everything, exactly once",
    );
    server.resume()?;
    let report = phone.sync()?;
    println!(
        "  sent {}, already there {}, refused {}; {} requests",
        report.pushed, report.replayed, report.rejected, report.requests
    );
    let again = phone.sync()?;
    println!(
        "  a second sync sends {} and costs {} request (nothing changed)",
        again.pushed, again.requests
    );

    step(11, "The server's view: nothing lost, nothing twice");
    let state = phone
        .member_state()?
        .ok_or_else(|| anyhow::anyhow!("no member state after sync"))?
        .state;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let events = rt.block_on(server.storage.event_ids(state.member_id.clone()))?;
    let twice = events.iter().filter(|(_, n)| *n > 1).count();
    println!(
        "  {} events held, {} applied twice; favourite stores {:?}; tier {}, {} points",
        events.len(),
        twice,
        state.favourite_store_ids,
        state.tier,
        state.points_balance
    );
    anyhow::ensure!(
        events.len() == 2 && twice == 0 && state.favourite_store_ids == [store],
        "the server does not hold exactly what the member did"
    );
    consent_steps(&mut server, &phone, &rt)?;
    phone.close();
    server.pause();
    Ok(())
}
