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
use tessera_domain::api::{
    ActivityEvent, CampaignAudience, CampaignReport, ErasureReceipt, MemberExport, MemberState,
    Mutation, MutationResponse, PointsAdjustment, Problem, PushProvider, RedemptionConflict, codes,
};
use tessera_domain::catalog::{Catalog, Offer, Store};
use tessera_domain::catalog_reader::CatalogItem;
use tessera_domain::consent::{Channel, ConsentRecord, Purpose};
use tessera_domain::loyalty::LoyaltyRules;
use tessera_domain::rules::{RuleEvent, RuleEventKind, RuleSet};

use super::{
    CampaignTargets, CatalogCounts, DeviceAuth, EntityKind, FeedItem, FeedPage, ImportError,
    MutationOutcome, NewEnrolment, PushTarget, Storage, StorageError, StoredAnswer, TillAuth,
    TillOp, TokenHashes, TokenLookup,
};
use tessera_domain::rfc3339_ms as rfc3339;

const STEPS: &[M<'static>] = &[
    M::up(include_str!("schema.sql")),
    M::up(include_str!("schema_2_privacy.sql")),
    M::up(include_str!("schema_3_offers.sql")),
    M::up(include_str!("schema_4_coupons.sql")),
    M::up(include_str!("schema_5_loyalty.sql")),
    M::up(include_str!("schema_6_rules.sql")),
];
pub(super) static MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);
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

fn configure(conn: &Connection) -> rusqlite::Result<()> {
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

fn json<T: serde::Serialize>(v: &T) -> Result<String, StorageError> {
    serde_json::to_string(v).map_err(|e| StorageError::Backend(e.to_string()))
}

fn next_seq(tx: &rusqlite::Transaction<'_>) -> Result<i64, StorageError> {
    Ok(tx.query_row(
        "UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
        [],
        |r| r.get(0),
    )?)
}

fn put_entity(
    tx: &rusqlite::Transaction<'_>,
    kind: EntityKind,
    id: &str,
    data: Option<&str>,
) -> Result<(), StorageError> {
    let seq = next_seq(tx)?;
    tx.prepare_cached(
        "INSERT INTO catalog_entity (kind, id, seq, data) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
    )?
    .execute(params![kind.as_str(), id, seq, data])?;
    Ok(())
}

/// A deletion: tombstone a live entity; `NotFound` when there is none.
fn delete_entity(
    tx: &rusqlite::Transaction<'_>,
    kind: EntityKind,
    id: &str,
) -> Result<(), StorageError> {
    let live: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM catalog_entity WHERE kind = ?1 AND id = ?2 AND data IS NOT NULL",
            params![kind.as_str(), id],
            |r| r.get(0),
        )
        .optional()?;
    if live.is_none() {
        return Err(StorageError::NotFound);
    }
    put_entity(tx, kind, id, None)
}

/// A whole catalog replacing the one stored, entity by entity: every entity put gets a sequence
/// from `start` on, so one given twice is found by its sequence, and what the new catalog lacks
/// is what still has a sequence below `start` (tombstoned at the end). No set of ids in memory.
struct CatalogLoad {
    start: i64,
    stores: u64,
    offers: u64,
}

impl CatalogLoad {
    fn start(tx: &rusqlite::Transaction<'_>) -> Result<Self, StorageError> {
        let last: i64 = tx.query_row("SELECT seq FROM feed_counter WHERE id = 1", [], |r| {
            r.get(0)
        })?;
        Ok(CatalogLoad {
            start: last + 1,
            stores: 0,
            offers: 0,
        })
    }

