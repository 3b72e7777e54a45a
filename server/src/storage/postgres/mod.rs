//! The backend for large programmes: one PostgreSQL database shared by any number of server
//! processes (docs/adr/0022).
//!
//! - **Driver**: the synchronous `postgres` client in a `deadpool` pool. A connection is taken
//!   from the pool without blocking a thread; the job then runs on tokio's blocking pool, and
//!   that thread drives the connection itself for every statement (the client polls its socket
//!   on the calling thread): no hop to another thread per statement. Each pooled connection
//!   prepares a statement once.
//! - **Isolation**: a business transaction runs SERIALIZABLE, so that every rule that reads
//!   then writes (a balance, a lot, an idempotency claim, a redemption, a limit per member) sees
//!   what SQLite's single writer would have shown it. PostgreSQL refuses to commit a transaction
//!   that could not have run serially (SQLSTATE 40001) or picks a deadlock victim (40P01): the
//!   job then runs again from the start in a new transaction, for up to [`RETRY_FOR`]. Reads
//!   run REPEATABLE READ, READ ONLY: one snapshot per request.
//! - **Migrations**: numbered like SQLite's (`schema_N.sql` here is `storage/schema*.sql` there),
//!   applied in one transaction under an advisory lock, so that processes starting together
//!   migrate once.

mod analytics;
mod journeys;
mod repo;
mod staff;
mod webhooks;

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult};
use postgres::error::SqlState;
use postgres::{IsolationLevel, NoTls, Statement};
use tessera_domain::Program;
use tessera_domain::api::RedemptionConflict;
use tessera_domain::catalog::{Catalog, Offer, Store};
use tessera_domain::catalog_reader::CatalogItem;
use tessera_domain::consent::{Channel, ConsentRecord, Purpose};
use tessera_domain::eligibility::ShopFacts;
use tessera_domain::rfc3339_ms as rfc3339;
use tessera_domain::rules::RuleSet;

pub(crate) use repo::PgRepo;
use repo::storage_error;

use super::repo::{Challenges, Privacy};
use super::{
    CatalogCounts, DeviceAuth, EntityKind, FeedItem, FeedPage, Finish, ImportError, Job, ReadJob,
    Storage, StorageError, TokenHashes, TokenLookup, to_u64,
};

/// The migrations, in step with SQLite's: version N here is version N there.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("schema_1.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
    include_str!("schema_7.sql"),
    include_str!("schema_8.sql"),
    include_str!("schema_9.sql"),
    include_str!("schema_10.sql"),
    include_str!("schema_11.sql"),
    include_str!("schema_12.sql"),
    include_str!("schema_13.sql"),
    include_str!("schema_14.sql"),
    include_str!("schema_15.sql"),
    include_str!("schema_16.sql"),
    include_str!("schema_17.sql"),
    include_str!("schema_18.sql"),
];

/// How long a transaction keeps being run again after serialization failures before the last
/// one is reported (a member's requests arriving all at once take turns within it).
pub const RETRY_FOR: Duration = Duration::from_secs(10);

/// Taken by the process that migrates (the text "tessera" as a number).
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261;

/// How the storage connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections in the pool: transactions this process runs at once.
    pub pool_size: usize,
    /// How long a request waits for a free connection before it is answered 503.
    pub wait: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 16,
            wait: Duration::from_secs(10),
        }
    }
}

/// A pooled connection and its prepared statements.
struct Conn {
    /// `None` only while being dropped.
    client: Option<postgres::Client>,
    statements: HashMap<String, Statement>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Closing runs the client's own runtime, which may not start inside another (the pool
        // drops connections from async code): close it on a thread of its own.
        if let Some(client) = self.client.take() {
            let _ = std::thread::Builder::new()
                .name("tessera-pg-close".into())
                .spawn(move || drop(client));
        }
    }
}

/// Makes and checks the pool's connections.
struct Manager {
    config: postgres::Config,
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = StorageError;

