//! The embedded backend: one SQLite file in WAL mode, one writer connection and a few readers.
//! Every call runs on tokio's blocking pool, so a slow disk never stalls the async workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use tessera_domain::Program;
use tessera_domain::api::RedemptionConflict;
use tessera_domain::catalog::{Catalog, Offer, Store};
use tessera_domain::consent::{Channel, ConsentRecord, Purpose};
use tessera_domain::rules::RuleSet;

use super::repo::Challenges;
use super::{
    CatalogCounts, DeviceAuth, EntityKind, FeedItem, FeedPage, Finish, ImportError, Job, ReadJob,
    Storage, StorageError, TokenHashes, TokenLookup,
};

mod catalog;
mod members;
mod repo;
mod tills;

pub(crate) use repo::SqliteRepo;

use catalog::*;
use members::*;

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match e.sqlite_error() {
            Some(ffi::Error { extended_code, .. })
                if *extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || *extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StorageError::Duplicate(e.to_string())
            }
            _ => StorageError::Backend(e.to_string()),
        }
    }
}

const STEPS: &[M<'static>] = &[
    M::up(include_str!("../schema.sql")),
    M::up(include_str!("../schema_2_privacy.sql")),
    M::up(include_str!("../schema_3_offers.sql")),
    M::up(include_str!("../schema_4_coupons.sql")),
    M::up(include_str!("../schema_5_loyalty.sql")),
    M::up(include_str!("../schema_6_rules.sql")),
    M::up(include_str!("../schema_7_jobs.sql")),
    M::up(include_str!("../schema_8_processes.sql")),
    M::up(include_str!("../schema_9_lapses.sql")),
    M::up(include_str!("../schema_10_rule_state.sql")),
    M::up(include_str!("../schema_11_certificates.sql")),
    M::up(include_str!("../schema_12_wallet.sql")),
    M::up(include_str!("../schema_13_webhooks.sql")),
    M::up(include_str!("../schema_14_console.sql")),
    M::up(include_str!("../schema_15_analytics.sql")),
    M::up(include_str!("../schema_16_journeys.sql")),
    M::up(include_str!("../schema_17_loyalty_versions.sql")),
    M::up(include_str!("../schema_18_two_factor.sql")),
];
pub(crate) static MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);
const READERS: usize = 4;

#[derive(Debug, Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    // Keeps a temporary database alive as long as the storage.
    _temp: Option<tempfile::TempDir>,
}

/// Prepared statements kept per connection. The storage has ~80 distinct statements and a
/// request uses a dozen; rusqlite's default of 16 made requests re-prepare the statements the
/// previous ones evicted (docs/figures.md, "The statement cache").
const STATEMENT_CACHE: usize = 128;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