    fn put(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        item: CatalogItem,
    ) -> Result<(), StorageError> {
        let (kind, id, data) = match &item {
            CatalogItem::Program(p) => (EntityKind::Program, "program", json(p)?),
            CatalogItem::Store(s) => (EntityKind::Store, s.id.as_str(), json(s)?),
            CatalogItem::Offer(o) => (EntityKind::Offer, o.id.as_str(), json(o)?),
        };
        let seq: Option<i64> = tx
            .prepare_cached("SELECT seq FROM catalog_entity WHERE kind = ?1 AND id = ?2")?
            .query_row(params![kind.as_str(), id], |r| r.get(0))
            .optional()?;
        if seq.is_some_and(|s| s >= self.start) {
            return Err(StorageError::Conflict(format!(
                "{} {id} is given twice",
                kind.as_str()
            )));
        }
        put_entity(tx, kind, id, Some(&data))?;
        match item {
            CatalogItem::Store(_) => self.stores += 1,
            CatalogItem::Offer(_) => self.offers += 1,
            CatalogItem::Program(_) => {}
        }
        Ok(())
    }

    fn finish(self, tx: &rusqlite::Transaction<'_>) -> Result<CatalogCounts, StorageError> {
        // What the new catalog lacks, tombstoned a thousand at a time: a tombstone gets a
        // sequence from `start` on, so it leaves the set; memory stays that of one batch.
        let mut deleted = 0u64;
        loop {
            let gone: Vec<(String, String)> = tx
                .prepare_cached(
                    "SELECT kind, id FROM catalog_entity
                     WHERE kind IN ('store', 'offer') AND data IS NOT NULL AND seq < ?1
                     LIMIT 1000",
                )?
                .query_map([self.start], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if gone.is_empty() {
                break;
            }
            for (kind, id) in &gone {
                put_entity(tx, kind_of(kind)?, id, None)?;
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

/// Apply `f` once per `(owner, key)` in the caller's transaction: a key seen before replays its
/// stored answer (or is refused with another body); a new one runs `f` and stores its answer.
fn once_per_key(
    tx: &rusqlite::Transaction<'_>,
    owner: &str,
    key: &str,
    body_hash: &str,
    now_ms: i64,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<StoredAnswer, StorageError>,
) -> Result<MutationOutcome, StorageError> {
    // The claim comes first and is the database's: the key's row, written before anything is
    // applied and completed with the answer in the same transaction. A concurrent request with
    // the same key, in this process or another on the same database, waits on that row until
    // the first commits (and replays its answer) or rolls back (and applies it itself); a crash
    // leaves no claim behind.
    let claimed = tx
        .prepare_cached(
            "INSERT INTO idempotency_key (member_id, key, body_hash, status, response, created_at)
             VALUES (?1, ?2, ?3, 0, '', ?4) ON CONFLICT (member_id, key) DO NOTHING",
        )?
        .execute(params![owner, key, body_hash, now_ms])?
        == 1;
    if !claimed {
        let (hash, status, body): (String, u16, String) = tx
            .prepare_cached(
                "SELECT body_hash, status, response FROM idempotency_key
                 WHERE member_id = ?1 AND key = ?2",
            )?
            .query_row(params![owner, key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        return Ok(if hash == body_hash {
            MutationOutcome::Replayed(StoredAnswer { status, body })
        } else {
            MutationOutcome::KeyReused
        });
    }
    let stored = f(tx)?;
    tx.prepare_cached(
        "UPDATE idempotency_key SET status = ?3, response = ?4 WHERE member_id = ?1 AND key = ?2",
    )?
    .execute(params![owner, key, stored.status, stored.body])?;
    Ok(MutationOutcome::Applied(stored))
}

fn answer<T: serde::Serialize>(status: u16, body: &T) -> Result<StoredAnswer, StorageError> {
    Ok(StoredAnswer {
        status,
        body: json(body)?,
    })
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn program(&self) -> Result<Option<Program>, StorageError> {
        self.read(|c| {
            let data: Option<Option<String>> = c
                .query_row(
                    "SELECT data FROM catalog_entity WHERE kind = 'program' AND id = 'program'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            match data.flatten() {
                Some(d) => serde_json::from_str(&d)
                    .map(Some)
                    .map_err(|e| StorageError::Backend(e.to_string())),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put_program(&self, program: Program) -> Result<(), StorageError> {
        let data = json(&program)?;
        self.write(move |tx| put_entity(tx, EntityKind::Program, "program", Some(&data)))
            .await
    }

    async fn put_store(&self, store: Store) -> Result<(), StorageError> {
        let data = json(&store)?;
        self.write(move |tx| put_entity(tx, EntityKind::Store, &store.id, Some(&data)))
            .await
    }

    async fn delete_store(&self, id: String) -> Result<(), StorageError> {
        self.write(move |tx| delete_entity(tx, EntityKind::Store, &id))
            .await
    }

    async fn put_offer(&self, offer: Offer) -> Result<(), StorageError> {
        let data = json(&offer)?;
        self.write(move |tx| put_entity(tx, EntityKind::Offer, &offer.id, Some(&data)))
            .await
    }

    async fn delete_offer(&self, id: String) -> Result<(), StorageError> {
        self.write(move |tx| delete_entity(tx, EntityKind::Offer, &id))
            .await
    }

    async fn load_catalog(&self, catalog: Catalog) -> Result<CatalogCounts, StorageError> {
        self.write(move |tx| {
            let mut load = CatalogLoad::start(tx)?;
            load.put(tx, CatalogItem::Program(catalog.program))?;
            for s in catalog.stores {
                load.put(tx, CatalogItem::Store(s))?;
            }
            for o in catalog.offers {
                load.put(tx, CatalogItem::Offer(o))?;
            }
            load.finish(tx)
        })
        .await
    }

    async fn import_catalog(
        &self,
        file: std::fs::File,
    ) -> Result<Result<CatalogCounts, ImportError>, StorageError> {
        self.write_unless(move |tx| {
            let mut load = CatalogLoad::start(tx)?;
            let read = tessera_domain::catalog_reader::read_catalog(
                std::io::BufReader::with_capacity(64 * 1024, file),
                |item| load.put(tx, item),
            );
            use tessera_domain::catalog_reader::ReadError;
            Ok(Err(match read {
                Ok(_) => return Ok(Ok(load.finish(tx)?)),
                Err(ReadError::Syntax(e)) => ImportError::Syntax(e),
                Err(ReadError::Invalid(e)) => ImportError::Invalid(e),
                Err(ReadError::Sink(StorageError::Conflict(detail))) => {
                    ImportError::Invalid(tessera_domain::catalog::CatalogError::new("id", detail))
                }
                Err(ReadError::Sink(e)) => return Err(e),
            }))
        })
        .await
    }

    async fn feed(&self, after: i64, limit: u32) -> Result<(FeedPage, i64), StorageError> {
        self.read(move |c| {
            // One read transaction: the page and the latest sequence agree.
            c.execute_batch("BEGIN")?;
            let result = (|| {
                let mut stmt = c.prepare_cached(
                    "SELECT seq, kind, id, data FROM catalog_entity
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(params![after, limit], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get(2)?,
                            r.get(3)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let page = rows
                    .into_iter()
                    .map(|(seq, kind, id, data)| {
                        Ok(FeedItem {
                            seq,
                            kind: kind_of(&kind)?,
                            id,
                            data,
                        })
                    })
                    .collect::<Result<Vec<_>, StorageError>>()?;
                let latest: i64 =
                    c.query_row("SELECT seq FROM feed_counter WHERE id = 1", [], |r| {
                        r.get(0)
                    })?;
                Ok((page, latest))
            })();
            c.execute_batch("COMMIT")?;
            result
        })
        .await
    }

    async fn latest_sequence(&self) -> Result<i64, StorageError> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT seq FROM feed_counter WHERE id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn enrol(&self, e: NewEnrolment) -> Result<(), StorageError> {
        self.write(move |tx| {
            let program: Option<Option<String>> = tx
                .query_row(
                    "SELECT data FROM catalog_entity WHERE kind = 'program'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if program.flatten().is_none() {
                return Err(StorageError::Conflict("no programme is set up".into()));
            }
            let now = jiff::Timestamp::now().as_millisecond();
            tx.execute(
                "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    e.member_id,
                    e.card.card_number,
                    e.card.holder_name,
                    e.card.member_since,
                    e.card.tier_label.clone().unwrap_or_default(),
                    now
                ],
            )?;
            tx.execute(
                "INSERT INTO device (id, member_id, platform, app_version, created_at,
                    access_hash, access_expires, refresh_hash, refresh_expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    e.device_id,
                    e.member_id,
                    e.platform,
                    e.app_version,
                    now,
                    e.tokens.access_hash,
                    e.tokens.access_expires_ms,
                    e.tokens.refresh_hash,
                    e.tokens.refresh_expires_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn lookup_access(&self, hash: String, now_ms: i64) -> Result<TokenLookup, StorageError> {
        self.read(move |c| {
            let row: Option<(String, String, i64)> = c
                .prepare_cached(
                    "SELECT member_id, id, access_expires FROM device WHERE access_hash = ?1",
                )?
                .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            Ok(match row {
                None => TokenLookup::Unknown,
                Some((_, _, exp)) if exp <= now_ms => TokenLookup::Expired,
                Some((member_id, device_id, _)) => TokenLookup::Valid(DeviceAuth {
                    member_id,
                    device_id,
                }),
            })
        })
        .await
    }

    async fn refresh(
        &self,
        refresh_hash: String,
        now_ms: i64,
        new: TokenHashes,
    ) -> Result<Option<DeviceAuth>, StorageError> {
        self.write(move |tx| {
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT member_id, id FROM device
                     WHERE refresh_hash = ?1 AND refresh_expires > ?2",
                    params![refresh_hash, now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((member_id, device_id)) = row else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE device SET access_hash = ?1, access_expires = ?2,
                    refresh_hash = ?3, refresh_expires = ?4 WHERE id = ?5",
                params![
                    new.access_hash,
                    new.access_expires_ms,
                    new.refresh_hash,
                    new.refresh_expires_ms,
                    device_id
                ],
            )?;
            Ok(Some(DeviceAuth {
                member_id,
                device_id,
            }))
        })
        .await
    }

    async fn member_state(&self, member_id: String) -> Result<MemberState, StorageError> {
        self.read(move |c| {
            let (card_number, holder_name, tier, segments): (String, String, String, String) = c
                .query_row(
                    "SELECT card_number, holder_name, tier, segments FROM member WHERE id = ?1",
                    [&member_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?
                .ok_or(StorageError::NotFound)?;
            let segments: Vec<String> = serde_json::from_str(&segments)
                .map_err(|e| StorageError::Backend(format!("member segments: {e}")))?;
            let favourite_store_ids = c
                .prepare_cached(
                    "SELECT store_id FROM favourite_store WHERE member_id = ?1 ORDER BY store_id",
                )?
                .query_map([&member_id], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            let events_recorded: i64 = c.query_row(
                "SELECT count(*) FROM event WHERE member_id = ?1",
                [&member_id],
                |r| r.get(0),
            )?;
            let consents = super::privacy::consent_records(c, &member_id)?;
            let now = jiff::Timestamp::now().as_millisecond();
            let wallet = super::coupons::wallet(c, &member_id, now)?;
            let (points, tier_progress) = super::loyalty::view(c, &member_id, now)?;
            // The tier as reviewed now (a hold may have ended since the last write).
            let tier = tier_progress.as_ref().map_or(tier, |p| p.tier.clone());
            let preferences = super::privacy::preferences(c, &member_id)?;
            let rules = super::rules::view(c, &member_id, &preferences.timezone, now)?;
            Ok(MemberState {
                member_id,
                card_number,
                holder_name,
                tier,
                favourite_store_ids,
                events_recorded: events_recorded as u64,
                consents,
                preferences,
                segments,
                wallet,
                points_balance: to_i64(points.balance),
                points,
                tier_progress,
                rule_events: rules.rule_events,
                joined_challenges: rules.joined,
                challenges: rules.challenges,
                challenges_as_of: rules.as_of,
                badges: rules.badges,
            })
        })
        .await
    }

    async fn apply_mutation(
        &self,
        member_id: String,
        key: String,
        body_hash: String,
        mutation: Mutation,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError> {
        self.write(move |tx| {
            once_per_key(tx, &member_id, &key, &body_hash, now_ms, |tx| match apply(
                tx, &member_id, &mutation, now_ms,
            )? {
                Ok(response) => answer(200, &response),
                Err(problem) => answer(problem.status, &problem),
            })
        })
        .await
    }

    async fn member_version(&self, member_id: String) -> Result<i64, StorageError> {
        self.read(move |c| {
            c.prepare_cached("SELECT version FROM member WHERE id = ?1")?
                .query_row([member_id], |r| r.get(0))
                .optional()?
                .ok_or(StorageError::NotFound)
        })
        .await
    }

    async fn purge_keys(&self, before_ms: i64) -> Result<u64, StorageError> {
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM idempotency_key WHERE created_at < ?1",
                [before_ms],
            )? as u64)
        })
        .await
    }

    async fn staff_consent(
        &self,
        record: ConsentRecord,
        now_ms: i64,
    ) -> Result<Option<Result<ConsentRecord, Problem>>, StorageError> {
        self.write(move |tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM member WHERE id = ?1",
                    [&record.member_id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let stored = super::privacy::insert_consent(tx, &record, now_ms)?;
            if stored.is_ok() {
                super::touch_member(tx, &record.member_id)?;
            }
            Ok(Some(stored))
        })
        .await
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
                Some(_) => Ok(Some(super::privacy::consent_records(c, &member_id)?)),
            }
        })
        .await
    }

    async fn audience(
        &self,
        purpose: Purpose,
        channel: Channel,
    ) -> Result<Vec<String>, StorageError> {
        self.read(move |c| super::privacy::audience(c, purpose, channel))
            .await
    }

    async fn export(
        &self,
        member_id: String,
        now_ms: i64,
    ) -> Result<Option<MemberExport>, StorageError> {
        let state = match self.member_state(member_id).await {
            Ok(state) => state,
            Err(StorageError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.read(move |c| super::privacy::export(c, state, now_ms).map(Some))
            .await
    }

    async fn erase(
        &self,
        member_id: String,
        now_ms: i64,
        requested_by: String,
    ) -> Result<Option<ErasureReceipt>, StorageError> {
        self.write(move |tx| super::privacy::erase(tx, &member_id, now_ms, &requested_by))
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

    async fn campaign_targets(
        &self,
        audience: CampaignAudience,
    ) -> Result<CampaignTargets, StorageError> {
        self.read(move |c| {
            let consenting = super::privacy::audience(
                c,
                tessera_domain::consent::Purpose::MarketingOffers,
                tessera_domain::consent::Channel::Push,
            )?;
            let mut targets = CampaignTargets::default();
            for member in consenting {
                let (tier, segments): (String, String) = c
                    .prepare_cached("SELECT tier, segments FROM member WHERE id = ?1")?
                    .query_row([&member], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let segments: Vec<String> = serde_json::from_str(&segments).unwrap_or_default();
                let interests = super::privacy::preferences(c, &member)?.interests;
                let fits = (audience.tiers.is_empty() || audience.tiers.contains(&tier))
                    && (audience.segments.is_empty()
                        || audience.segments.iter().any(|s| segments.contains(s)))
                    && (audience.categories.is_empty()
                        || interests.is_empty()
                        || audience.categories.iter().any(|k| interests.contains(k)));
                if !fits {
                    continue;
                }
                targets.members += 1;
                let devices = c
                    .prepare_cached(
                        "SELECT device_id, provider, token FROM push_token WHERE member_id = ?1
                         ORDER BY device_id",
                    )?
                    .query_map([&member], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                if devices.is_empty() {
                    targets.without_device += 1;
                }
                for (device_id, provider, token) in devices {
                    targets.devices.push(PushTarget {
                        member_id: member.clone(),
                        device_id,
                        provider: if provider == "apns" {
                            PushProvider::Apns
                        } else {
                            PushProvider::Fcm
                        },
                        token,
                    });
                }
            }
            Ok(targets)
        })
        .await
    }

    async fn reserve_campaign(
        &self,
        campaign_id: String,
        body: String,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        self.write(move |tx| {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO campaign (id, created_at, body, targeted, sent, failed)
                 VALUES (?1, ?2, ?3, 0, 0, 0)",
                params![campaign_id, now_ms, body],
            )? == 1)
        })
        .await
    }

    async fn record_campaign(
        &self,
        campaign_id: String,
        targets: CampaignTargets,
        outcomes: Vec<Result<(), String>>,
        now_ms: i64,
    ) -> Result<CampaignReport, StorageError> {
        self.write(move |tx| {
            let sent = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
            let failed = outcomes.len() as u64 - sent;
            tx.execute(
                "UPDATE campaign SET targeted = ?2, sent = ?3, failed = ?4 WHERE id = ?1",
                params![
                    campaign_id,
                    targets.members as i64,
                    sent as i64,
                    failed as i64
                ],
            )?;
            for (target, outcome) in targets.devices.iter().zip(&outcomes) {
                tx.prepare_cached(
                    "INSERT INTO push_delivery (campaign_id, member_id, device_id, provider, status,
                        error, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    campaign_id,
                    target.member_id,
                    target.device_id,
                    target.provider.as_str(),
                    i64::from(outcome.is_ok()),
                    outcome.as_ref().err(),
                    now_ms
                ])?;
            }
            Ok(CampaignReport {
                campaign_id,
                members: targets.members,
                without_device: targets.without_device,
                sent,
                failed,
            })
        })
        .await
    }

    async fn coupon_keys(
        &self,
        now_ms: i64,
    ) -> Result<Vec<tessera_domain::coupon::CouponKey>, StorageError> {
        self.write(move |tx| {
            super::coupons::signing_key(tx, now_ms)?;
            super::coupons::public_keys(tx)
        })
        .await
    }

    async fn shop(
        &self,
        store_id: String,
    ) -> Result<Option<tessera_domain::eligibility::ShopFacts>, StorageError> {
        self.read(move |c| super::coupons::shop(c, &store_id)).await
    }

    async fn register_till(
        &self,
        store_id: String,
        token_hash: String,
        now_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        self.write(move |tx| super::coupons::register_till(tx, &store_id, &token_hash, now_ms))
            .await
    }

    async fn till_by_token(
        &self,
        token_hash: String,
    ) -> Result<Option<(String, String)>, StorageError> {
        self.read(move |c| super::coupons::till_by_token(c, &token_hash))
            .await
    }

    async fn apply_till_op(
        &self,
        till: TillAuth,
        key: String,
        body_hash: String,
        op: TillOp,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError> {
        fn reply<T: serde::Serialize>(r: Result<T, Problem>) -> Result<StoredAnswer, StorageError> {
            match r {
                Ok(body) => answer(200, &body),
                Err(problem) => answer(problem.status, &problem),
            }
        }
        self.write(move |tx| {
            let owner = format!("till:{}", till.till_id);
            once_per_key(tx, &owner, &key, &body_hash, now_ms, |tx| match &op {
                TillOp::Redeem {
                    claims,
                    shop,
                    receipt,
                    offline_at_ms,
                } => {
                    let at = super::coupons::RedeemAt {
                        till_id: &till.till_id,
                        store_id: &till.store_id,
                        shop,
                        receipt,
                        offline_at_ms: *offline_at_ms,
                    };
                    reply(super::coupons::redeem(tx, &at, claims, now_ms)?)
                }
                TillOp::Purchase {
                    request,
                    occurred_ms,
                } => reply(super::loyalty::purchase(
                    tx,
                    &till.till_id,
                    &till.store_id,
                    request,
                    *occurred_ms,
                    now_ms,
                )?),
                TillOp::Void { receipt, at_ms } => reply(super::loyalty::void(
                    tx,
                    &till.till_id,
                    &till.store_id,
                    receipt,
                    *at_ms,
                    now_ms,
                )?),
                TillOp::Return { request } => reply(super::loyalty::return_goods(
                    tx,
                    &till.store_id,
                    request,
                    now_ms,
                )?),
            })
        })
        .await
    }

    async fn loyalty_rules(&self) -> Result<LoyaltyRules, StorageError> {
        self.read(super::loyalty::rules).await
    }

    async fn put_loyalty_rules(
        &self,
        rules: LoyaltyRules,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        self.write(move |tx| {
            if let Some(w) = &rules.web_coupon
                && super::coupons::live_offer(tx, &w.offer_id, now_ms)?.is_none()
            {
                return Ok(false);
            }
            super::loyalty::put_rules(tx, &rules, now_ms)?;
            Ok(true)
        })
        .await
    }

    async fn adjust_points(
        &self,
        member_id: String,
        adjustment: PointsAdjustment,
        now_ms: i64,
    ) -> Result<Option<Result<u64, Problem>>, StorageError> {
        self.write(move |tx| {
            if !member_exists(tx, &member_id)? {
                return Ok(None);
            }
            super::loyalty::adjust(
                tx,
                &member_id,
                adjustment.points,
                &adjustment.reason,
                now_ms,
            )
            .map(Some)
        })
        .await
    }

    async fn set_birthday(
        &self,
        member_id: String,
        birthday: Option<String>,
    ) -> Result<bool, StorageError> {
        self.write(move |tx| super::rules::set_birthday(tx, &member_id, birthday.as_deref()))
            .await
    }

    async fn put_challenge_rules(&self, rules: RuleSet) -> Result<(), StorageError> {
        let data = json(&rules)?;
        self.write(move |tx| put_entity(tx, EntityKind::Rules, "rules", Some(&data)))
            .await
    }

    async fn challenge_rules(&self) -> Result<Option<RuleSet>, StorageError> {
        self.read(super::rules::rule_set).await
    }

    async fn ingest_rule_events(
        &self,
        member_id: String,
        events: Vec<RuleEvent>,
        now_ms: i64,
    ) -> Result<Option<Result<super::rules::Ingested, Problem>>, StorageError> {
        self.write(move |tx| {
            if !member_exists(tx, &member_id)? {
                return Ok(None);
            }
            super::rules::ingest(tx, &member_id, &events, now_ms).map(Some)
        })
        .await
    }

    async fn redemption_conflicts(
        &self,
        limit: u32,
    ) -> Result<Vec<RedemptionConflict>, StorageError> {
        self.read(move |c| super::coupons::conflicts(c, limit))
            .await
    }

    async fn event_ids(&self, member_id: String) -> Result<Vec<(String, u64)>, StorageError> {
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT event_id, count(*) FROM event WHERE member_id = ?1
                 GROUP BY event_id ORDER BY event_id",
            )?;
            let rows = stmt
                .query_map([member_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

fn member_exists(c: &Connection, id: &str) -> Result<bool, StorageError> {
    Ok(c.prepare_cached("SELECT 1 FROM member WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn store_exists(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<bool, StorageError> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM catalog_entity WHERE kind = 'store' AND id = ?1 AND data IS NOT NULL",
        )?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Apply one mutation inside the caller's transaction: the member's answer, or a problem that
/// is stored as the key's answer.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    member_id: &str,
    mutation: &Mutation,
    now_ms: i64,
) -> Result<Result<MutationResponse, Problem>, StorageError> {
    let unknown_store = |id: &str| {
        Problem::new(
            422,
            codes::UNKNOWN_STORE,
            "Unknown store",
            Some(format!("there is no store {id}")),
        )
    };
    match mutation {
        Mutation::RecordEvent { event } => {
            let ActivityEvent {
                event_id,
                kind,
                occurred_at,
                store_id,
                attributes,
            } = event;
            if let Some(s) = store_id
                && !store_exists(tx, s)?
            {
                return Ok(Err(unknown_store(s)));
            }
            tx.prepare_cached(
                "INSERT INTO event (member_id, event_id, kind, occurred_at, store_id, attributes,
                    received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                member_id,
                event_id,
                kind.as_str(),
                occurred_at,
                store_id,
                json(attributes)?,
                now_ms
            ])?;
            super::rules::settle(tx, member_id, &[RuleEventKind::of_activity(*kind)], now_ms)?;
        }
        Mutation::SetFavouriteStore {
            store_id,
            favourite,
        } => {
            if *favourite {
                if !store_exists(tx, store_id)? {
                    return Ok(Err(unknown_store(store_id)));
                }
                tx.execute(
                    "INSERT OR IGNORE INTO favourite_store (member_id, store_id) VALUES (?1, ?2)",
                    params![member_id, store_id],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM favourite_store WHERE member_id = ?1 AND store_id = ?2",
                    params![member_id, store_id],
                )?;
            }
        }
        Mutation::RecordConsent { record } => {
            if let Err(problem) = super::privacy::insert_consent(tx, record, now_ms)? {
                return Ok(Err(problem));
            }
        }
        Mutation::SetPreferences { changes } => {
            super::privacy::set_preferences(tx, member_id, changes)?;
        }
        Mutation::TrackEvent { event } => {
            if let Err(problem) = super::privacy::track(tx, member_id, event, now_ms)? {
                return Ok(Err(problem));
            }
        }
        Mutation::ClipOffer { offer_id } => {
            if let Err(problem) = super::coupons::clip(tx, member_id, offer_id, now_ms)? {
                return Ok(Err(problem));
            }
        }
        Mutation::BuyReward { offer_id } => {
            if let Err(problem) = super::loyalty::buy_reward(tx, member_id, offer_id, now_ms)? {
                return Ok(Err(problem));
            }
        }
        Mutation::JoinChallenge {
            challenge_id,
            joined_at,
        } => {
            // The phone's time, back to the offline window at most, never after the server's.
            let at = tessera_domain::catalog::parse_instant("joined_at", joined_at)
                .map_or(now_ms, |t| t.as_millisecond())
                .clamp(now_ms - tessera_domain::api::OFFLINE_WINDOW_MS, now_ms);
            if let Err(problem) = super::rules::join(tx, member_id, challenge_id, at)? {
                return Ok(Err(problem));
            }
            super::rules::settle(tx, member_id, &[], now_ms)?;
        }
        Mutation::SetPushToken {
            device_id,
            provider,
            token,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO push_token (device_id, member_id, provider, token, updated_at)
                 SELECT id, member_id, ?3, ?4, ?5 FROM device WHERE id = ?1 AND member_id = ?2",
            )?
            .execute(params![device_id, member_id, provider.as_str(), token, now_ms])?;
        }
    }
    // Analytics do not change what GET /v1/me shows: no new member version for them.
    let changes_state = !matches!(
        mutation,
        Mutation::TrackEvent { .. } | Mutation::SetPushToken { .. }
    );
    let sequence: i64 = tx
        .prepare_cached(
            "UPDATE member SET mutations = mutations + 1, version = version + ?2 WHERE id = ?1
             RETURNING mutations",
        )?
        .query_row(params![member_id, i64::from(changes_state)], |r| r.get(0))
        .optional()?
        .ok_or(StorageError::NotFound)?;
    Ok(Ok(MutationResponse {
        applied_at: rfc3339(now_ms),
        sequence: sequence as u64,
    }))
}

#[cfg(test)]
mod conformance {
    use super::SqliteStorage;

    crate::storage_conformance!(SqliteStorage::temporary().expect("a temporary database"));
}