    async fn create(&self) -> Result<Conn, StorageError> {
        let config = self.config.clone();
        // Connecting blocks (the client runs its own small runtime).
        let client = tokio::task::spawn_blocking(move || config.connect(NoTls))
            .await
            .map_err(StorageError::backend)?
            .map_err(|e| {
                StorageError::Backend(format!("connecting to PostgreSQL: {}", with_causes(&e)))
            })?;
        Ok(Conn {
            client: Some(client),
            statements: HashMap::new(),
        })
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<StorageError> {
        match &conn.client {
            Some(c) if !c.is_closed() => Ok(()),
            _ => Err(RecycleError::message("the connection is closed")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<Manager>,
    config: postgres::Config,
    options: PostgresOptions,
    /// Transactions run again after a serialization failure or a deadlock.
    retries: AtomicU64,
    /// A test's schema, dropped with the storage (after the pool: fields drop in order).
    _temporary: Option<TemporarySchema>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("pool", &self.pool.status())
            .field("retries", &self.retries)
            .finish()
    }
}

/// An error and its causes, one after the other (the pool's errors hide the driver's).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

/// Whether a failure means "run the transaction again".
fn retryable(code: &SqlState) -> bool {
    *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
}

enum Failed {
    Retry(StorageError),
    Other(StorageError),
}

fn classify(e: postgres::Error) -> Failed {
    let storage = storage_error(&e);
    if e.code().is_some_and(retryable) {
        Failed::Retry(storage)
    } else {
        Failed::Other(storage)
    }
}

fn parse_url(url: &str) -> Result<postgres::Config, StorageError> {
    url.parse::<postgres::Config>()
        .map_err(|e| StorageError::Backend(format!("the PostgreSQL URL: {e}")))
}

/// Run blocking database work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StorageError::backend)?
}

impl PostgresStorage {
    /// Connect to the database at `url` (`postgres://user:password@host:port/database`, or
    /// key=value pairs) and bring its schema up to date.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StorageError> {
        Self::open(parse_url(url)?, options, None).await
    }

    /// A fresh schema in the database at `url`, dropped when the storage is dropped: each test
    /// gets an empty database of its own.
    pub async fn temporary(url: &str) -> Result<Self, StorageError> {
        let schema = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
        let config = parse_url(url)?;
        let (c, sql) = (config.clone(), format!("CREATE SCHEMA {schema}"));
        blocking(move || {
            let mut client = c.connect(NoTls).map_err(|e| storage_error(&e))?;
            client.batch_execute(&sql).map_err(|e| storage_error(&e))
        })
        .await?;
        let mut scoped = config.clone();
        scoped.options(&format!("-c search_path={schema}"));
        Self::open(
            scoped,
            PostgresOptions {
                pool_size: 8,
                ..PostgresOptions::default()
            },
            Some(TemporarySchema { config, schema }),
        )
        .await
    }

    async fn open(
        config: postgres::Config,
        options: PostgresOptions,
        temporary: Option<TemporarySchema>,
    ) -> Result<Self, StorageError> {
        let manager = Manager {
            config: config.clone(),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(options.wait))
            .create_timeout(Some(options.wait))
            .build()
            .map_err(StorageError::backend)?;
        let mut conn: managed::Object<Manager> = pool
            .get()
            .await
            .map_err(|e| StorageError::Backend(with_causes(&e)))?;
        blocking(move || {
            let client = conn
                .client
                .as_mut()
                .ok_or_else(|| StorageError::backend("a closed connection"))?;
            migrate(client)
        })
        .await?;
        Ok(PostgresStorage {
            inner: Arc::new(Inner {
                pool,
                config,
                options,
                retries: AtomicU64::new(0),
                _temporary: temporary,
            }),
        })
    }

    /// Another storage on the same database (and schema) with a pool of its own: what a second
    /// server process has (tests of several processes).
    pub async fn another_process(&self) -> Result<PostgresStorage, StorageError> {
        Self::open(self.inner.config.clone(), self.inner.options.clone(), None).await
    }

    /// How this storage connects (its schema included): for tests and audits that need a
    /// connection of their own.
    pub fn connection_config(&self) -> &postgres::Config {
        &self.inner.config
    }

    /// The integer columns of the one row `sql` returns (audits and tests: counts).
    pub async fn integers(&self, sql: &str) -> Result<Vec<i64>, StorageError> {
        let sql = sql.to_owned();
        self.read(move |r| {
            let row = r.one(&sql, &[])?;
            (0..row.len())
                .map(|i| row.try_get(i).map_err(StorageError::backend))
                .collect()
        })
        .await
    }

    /// The schema of a test's storage (`None` for a deployment's): a benchmark loads its data
    /// into it with `psql`.
    pub fn temporary_schema(&self) -> Option<&str> {
        self.inner._temporary.as_ref().map(|t| t.schema.as_str())
    }

    /// Transactions run again after a serialization failure or a deadlock, since the start.
    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Run `f` over one transaction, SERIALIZABLE for a write, REPEATABLE READ READ ONLY for a
    /// read; again from the start while PostgreSQL refuses it for a concurrency reason.
    async fn run<T, F>(&self, write: bool, mut f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnMut(&mut PgRepo<'_, '_>) -> Result<(T, Finish), StorageError> + Send + 'static,
    {
        let mut attempt = 1u32;
        let started = std::time::Instant::now();
        loop {
            let mut conn = self.inner.pool.get().await.map_err(|e| {
                StorageError::Backend(format!("PostgreSQL pool: {}", with_causes(&e)))
            })?;
            let (outcome, back) = tokio::task::spawn_blocking(move || {
                let outcome = once(&mut conn, write, &mut f);
                (outcome, f)
            })
            .await
            .map_err(StorageError::backend)?;
            f = back;
            match outcome {
                Ok(v) => return Ok(v),
                Err(Failed::Retry(e)) if started.elapsed() < RETRY_FOR => {
                    tracing::debug!(attempt, error = %e, "transaction run again");
                    self.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(Failed::Retry(e) | Failed::Other(e)) => return Err(e),
            }
        }
    }

    async fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut PgRepo<'_, '_>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.run(true, move |r| Ok((f(r)?, Finish::Commit))).await
    }

    async fn read<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut PgRepo<'_, '_>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.run(false, move |r| Ok((f(r)?, Finish::Commit))).await
    }
}

/// A short random wait before running a transaction again (1–2 ms at first, doubling to
/// 16–32 ms), so that the transactions that collided do not collide again at once.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 1u64 << attempt.min(5);
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    Duration::from_micros(ceiling * 500 + u64::from(byte[0]) * ceiling * 2)
}

