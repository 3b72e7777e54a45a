//! The local SQLite database: one writer connection (it runs the migrations), read-only readers
//! in two lanes, WAL, and one way to write: [`Db::write`], a transaction.
//!
//! Reads the member waits on (the card, the wallet, points, offers near) go through
//! [`Db::read`]: two connections, taken whichever is free, so one in use never makes the next
//! queue. Long reads (the offer index build, the offers screen, an export, challenge evaluation,
//! an integrity check) go through [`Db::read_background`], a connection of their own: they
//! never hold a connection the card needs (issue #15). In WAL mode no reader waits for the
//! writer, so a sync applying the catalog delays none of them.
//!
//! A file that is not a database, is corrupt, comes from a newer build or cannot be written is a
//! typed [`StorageError`]. [`quarantine`] moves such a file aside (it is kept, never deleted) so
//! that a fresh database can be created and refilled from the server.

mod migrations;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

pub use migrations::{MIGRATIONS, SCHEMA_VERSION};

/// How long a statement waits for another connection's lock before giving up with `Busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong with the local database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum StorageError {
    #[error("the file is not a database")]
    NotADatabase,
    #[error("the database file is corrupt")]
    Corrupt,
    #[error(
        "the database comes from a newer version (schema {found}; this build knows {supported})"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("the database cannot be written")]
    ReadOnly,
    #[error("the database file cannot be opened: {reason}")]
    CannotOpen { reason: String },
    #[error("the database is locked by another connection")]
    Busy,
    #[error("the disk is full")]
    DiskFull,
    #[error("the operation was interrupted")]
    Interrupted,
    #[error("the database is closed")]
    Closed,
    #[error("the schema upgrade failed: {reason}")]
    Migration { reason: String },
    #[error("SQLite error: {reason}")]
    Sqlite { reason: String },
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StorageError::NotADatabase,
            Some(ErrorCode::DatabaseCorrupt) => StorageError::Corrupt,
            Some(ErrorCode::ReadOnly) => StorageError::ReadOnly,
            Some(ErrorCode::CannotOpen) => StorageError::CannotOpen {
                reason: e.to_string(),
            },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageError::Busy,
            Some(ErrorCode::DiskFull) => StorageError::DiskFull,
            Some(ErrorCode::OperationInterrupted) => StorageError::Interrupted,
            _ => StorageError::Sqlite {
                reason: e.to_string(),
            },
        }
    }
}

impl From<rusqlite_migration::Error> for StorageError {
    fn from(e: rusqlite_migration::Error) -> Self {
        match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => err.into(),
            other => StorageError::Migration {
                reason: other.to_string(),
            },
        }
    }
}

/// Which kind of Tessera file a database is: its SQLite `application_id` (set at creation) and
/// a table its first schema creates (how files made before the id existed are recognised).
#[derive(Debug, Clone, Copy)]
pub struct FileKind {
    pub application_id: i32,
    pub first_table: &'static str,
    /// The kinds of data each table holds, announced after commits (crate::changes).
    pub tables: crate::changes::TableKinds,
}

/// The member's database on the phone ("TSRA").
pub const PHONE_FILE: FileKind = FileKind {
    application_id: 0x5453_5241,
    first_table: "member_card",
    tables: crate::changes::phone_table,
};

/// Decides whether an opened file is one of `kind`'s, a new one, or someone else's.
fn check_kind(conn: &Connection, kind: FileKind) -> Result<(), StorageError> {
    // The first statement reads the header: a file that is not SQLite fails here.
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app == kind.application_id {
        return Ok(());
    }
    if app != 0 {
        tracing::warn!("the database file belongs to another application: refused");
        return Err(StorageError::NotADatabase);
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if tables > 0 {
        let ours: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [kind.first_table],
            |r| r.get(0),
        )?;
        let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if ours == 0 || version == 0 {
            // Another program's tables: adopting the file would mix Tessera's into them.
            tracing::warn!("the database file holds another application's tables: refused");
            return Err(StorageError::NotADatabase);
        }
        tracing::info!("a database from before application ids: marked as Tessera's");
    } else {
        // A new file, or an empty one (0 bytes): a new database.
        tracing::info!("new database");
    }
    conn.pragma_update(None, "application_id", kind.application_id)?;
    Ok(())
}

