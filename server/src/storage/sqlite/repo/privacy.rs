//! Consent records, preferences, analytics and erasure in SQLite.

use rusqlite::{OptionalExtension, params};
use tessera_domain::api::AnalyticsEvent;
use tessera_domain::consent::{Channel, ConsentRecord, ConsentSource, Decision, Purpose};

use super::SqliteRepo;
use crate::storage::StorageError;
use crate::storage::repo::{Privacy, RepoResult};

const COLUMNS: &str = "record_id, member_id, purpose, channel, decision, text_version,
    text_sha256, decided_at, effective_at, recorded_at, source, recorded_by, app_version";

pub(crate) fn read_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsentRecord> {
    let bad = |i: usize| {
        rusqlite::Error::InvalidColumnType(i, "enum".into(), rusqlite::types::Type::Text)
    };
    Ok(ConsentRecord {
        record_id: r.get(0)?,
        member_id: r.get(1)?,
        purpose: Purpose::parse(&r.get::<_, String>(2)?).ok_or_else(|| bad(2))?,
        channel: Channel::parse(&r.get::<_, String>(3)?).ok_or_else(|| bad(3))?,
        decision: Decision::parse(&r.get::<_, String>(4)?).ok_or_else(|| bad(4))?,
        text_version: r.get(5)?,
        text_sha256: r.get(6)?,
        decided_at: r.get(7)?,
        effective_at: r.get(8)?,
        recorded_at: r.get(9)?,
        source: ConsentSource::parse(&r.get::<_, String>(10)?).ok_or_else(|| bad(10))?,
        recorded_by: r.get(11)?,
        app_version: r.get(12)?,
    })
}