fn once<T, F>(conn: &mut Conn, write: bool, f: &mut F) -> Result<T, Failed>
where
    F: FnMut(&mut PgRepo<'_, '_>) -> Result<(T, Finish), StorageError>,
{
    let Conn { client, statements } = conn;
    let client = client
        .as_mut()
        .ok_or_else(|| Failed::Other(StorageError::backend("a closed connection")))?;
    let mut tx = client
        .build_transaction()
        .isolation_level(if write {
            IsolationLevel::Serializable
        } else {
            IsolationLevel::RepeatableRead
        })
        .read_only(!write)
        .start()
        .map_err(classify)?;
    let mut repo = PgRepo {
        tx: &mut tx,
        statements,
        failure: None,
    };
    let out = f(&mut repo);
    let failed_to_serialize = repo.failure.as_ref().is_some_and(retryable);
    match out {
        Ok(_) | Err(_) if failed_to_serialize => {
            let _ = tx.rollback();
            Err(Failed::Retry(match out {
                Err(e) => e,
                Ok(_) => StorageError::backend("serialization failure"),
            }))
        }
        Ok((v, Finish::Commit)) => {
            tx.commit().map_err(classify)?;
            Ok(v)
        }
        Ok((v, Finish::Rollback)) => {
            tx.rollback().map_err(classify)?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback();
            Err(Failed::Other(e))
        }
    }
}

