//! The repository ([`crate::storage::repo`]) over one SQLite connection: inside the writer's
//! transaction for a business transaction, or on a read-only connection for a snapshot (where a
//! write fails).

mod analytics;
mod campaigns;
mod challenges;
mod coupons;
mod journeys;
mod ledger;
mod privacy;
mod staff;
mod wallet;
mod webhooks;

pub(crate) use privacy::{audience, consent_records};

use rusqlite::{Connection, OptionalExtension, params};
use tessera_domain::api::{ActivityEvent, DeviceExport, EventKind, PushProvider};

use crate::storage::repo::{Keys, MemberRow, Members, RepoResult};
use crate::storage::{NewEnrolment, StorageError, StoredAnswer};
use tessera_domain::rfc3339_ms as rfc3339;

/// The repository over `c` (a transaction derefs to its connection).
#[derive(Debug)]
pub(crate) struct SqliteRepo<'c> {
    pub(crate) c: &'c Connection,
}

pub(super) use crate::storage::{to_i64, to_u64};

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, StorageError> {
    serde_json::to_string(v).map_err(StorageError::backend)
}

impl SqliteRepo<'_> {
    /// The member's state changed: their wallet passes must be looked at again.
    pub(super) fn stale_passes_of(&mut self, member_id: &str) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE wallet_pass SET stale = stale + 1 WHERE member_id = ?1")?
            .execute([member_id])?;
        Ok(())
    }
}

impl Keys for SqliteRepo<'_> {
    fn claim_key(
        &mut self,
        owner: &str,
        key: &str,
        body_hash: &str,
        now_ms: i64,
    ) -> RepoResult<bool> {
        // The row is the claim: a concurrent writer (here, or in another process) waits on the
        // database's write lock until this transaction ends.
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO idempotency_key (member_id, key, body_hash, status, response, created_at)
                 VALUES (?1, ?2, ?3, 0, '', ?4) ON CONFLICT (member_id, key) DO NOTHING",
            )?
            .execute(params![owner, key, body_hash, now_ms])?
            == 1)
    }

    fn stored_key(&mut self, owner: &str, key: &str) -> RepoResult<(String, StoredAnswer)> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT body_hash, status, response FROM idempotency_key
                 WHERE member_id = ?1 AND key = ?2",
            )?
            .query_row(params![owner, key], |r| {
                Ok((
                    r.get(0)?,
                    StoredAnswer {
                        status: r.get(1)?,
                        body: r.get(2)?,
                    },
                ))
            })?)
    }

    fn complete_key(&mut self, owner: &str, key: &str, answer: &StoredAnswer) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE idempotency_key SET status = ?3, response = ?4
                 WHERE member_id = ?1 AND key = ?2",
            )?
            .execute(params![owner, key, answer.status, answer.body])?;
        Ok(())
    }
}

