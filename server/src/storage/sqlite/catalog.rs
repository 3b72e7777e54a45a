//! The catalog in the embedded database: entities, the feed's sequence, whole loads and
//! streamed imports.

use rusqlite::{OptionalExtension, params};
use tessera_domain::Program;
use tessera_domain::catalog::{Catalog, Offer, Store};
use tessera_domain::catalog_reader::CatalogItem;

use super::{CatalogCounts, EntityKind, FeedItem, FeedPage, ImportError, StorageError};

use super::*;

impl SqliteStorage {
    pub(super) async fn program(&self) -> Result<Option<Program>, StorageError> {
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

    pub(super) async fn put_program(&self, program: Program) -> Result<(), StorageError> {
        let data = json(&program)?;
        self.write(move |tx| put_entity(tx, EntityKind::Program, "program", Some(&data)))
            .await
    }

    pub(super) async fn put_store(&self, store: Store) -> Result<(), StorageError> {
        let data = json(&store)?;
        self.write(move |tx| put_entity(tx, EntityKind::Store, &store.id, Some(&data)))
            .await
    }

    pub(super) async fn delete_store(&self, id: String) -> Result<(), StorageError> {
        self.write(move |tx| delete_entity(tx, EntityKind::Store, &id))
            .await
    }

    pub(super) async fn put_offer(&self, offer: Offer) -> Result<(), StorageError> {
        let data = json(&offer)?;
        self.write(move |tx| put_entity(tx, EntityKind::Offer, &offer.id, Some(&data)))
            .await
    }

    pub(super) async fn delete_offer(&self, id: String) -> Result<(), StorageError> {
        self.write(move |tx| delete_entity(tx, EntityKind::Offer, &id))
            .await
    }

    pub(super) async fn load_catalog(
        &self,
        catalog: Catalog,
    ) -> Result<CatalogCounts, StorageError> {
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

    pub(super) async fn import_catalog(
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

    pub(super) async fn feed(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<(FeedPage, i64), StorageError> {
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

    pub(super) async fn latest_sequence(&self) -> Result<i64, StorageError> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT seq FROM feed_counter WHERE id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, StorageError> {
    serde_json::to_string(v).map_err(|e| StorageError::Backend(e.to_string()))
}

pub(super) fn next_seq(tx: &rusqlite::Transaction<'_>) -> Result<i64, StorageError> {
    Ok(tx.query_row(
        "UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
        [],
        |r| r.get(0),
    )?)
}

pub(super) fn put_entity(
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
pub(super) fn delete_entity(
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
pub(super) struct CatalogLoad {
    pub(super) start: i64,
    pub(super) stores: u64,
    pub(super) offers: u64,
}

impl CatalogLoad {
    pub(super) fn start(tx: &rusqlite::Transaction<'_>) -> Result<Self, StorageError> {
        let last: i64 = tx.query_row("SELECT seq FROM feed_counter WHERE id = 1", [], |r| {
            r.get(0)
        })?;
        Ok(CatalogLoad {
            start: last + 1,
            stores: 0,
            offers: 0,
        })
    }

    pub(super) fn put(
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

    pub(super) fn finish(
        self,
        tx: &rusqlite::Transaction<'_>,
    ) -> Result<CatalogCounts, StorageError> {
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

pub(super) fn kind_of(s: &str) -> Result<EntityKind, StorageError> {
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
