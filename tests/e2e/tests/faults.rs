//! A proxy between the core and the server drops connections, delays them past the client's
//! timeout, cuts answers short and loses answers after the server applied the request. Every
//! action still lands exactly once.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tessera_core::{EventKind, SyncConfig};
use tessera_e2e::proxy::Proxy;
use tessera_e2e::{Server, device, small_catalog};
use tessera_server::ServerConfig;

#[test]
fn every_action_lands_exactly_once_through_a_faulty_network() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(300, 60)));
    let seed = std::env::var("TESSERA_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let proxy = Proxy::start(server.running.addr, seed, 0.5);
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&proxy.url(), "Grace Hopper", device()).unwrap();
    t.set_sync_config(SyncConfig {
        request_timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(400),
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        page_size: 40,
        ..SyncConfig::default()
    })
    .unwrap();
    let member = t.sync_status().unwrap().member_id.unwrap();
    proxy.set_faults(true);

    let mut ids = Vec::new();
    let mut failures = 0;
    let mut replayed = 0;
    for round in 0..40 {
        for i in 0..5 {
            let mut attrs = BTreeMap::new();
            attrs.insert("round".to_owned(), format!("{round}.{i}"));
            ids.push(t.record_event(EventKind::AppOpened, None, attrs).unwrap());
        }
        match t.sync() {
            Ok(r) => replayed += r.replayed,
            Err(e) => {
                assert!(
                    e.is_transient() || matches!(e, tessera_core::SyncError::Protocol { .. }),
                    "{e:?}"
                );
                failures += 1;
            }
        }
    }
    // Then keep syncing until everything is through.
    let mut tries = 0;
    loop {
        match t.sync() {
            Ok(r) => {
                replayed += r.replayed;
                if t.sync_status().unwrap().pending == 0 {
                    break;
                }
            }
            Err(_) => failures += 1,
        }
        tries += 1;
        assert!(tries < 500, "the outbox never drained");
    }
    proxy.set_faults(false);
    t.sync().unwrap();

    let s = &proxy.stats;
    let (dropped, delayed, cut, lost) = (
        s.dropped.load(Ordering::Relaxed),
        s.delayed.load(Ordering::Relaxed),
        s.cut.load(Ordering::Relaxed),
        s.lost.load(Ordering::Relaxed),
    );
    eprintln!(
        "connections {} dropped {dropped} delayed {delayed} cut {cut} lost {lost}; failed syncs {failures}; replayed {replayed}",
        s.connections.load(Ordering::Relaxed)
    );
    assert!(
        dropped > 0 && delayed > 0 && cut > 0 && lost > 0,
        "every fault happened"
    );
    assert!(failures > 0, "the faults reached the engine");

    let counts = server.event_counts(&member);
    assert_eq!(counts.len(), ids.len(), "0 lost");
    assert!(counts.iter().all(|(_, n)| *n == 1), "0 applied twice");
    ids.sort();
    assert_eq!(
        counts.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
        ids
    );
    assert_eq!(t.sync_status().unwrap().pending, 0);
    assert!(t.rejected_actions().unwrap().is_empty());
    // The catalog arrived whole despite cut pages.
    let summary = t.catalog_summary().unwrap();
    assert_eq!((summary.stores, summary.offers), (300, 60));
    t.check_integrity().unwrap();
}