impl SqliteStorage {
    /// Open (or create) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_inner(path.as_ref().to_path_buf(), None)
    }

    /// A database in a fresh temporary directory, removed when the storage is dropped.
    pub fn temporary() -> Result<Self, StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::Backend(e.to_string()))?;
        let path = dir.path().join("tessera-server.sqlite3");
        Self::open_inner(path, Some(dir))
    }

    fn open_inner(path: PathBuf, temp: Option<tempfile::TempDir>) -> Result<Self, StorageError> {
        let mut writer = Connection::open(&path)?;
        configure(&writer)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a committed transaction survives a crash of the process; only a
        // power cut can lose the last ones (the server's operators choose; phones use FULL).
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        MIGRATIONS
            .to_latest(&mut writer)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&c)?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        Ok(SqliteStorage {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                _temp: temp,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.write_unless(move |tx| f(tx).map(Ok::<T, std::convert::Infallible>))
            .await
            .map(|r| match r {
                Ok(v) => v,
            })
    }

    /// Run `f` in one IMMEDIATE transaction on the writer; commit only if it returns `Ok(Ok)`:
    /// an `Ok(Err(refusal))` (a business refusal) rolls back everything `f` did, and is returned.
    async fn write_unless<T: Send + 'static, E: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<Result<T, E>, StorageError>
        + Send
        + 'static,
    ) -> Result<Result<T, E>, StorageError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StorageError::Backend("writer lock poisoned".into()))?;
            // IMMEDIATE: the write lock is taken at once, so an idempotency claim or a
            // redemption never reads a row another writer is about to change.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            if out.is_ok() {
                tx.commit()?;
            }
            // Otherwise dropping the transaction rolls it back.
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Backend(e.to_string()))?
    }

    /// Run a read-only query on a reader connection from a plain thread (audits, tests).
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        let conn = self.inner.readers[0]
            .lock()
            .map_err(|_| StorageError::Backend("reader lock poisoned".into()))?;
        Ok(f(&conn)?)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i]
                .lock()
                .map_err(|_| StorageError::Backend("reader lock poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StorageError::Backend(e.to_string()))?
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn transaction(&self, mut job: Job) -> Result<(), StorageError> {
        self.write_unless(move |tx| {
            Ok(match job(&mut SqliteRepo { c: tx })? {
                Finish::Commit => Ok(()),
                Finish::Rollback => Err(()),
            })
        })
        .await
        .map(|_| ())
    }

    async fn snapshot(&self, mut job: ReadJob) -> Result<(), StorageError> {
        self.read(move |c| {
            // One read transaction: every statement of the job sees the same commit.
            let tx = c.unchecked_transaction()?;
            job(&mut SqliteRepo { c: &tx })
        })
        .await
    }

    async fn program(&self) -> Result<Option<Program>, StorageError> {
        SqliteStorage::program(self).await
    }

    async fn put_program(&self, program: Program) -> Result<(), StorageError> {
        SqliteStorage::put_program(self, program).await
    }

    async fn put_store(&self, store: Store) -> Result<(), StorageError> {
        SqliteStorage::put_store(self, store).await
    }

    async fn delete_store(&self, id: String) -> Result<(), StorageError> {
        SqliteStorage::delete_store(self, id).await
    }

    async fn put_offer(&self, offer: Offer) -> Result<(), StorageError> {
        SqliteStorage::put_offer(self, offer).await
    }

    async fn delete_offer(&self, id: String) -> Result<(), StorageError> {
        SqliteStorage::delete_offer(self, id).await
    }

    async fn load_catalog(&self, catalog: Catalog) -> Result<CatalogCounts, StorageError> {
        SqliteStorage::load_catalog(self, catalog).await
    }

    async fn import_catalog(
        &self,
        file: std::fs::File,
    ) -> Result<Result<CatalogCounts, ImportError>, StorageError> {
        SqliteStorage::import_catalog(self, file).await
    }

    async fn feed(&self, after: i64, limit: u32) -> Result<(FeedPage, i64), StorageError> {
        SqliteStorage::feed(self, after, limit).await
    }

    async fn latest_sequence(&self) -> Result<i64, StorageError> {
        SqliteStorage::latest_sequence(self).await
    }

    async fn lookup_access(&self, hash: String, now_ms: i64) -> Result<TokenLookup, StorageError> {
        SqliteStorage::lookup_access(self, hash, now_ms).await
    }

    async fn refresh(
        &self,
        refresh_hash: String,
        now_ms: i64,
        new: TokenHashes,
    ) -> Result<Option<DeviceAuth>, StorageError> {
        SqliteStorage::refresh(self, refresh_hash, now_ms, new).await
    }

    async fn member_version(&self, member_id: String) -> Result<i64, StorageError> {
        SqliteStorage::member_version(self, member_id).await
    }

    async fn purge_keys(&self, before_ms: i64) -> Result<u64, StorageError> {
        SqliteStorage::purge_keys(self, before_ms).await
    }

    async fn consent_history(
        &self,
        member_id: String,
    ) -> Result<Option<Vec<ConsentRecord>>, StorageError> {
        self.read(move |c| {
            let exists: Option<i64> = c
                .query_row("SELECT 1 FROM member WHERE id = ?1", [&member_id], |r| {
                    r.get(0)
                })
                .optional()?;
            match exists {
                None => Ok(None),
                Some(_) => Ok(Some(repo::consent_records(c, &member_id)?)),
            }
        })
        .await
    }

    async fn audience(
        &self,
        purpose: Purpose,
        channel: Channel,
    ) -> Result<Vec<String>, StorageError> {
        self.read(move |c| repo::audience(c, purpose, channel))
            .await
    }

    async fn set_segments(
        &self,
        member_id: String,
        segments: Vec<String>,
    ) -> Result<Option<()>, StorageError> {
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE member SET segments = ?2, version = version + 1 WHERE id = ?1",
                params![member_id, json(&segments)?],
            )?;
            Ok((n == 1).then_some(()))
        })
        .await
    }

    async fn shop(
        &self,
        store_id: String,
    ) -> Result<Option<tessera_domain::eligibility::ShopFacts>, StorageError> {
        SqliteStorage::shop(self, store_id).await
    }

    async fn register_till(
        &self,
        store_id: String,
        token_hash: String,
        now_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        SqliteStorage::register_till(self, store_id, token_hash, now_ms).await
    }

    async fn till_by_token(
        &self,
        token_hash: String,
    ) -> Result<Option<(String, String)>, StorageError> {
        SqliteStorage::till_by_token(self, token_hash).await
    }

    async fn publish_rule_set(
        &self,
        rules: RuleSet,
        by: String,
        note: String,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let data = json(&rules)?;
        self.write(move |tx| {
            put_entity(tx, EntityKind::Rules, "rules", Some(&data))?;
            Ok(tx.query_row(
                "INSERT INTO rule_version (data, published_at, published_by, note)
                 VALUES (?1, ?2, ?3, ?4) RETURNING version",
                rusqlite::params![data, now_ms, by, note],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn challenge_rules(&self) -> Result<Option<RuleSet>, StorageError> {
        self.read(|c| SqliteRepo { c }.rule_set()).await
    }

    async fn redemption_conflicts(
        &self,
        limit: u32,
    ) -> Result<Vec<RedemptionConflict>, StorageError> {
        SqliteStorage::redemption_conflicts(self, limit).await
    }

    async fn event_ids(&self, member_id: String) -> Result<Vec<(String, u64)>, StorageError> {
        SqliteStorage::event_ids(self, member_id).await
    }
}

#[cfg(test)]
mod conformance {
    use super::SqliteStorage;

    crate::storage_conformance!(SqliteStorage::temporary().expect("a temporary database"));
}

#[cfg(test)]
mod migrations {
    use rusqlite::Connection;

    /// Version 17 keeps the loyalty rules in force as their first version; a database that
    /// never had any set starts with none.
    #[test]
    fn version_17_keeps_the_rules_in_force_as_the_first_version() {
        let versions = |c: &Connection| -> Vec<(i64, String, i64, String, String)> {
            c.prepare(
                "SELECT version, data, published_at, published_by, note
                 FROM loyalty_rules_version ORDER BY version",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let mut c = Connection::open_in_memory().unwrap();
        super::MIGRATIONS.to_version(&mut c, 16).unwrap();
        c.execute(
            "INSERT INTO loyalty_rules (id, data, updated_at) VALUES (1, '{\"x\": 1}', 42)",
            [],
        )
        .unwrap();
        super::MIGRATIONS.to_latest(&mut c).unwrap();
        assert_eq!(
            versions(&c),
            [(
                1,
                "{\"x\": 1}".to_owned(),
                42,
                "operator".to_owned(),
                "in force when versions began".to_owned()
            )]
        );
        let mut empty = Connection::open_in_memory().unwrap();
        super::MIGRATIONS.to_latest(&mut empty).unwrap();
        assert!(versions(&empty).is_empty());
    }

    /// Version 16 counts the members and grants a database already holds as KPI levels: each
    /// member on their enrolment's day, each member's latest decision per purpose and channel
    /// if it is a grant (erased members' records left out).
    #[test]
    fn version_16_counts_the_members_and_grants_held_already() {
        let mut c = Connection::open_in_memory().unwrap();
        super::MIGRATIONS.to_version(&mut c, 15).unwrap();
        let day = 86_400_000_i64;
        for (id, created) in [
            ("m-1", 10 * day + 5),
            ("m-2", 10 * day + 9),
            ("m-3", 12 * day),
        ] {
            c.execute(
                "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)
                 VALUES (?1, ?1, 'x', '2026-01-01', 'Member', ?2)",
                rusqlite::params![id, created],
            )
            .unwrap();
        }
        let mut seq = 0;
        let mut consent = |member: &str, purpose: &str, decision: &str, at: i64| {
            seq += 1;
            c.execute(
                "INSERT INTO consent_record (record_id, member_id, purpose, channel, decision,
                     text_version, text_sha256, decided_at, effective_at, effective_ms,
                     recorded_at, source, body_hash)
                 VALUES (?1, ?2, ?3, 'push', ?4, 'v1', 'h', 'x', 'x', ?5, 'x', 'app_screen', 'h')",
                rusqlite::params![format!("r-{seq}"), member, purpose, decision, at],
            )
            .unwrap();
        };
        consent("m-1", "marketing_offers", "granted", 11 * day);
        consent("m-1", "marketing_offers", "withdrawn", 13 * day);
        consent("m-2", "marketing_offers", "withdrawn", 11 * day);
        consent("m-2", "marketing_offers", "granted", 14 * day);
        consent("m-3", "marketing_offers", "granted", 12 * day);
        consent("m-3", "analytics", "denied", 12 * day);
        consent("erased:m-9", "marketing_offers", "granted", 12 * day);
        super::MIGRATIONS.to_latest(&mut c).unwrap();
        let rows: Vec<(i64, String, i64)> = c
            .prepare(
                "SELECT day, metric, value FROM kpi_delta WHERE shop = '*' ORDER BY metric, day",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (12, "consent:marketing_offers:push".to_owned(), 1),
                (14, "consent:marketing_offers:push".to_owned(), 1),
                (10, "members".to_owned(), 2),
                (12, "members".to_owned(), 1),
            ]
        );
    }
}
