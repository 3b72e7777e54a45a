//! Consent, preferences, analytics and the member's rights in the embedded database. Plain
//! functions over a connection or a transaction, called from `SqliteStorage`.

use crate::storage::Refusal;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_domain::api::{
    ActivityEvent, AnalyticsEvent, DeviceExport, ErasureReceipt, MemberExport, MemberState,
    Problem, codes,
};
use tessera_domain::consent::{
    Channel, ConsentGate, ConsentRecord, ConsentSource, Decision, Feature, Purpose,
};
use tessera_domain::preferences::{PreferenceChange, Preferences};

use super::StorageError;
use tessera_domain::rfc3339_ms as rfc3339;

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const COLUMNS: &str = "record_id, member_id, purpose, channel, decision, text_version,
    text_sha256, decided_at, effective_at, recorded_at, source, recorded_by, app_version";

fn read_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsentRecord> {
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
    c: &Connection,
    member_id: &str,
) -> Result<Vec<ConsentRecord>, StorageError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM consent_record WHERE member_id = ?1 ORDER BY effective_ms, seq"
    ))?;
    let rows = stmt
        .query_map([member_id], read_record)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn gate(c: &Connection, member_id: &str) -> Result<ConsentGate, StorageError> {
    Ok(ConsentGate::from_records(&consent_records(c, member_id)?))
}

