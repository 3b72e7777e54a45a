//! The SQL of consent and preferences: the local ledger, the preference centre, notification
//! claims, analytics, the offers list and the device's export. Each function runs inside the
//! caller's transaction or read.

use crate::clock::now_ms;
use crate::invalid;
use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::api::{AnalyticsEvent, MemberState, Mutation};
use crate::catalog::{Offer, check_id};
use crate::consent::{
    Channel, ConsentGate, ConsentRecord, ConsentSource, ConsentStatus, ConsentText, Decision,
    Feature, Purpose, current_state,
};
use crate::db::StorageError;
use crate::outbox::enqueue;
use crate::preferences::{
    NotificationRequest, NotificationVerdict, PreferenceChange, Preferences, SentCounts,
    day_and_week_start, decide,
};
use crate::{Error, Result};

fn st(e: rusqlite::Error) -> StorageError {
    StorageError::from(e)
}

fn rfc3339(ms: i64) -> Result<String> {
    jiff::Timestamp::from_millisecond(ms)
        .map(|_| crate::rfc3339_ms(ms))
        .map_err(|_| Error::InvalidInput {
            field: "clock",
            reason: "the device clock is out of range".into(),
        })
}

fn queue(tx: &Transaction<'_>, mutation: &Mutation, kind: &str, now: i64) -> Result<()> {
    mutation.validate().map_err(invalid)?;
    let body = serde_json::to_string(mutation).map_err(|e| Error::InvalidInput {
        field: "action",
        reason: e.to_string(),
    })?;
    enqueue(tx, kind, &body, now)?;
    Ok(())
}

fn member_id(conn: &Connection) -> Result<String> {
    conn.query_row("SELECT member_id FROM session WHERE id = 1", [], |r| {
        r.get(0)
    })
    .optional()
    .map_err(st)?
    .ok_or(Error::NotEnrolled)
}

/// One decision the member takes on a consent screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ConsentChoice {
    pub purpose: Purpose,
    pub channel: Channel,
    pub decision: Decision,
}

const RECORD_COLUMNS: &str = "record_id, member_id, purpose, channel, decision, text_version,
    text_sha256, decided_at, effective_at, recorded_at, source, recorded_by, app_version";

fn read_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ConsentRecord>> {
    let purpose: String = r.get(2)?;
    let channel: String = r.get(3)?;
    let decision: String = r.get(4)?;
    let source: String = r.get(10)?;
    let (Some(purpose), Some(channel), Some(decision), Some(source)) = (
        Purpose::parse(&purpose),
        Channel::parse(&channel),
        Decision::parse(&decision),
        ConsentSource::parse(&source),
    ) else {
        return Ok(None);
    };
    Ok(Some(ConsentRecord {
        record_id: r.get(0)?,
        member_id: r.get(1)?,
        purpose,
        channel,
        decision,
        text_version: r.get(5)?,
        text_sha256: r.get(6)?,
        decided_at: r.get(7)?,
        effective_at: r.get(8)?,
        recorded_at: r.get(9)?,
        source,
        recorded_by: r.get(11)?,
        app_version: r.get(12)?,
    }))
}

/// The current member's ledger, oldest first (by effective time).
pub(crate) fn consent_history(conn: &Connection) -> Result<Vec<ConsentRecord>, StorageError> {
    let Some(member) = conn
        .query_row("SELECT member_id FROM session WHERE id = 1", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map_err(st)?
    else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM consent_record WHERE member_id = ?1
             ORDER BY effective_ms, seq"
        ))
        .map_err(st)?;
    let rows = stmt
        .query_map([member], read_record)
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    rows.into_iter()
        .map(|r| r.ok_or(StorageError::Corrupt))
        .collect()
}

pub(crate) fn consent_state(conn: &Connection) -> Result<Vec<ConsentStatus>, StorageError> {
    Ok(current_state(&consent_history(conn)?))
}

pub(crate) fn gate(conn: &Connection) -> Result<ConsentGate> {
    Ok(ConsentGate::from_state(&consent_state(conn)?))
}

