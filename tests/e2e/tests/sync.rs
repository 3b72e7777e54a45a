//! The core against the real server on loopback: enrol, act offline, sync, exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_core::{EventKind, SyncError, SyncObserver, SyncPhase, SyncProgress, Tessera};
use tessera_e2e::{ADMIN_TOKEN, Server, device, small_catalog};
use tessera_server::ServerConfig;

fn enrolled(server: &Server) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("member.db"));
    t.enrol(&server.url(), "Ada Lovelace", device()).unwrap();
    (dir, t)
}

fn event(t: &Tessera, kind: EventKind) -> String {
    t.record_event(kind, None, BTreeMap::new()).unwrap()
}

#[test]
fn enrol_then_act_offline_then_sync_delivers_everything_once() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(20, 10)));
    let (_dir, t) = enrolled(&server);
    let card = t.card().unwrap();
    assert_eq!(card.program_name, "Tessera Thés");
    assert_eq!(card.card_number.len(), 13, "EAN-13 card from the server");

    let status = t.sync_status().unwrap();
    assert!(status.enrolled);
    let member = status.member_id.clone().unwrap();

    // Offline: nothing has been sent yet, everything is queued.
    let ids: Vec<String> = (0..25).map(|_| event(&t, EventKind::AppOpened)).collect();
    t.set_favourite_store("st-paris-01", true).unwrap();
    assert_eq!(t.sync_status().unwrap().pending, 26);
    assert!(server.event_counts(&member).is_empty());
    assert_eq!(
        t.favourite_stores().unwrap(),
        vec!["st-paris-01".to_owned()]
    );

    let report = t.sync().unwrap();
    assert_eq!(report.pushed, 26);
    assert_eq!(report.replayed, 0);
    assert_eq!(report.rejected, 0);
    assert_eq!(
        report.catalog_changes, 31,
        "programme + 20 stores + 10 offers"
    );
    assert!(report.clock_offset_ms.unwrap().abs() < 1000);

    let status = t.sync_status().unwrap();
    assert_eq!(status.pending, 0);
    assert!(status.last_success_at.is_some());
    let counts = server.event_counts(&member);
    assert_eq!(counts.len(), 25);
    assert!(counts.iter().all(|(_, n)| *n == 1));
    let mut want = ids.clone();
    want.sort();
    assert_eq!(
        counts.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        want
    );

    let state = t.member_state().unwrap().unwrap();
    assert_eq!(state.state.events_recorded, 25);
    assert_eq!(
        state.state.favourite_store_ids,
        vec!["st-paris-01".to_owned()]
    );
    assert!(
        t.activity(100)
            .unwrap()
            .iter()
            .all(|a| a.synced_at.is_some())
    );
    let summary = t.catalog_summary().unwrap();
    assert_eq!((summary.stores, summary.offers), (20, 10));
    assert!(summary.as_of.is_some());
}

#[test]
fn a_sync_with_nothing_new_is_one_round_trip() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(50, 20)));
    let (_dir, t) = enrolled(&server);
    t.sync().unwrap();
    let before = t.member_state().unwrap().unwrap().as_of;
    std::thread::sleep(Duration::from_millis(5));
    let report = t.sync().unwrap();
    assert_eq!(report.requests, 1, "{report:?}");
    assert_eq!(report.catalog_changes, 0);
    assert_eq!(report.bytes_received, 0, "304: no body");
    // The cached state is confirmed current.
    assert!(t.member_state().unwrap().unwrap().as_of > before);

    // A change to the member's state makes the next sync read it again.
    event(&t, EventKind::ReviewPosted);
    let report = t.sync().unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(report.requests, 3, "mutation + catalog 304 + member state");
    assert_eq!(t.member_state().unwrap().unwrap().state.events_recorded, 1);
}

#[test]
fn catalog_updates_and_deletions_reach_the_cache_in_pages() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(120, 30)));
    let (_dir, t) = enrolled(&server);
    t.set_sync_config(tessera_core::SyncConfig {
        page_size: 25,
        ..Default::default()
    })
    .unwrap();
    let report = t.sync().unwrap();
    assert_eq!(report.catalog_changes, 151);
    assert_eq!(report.catalog_pages, 7);

    let http = reqwest::blocking::Client::new();
    let mut store = t.stores(Some("Paris"), 1).unwrap().remove(0);
    store.name = "Renamed flagship".into();
    let r = http
        .put(format!("{}/admin/v1/stores/{}", server.url(), store.id))
        .bearer_auth(ADMIN_TOKEN)
        .json(&store)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let gone = t.stores(Some("Marseille"), 1).unwrap().remove(0);
    let r = http
        .delete(format!("{}/admin/v1/stores/{}", server.url(), gone.id))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);

    let report = t.sync().unwrap();
    assert_eq!(report.catalog_changes, 2);
    let stores = t.stores(None, 1000).unwrap();
    assert_eq!(stores.len(), 119);
    assert!(stores.iter().any(|s| s.name == "Renamed flagship"));
    assert!(!stores.iter().any(|s| s.id == gone.id));
}

