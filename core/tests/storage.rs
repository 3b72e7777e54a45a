//! The database file against everything a phone does to it: damage, truncation, a read-only
//! file, a newer app's schema, a killed process, many threads. Real SQLite files on disk.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tessera_core::{Error, MemberCard, Program, StorageError, Symbology, Tessera};

fn program() -> Program {
    Program {
        id: "maison-dupont".into(),
        name: "Maison Dupont".into(),
        brand_color: "#0A7D5A".into(),
        symbology: Symbology::Code128,
    }
}

fn card(n: u32) -> MemberCard {
    MemberCard {
        card_number: format!("MD-{n:08}"),
        holder_name: "Ada Lovelace".into(),
        member_since: "2021-03-04".into(),
        tier_label: Some("Gold".into()),
    }
}

fn enrolled(path: &Path) -> Tessera {
    let t = Tessera::open(path).unwrap();
    t.set_program(&program()).unwrap();
    t.set_card(&card(1)).unwrap();
    t
}

fn storage_error<T: std::fmt::Debug, E: Into<Error>>(r: Result<T, E>) -> StorageError {
    match r.map_err(Into::into) {
        Err(Error::Storage(s)) => s,
        other => panic!("expected a storage error, got {other:?}"),
    }
}

#[test]
fn card_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    enrolled(&path).close();
    let view = Tessera::open(&path).unwrap().card().unwrap();
    assert_eq!(view.card_number, "MD-00000001");
    assert_eq!(view.barcode.encoded_value, "MD-00000001");
    assert_eq!(view.tier_label.as_deref(), Some("Gold"));
}

#[test]
fn changing_the_symbology_re_encodes_the_stored_card() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tessera::open(dir.path().join("t.db")).unwrap();
    let ean = Program {
        symbology: Symbology::Ean13,
        ..program()
    };
    t.set_program(&ean).unwrap();
    let typed = MemberCard {
        card_number: "400638133393".into(),
        ..card(0)
    };
    assert_eq!(
        t.set_card(&typed).unwrap().barcode.encoded_value,
        "4006381333931"
    );
    // The tills switch to Code 128: the code carries what was typed, no EAN check digit.
    t.set_program(&program()).unwrap();
    let view = t.card().unwrap();
    assert_eq!(view.barcode.symbology, Symbology::Code128);
    assert_eq!(view.barcode.encoded_value, "400638133393");
    // A card that EAN-8 cannot carry blocks the switch, and nothing changes.
    let ean8 = Program {
        symbology: Symbology::Ean8,
        ..program()
    };
    assert!(matches!(
        t.set_program(&ean8),
        Err(Error::CardIncompatible {
            symbology: Symbology::Ean8,
            ..
        })
    ));
    assert_eq!(t.program().unwrap().unwrap().symbology, Symbology::Code128);
}

#[test]
fn not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    fs::write(&path, vec![0xA5u8; 8192]).unwrap();
    assert_eq!(
        storage_error(Tessera::open(&path)),
        StorageError::NotADatabase
    );
}

#[test]
fn a_directory_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        storage_error(Tessera::open(dir.path())),
        StorageError::CannotOpen { .. }
    ));
}

/// Overwrite every page but the first (the header) with noise: SQLite must say "corrupt" when
/// the card is read, never return garbage or panic.
#[test]
fn damaged_pages_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    enrolled(&path).close();
    let len = fs::metadata(&path).unwrap().len();
    assert!(len >= 4096 * 2, "schema and data span several pages");
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&vec![0x5Au8; (len - 4096) as usize]).unwrap();
    drop(f);

    let outcome = Tessera::open(&path)
        .map_err(Error::from)
        .and_then(|t| t.card());
    assert_eq!(storage_error(outcome), StorageError::Corrupt);

    // Recovery: the file is moved aside, a fresh one is created, the member enrols again.
    let (t, moved) = Tessera::recover(&path).unwrap();
    assert!(moved.exists());
    assert!(matches!(t.card(), Err(Error::NotEnrolled)));
    t.set_program(&program()).unwrap();
    assert_eq!(t.set_card(&card(2)).unwrap().card_number, "MD-00000002");
}

#[test]
fn a_truncated_file_is_reported_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    enrolled(&path).close();
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let outcome = Tessera::open(&path)
        .map_err(Error::from)
        .and_then(|t| t.card());
    assert!(
        matches!(
            storage_error(outcome),
            StorageError::Corrupt | StorageError::NotADatabase
        ),
        "a half file is damage"
    );
}

#[test]
fn integrity_check_passes_on_a_sound_file_and_close_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let t = enrolled(&path);
    t.check_integrity().unwrap();
    t.close();
    assert!(matches!(
        t.card(),
        Err(Error::Storage(StorageError::Closed))
    ));
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Another app's SQLite file: a database, but not Tessera's.
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);
    let before = fs::read(&path).unwrap();
    assert_eq!(
        storage_error(Tessera::open(&path)),
        StorageError::NotADatabase
    );
    assert_eq!(fs::read(&path).unwrap(), before, "not a byte of it changed");
    // One that names another application.
    let path = dir.path().join("app.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA application_id = 1234;").unwrap();
    drop(conn);
    assert_eq!(
        storage_error(Tessera::open(&path)),
        StorageError::NotADatabase
    );
    // Recovery moves it aside like any damaged file, and starts afresh.
    let (t, moved) = Tessera::recover(&path).unwrap();
    assert!(moved.exists());
    t.set_program(&program()).unwrap();
}