/// Bring the schema up to date: one transaction, under an advisory lock, so that several
/// processes starting at once migrate once; a database newer than this server is refused.
fn migrate(client: &mut postgres::Client) -> Result<(), StorageError> {
    let e = |e: postgres::Error| storage_error(&e);
    let mut tx = client.transaction().map_err(e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(e)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(e)?;
    let current: i64 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .map_err(e)?
        .get(0);
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StorageError::Backend(format!(
            "the database's schema is version {current}, newer than this server's ({known})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        tx.batch_execute(sql).map_err(|err| {
            StorageError::Backend(format!("migration {version}: {}", storage_error(&err)))
        })?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .map_err(e)?;
    }
    tx.commit().map_err(e)
}

/// A test's schema, dropped (with everything in it) when the storage is.
struct TemporarySchema {
    config: postgres::Config,
    schema: String,
}

impl Drop for TemporarySchema {
    fn drop(&mut self) {
        let config = self.config.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        // A thread of its own: the client runs a runtime, which may not start inside another.
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = config.connect(NoTls) {
                let _ = client.batch_execute(&sql);
            }
        })
        .join();
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StorageError> {
    serde_json::to_string(v).map_err(StorageError::backend)
}

fn kind_of(s: &str) -> Result<EntityKind, StorageError> {
    match s {
        "program" => Ok(EntityKind::Program),
        "store" => Ok(EntityKind::Store),
        "offer" => Ok(EntityKind::Offer),
        "rules" => Ok(EntityKind::Rules),
        other => Err(StorageError::Backend(format!(
            "unknown entity kind {other}"
        ))),
    }
}

fn put_entity(
    r: &mut PgRepo<'_, '_>,
    kind: EntityKind,
    id: &str,
    data: Option<&str>,
) -> Result<(), StorageError> {
    let seq: i64 = r
        .value(
            "UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            &[],
        )?
        .ok_or_else(|| StorageError::backend("the feed counter is missing"))?;
    r.exec(
        "INSERT INTO catalog_entity (kind, id, seq, data) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
        &[&kind.as_str(), &id, &seq, &data],
    )?;
    Ok(())
}

fn delete_entity(r: &mut PgRepo<'_, '_>, kind: EntityKind, id: &str) -> Result<(), StorageError> {
    let live = r.opt(
        "SELECT 1 FROM catalog_entity WHERE kind = $1 AND id = $2 AND data IS NOT NULL",
        &[&kind.as_str(), &id],
    )?;
    if live.is_none() {
        return Err(StorageError::NotFound);
    }
    put_entity(r, kind, id, None)
}

/// A whole catalog replacing the stored one, as SQLite's `CatalogLoad` does it: entities put
/// get sequences from `start` on; what is left below `start` is tombstoned at the end.
struct CatalogLoad {
    start: i64,
    stores: u64,
    offers: u64,
}

impl CatalogLoad {
    fn start(r: &mut PgRepo<'_, '_>) -> Result<Self, StorageError> {
        let last: i64 = r
            .value("SELECT seq FROM feed_counter WHERE id = 1", &[])?
            .unwrap_or(0);
        Ok(CatalogLoad {
            start: last + 1,
            stores: 0,
            offers: 0,
        })
    }