#[test]
fn refused_actions_are_kept_aside_and_do_not_block_the_rest() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(5, 0)));
    let (_dir, t) = enrolled(&server);
    t.set_favourite_store("st-nowhere-99", true).unwrap();
    let ok = event(&t, EventKind::AppOpened);
    let report = t.sync().unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 1));
    let rejected = t.rejected_actions().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].code, "unknown_store");
    assert_eq!(rejected[0].status, 422);
    let member = t.sync_status().unwrap().member_id.unwrap();
    assert_eq!(server.event_counts(&member), vec![(ok, 1)]);
}

#[test]
fn expired_access_tokens_are_refreshed_and_spent_refresh_tokens_sign_out() {
    let server = Server::start_with(
        ServerConfig {
            access_ttl: Duration::from_millis(300),
            ..ServerConfig::default()
        },
        Some(small_catalog(3, 1)),
    );
    let (_dir, t) = enrolled(&server);
    event(&t, EventKind::AppOpened);
    let db = rusqlite_path(&t);
    let first_refresh: String = db
        .query_row("SELECT refresh_token FROM session", [], |r| r.get(0))
        .unwrap();
    // The server's token expires; the phone's clock thinks it has not (no early refresh): the
    // server says token_expired, the engine refreshes and sends again.
    std::thread::sleep(Duration::from_millis(400));
    db.execute("UPDATE session SET access_expires_at = 9999999999999", [])
        .unwrap();
    let report = t.sync().unwrap();
    assert_eq!(report.pushed, 1);
    let refresh: String = db
        .query_row("SELECT refresh_token FROM session", [], |r| r.get(0))
        .unwrap();
    assert_ne!(refresh, first_refresh, "tokens were refreshed and stored");
    // Spend the refresh token elsewhere: the device is signed out, its queue kept.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/token", server.url()))
        .json(&serde_json::json!({ "refresh_token": refresh }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    event(&t, EventKind::AppOpened);
    assert_eq!(t.sync().unwrap_err(), SyncError::SignedOut);
    assert_eq!(t.sync_status().unwrap().pending, 1);
    assert_eq!(
        t.sign_out(false).unwrap_err(),
        SyncError::PendingActions { count: 1 }
    );
    t.sign_out(true).unwrap();
    assert!(!t.sync_status().unwrap().enrolled);
    assert!(matches!(t.card(), Err(tessera_core::Error::NotEnrolled)));
}

fn rusqlite_path(t: &Tessera) -> rusqlite_lite::Connection {
    rusqlite_lite::Connection::open(t.path()).unwrap()
}

// The core's rusqlite, under another name to make clear the test reads the file directly.
use tessera_e2e::rusqlite as rusqlite_lite;

#[test]
fn enrolling_twice_and_calls_before_enrolment_are_typed_errors() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(3, 1)));
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    assert_eq!(t.sync().unwrap_err(), SyncError::NotEnrolled);
    assert!(matches!(
        t.record_event(EventKind::AppOpened, None, BTreeMap::new()),
        Err(tessera_core::Error::NotEnrolled)
    ));
    assert!(matches!(
        t.enrol("ftp://x", "A", device()),
        Err(SyncError::InvalidInput {
            field: "server_url",
            ..
        })
    ));
    assert!(matches!(
        t.enrol(&server.url(), "  ", device()),
        Err(SyncError::InvalidInput {
            field: "holder_name",
            ..
        })
    ));
    t.enrol(&server.url(), "Ada", device()).unwrap();
    assert_eq!(
        t.enrol(&server.url(), "Ada", device()).unwrap_err(),
        SyncError::AlreadyEnrolled
    );
}

#[test]
fn no_server_means_offline_and_reads_still_work() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(10, 2)));
    let (_dir, t) = enrolled(&server);
    t.sync().unwrap();
    t.set_sync_config(tessera_core::SyncConfig {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        ..Default::default()
    })
    .unwrap();
    drop(server);
    let id = event(&t, EventKind::StoreVisit);
    assert_eq!(t.sync().unwrap_err(), SyncError::Offline);
    let status = t.sync_status().unwrap();
    assert_eq!(status.pending, 1);
    assert!(status.last_error.is_some());
    assert_eq!(t.activity(1).unwrap()[0].event_id, id);
    assert_eq!(t.catalog_summary().unwrap().stores, 10);
    assert!(t.member_state().unwrap().is_some());
    assert!(t.card().is_ok());
}