/// The database of one app install.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    migrations: &'static rusqlite_migration::Migrations<'static>,
    version: u32,
    kind: FileKind,
    writer: Mutex<Option<Connection>>,
    /// The quick lane: reads the member waits on.
    readers: [Mutex<Option<Connection>>; QUICK_READERS],
    /// The long lane: reads that may take seconds.
    background: Mutex<Option<Connection>>,
    /// What each commit changed, told to the app. Declared after the connections: they are
    /// dropped (closed) before it, as its update hook requires.
    changes: crate::changes::ChangeFeed,
}

/// Connections of the quick lane.
const QUICK_READERS: usize = 2;

fn open_reader(path: &Path) -> Result<Connection, StorageError> {
    let reader = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    reader.busy_timeout(BUSY_TIMEOUT)?;
    reader.execute_batch("PRAGMA temp_store = MEMORY;")?;
    Ok(reader)
}

impl Db {
    /// Open (creating if needed) and upgrade the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, &MIGRATIONS, SCHEMA_VERSION, PHONE_FILE)
    }

    /// Open a database of another schema (a till's journal) with the same guarantees: WAL,
    /// FULL sync, typed errors for a file that is not a database (or another program's
    /// database), is corrupt or is newer.
    pub fn open_with(
        path: impl AsRef<Path>,
        migrations: &'static rusqlite_migration::Migrations<'static>,
        version: u32,
        kind: FileKind,
    ) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // SQLite silently falls back to read-only when the file cannot be written; a database
        // that cannot record what the member does is an error, not a degraded mode.
        if writer.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StorageError::ReadOnly);
        }
        writer.busy_timeout(BUSY_TIMEOUT)?;
        check_kind(&writer, kind)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Sqlite {
                reason: format!("journal mode {mode} instead of WAL"),
            });
        }
        // FULL: a committed transaction survives a power cut, not only a killed process.
        // Android has no temp directory, hence temp_store in memory. secure_delete FAST: what a
        // write replaces or deletes is zeroed in its page (tokens moved to the app's SecretStore
        // leave no copy behind; docs/adr/0017).
        writer.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
             PRAGMA secure_delete = FAST;",
        )?;
        let found: u32 = writer.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > version {
            return Err(StorageError::SchemaTooNew {
                found,
                supported: version,
            });
        }
        migrations.to_latest(&mut writer)?;
        if found < version {
            tracing::info!(from = found, to = version, "database schema upgraded");
        }

        let readers = [
            Mutex::new(Some(open_reader(&path)?)),
            Mutex::new(Some(open_reader(&path)?)),
        ];
        let background = Mutex::new(Some(open_reader(&path)?));
        let changes = crate::changes::ChangeFeed::new(kind.tables);
        changes.watch(&writer);
        tracing::debug!(schema = version, "database opened");
        Ok(Db {
            path,
            migrations,
            version,
            kind,
            writer: Mutex::new(Some(writer)),
            readers,
            background,
            changes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What each commit changed (see [`crate::changes`]).
    pub fn changes(&self) -> &crate::changes::ChangeFeed {
        &self.changes
    }

    /// Erase everything: close both connections, delete the file and its WAL and shared-memory
    /// files, and open a fresh database at the same path. Other callers wait on the connection
    /// locks meanwhile and then see the empty database.
    pub fn wipe(&self) -> Result<(), StorageError> {
        let mut writer = lock(&self.writer);
        let mut readers: Vec<_> = self.readers.iter().map(lock).collect();
        let mut background = lock(&self.background);
        if writer.is_none() {
            return Err(StorageError::Closed);
        }
        let open = readers
            .iter_mut()
            .map(|r| r.take())
            .chain([background.take(), writer.take()]);
        for conn in open.flatten() {
            if let Err((_, e)) = conn.close() {
                tracing::warn!(error = %e, "closing the database before wiping failed");
            }
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = PathBuf::from(format!("{}{suffix}", self.path.display()));
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StorageError::CannotOpen {
                        reason: format!("cannot delete the database: {}", e.kind()),
                    });
                }
            }
        }
        let fresh = Db::open_with(&self.path, self.migrations, self.version, self.kind)?;
        *writer = lock(&fresh.writer).take();
        if let Some(w) = writer.as_ref() {
            self.changes.watch(w);
        }
        for (mine, new) in readers.iter_mut().zip(&fresh.readers) {
            **mine = lock(new).take();
        }
        *background = lock(&fresh.background).take();
        drop((writer, readers, background));
        tracing::info!("database wiped");
        // Everything is gone: every kind changed.
        self.changes
            .publish(crate::changes::Change::bits(&crate::changes::Change::ALL));
        Ok(())
    }

    /// Copy the WAL into the database file and empty it: page images of earlier writes (a token
    /// written there before it moved to the SecretStore) are gone from the WAL too. Best effort:
    /// a reader still on an old snapshot keeps the WAL until the next checkpoint.
    pub(crate) fn checkpoint_truncate(&self) -> Result<(), StorageError> {
        let guard = lock(&self.writer);
        let conn = guard.as_ref().ok_or(StorageError::Closed)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Run `f` in one IMMEDIATE transaction on the writer; commit if it returns `Ok`.
    pub fn write<T, E>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let mut guard = lock(&self.writer);
        let conn = guard.as_mut().ok_or(StorageError::Closed)?;
        self.changes.begin();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StorageError::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(StorageError::from)?;
        let changed = self.changes.committed();
        drop(guard);
        self.changes.publish(changed);
        Ok(out)
    }

    /// Run `f` on a connection of the quick lane (it sees every committed write): for reads
    /// that take milliseconds at most. It takes whichever connection is free, and waits only
    /// if both are in use.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let guard = self
            .readers
            .iter()
            .find_map(|m| match m.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            })
            .unwrap_or_else(|| lock(&self.readers[0]));
        let conn = guard.as_ref().ok_or(StorageError::Closed)?;
        f(conn)
    }

    /// Run `f` on the long lane's connection: for reads that may take seconds (they queue
    /// behind each other, never in front of [`Db::read`]).
    pub fn read_background<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let guard = lock(&self.background);
        let conn = guard.as_ref().ok_or(StorageError::Closed)?;
        f(conn)
    }

    /// `PRAGMA quick_check`: `Corrupt` if SQLite finds damage. Costs a full read of the file.
    pub fn check_integrity(&self) -> Result<(), StorageError> {
        self.read_background(|conn| {
            let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            if verdict == "ok" {
                Ok(())
            } else {
                tracing::warn!("database integrity check failed");
                Err(StorageError::Corrupt)
            }
        })
    }

    /// Close both connections; later calls get `Closed`. Idempotent.
    pub fn close(&self) {
        let readers = self.readers.iter().chain([&self.background, &self.writer]);
        for slot in readers {
            if let Some(conn) = lock(slot).take()
                && let Err((_, e)) = conn.close()
            {
                tracing::warn!(error = %e, "closing the database failed");
            }
        }
    }
}

/// A panic while a connection was borrowed rolls its transaction back when the guard drops, so
/// the connection itself is still sound: recover it instead of poisoning every later call.
fn lock(m: &Mutex<Option<Connection>>) -> MutexGuard<'_, Option<Connection>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Move a database that cannot be used (and its `-wal`/`-shm` files) aside, keeping it for
/// support. Returns where the main file went. Nothing is deleted.
pub fn quarantine(path: impl AsRef<Path>) -> Result<PathBuf, StorageError> {
    let path = path.as_ref();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let target = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let io = |e: std::io::Error| StorageError::CannotOpen {
        reason: e.kind().to_string(),
    };
    std::fs::rename(path, &target).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", target.display())).map_err(io)?;
        }
    }
    tracing::warn!("unusable database moved aside");
    Ok(target)
}
