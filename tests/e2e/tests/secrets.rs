//! The session's tokens in the app's secret store (docs/adr/0017), against the real server:
//! moved out of the file with no copy left in it or its WAL, read from the store by every sync,
//! rotated into it, forgotten at sign-out; a missing or failing store is a typed error.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::SyncError;
use tessera_e2e::memory_store::Memory;
use tessera_e2e::{Server, device, small_catalog};
use tessera_server::ServerConfig;

fn tokens_in_file(path: &std::path::Path) -> (String, String, Option<String>) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT access_token, refresh_token, secrets FROM session",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// Every byte of the database file and its WAL.
fn raw(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{}-wal", path.display())) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn tokens_move_to_the_secret_store_and_leave_no_copy_in_the_file() {
    // Access tokens that expire at once: every sync refreshes (rotates) them.
    let config = ServerConfig {
        access_ttl: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let server = Server::start_with(config, Some(small_catalog(20, 5)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let t = tessera_e2e::phone(&path);
    t.enrol(&server.url(), "Ada", device()).unwrap();
    t.sync().unwrap();
    let (access, refresh, secrets) = tokens_in_file(&path);
    assert!(!access.is_empty() && !refresh.is_empty() && secrets.is_none());
    assert!(
        contains(&raw(&path), &refresh),
        "before: the token is in the file"
    );

    // A store that fails moves nothing.
    let store = Arc::new(Memory::default());
    *store.fail.lock().unwrap() = true;
    assert!(matches!(
        t.set_secret_store(store.clone()),
        Err(SyncError::SecretStoreFailed { .. })
    ));
    assert_eq!(tokens_in_file(&path).1, refresh);
    *store.fail.lock().unwrap() = false;

    let key_in_file: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT pkcs8 FROM device_key", [], |r| r.get(0))
        .unwrap();
    assert!(
        !key_in_file.is_empty(),
        "without a store the device's key is in the file"
    );
    t.set_secret_store(store.clone()).unwrap();
    let kept = store.snapshot();
    assert_eq!(kept.len(), 3, "the tokens and the device's key");
    assert!(kept.values().any(|v| *v == refresh));
    assert!(
        kept.values().any(|v| *v == key_in_file),
        "the key moved to the store"
    );
    let (a, r, ns) = tokens_in_file(&path);
    assert_eq!((a.as_str(), r.as_str()), ("", ""));
    let ns = ns.unwrap();
    assert!(kept.keys().all(|k| k.starts_with(&ns)));
    let bytes = raw(&path);
    assert!(!contains(&bytes, &refresh), "no copy of the refresh token");
    assert!(!contains(&bytes, &access), "no copy of the access token");
    assert!(
        !contains(&bytes, &key_in_file),
        "no copy of the device's key"
    );

    // Syncs read the tokens from the store and write the rotated ones there only.
    t.record_event(tessera_core::EventKind::AppOpened, None, Default::default())
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let report = t.sync().unwrap();
    assert_eq!(report.pushed, 1);
    let rotated = store.snapshot();
    assert_ne!(rotated, kept, "the refresh rotated the tokens in the store");
    assert_eq!(tokens_in_file(&path).1, "");
    for token in rotated.values() {
        assert!(!contains(&raw(&path), token));
    }

    // Another launch of the app: without the store, a typed error; with a store that lost the
    // tokens (a backup restored without its Keystore), signed out; with it, as before.
    drop(t);
    let again = tessera_e2e::phone(&path);
    assert!(matches!(again.sync(), Err(SyncError::NoSecretStore)));
    again.set_secret_store(Arc::new(Memory::default())).unwrap();
    assert!(matches!(again.sync(), Err(SyncError::SignedOut)));
    again.set_secret_store(store.clone()).unwrap();
    again.sync().unwrap();

    // Sign-out forgets them in the store too.
    again.sign_out(false).unwrap();
    assert!(store.snapshot().is_empty());
}

#[test]
fn with_a_store_from_the_start_no_token_ever_touches_the_file() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(5, 2)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let t = tessera_e2e::phone(&path);
    let store = Arc::new(Memory::default());
    t.set_secret_store(store.clone()).unwrap();
    t.enrol(&server.url(), "Grace", device()).unwrap();
    t.sync().unwrap();
    let kept = store.snapshot();
    assert_eq!(
        kept.len(),
        3,
        "two tokens and the device's key (the rotating member code)"
    );
    let bytes = raw(&path);
    for token in kept.values() {
        assert!(
            !contains(&bytes, token),
            "a token or the key reached the file"
        );
    }
    assert_eq!(tokens_in_file(&path).0, "");
}