fn insert_record(tx: &Transaction<'_>, r: &ConsentRecord) -> Result<bool> {
    let effective_ms = r
        .effective_at
        .parse::<jiff::Timestamp>()
        .map_err(|_| Error::InvalidInput {
            field: "consent.effective_at",
            reason: "must be an RFC 3339 instant".into(),
        })?
        .as_millisecond();
    let inserted = tx
        .prepare_cached(&format!(
            "INSERT OR IGNORE INTO consent_record ({RECORD_COLUMNS}, effective_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))
        .map_err(st)?
        .execute(params![
            r.record_id,
            r.member_id,
            r.purpose.as_str(),
            r.channel.as_str(),
            r.decision.as_str(),
            r.text_version,
            r.text_sha256,
            r.decided_at,
            r.effective_at,
            r.recorded_at,
            r.source.as_str(),
            r.recorded_by,
            r.app_version,
            effective_ms
        ])
        .map_err(st)?;
    Ok(inserted == 1)
}

/// Record the member's decisions, shown `text`, now: each is a ledger record and an outbox row,
/// all in the caller's transaction. Returns the records.
pub(crate) fn record_consents(
    tx: &Transaction<'_>,
    choices: &[ConsentChoice],
    text: &ConsentText,
) -> Result<Vec<ConsentRecord>> {
    let member = member_id(tx)?;
    if choices.is_empty() || choices.len() > 20 {
        return Err(Error::InvalidInput {
            field: "choices",
            reason: "must hold 1 to 20 decisions".into(),
        });
    }
    for (i, c) in choices.iter().enumerate() {
        if choices[..i]
            .iter()
            .any(|d| (d.purpose, d.channel) == (c.purpose, c.channel))
        {
            return Err(Error::InvalidInput {
                field: "choices",
                reason: "decides the same purpose and channel twice".into(),
            });
        }
    }
    if text.text.trim().is_empty() || text.text.len() > 100_000 {
        return Err(Error::InvalidInput {
            field: "text.text",
            reason: "must be the wording shown, 1 byte to 100 KB".into(),
        });
    }
    check_id("text.version", &text.version).map_err(invalid)?;
    let (offset, last, app_version): (Option<i64>, Option<i64>, Option<String>) = tx
        .query_row(
            "SELECT clock_offset_ms, consent_clock_ms, app_version FROM sync_state WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(st)?;
    let device_now = now_ms();
    // The server's clock as best known; never before this device's previous record, so that the
    // member's own decisions keep their order even if the device clock goes back.
    let mut effective = device_now.saturating_add(offset.unwrap_or(0));
    if let Some(last) = last {
        effective = effective.max(last + 1);
    }
    let decided_at = rfc3339(device_now)?;
    let sha = text.sha256();
    let mut out = Vec::with_capacity(choices.len());
    for choice in choices {
        let record = ConsentRecord {
            record_id: format!("c-{}", uuid::Uuid::new_v4().simple()),
            member_id: member.clone(),
            purpose: choice.purpose,
            channel: choice.channel,
            decision: choice.decision,
            text_version: text.version.clone(),
            text_sha256: sha.clone(),
            decided_at: decided_at.clone(),
            effective_at: rfc3339(effective)?,
            recorded_at: None,
            source: ConsentSource::AppScreen,
            recorded_by: None,
            app_version: app_version.clone(),
        };
        let mutation = Mutation::RecordConsent {
            record: record.clone(),
        };
        mutation.validate().map_err(invalid)?;
        insert_record(tx, &record)?;
        queue(tx, &mutation, "record_consent", device_now)?;
        out.push(record);
    }
    tx.execute(
        "UPDATE sync_state SET consent_clock_ms = ?1 WHERE id = 1",
        [effective],
    )
    .map_err(st)?;
    Ok(out)
}

/// Withdraw every consent currently granted, in one transaction.
pub(crate) fn withdraw_all(tx: &Transaction<'_>, text: &ConsentText) -> Result<Vec<ConsentRecord>> {
    let granted: Vec<ConsentChoice> = consent_state(tx)?
        .into_iter()
        .filter(|s| s.allowed)
        .map(|s| ConsentChoice {
            purpose: s.purpose,
            channel: s.channel,
            decision: Decision::Withdrawn,
        })
        .collect();
    if granted.is_empty() {
        member_id(tx)?;
        return Ok(Vec::new());
    }
    record_consents(tx, &granted, text)
}

// ----- preferences -----

fn stored_preferences(conn: &Connection) -> Result<Preferences, StorageError> {
    let mut prefs = Preferences::default();
    let mut stmt = conn
        .prepare_cached("SELECT field, value FROM preference")
        .map_err(st)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    for (field, value) in rows {
        let json = format!(
            r#"{{"field":{},"value":{value}}}"#,
            serde_json::Value::String(field)
        );
        let change: PreferenceChange =
            serde_json::from_str(&json).map_err(|_| StorageError::Corrupt)?;
        change.apply(&mut prefs);
    }
    Ok(prefs)
}

pub(crate) fn preferences(conn: &Connection) -> Result<Preferences, StorageError> {
    stored_preferences(conn)
}

fn write_field(tx: &Transaction<'_>, change: &PreferenceChange, now: i64) -> Result<()> {
    let value = serde_json::to_value(change)
        .ok()
        .and_then(|v| v.get("value").cloned())
        .unwrap_or(serde_json::Value::Null);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO preference (field, value, updated_at) VALUES (?1, ?2, ?3)",
    )
    .map_err(st)?
    .execute(params![change.field(), value.to_string(), now])
    .map_err(st)?;
    Ok(())
}

/// Store the member's preferences; only the changed fields are sent. Returns them.
pub(crate) fn set_preferences(tx: &Transaction<'_>, new: &Preferences) -> Result<Preferences> {
    member_id(tx)?;
    new.validate().map_err(invalid)?;
    let old = stored_preferences(tx)?;
    let changes = PreferenceChange::diff(&old, new);
    if changes.is_empty() {
        return Ok(old);
    }
    let now = now_ms();
    for c in &changes {
        write_field(tx, c, now)?;
    }
    queue(
        tx,
        &Mutation::SetPreferences { changes },
        "set_preferences",
        now,
    )?;
    Ok(stored_preferences(tx)?)
}

/// Preference fields changed on this device and not yet acknowledged by the server.
fn pending_fields(conn: &Connection) -> Result<BTreeSet<&'static str>> {
    let mut stmt = conn
        .prepare_cached("SELECT body FROM outbox WHERE kind = 'set_preferences'")
        .map_err(st)?;
    let bodies = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    let mut fields = BTreeSet::new();
    for body in bodies {
        if let Ok(Mutation::SetPreferences { changes }) = serde_json::from_str(&body) {
            fields.extend(changes.iter().map(PreferenceChange::field));
        }
    }
    Ok(fields)
}

/// Take the server's consent ledger and preferences: records this device lacks are added (its
/// own get their `recorded_at`), and each preference field with no unsent local change takes the
/// server's value.
pub(crate) fn merge_from_server(tx: &Transaction<'_>, state: &MemberState) -> Result<()> {
    for record in &state.consents {
        if record.member_id != state.member_id {
            continue;
        }
        if !insert_record(tx, record)? && record.recorded_at.is_some() {
            tx.prepare_cached(
                "UPDATE consent_record SET recorded_at = ?2
                 WHERE record_id = ?1 AND recorded_at IS NULL",
            )
            .map_err(st)?
            .execute(params![record.record_id, record.recorded_at])
            .map_err(st)?;
        }
    }
    let pending = pending_fields(tx)?;
    let now = now_ms();
    let local = stored_preferences(tx)?;
    for change in PreferenceChange::diff(&local, &state.preferences) {
        if !pending.contains(change.field()) {
            write_field(tx, &change, now)?;
        }
    }
    Ok(())
}

// ----- gated features -----

/// Whether a notification may be shown now; a `Send` is counted against the caps in the same
/// transaction, so two racing callers cannot both pass a cap of one.
pub(crate) fn claim_notification(
    tx: &Transaction<'_>,
    gate: ConsentGate,
    request: &NotificationRequest,
) -> Result<NotificationVerdict> {
    claim_at(tx, gate, request, jiff::Timestamp::now(), None, None)
}

/// [`claim_notification`] at a given instant, counted against `store`'s cooldown when given.
pub(crate) fn claim_at(
    tx: &Transaction<'_>,
    gate: ConsentGate,
    request: &NotificationRequest,
    now: jiff::Timestamp,
    store: Option<&str>,
    offer: Option<&str>,
) -> Result<NotificationVerdict> {
    for c in &request.categories {
        check_id("request.categories", c).map_err(invalid)?;
    }
    let prefs = stored_preferences(tx)?;
    let tz = jiff::tz::TimeZone::get(&prefs.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let (day, week) = day_and_week_start(now, &tz);
    let (today, this_week): (u32, u32) = tx
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE sent_at >= ?2), count(*) FROM notification_log
             WHERE channel = ?1 AND sent_at >= ?3",
        )
        .map_err(st)?
        .query_row(params![request.channel.as_str(), day, week.min(day)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(st)?;
    let verdict = decide(request, gate, &prefs, SentCounts { today, this_week }, now);
    if verdict == NotificationVerdict::Send {
        tx.prepare_cached(
            "INSERT INTO notification_log (channel, purpose, sent_at, store_id, offer_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(st)?
        .execute(params![
            request.channel.as_str(),
            request.purpose.as_str(),
            now.as_millisecond(),
            store,
            offer
        ])
        .map_err(st)?;
        // Caps and cooldowns look back a week at most.
        tx.execute(
            "DELETE FROM notification_log WHERE sent_at < ?1",
            [now.as_millisecond() - 8 * 86_400_000],
        )
        .map_err(st)?;
    }
    Ok(verdict)
}

/// A usage event, queued only with analytics consent: returns whether it was kept.
pub(crate) fn track(
    tx: &Transaction<'_>,
    gate: ConsentGate,
    name: &str,
    attributes: BTreeMap<String, String>,
) -> Result<bool> {
    member_id(tx)?;
    let now = now_ms();
    let event = AnalyticsEvent {
        event_id: format!("a-{}", uuid::Uuid::new_v4().simple()),
        name: name.to_owned(),
        occurred_at: rfc3339(now)?,
        attributes,
    };
    let mutation = Mutation::TrackEvent { event };
    mutation.validate().map_err(invalid)?;
    if !gate.permits(Feature::Analytics) {
        return Ok(false);
    }
    queue(tx, &mutation, "track_event", now)?;
    Ok(true)
}

/// Offers valid now, for the offers screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OfferList {
    pub offers: Vec<Offer>,
    /// Ranked from the member's favourites and visits (personalisation consent); otherwise the
    /// same order for everyone: ending soonest first.
    pub personalised: bool,
}

// ----- rights -----

/// Everything this device holds about the member, as JSON (tokens excepted).
pub(crate) fn export_device(conn: &Connection) -> Result<serde_json::Value, StorageError> {
    let table = |sql: &str| -> Result<Vec<serde_json::Value>, StorageError> {
        let mut stmt = conn.prepare(sql).map_err(st)?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let rows = stmt
            .query_map([], |r| {
                let mut obj = serde_json::Map::new();
                for (i, name) in names.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                        rusqlite::types::ValueRef::Integer(n) => n.into(),
                        rusqlite::types::ValueRef::Real(f) => f.into(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned().into()
                        }
                        rusqlite::types::ValueRef::Blob(b) => b.len().into(),
                    };
                    obj.insert(name.clone(), v);
                }
                Ok(serde_json::Value::Object(obj))
            })
            .map_err(st)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(st)?;
        Ok(rows)
    };
    Ok(serde_json::json!({
        "generated_at": crate::rfc3339_ms(now_ms()),
        "session": table("SELECT server_url, member_id, device_id FROM session")?,
        "card": table("SELECT * FROM member_card")?,
        "member_state": table("SELECT data, as_of, rule_events FROM member_state")?,
        "consent_records": consent_history(conn)?,
        "preferences": stored_preferences(conn)?,
        "activity": table("SELECT * FROM activity ORDER BY occurred_at")?,
        "favourite_stores": table("SELECT * FROM favourite_store")?,
        "pending_actions": table("SELECT kind, body, created_at FROM outbox ORDER BY seq")?,
        "refused_actions": table("SELECT kind, body, status, code, detail FROM outbox_rejected")?,
        "notifications_shown": table("SELECT channel, purpose, sent_at FROM notification_log")?,
    }))
}