pub(crate) fn preferences(c: &Connection, member_id: &str) -> Result<Preferences, StorageError> {
    let mut prefs = Preferences::default();
    let mut stmt = c.prepare_cached("SELECT field, value FROM preference WHERE member_id = ?1")?;
    let rows = stmt
        .query_map([member_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (field, value) in rows {
        let json = format!(
            r#"{{"field":{},"value":{value}}}"#,
            serde_json::Value::String(field)
        );
        let change: PreferenceChange = serde_json::from_str(&json)
            .map_err(|e| StorageError::Backend(format!("stored preference: {e}")))?;
        change.apply(&mut prefs);
    }
    Ok(prefs)
}

/// Append `record` for `member_id`, stamped `recorded_at = now`. A repeat of the same record is
/// a no-op; the same id with other content is refused.
pub(crate) fn insert_consent(
    tx: &Transaction<'_>,
    record: &ConsentRecord,
    now_ms: i64,
) -> Result<Result<ConsentRecord, Refusal>, StorageError> {
    let mut body = record.clone();
    body.recorded_at = None;
    let body_hash =
        sha256(&serde_json::to_string(&body).map_err(|e| StorageError::Backend(e.to_string()))?);
    let existing: Option<String> = tx
        .prepare_cached("SELECT body_hash FROM consent_record WHERE record_id = ?1")?
        .query_row([&record.record_id], |r| r.get(0))
        .optional()?;
    if let Some(hash) = existing {
        return Ok(if hash == body_hash {
            let stored = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM consent_record WHERE record_id = ?1"
                ))?
                .query_row([&record.record_id], read_record)?;
            Ok(stored)
        } else {
            Err(Refusal::ConsentRecordReused {
                record_id: record.record_id.clone(),
            })
        });
    }
    let effective_ms = record
        .effective_at
        .parse::<jiff::Timestamp>()
        .map_err(|e| StorageError::Backend(e.to_string()))?
        .as_millisecond();
    let mut stored = record.clone();
    stored.recorded_at = Some(rfc3339(now_ms));
    tx.prepare_cached(&format!(
        "INSERT INTO consent_record ({COLUMNS}, effective_ms, body_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?
    .execute(params![
        stored.record_id,
        stored.member_id,
        stored.purpose.as_str(),
        stored.channel.as_str(),
        stored.decision.as_str(),
        stored.text_version,
        stored.text_sha256,
        stored.decided_at,
        stored.effective_at,
        stored.recorded_at,
        stored.source.as_str(),
        stored.recorded_by,
        stored.app_version,
        effective_ms,
        body_hash
    ])?;
    Ok(Ok(stored))
}

/// Apply changed preference fields in the server's order: each write gets the next sequence.
pub(crate) fn set_preferences(
    tx: &Transaction<'_>,
    member_id: &str,
    changes: &[PreferenceChange],
) -> Result<(), StorageError> {
    for change in changes {
        let seq: i64 = tx.query_row(
            "UPDATE preference_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            [],
            |r| r.get(0),
        )?;
        let value = serde_json::to_value(change)
            .ok()
            .and_then(|v| v.get("value").cloned())
            .unwrap_or(serde_json::Value::Null);
        tx.prepare_cached(
            "INSERT OR REPLACE INTO preference (member_id, field, value, seq) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![member_id, change.field(), value.to_string(), seq])?;
    }
    Ok(())
}

/// Store a usage event if the member's ledger allows analytics now.
pub(crate) fn track(
    tx: &Transaction<'_>,
    member_id: &str,
    event: &AnalyticsEvent,
    now_ms: i64,
) -> Result<Result<(), Problem>, StorageError> {
    if !gate(tx, member_id)?.permits(Feature::Analytics) {
        return Ok(Err(Problem::new(
            422,
            codes::CONSENT_REQUIRED,
            "The member has not consented to analytics",
            None,
        )));
    }
    tx.prepare_cached(
        "INSERT INTO analytics_event (member_id, event_id, name, occurred_at, attributes, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        member_id,
        event.event_id,
        event.name,
        event.occurred_at,
        serde_json::to_string(&event.attributes).unwrap_or_else(|_| "{}".into()),
        now_ms
    ])?;
    Ok(Ok(()))
}

/// Members whose latest decision for `purpose` on `channel` is a grant: the only ones a campaign
/// may target. Ordered as the core orders a ledger (effective time, refusals last, record id).
pub(crate) fn audience(
    c: &Connection,
    purpose: Purpose,
    channel: Channel,
) -> Result<Vec<String>, StorageError> {
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

/// Everything held about the member; none if there is no such member.
pub(crate) fn export(
    c: &Connection,
    state: MemberState,
    now_ms: i64,
) -> Result<MemberExport, StorageError> {
    let member_id = state.member_id.clone();
    let member_since: String = c.query_row(
        "SELECT member_since FROM member WHERE id = ?1",
        [&member_id],
        |r| r.get(0),
    )?;
    let devices = c
        .prepare_cached(
            "SELECT id, platform, app_version, created_at FROM device WHERE member_id = ?1
             ORDER BY created_at",
        )?
        .query_map([&member_id], |r| {
            Ok(DeviceExport {
                device_id: r.get(0)?,
                platform: r.get(1)?,
                app_version: r.get(2)?,
                enrolled_at: rfc3339(r.get(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let events = c
        .prepare_cached(
            "SELECT event_id, kind, occurred_at, store_id, attributes FROM event
             WHERE member_id = ?1 ORDER BY occurred_at",
        )?
        .query_map([&member_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(event_id, kind, occurred_at, store_id, attributes)| {
            Ok(ActivityEvent {
                event_id,
                kind: serde_json::from_value(serde_json::Value::String(kind))
                    .map_err(|e| StorageError::Backend(e.to_string()))?,
                occurred_at,
                store_id,
                attributes: serde_json::from_str(&attributes)
                    .map_err(|e| StorageError::Backend(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let analytics = c
        .prepare_cached(
            "SELECT event_id, name, occurred_at, attributes FROM analytics_event
             WHERE member_id = ?1 ORDER BY occurred_at",
        )?
        .query_map([&member_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(event_id, name, occurred_at, attributes)| {
            Ok(AnalyticsEvent {
                event_id,
                name,
                occurred_at,
                attributes: serde_json::from_str(&attributes)
                    .map_err(|e| StorageError::Backend(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(MemberExport {
        generated_at: rfc3339(now_ms),
        member_since,
        member: state,
        devices,
        events,
        analytics,
    })
}

/// Erase the member: consent records are detached (each under its own random id, so they cannot
/// be linked back or to each other), idempotency answers deleted, the member and everything hanging
/// off it deleted. `None` if there is no such member.
pub(crate) fn erase(
    tx: &Transaction<'_>,
    member_id: &str,
    now_ms: i64,
    requested_by: &str,
) -> Result<Option<ErasureReceipt>, StorageError> {
    let exists: Option<i64> = tx
        .query_row("SELECT 1 FROM member WHERE id = ?1", [member_id], |r| {
            r.get(0)
        })
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let anonymised = tx.execute(
        "UPDATE consent_record SET member_id = 'erased:' || lower(hex(randomblob(16)))
         WHERE member_id = ?1",
        [member_id],
    )? as u64;
    tx.execute(
        "DELETE FROM idempotency_key WHERE member_id = ?1",
        [member_id],
    )?;
    // Coupons and purchases are the merchant's records: kept, detached from the member (a
    // coupon's code names the member, so it is wiped and can no longer be redeemed).
    tx.execute(
        "UPDATE coupon SET member_id = 'erased', code = '' WHERE member_id = ?1",
        [member_id],
    )?;
    tx.execute(
        "UPDATE purchase SET member_id = NULL WHERE member_id = ?1",
        [member_id],
    )?;
    tx.execute("DELETE FROM member WHERE id = ?1", [member_id])?;
    tx.execute(
        "INSERT INTO erasure (erased_at, consents_anonymised, requested_by) VALUES (?1, ?2, ?3)",
        params![now_ms, anonymised as i64, requested_by],
    )?;
    Ok(Some(ErasureReceipt {
        erased_at: rfc3339(now_ms),
        consent_records_anonymised: anonymised,
    }))
}