    fn put(&mut self, r: &mut PgRepo<'_, '_>, item: CatalogItem) -> Result<(), StorageError> {
        let (kind, id, data) = match &item {
            CatalogItem::Program(p) => (EntityKind::Program, "program", json(p)?),
            CatalogItem::Store(s) => (EntityKind::Store, s.id.as_str(), json(s)?),
            CatalogItem::Offer(o) => (EntityKind::Offer, o.id.as_str(), json(o)?),
        };
        let seq: Option<i64> = r.value(
            "SELECT seq FROM catalog_entity WHERE kind = $1 AND id = $2",
            &[&kind.as_str(), &id],
        )?;
        if seq.is_some_and(|s| s >= self.start) {
            return Err(StorageError::Conflict(format!(
                "{} {id} is given twice",
                kind.as_str()
            )));
        }
        put_entity(r, kind, id, Some(&data))?;
        match item {
            CatalogItem::Store(_) => self.stores += 1,
            CatalogItem::Offer(_) => self.offers += 1,
            CatalogItem::Program(_) => {}
        }
        Ok(())
    }

    fn finish(self, r: &mut PgRepo<'_, '_>) -> Result<CatalogCounts, StorageError> {
        let mut deleted = 0u64;
        loop {
            let gone = r.rows(
                "SELECT kind, id FROM catalog_entity
                 WHERE kind IN ('store', 'offer') AND data IS NOT NULL AND seq < $1
                 LIMIT 1000",
                &[&self.start],
            )?;
            if gone.is_empty() {
                break;
            }
            for row in &gone {
                let kind: String = row.try_get(0).map_err(StorageError::backend)?;
                let id: String = row.try_get(1).map_err(StorageError::backend)?;
                put_entity(r, kind_of(&kind)?, &id, None)?;
            }
            deleted += gone.len() as u64;
        }
        Ok(CatalogCounts {
            stores: self.stores,
            offers: self.offers,
            deleted,
        })
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn transaction(&self, mut job: Job) -> Result<(), StorageError> {
        self.run(true, move |r| Ok(((), job(r)?))).await
    }

    async fn snapshot(&self, mut job: ReadJob) -> Result<(), StorageError> {
        self.read(move |r| job(r)).await
    }

    async fn program(&self) -> Result<Option<Program>, StorageError> {
        self.read(|r| {
            r.value::<Option<String>>(
                "SELECT data FROM catalog_entity WHERE kind = 'program' AND id = 'program'",
                &[],
            )?
            .flatten()
            .map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
        })
        .await
    }

    async fn put_program(&self, program: Program) -> Result<(), StorageError> {
        let data = json(&program)?;
        self.write(move |r| put_entity(r, EntityKind::Program, "program", Some(&data)))
            .await
    }

    async fn put_store(&self, store: Store) -> Result<(), StorageError> {
        let data = json(&store)?;
        self.write(move |r| put_entity(r, EntityKind::Store, &store.id, Some(&data)))
            .await
    }

    async fn delete_store(&self, id: String) -> Result<(), StorageError> {
        self.write(move |r| delete_entity(r, EntityKind::Store, &id))
            .await
    }

    async fn put_offer(&self, offer: Offer) -> Result<(), StorageError> {
        let data = json(&offer)?;
        self.write(move |r| put_entity(r, EntityKind::Offer, &offer.id, Some(&data)))
            .await
    }

    async fn delete_offer(&self, id: String) -> Result<(), StorageError> {
        self.write(move |r| delete_entity(r, EntityKind::Offer, &id))
            .await
    }

    async fn load_catalog(&self, catalog: Catalog) -> Result<CatalogCounts, StorageError> {
        self.write(move |r| {
            let mut load = CatalogLoad::start(r)?;
            load.put(r, CatalogItem::Program(catalog.program.clone()))?;
            for s in &catalog.stores {
                load.put(r, CatalogItem::Store(s.clone()))?;
            }
            for o in &catalog.offers {
                load.put(r, CatalogItem::Offer(o.clone()))?;
            }
            load.finish(r)
        })
        .await
    }

    async fn import_catalog(
        &self,
        file: std::fs::File,
    ) -> Result<Result<CatalogCounts, ImportError>, StorageError> {
        use tessera_domain::catalog_reader::{ReadError, read_catalog};
        self.run(true, move |r| {
            // A run again reads the file again, from its start.
            (&file)
                .seek(SeekFrom::Start(0))
                .map_err(StorageError::backend)?;
            let mut load = CatalogLoad::start(r)?;
            let read = read_catalog(
                std::io::BufReader::with_capacity(64 * 1024, &file),
                |item| load.put(r, item),
            );
            let refused = match read {
                Ok(_) => return Ok((Ok(load.finish(r)?), Finish::Commit)),
                Err(ReadError::Syntax(e)) => ImportError::Syntax(e),
                Err(ReadError::Invalid(e)) => ImportError::Invalid(e),
                Err(ReadError::Sink(StorageError::Conflict(detail))) => {
                    ImportError::Invalid(tessera_domain::catalog::CatalogError::new("id", detail))
                }
                Err(ReadError::Sink(e)) => return Err(e),
            };
            Ok((Err(refused), Finish::Rollback))
        })
        .await
    }

    async fn feed(&self, after: i64, limit: u32) -> Result<(FeedPage, i64), StorageError> {
        self.read(move |r| {
            let page = r
                .rows(
                    "SELECT seq, kind, id, data FROM catalog_entity
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&after, &i64::from(limit)],
                )?
                .iter()
                .map(|row| {
                    let kind: String = row.try_get(1).map_err(StorageError::backend)?;
                    Ok(FeedItem {
                        seq: row.try_get(0).map_err(StorageError::backend)?,
                        kind: kind_of(&kind)?,
                        id: row.try_get(2).map_err(StorageError::backend)?,
                        data: row.try_get(3).map_err(StorageError::backend)?,
                    })
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            let latest: i64 = r
                .value("SELECT seq FROM feed_counter WHERE id = 1", &[])?
                .unwrap_or(0);
            Ok((page, latest))
        })
        .await
    }

    async fn latest_sequence(&self) -> Result<i64, StorageError> {
        self.read(|r| {
            Ok(r.value("SELECT seq FROM feed_counter WHERE id = 1", &[])?
                .unwrap_or(0))
        })
        .await
    }

    async fn lookup_access(&self, hash: String, now_ms: i64) -> Result<TokenLookup, StorageError> {
        self.read(move |r| {
            let Some(row) = r.opt(
                "SELECT member_id, id, access_expires FROM device WHERE access_hash = $1",
                &[&hash],
            )?
            else {
                return Ok(TokenLookup::Unknown);
            };
            let expires: i64 = row.try_get(2).map_err(StorageError::backend)?;
            if expires <= now_ms {
                return Ok(TokenLookup::Expired);
            }
            Ok(TokenLookup::Valid(DeviceAuth {
                member_id: row.try_get(0).map_err(StorageError::backend)?,
                device_id: row.try_get(1).map_err(StorageError::backend)?,
            }))
        })
        .await
    }

    async fn refresh(
        &self,
        refresh_hash: String,
        now_ms: i64,
        new: TokenHashes,
    ) -> Result<Option<DeviceAuth>, StorageError> {
        self.write(move |r| {
            let Some(row) = r.opt(
                "SELECT member_id, id FROM device WHERE refresh_hash = $1 AND refresh_expires > $2",
                &[&refresh_hash, &now_ms],
            )?
            else {
                return Ok(None);
            };
            let member_id: String = row.try_get(0).map_err(StorageError::backend)?;
            let device_id: String = row.try_get(1).map_err(StorageError::backend)?;
            r.exec(
                "UPDATE device SET access_hash = $1, access_expires = $2,
                    refresh_hash = $3, refresh_expires = $4 WHERE id = $5",
                &[
                    &new.access_hash,
                    &new.access_expires_ms,
                    &new.refresh_hash,
                    &new.refresh_expires_ms,
                    &device_id,
                ],
            )?;
            Ok(Some(DeviceAuth {
                member_id,
                device_id,
            }))
        })
        .await
    }

    async fn member_version(&self, member_id: String) -> Result<i64, StorageError> {
        self.read(move |r| {
            r.value("SELECT version FROM member WHERE id = $1", &[&member_id])?
                .ok_or(StorageError::NotFound)
        })
        .await
    }

    async fn purge_keys(&self, before_ms: i64) -> Result<u64, StorageError> {
        self.write(move |r| {
            r.exec(
                "DELETE FROM idempotency_key WHERE created_at < $1",
                &[&before_ms],
            )
        })
        .await
    }

    async fn consent_history(
        &self,
        member_id: String,
    ) -> Result<Option<Vec<ConsentRecord>>, StorageError> {
        self.read(move |r| {
            if r.opt("SELECT 1 FROM member WHERE id = $1", &[&member_id])?
                .is_none()
            {
                return Ok(None);
            }
            Ok(Some(r.consent_records(&member_id)?))
        })
        .await
    }

    async fn audience(
        &self,
        purpose: Purpose,
        channel: Channel,
    ) -> Result<Vec<String>, StorageError> {
        self.read(move |r| r.audience(purpose, channel)).await
    }

    async fn set_segments(
        &self,
        member_id: String,
        segments: Vec<String>,
    ) -> Result<Option<()>, StorageError> {
        let segments = json(&segments)?;
        self.write(move |r| {
            let n = r.exec(
                "UPDATE member SET segments = $2, version = version + 1 WHERE id = $1",
                &[&member_id, &segments],
            )?;
            Ok((n == 1).then_some(()))
        })
        .await
    }

    async fn shop(&self, store_id: String) -> Result<Option<ShopFacts>, StorageError> {
        self.read(move |r| {
            let Some(data) = r.value::<String>(
                "SELECT data FROM catalog_entity
                 WHERE kind = 'store' AND id = $1 AND data IS NOT NULL",
                &[&store_id],
            )?
            else {
                return Ok(None);
            };
            let store: Store = serde_json::from_str(&data).map_err(StorageError::backend)?;
            Ok(Some(ShopFacts {
                store_id: store.id,
                tags: store.tags,
                timezone: store.timezone,
            }))
        })
        .await
    }

    async fn register_till(
        &self,
        store_id: String,
        token_hash: String,
        now_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        self.write(move |r| {
            use super::repo::Members;
            if store_id != tessera_domain::loyalty::WEB_STORE && !r.store_exists(&store_id)? {
                return Ok(None);
            }
            let till_id = format!("till-{}", uuid::Uuid::new_v4().simple());
            r.exec(
                "INSERT INTO till (id, store_id, token_hash, created_at) VALUES ($1, $2, $3, $4)",
                &[&till_id, &store_id, &token_hash, &now_ms],
            )?;
            Ok(Some(till_id))
        })
        .await
    }

    async fn till_by_token(
        &self,
        token_hash: String,
    ) -> Result<Option<(String, String)>, StorageError> {
        self.read(move |r| {
            r.opt(
                "SELECT id, store_id FROM till WHERE token_hash = $1",
                &[&token_hash],
            )?
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(StorageError::backend)?,
                    row.try_get(1).map_err(StorageError::backend)?,
                ))
            })
            .transpose()
        })
        .await
    }

    async fn publish_rule_set(
        &self,
        rules: RuleSet,
        by: String,
        note: String,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let data = json(&rules)?;
        self.write(move |r| {
            put_entity(r, EntityKind::Rules, "rules", Some(&data))?;
            let row = r.one(
                "INSERT INTO rule_version (data, published_at, published_by, note)
                 VALUES ($1, $2, $3, $4) RETURNING version",
                &[&data, &now_ms, &by, &note],
            )?;
            row.try_get(0)
                .map_err(|e| StorageError::backend(format!("reading a column: {e}")))
        })
        .await
    }

    async fn challenge_rules(&self) -> Result<Option<RuleSet>, StorageError> {
        self.read(|r| r.rule_set()).await
    }

    async fn redemption_conflicts(
        &self,
        limit: u32,
    ) -> Result<Vec<RedemptionConflict>, StorageError> {
        self.read(move |r| {
            r.rows(
                "SELECT e.coupon_id, c.offer_id, c.redeemed_store, c.redeemed_till, c.redeemed_at,
                        e.store_id, e.till_id, e.receipt, e.till_at, e.at,
                        e.id, r.outcome, r.note, r.resolved_by, r.resolved_at
                 FROM coupon_event e JOIN coupon c ON c.id = e.coupon_id
                 LEFT JOIN conflict_resolution r ON r.event_id = e.id
                 WHERE e.kind = 'conflict' ORDER BY e.at DESC, e.id DESC LIMIT $1",
                &[&i64::from(limit)],
            )?
            .iter()
            .map(|row| {
                let g = |e: postgres::Error| StorageError::backend(e);
                Ok(RedemptionConflict {
                    coupon_id: row.try_get(0).map_err(g)?,
                    offer_id: row.try_get(1).map_err(g)?,
                    winner_store_id: row
                        .try_get::<_, Option<String>>(2)
                        .map_err(g)?
                        .unwrap_or_default(),
                    winner_till_id: row
                        .try_get::<_, Option<String>>(3)
                        .map_err(g)?
                        .unwrap_or_default(),
                    winner_at: row
                        .try_get::<_, Option<i64>>(4)
                        .map_err(g)?
                        .map(rfc3339)
                        .unwrap_or_default(),
                    store_id: row.try_get(5).map_err(g)?,
                    till_id: row.try_get(6).map_err(g)?,
                    receipt: row.try_get(7).map_err(g)?,
                    redeemed_offline_at: row
                        .try_get::<_, Option<i64>>(8)
                        .map_err(g)?
                        .map(rfc3339)
                        .unwrap_or_default(),
                    reported_at: rfc3339(row.try_get(9).map_err(g)?),
                    id: crate::storage::to_u64(row.try_get(10).map_err(g)?),
                    resolution: crate::storage::resolution(
                        row.try_get(11).map_err(g)?,
                        row.try_get(12).map_err(g)?,
                        row.try_get(13).map_err(g)?,
                        row.try_get(14).map_err(g)?,
                    ),
                })
            })
            .collect()
        })
        .await
    }

    async fn event_ids(&self, member_id: String) -> Result<Vec<(String, u64)>, StorageError> {
        self.read(move |r| {
            r.rows(
                "SELECT event_id, count(*) FROM event WHERE member_id = $1
                 GROUP BY event_id ORDER BY event_id COLLATE \"C\"",
                &[&member_id],
            )?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(StorageError::backend)?,
                    to_u64(row.try_get(1).map_err(StorageError::backend)?),
                ))
            })
            .collect()
        })
        .await
    }
}

/// The database the PostgreSQL tests use: `TESSERA_TEST_POSTGRES` (scripts/pg.sh starts a
/// throwaway cluster and sets it). Unset, the tests fail and say so, unless
/// `TESSERA_SKIP_POSTGRES=1` says to skip them out loud.
pub fn test_url() -> Option<String> {
    match std::env::var("TESSERA_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("TESSERA_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: a PostgreSQL test (TESSERA_SKIP_POSTGRES=1)");
            None
        }
        _ => panic!(
            "TESSERA_TEST_POSTGRES is not set: run scripts/test.sh, or `eval \"$(scripts/pg.sh \
             start)\"` first (TESSERA_SKIP_POSTGRES=1 skips the PostgreSQL tests, loudly)"
        ),
    }
}

#[cfg(test)]
mod conformance {
    use super::PostgresStorage;

    crate::storage_conformance!(optional match super::test_url() {
        Some(url) => Some(
            PostgresStorage::temporary(&url)
                .await
                .expect("a temporary schema"),
        ),
        None => None,
    });
}