#[test]
fn the_listener_sees_every_phase() {
    #[derive(Default)]
    struct Rec(Mutex<Vec<SyncProgress>>);
    impl SyncObserver for Rec {
        fn on_progress(&self, p: SyncProgress) {
            self.0.lock().unwrap().push(p);
        }
    }
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(10, 2)));
    let (_dir, t) = enrolled(&server);
    let rec = Arc::new(Rec::default());
    t.set_sync_observer(Some(rec.clone()));
    event(&t, EventKind::AppOpened);
    event(&t, EventKind::AppOpened);
    t.sync().unwrap();
    let seen = rec.0.lock().unwrap().clone();
    let phases: Vec<SyncPhase> = seen.iter().map(|p| p.phase).collect();
    assert_eq!(phases.first(), Some(&SyncPhase::Started));
    assert_eq!(phases.last(), Some(&SyncPhase::Finished));
    assert!(seen.contains(&SyncProgress {
        phase: SyncPhase::Pushing,
        done: 2,
        total: 2
    }));
    assert!(phases.contains(&SyncPhase::Pulling));
    assert!(phases.contains(&SyncPhase::Member));
}

#[test]
fn a_server_restored_from_an_older_backup_is_resynced_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let storage = tessera_server::storage::sqlite::SqliteStorage::open(&db).unwrap();
    let server = Server::start_on(
        "127.0.0.1:0".parse().unwrap(),
        storage,
        ServerConfig::default(),
        Some(small_catalog(10, 2)),
    );
    let (_m, t) = enrolled(&server);
    t.sync().unwrap();
    // Move the phone's cursor past anything the server has issued (as after a restore).
    let conn = rusqlite_path(&t);
    conn.execute("UPDATE sync_state SET catalog_cursor = 'c1.999999'", [])
        .unwrap();
    conn.execute(
        "DELETE FROM store WHERE id IN (SELECT id FROM store LIMIT 3)",
        [],
    )
    .unwrap();
    let report = t.sync().unwrap();
    assert_eq!(report.catalog_changes, 13);
    assert_eq!(t.catalog_summary().unwrap().stores, 10);
}

/// Cancels the sync when it reaches `phase` with `done` at least `at`.
struct CancelAt {
    cancel: tessera_core::sync::Cancel,
    phase: SyncPhase,
    at: u64,
}

impl SyncObserver for CancelAt {
    fn on_progress(&self, p: SyncProgress) {
        if p.phase == self.phase && p.done >= self.at {
            self.cancel.cancel();
        }
    }
}

#[test]
fn a_cancelled_sync_stops_at_its_next_request_and_loses_nothing() {
    let catalog = small_catalog(1000, 1000);
    let stores = catalog.stores.len() as u64;
    let server = Server::start_with(ServerConfig::default(), Some(catalog));
    let (_dir, t) = enrolled(&server);
    t.set_sync_config(tessera_core::SyncConfig {
        page_size: 50,
        ..tessera_core::SyncConfig::default()
    })
    .unwrap();
    for _ in 0..30 {
        event(&t, EventKind::AppOpened);
    }
    // Cancelled while pushing: the ten sent are acknowledged, twenty wait.
    let cancel = tessera_core::sync::Cancel::new();
    t.set_sync_observer(Some(Arc::new(CancelAt {
        cancel: cancel.clone(),
        phase: SyncPhase::Pushing,
        at: 10,
    })));
    assert_eq!(t.sync_cancellable(&cancel), Err(SyncError::Cancelled));
    assert_eq!(t.sync_status().unwrap().pending, 20);
    assert_eq!(t.catalog_summary().unwrap().stores, 0);

    // Cancelled while pulling the catalog: the pages written are whole, with their cursor.
    let cancel = tessera_core::sync::Cancel::new();
    t.set_sync_observer(Some(Arc::new(CancelAt {
        cancel: cancel.clone(),
        phase: SyncPhase::Pulling,
        at: 200,
    })));
    assert_eq!(t.sync_cancellable(&cancel), Err(SyncError::Cancelled));
    assert_eq!(t.sync_status().unwrap().pending, 0);
    let partial = t.catalog_summary().unwrap();
    assert!(partial.stores > 0 && partial.stores < stores, "{partial:?}");

    // The next sync does the rest, nothing twice.
    t.set_sync_observer(None);
    let report = t.sync().unwrap();
    assert_eq!(report.pushed, 0);
    assert_eq!(t.catalog_summary().unwrap().stores, stores);
    assert_eq!(t.member_state().unwrap().unwrap().state.events_recorded, 30);
}