impl Members for SqliteRepo<'_> {
    fn program_exists(&mut self) -> RepoResult<bool> {
        let program: Option<Option<String>> = self
            .c
            .query_row(
                "SELECT data FROM catalog_entity WHERE kind = 'program'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(program.flatten().is_some())
    }

    fn insert_member(&mut self, e: &NewEnrolment, now_ms: i64) -> RepoResult<()> {
        self.c.execute(
            "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.member_id,
                e.card.card_number,
                e.card.holder_name,
                e.card.member_since,
                e.card.tier_label.clone().unwrap_or_default(),
                now_ms
            ],
        )?;
        self.c.execute(
            "INSERT INTO device (id, member_id, platform, app_version, created_at,
                access_hash, access_expires, refresh_hash, refresh_expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                e.device_id,
                e.member_id,
                e.platform,
                e.app_version,
                now_ms,
                e.tokens.access_hash,
                e.tokens.access_expires_ms,
                e.tokens.refresh_hash,
                e.tokens.refresh_expires_ms
            ],
        )?;
        Ok(())
    }

    fn member(&mut self, member_id: &str) -> RepoResult<Option<MemberRow>> {
        type Row = (
            String,
            String,
            String,
            String,
            i64,
            i64,
            String,
            Option<String>,
        );
        let row: Option<Row> = self
            .c
            .prepare_cached(
                "SELECT card_number, holder_name, member_since, tier, tier_since, created_at,
                    segments, birthday FROM member WHERE id = ?1",
            )?
            .query_row([member_id], |r| r.try_into())
            .optional()?;
        row.map(
            |(card_number, holder_name, member_since, tier, since, created, segments, birthday)| {
                Ok(MemberRow {
                    card_number,
                    holder_name,
                    member_since,
                    tier,
                    tier_since_ms: since,
                    created_ms: created,
                    segments: serde_json::from_str(&segments)
                        .map_err(|e| StorageError::backend(format!("member segments: {e}")))?,
                    birthday,
                })
            },
        )
        .transpose()
    }

    fn member_by_card(&mut self, card_number: &str) -> RepoResult<Option<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT id FROM member WHERE card_number = ?1")?
            .query_row([card_number], |r| r.get(0))
            .optional()?)
    }

    fn touch_member(&mut self, member_id: &str) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE member SET version = version + 1 WHERE id = ?1")?
            .execute([member_id])?;
        self.stale_passes_of(member_id)
    }

    fn count_mutation(&mut self, member_id: &str, changes_state: bool) -> RepoResult<Option<u64>> {
        let sequence: Option<i64> = self
            .c
            .prepare_cached(
                "UPDATE member SET mutations = mutations + 1, version = version + ?2 WHERE id = ?1
                 RETURNING mutations",
            )?
            .query_row(params![member_id, i64::from(changes_state)], |r| r.get(0))
            .optional()?;
        if changes_state && sequence.is_some() {
            self.stale_passes_of(member_id)?;
        }
        Ok(sequence.map(to_u64))
    }

    fn set_tier(&mut self, member_id: &str, tier: &str, since_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE member SET tier = ?2, tier_since = ?3 WHERE id = ?1")?
            .execute(params![member_id, tier, since_ms])?;
        Ok(())
    }

    fn set_birthday(&mut self, member_id: &str, birthday: Option<&str>) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached("UPDATE member SET birthday = ?2 WHERE id = ?1")?
            .execute(params![member_id, birthday])?
            == 1)
    }

    fn store_exists(&mut self, store_id: &str) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT 1 FROM catalog_entity WHERE kind = 'store' AND id = ?1 AND data IS NOT NULL",
            )?
            .query_row([store_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn favourites(&mut self, member_id: &str) -> RepoResult<Vec<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT store_id FROM favourite_store WHERE member_id = ?1 ORDER BY store_id",
            )?
            .query_map([member_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn set_favourite(&mut self, member_id: &str, store_id: &str, on: bool) -> RepoResult<()> {
        let sql = if on {
            "INSERT OR IGNORE INTO favourite_store (member_id, store_id) VALUES (?1, ?2)"
        } else {
            "DELETE FROM favourite_store WHERE member_id = ?1 AND store_id = ?2"
        };
        self.c
            .prepare_cached(sql)?
            .execute(params![member_id, store_id])?;
        Ok(())
    }

    fn insert_activity(
        &mut self,
        member_id: &str,
        event: &ActivityEvent,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO event (member_id, event_id, kind, occurred_at, store_id, attributes,
                    received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                member_id,
                event.event_id,
                event.kind.as_str(),
                event.occurred_at,
                event.store_id,
                json(&event.attributes)?,
                now_ms
            ])?;
        Ok(())
    }

    fn activity(&mut self, member_id: &str) -> RepoResult<Vec<ActivityEvent>> {
        let mut stmt = self.c.prepare_cached(
            "SELECT event_id, kind, occurred_at, store_id, attributes FROM event
             WHERE member_id = ?1 ORDER BY occurred_at",
        )?;
        let rows = stmt.query_map([member_id], |r| {
            <(String, String, String, Option<String>, String)>::try_from(r)
        })?;
        let mut events = Vec::new();
        for row in rows {
            let (event_id, kind, occurred_at, store_id, attributes) = row?;
            events.push(ActivityEvent {
                event_id,
                kind: EventKind::parse(&kind)
                    .ok_or_else(|| StorageError::backend(format!("unknown event kind {kind}")))?,
                occurred_at,
                store_id,
                attributes: serde_json::from_str(&attributes).map_err(StorageError::backend)?,
            });
        }
        Ok(events)
    }

    fn activity_count(&mut self, member_id: &str) -> RepoResult<u64> {
        let n: i64 = self
            .c
            .prepare_cached("SELECT count(*) FROM event WHERE member_id = ?1")?
            .query_row([member_id], |r| r.get(0))?;
        Ok(to_u64(n))
    }

    fn set_push_token(
        &mut self,
        member_id: &str,
        device_id: &str,
        provider: PushProvider,
        token: &str,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT OR REPLACE INTO push_token (device_id, member_id, provider, token, updated_at)
                 SELECT id, member_id, ?3, ?4, ?5 FROM device WHERE id = ?1 AND member_id = ?2",
            )?
            .execute(params![device_id, member_id, provider.as_str(), token, now_ms])?;
        Ok(())
    }

    fn push_tokens(&mut self, member_id: &str) -> RepoResult<Vec<(String, PushProvider, String)>> {
        let mut stmt = self.c.prepare_cached(
            "SELECT device_id, provider, token FROM push_token WHERE member_id = ?1
             ORDER BY device_id",
        )?;
        let rows = stmt
            .query_map([member_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<(String, String, String)>, _>>()?;
        rows.into_iter()
            .map(|(device, provider, token)| {
                let provider = PushProvider::parse(&provider)
                    .ok_or_else(|| StorageError::backend(format!("push provider {provider}")))?;
                Ok((device, provider, token))
            })
            .collect()
    }

    fn devices(&mut self, member_id: &str) -> RepoResult<Vec<DeviceExport>> {
        let mut stmt = self.c.prepare_cached(
            "SELECT id, platform, app_version, created_at FROM device WHERE member_id = ?1
             ORDER BY created_at",
        )?;
        let rows = stmt
            .query_map([member_id], |r| {
                Ok(DeviceExport {
                    device_id: r.get(0)?,
                    platform: r.get(1)?,
                    app_version: r.get(2)?,
                    enrolled_at: rfc3339(r.get(3)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
