//! Members in the embedded database: tokens, versions, idempotency keys' age, event audits
//! (enrolment, the member's state and mutations are the `service` module's, over the repository).

use rusqlite::{Connection, OptionalExtension, params};

use super::{DeviceAuth, StorageError, TokenHashes, TokenLookup};

use super::*;

impl SqliteStorage {
    pub(super) async fn lookup_access(
        &self,
        hash: String,
        now_ms: i64,
    ) -> Result<TokenLookup, StorageError> {
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

    pub(super) async fn refresh(
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

    pub(super) async fn member_version(&self, member_id: String) -> Result<i64, StorageError> {
        self.read(move |c| {
            c.prepare_cached("SELECT version FROM member WHERE id = ?1")?
                .query_row([member_id], |r| r.get(0))
                .optional()?
                .ok_or(StorageError::NotFound)
        })
        .await
    }

    pub(super) async fn purge_keys(&self, before_ms: i64) -> Result<u64, StorageError> {
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM idempotency_key WHERE created_at < ?1",
                [before_ms],
            )? as u64)
        })
        .await
    }

    pub(super) async fn event_ids(
        &self,
        member_id: String,
    ) -> Result<Vec<(String, u64)>, StorageError> {
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

pub(super) fn store_exists(c: &Connection, id: &str) -> Result<bool, StorageError> {
    Ok(c.prepare_cached(
        "SELECT 1 FROM catalog_entity WHERE kind = 'store' AND id = ?1 AND data IS NOT NULL",
    )?
    .query_row([id], |_| Ok(()))
    .optional()?
    .is_some())
}