#[test]
fn an_empty_file_is_a_new_database_and_an_old_tessera_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    fs::write(&path, b"").unwrap();
    let t = Tessera::open(&path).unwrap();
    t.set_program(&program()).unwrap();
    t.close();
    // A Tessera database made before files carried an application id is recognised.
    let path = dir.path().join("old.db");
    enrolled(&path).close();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA application_id = 0;").unwrap();
    drop(conn);
    let t = Tessera::open(&path).unwrap();
    assert_eq!(t.card().unwrap().card_number, "MD-00000001");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    enrolled(&path).close();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    assert_eq!(
        storage_error(Tessera::open(&path)),
        StorageError::SchemaTooNew {
            found: 99,
            supported: tessera_core::db::SCHEMA_VERSION
        }
    );
}

/// Root ignores file permissions, so when running as root the file is made immutable
/// (`chattr +i`), which binds root too.
#[test]
fn a_read_only_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    enrolled(&path).close();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let made_read_only = if is_root {
        Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    } else {
        let mut perms = fs::metadata(&path).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&path, perms).is_ok()
    };
    assert!(made_read_only, "the test could not make the file read-only");
    let outcome = Tessera::open(&path);
    if is_root {
        let _ = Command::new("chattr").arg("-i").arg(&path).status();
    }
    assert_eq!(storage_error(outcome), StorageError::ReadOnly);
}

#[test]
fn many_threads_share_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(enrolled(&dir.path().join("t.db")));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                for j in 0..50 {
                    if i == 0 {
                        t.set_card(&card(j)).unwrap();
                    } else {
                        assert!(t.card().unwrap().card_number.starts_with("MD-"));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(t.card().unwrap().card_number, "MD-00000049");
}

/// A write is either wholly there or wholly absent after the process dies mid-way: a child
/// writes cards in a loop and is killed; the survivor opens cleanly and reads a whole card.
#[test]
fn a_killed_writer_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    enrolled(&path).close();
    let exe = std::env::current_exe().unwrap();
    let mut seen = std::collections::HashSet::new();
    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--ignored", "--nocapture"])
            .env("TESSERA_CHILD_DB", &path)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + round * 37));
        child.kill().unwrap();
        child.wait().unwrap();
        let t = Tessera::open(&path).unwrap();
        let view = t.card().unwrap();
        assert!(view.card_number.starts_with("MD-"));
        assert_eq!(view.holder_name, "Ada Lovelace");
        t.check_integrity().unwrap();
        seen.insert(view.card_number);
        t.close();
    }
    assert!(
        seen.iter().any(|n| n != "MD-00000001"),
        "the child wrote before it was killed: {seen:?}"
    );
}

/// Not a test: the writer process that `a_killed_writer_leaves_a_consistent_database` kills.
#[test]
#[ignore = "helper process, run only by a_killed_writer_leaves_a_consistent_database"]
fn child_writer() {
    let path = std::env::var_os("TESSERA_CHILD_DB").expect("TESSERA_CHILD_DB names the database");
    let t = Tessera::open(path).unwrap();
    for i in 0.. {
        t.set_card(&card(i % 100_000_000)).unwrap();
    }
}

/// Issue #15: a long read (an index build, the offers screen) runs on a connection of its own,
/// and a quick read in flight does not make the next one queue: the card never waits for them.
#[test]
fn a_long_read_never_makes_the_card_wait() {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    drop(enrolled(&dir.path().join("t.db")));
    let db = Arc::new(tessera_core::Db::open(dir.path().join("t.db")).unwrap());
    let hold = Duration::from_millis(800);
    let (started, running) = mpsc::channel();
    let spawn = |background: bool| {
        let (db, started) = (db.clone(), started.clone());
        std::thread::spawn(move || {
            let work = |_: &rusqlite::Connection| -> Result<(), StorageError> {
                started.send(()).unwrap();
                std::thread::sleep(hold);
                Ok(())
            };
            if background {
                db.read_background(work)
            } else {
                db.read(work)
            }
        })
    };
    let (long, quick) = (spawn(true), spawn(false));
    for _ in 0..2 {
        running
            .recv_timeout(Duration::from_millis(400))
            .expect("a long read and a quick read at once: one waited for the other");
    }
    let t0 = Instant::now();
    let n: i64 = db
        .read(|c| -> Result<i64, StorageError> {
            Ok(c.query_row("SELECT count(*) FROM program", [], |r| r.get(0))?)
        })
        .unwrap();
    let waited = t0.elapsed();
    assert_eq!(n, 1);
    assert!(
        waited < Duration::from_millis(200),
        "a quick read waited {waited:?} behind a long read and a quick one"
    );
    long.join().unwrap().unwrap();
    quick.join().unwrap().unwrap();
}

#[test]
fn peeking_reads_the_card_of_a_current_database_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let t = enrolled(&path);
    let shown = t.card().unwrap();
    t.close();
    assert_eq!(tessera_core::card::peek(&path), Some(shown));

    // No file: nothing created.
    let missing = dir.path().join("missing.db");
    assert_eq!(tessera_core::card::peek(&missing), None);
    assert!(!missing.exists());
    // Another schema version (an older app's file, or a newer one's): the ordinary open decides.
    let conn = raw_connection(&path);
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert_eq!(tessera_core::card::peek(&path), None);
    // Not a database.
    let junk = dir.path().join("junk.db");
    fs::write(&junk, b"a shopping list").unwrap();
    assert_eq!(tessera_core::card::peek(&junk), None);
}

fn raw_connection(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}