/// The member's ledger, oldest first.
pub(crate) fn consent_records(
    c: &rusqlite::Connection,
    member_id: &str,
) -> RepoResult<Vec<ConsentRecord>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM consent_record WHERE member_id = ?1 ORDER BY effective_ms, seq"
    ))?;
    let rows = stmt
        .query_map([member_id], read_record)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl Privacy for SqliteRepo<'_> {
    fn consent_records(&mut self, member_id: &str) -> RepoResult<Vec<ConsentRecord>> {
        consent_records(self.c, member_id)
    }

    fn consent_record(&mut self, record_id: &str) -> RepoResult<Option<(ConsentRecord, String)>> {
        Ok(self
            .c
            .prepare_cached(&format!(
                "SELECT {COLUMNS}, body_hash FROM consent_record WHERE record_id = ?1"
            ))?
            .query_row([record_id], |r| Ok((read_record(r)?, r.get(13)?)))
            .optional()?)
    }

    fn insert_consent(
        &mut self,
        record: &ConsentRecord,
        effective_ms: i64,
        body_hash: &str,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(&format!(
                "INSERT INTO consent_record ({COLUMNS}, effective_ms, body_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ))?
            .execute(params![
                record.record_id,
                record.member_id,
                record.purpose.as_str(),
                record.channel.as_str(),
                record.decision.as_str(),
                record.text_version,
                record.text_sha256,
                record.decided_at,
                record.effective_at,
                record.recorded_at,
                record.source.as_str(),
                record.recorded_by,
                record.app_version,
                effective_ms,
                body_hash
            ])?;
        Ok(())
    }

    fn preference_values(&mut self, member_id: &str) -> RepoResult<Vec<(String, String)>> {
        Ok(self
            .c
            .prepare_cached("SELECT field, value FROM preference WHERE member_id = ?1")?
            .query_map([member_id], |r| r.try_into())?
            .collect::<Result<_, _>>()?)
    }

    fn field_values(&mut self, field: &str) -> RepoResult<Vec<(String, String)>> {
        Ok(self
            .c
            .prepare_cached("SELECT member_id, value FROM preference WHERE field = ?1")?
            .query_map([field], |r| r.try_into())?
            .collect::<Result<_, _>>()?)
    }

    fn set_preference(&mut self, member_id: &str, field: &str, value: &str) -> RepoResult<()> {
        let seq: i64 = self.c.query_row(
            "UPDATE preference_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            [],
            |r| r.get(0),
        )?;
        self.c
            .prepare_cached(
                "INSERT OR REPLACE INTO preference (member_id, field, value, seq)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![member_id, field, value, seq])?;
        Ok(())
    }

    fn insert_analytics(
        &mut self,
        member_id: &str,
        event: &AnalyticsEvent,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO analytics_event (member_id, event_id, name, occurred_at, attributes,
                   received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                member_id,
                event.event_id,
                event.name,
                event.occurred_at,
                serde_json::to_string(&event.attributes).unwrap_or_else(|_| "{}".into()),
                now_ms
            ])?;
        Ok(())
    }

    fn analytics(&mut self, member_id: &str) -> RepoResult<Vec<AnalyticsEvent>> {
        let mut stmt = self.c.prepare_cached(
            "SELECT event_id, name, occurred_at, attributes FROM analytics_event
             WHERE member_id = ?1 ORDER BY occurred_at",
        )?;
        let rows = stmt
            .query_map([member_id], |r| {
                <(String, String, String, String)>::try_from(r)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(event_id, name, occurred_at, attributes)| {
                Ok(AnalyticsEvent {
                    event_id,
                    name,
                    occurred_at,
                    attributes: serde_json::from_str(&attributes).map_err(StorageError::backend)?,
                })
            })
            .collect()
    }

    fn audience(&mut self, purpose: Purpose, channel: Channel) -> RepoResult<Vec<String>> {
        audience(self.c, purpose, channel)
    }

    fn erase_member(
        &mut self,
        member_id: &str,
        now_ms: i64,
        requested_by: &str,
    ) -> RepoResult<u64> {
        let c = self.c;
        let anonymised = c.execute(
            "UPDATE consent_record SET member_id = 'erased:' || lower(hex(randomblob(16)))
             WHERE member_id = ?1",
            [member_id],
        )? as u64;
        c.execute(
            "DELETE FROM idempotency_key WHERE member_id = ?1",
            [member_id],
        )?;
        // Coupons and purchases are the merchant's records: kept, detached from the member (a
        // coupon's code names the member, so it is wiped and can no longer be redeemed).
        c.execute(
            "UPDATE coupon SET member_id = 'erased', code = '' WHERE member_id = ?1",
            [member_id],
        )?;
        c.execute(
            "UPDATE purchase SET member_id = NULL WHERE member_id = ?1",
            [member_id],
        )?;
        // Their devices' certificates: revoked (tills refuse their codes), detached.
        c.execute(
            "UPDATE device_certificate SET revoked_at = coalesce(revoked_at, ?2), member_id = NULL
             WHERE member_id = ?1",
            params![member_id, now_ms],
        )?;
        c.execute("DELETE FROM member WHERE id = ?1", [member_id])?;
        c.execute(
            "INSERT INTO erasure (erased_at, consents_anonymised, requested_by) VALUES (?1, ?2, ?3)",
            params![now_ms, anonymised as i64, requested_by],
        )?;
        Ok(anonymised)
    }
}

/// Members whose latest decision for `purpose` on `channel` is a grant: the only ones a campaign
/// may target. Ordered as the core orders a ledger (effective time, refusals last, record id).
pub(crate) fn audience(
    c: &rusqlite::Connection,
    purpose: Purpose,
    channel: Channel,
) -> RepoResult<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT member_id FROM (
             SELECT member_id, decision, row_number() OVER (
                 PARTITION BY member_id
                 ORDER BY effective_ms DESC, decision != 'granted' DESC, record_id DESC) AS latest
             FROM consent_record
             WHERE purpose = ?1 AND channel = ?2 AND member_id NOT LIKE 'erased:%')
         WHERE latest = 1 AND decision = 'granted' ORDER BY member_id",
    )?;
    let rows = stmt
        .query_map(params![purpose.as_str(), channel.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}
