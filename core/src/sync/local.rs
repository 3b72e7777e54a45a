//! The SQLite side of sync: session, sync state, outbox, catalog cache, member state, activity.
//! Every function runs inside the caller's transaction or read.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::SyncError;
use crate::api::{CatalogChange, CatalogPage, MemberState};
use crate::db::StorageError;

fn st(e: rusqlite::Error) -> StorageError {
    StorageError::from(e)
}

/// The device's credentials.
#[derive(Clone)]
pub(crate) struct Session {
    pub server_url: String,
    pub member_id: String,
    pub device_id: String,
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: String,
    pub refresh_expires_at: i64,
    /// The namespace of the tokens in the app's SecretStore; `None`: they are in this file.
    pub secrets: Option<String>,
}

// Tokens never reach logs.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server_url", &self.server_url)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn session(conn: &Connection) -> Result<Option<Session>, StorageError> {
    conn.query_row(
        "SELECT server_url, member_id, device_id, access_token, access_expires_at,
                refresh_token, refresh_expires_at, secrets FROM session WHERE id = 1",
        [],
        |r| {
            Ok(Session {
                server_url: r.get(0)?,
                member_id: r.get(1)?,
                device_id: r.get(2)?,
                access_token: r.get(3)?,
                access_expires_at: r.get(4)?,
                refresh_token: r.get(5)?,
                refresh_expires_at: r.get(6)?,
                secrets: r.get(7)?,
            })
        },
    )
    .optional()
    .map_err(st)
}

/// Write the session as given (`secrets::Vault::save` decides where the tokens go).
pub(crate) fn write_session(tx: &Transaction<'_>, s: &Session) -> Result<(), StorageError> {
    tx.execute(
        "INSERT OR REPLACE INTO session (id, server_url, member_id, device_id, access_token,
            access_expires_at, refresh_token, refresh_expires_at, secrets)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.server_url,
            s.member_id,
            s.device_id,
            s.access_token,
            s.access_expires_at,
            s.refresh_token,
            s.refresh_expires_at,
            s.secrets
        ],
    )
    .map_err(st)?;
    Ok(())
}

/// Forget the member on this device: session, caches, card and activity. The outbox must be
/// empty (or `discard` set): pending actions belong to that member.
pub(crate) fn sign_out(tx: &Transaction<'_>, discard: bool) -> Result<(), SyncError> {
    let pending = crate::outbox::pending_count(tx)?;
    if pending > 0 && !discard {
        return Err(SyncError::PendingActions { count: pending });
    }
    tx.execute_batch(
        // `WHERE true`: SQLite's truncate shortcut skips the update hook (crate::changes).
        "DELETE FROM session WHERE true; DELETE FROM outbox WHERE true;
         DELETE FROM outbox_rejected WHERE true; DELETE FROM store WHERE true;
         DELETE FROM offer WHERE true; DELETE FROM member_state WHERE true;
         DELETE FROM activity WHERE true; DELETE FROM favourite_store WHERE true;
         DELETE FROM member_card WHERE true; DELETE FROM preference WHERE true;
         DELETE FROM notification_log WHERE true;
         UPDATE sync_state SET catalog_cursor = NULL, catalog_as_of = NULL, last_attempt_at = NULL,
            last_success_at = NULL, last_error = NULL, clock_offset_ms = NULL,
            member_version = NULL, consent_clock_ms = NULL, app_version = NULL,
            push_token = NULL;
         DELETE FROM offer_state WHERE true; DELETE FROM push_seen WHERE true;
         DELETE FROM device_key WHERE true;",
    )
    .map_err(st)?;
    Ok(())
}

pub(crate) fn clock_offset(conn: &Connection) -> Result<Option<i64>, StorageError> {
    conn.query_row(
        "SELECT clock_offset_ms FROM sync_state WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .map_err(st)
}

pub(crate) fn record_offset(tx: &Transaction<'_>, offset: Option<i64>) -> Result<(), StorageError> {
    if let Some(o) = offset {
        tx.execute(
            "UPDATE sync_state SET clock_offset_ms = ?1 WHERE id = 1",
            [o],
        )
        .map_err(st)?;
    }
    Ok(())
}

pub(crate) fn mark_attempt(tx: &Transaction<'_>, now: i64) -> Result<(), StorageError> {
    tx.execute(
        "UPDATE sync_state SET last_attempt_at = ?1 WHERE id = 1",
        [now],
    )
    .map_err(st)?;
    Ok(())
}

pub(crate) fn mark_success(
    tx: &Transaction<'_>,
    now: i64,
    offset: Option<i64>,
) -> Result<(), StorageError> {
    tx.execute(
        "UPDATE sync_state SET last_success_at = ?1, last_error = NULL WHERE id = 1",
        [now],
    )
    .map_err(st)?;
    record_offset(tx, offset)
}

pub(crate) fn mark_failure(
    tx: &Transaction<'_>,
    error: &str,
    offset: Option<i64>,
) -> Result<(), StorageError> {
    tx.execute(
        "UPDATE sync_state SET last_error = ?1 WHERE id = 1",
        [error],
    )
    .map_err(st)?;
    record_offset(tx, offset)
}

pub(crate) fn catalog_cursor(conn: &Connection) -> Result<Option<String>, StorageError> {
    conn.query_row(
        "SELECT catalog_cursor FROM sync_state WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .map_err(st)
}

pub(crate) fn touch_catalog(tx: &Transaction<'_>, now: i64) -> Result<(), StorageError> {
    tx.execute(
        "UPDATE sync_state SET catalog_as_of = ?1 WHERE id = 1",
        [now],
    )
    .map_err(st)?;
    Ok(())
}

pub(crate) fn reset_catalog(tx: &Transaction<'_>) -> Result<(), StorageError> {
    tx.execute_batch(
        "DELETE FROM store WHERE true; DELETE FROM offer WHERE true;
         UPDATE sync_state SET catalog_cursor = NULL, catalog_as_of = NULL WHERE id = 1;",
    )
    .map_err(st)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StorageError> {
    serde_json::to_string(v).map_err(|e| StorageError::Sqlite {
        reason: e.to_string(),
    })
}

/// Apply one validated page and move the cursor, in the caller's transaction. Returns the
/// number of changes applied.
pub(crate) fn apply_page(
    tx: &Transaction<'_>,
    page: &CatalogPage,
    now: i64,
) -> Result<u64, SyncError> {
    let mut upsert_store = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO store (id, name, city, latitude, longitude, radius_m, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(st)?;
    let mut upsert_offer = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO offer (id, title, valid_from, valid_to, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(st)?;
    let mut delete_store = tx
        .prepare_cached("DELETE FROM store WHERE id = ?1")
        .map_err(st)?;
    let mut delete_offer = tx
        .prepare_cached("DELETE FROM offer WHERE id = ?1")
        .map_err(st)?;
    for change in &page.changes {
        match change {
            CatalogChange::Store { store: s } => {
                upsert_store
                    .execute(params![
                        s.id,
                        s.name,
                        s.city,
                        s.latitude,
                        s.longitude,
                        s.radius_m,
                        to_json(s)?
                    ])
                    .map_err(st)?;
            }
            CatalogChange::Offer { offer: o } => {
                upsert_offer
                    .execute(params![
                        o.id,
                        o.title,
                        o.valid_from,
                        o.valid_to,
                        to_json(o)?
                    ])
                    .map_err(st)?;
            }
            CatalogChange::StoreDeleted { id } => {
                delete_store.execute([id]).map_err(st)?;
            }
            CatalogChange::OfferDeleted { id } => {
                delete_offer.execute([id]).map_err(st)?;
            }
            CatalogChange::Rules { rules } => {
                tx.execute(
                    "INSERT OR REPLACE INTO rule_set (id, data) VALUES (1, ?1)",
                    [to_json(rules)?],
                )
                .map_err(st)?;
            }
            CatalogChange::Program { program } => {
                crate::card::write_program(tx, program).map_err(|e| match e {
                    crate::Error::Storage(s) => SyncError::Storage(s),
                    other => SyncError::protocol(format!("programme change: {other}")),
                })?;
            }
        }
    }
    tx.execute(
        "UPDATE sync_state SET catalog_cursor = ?1, catalog_as_of = ?2 WHERE id = 1",
        params![page.cursor, now],
    )
    .map_err(st)?;
    Ok(page.changes.len() as u64)
}

/// Cache the member's state and, apart (every screen reads the state), their rule history.
pub(crate) fn write_member_state(
    tx: &Transaction<'_>,
    state: &MemberState,
    rule_events: &[crate::rules::RuleEvent],
    version: Option<i64>,
    now: i64,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT OR REPLACE INTO member_state (id, data, as_of, rule_events)
         VALUES (1, ?1, ?2, ?3)",
        params![to_json(state)?, now, to_json(&rule_events)?],
    )
    .map_err(st)?;
    tx.execute(
        "UPDATE sync_state SET member_version = ?1 WHERE id = 1",
        [version],
    )
    .map_err(st)?;
    // Uses of each offer (the member's redeemed coupons, as the server counts them), kept where
    // the offer index reads them: counted once per sync, not on every offers-near query.
    let mut used: std::collections::BTreeMap<&str, u32> = std::collections::BTreeMap::new();
    for c in &state.wallet {
        if matches!(c.state, crate::api::CouponState::Redeemed { .. }) {
            *used.entry(c.offer_id.as_str()).or_default() += 1;
        }
    }
    tx.execute(
        "UPDATE offer_state SET used_count = 0 WHERE used_count != 0",
        [],
    )
    .map_err(st)?;
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO offer_state (offer_id, used_count) VALUES (?1, ?2)
             ON CONFLICT (offer_id) DO UPDATE SET used_count = excluded.used_count",
        )
        .map_err(st)?;
    for (offer_id, n) in used {
        stmt.execute(params![offer_id, n]).map_err(st)?;
    }
    Ok(())
}

pub(crate) fn touch_member_state(tx: &Transaction<'_>, now: i64) -> Result<(), StorageError> {
    tx.execute("UPDATE member_state SET as_of = ?1 WHERE id = 1", [now])
        .map_err(st)?;
    Ok(())
}

/// The version of the cached member state (none when there is no cached state).
pub(crate) fn member_version(conn: &Connection) -> Result<Option<i64>, StorageError> {
    conn.query_row(
        "SELECT s.member_version FROM sync_state s JOIN member_state m ON m.id = 1 WHERE s.id = 1",
        [],
        |r| r.get(0),
    )
    .optional()
    .map(Option::flatten)
    .map_err(st)
}

/// The member's rule history as the server last sent it (empty before the first sync).
pub(crate) fn rule_events(conn: &Connection) -> Result<Vec<crate::rules::RuleEvent>, StorageError> {
    let data: Option<String> = conn
        .query_row(
            "SELECT rule_events FROM member_state WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(st)?;
    data.map_or(Ok(Vec::new()), |d| {
        serde_json::from_str(&d).map_err(|_| StorageError::Corrupt)
    })
}

/// The cached member state, without its rule history (see [`rule_events`]).
pub(crate) fn member_state(conn: &Connection) -> Result<Option<(MemberState, i64)>, StorageError> {
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT data, as_of FROM member_state WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(st)?;
    match row {
        None => Ok(None),
        Some((data, as_of)) => serde_json::from_str(&data)
            .map(|s| Some((s, as_of)))
            .map_err(|_| StorageError::Corrupt),
    }
}

/// Where sync stands: the session, the sync state row and the outbox's counts.
pub(crate) fn status(conn: &Connection) -> Result<super::SyncStatus, StorageError> {
    use crate::clock::to_time;
    let session = session(conn)?;
    let mut status = conn
        .query_row(
            "SELECT last_attempt_at, last_success_at, last_error, catalog_as_of,
                    clock_offset_ms FROM sync_state WHERE id = 1",
            [],
            |r| {
                Ok(super::SyncStatus {
                    enrolled: false,
                    member_id: None,
                    server_url: None,
                    pending: 0,
                    rejected: 0,
                    last_attempt_at: r.get::<_, Option<i64>>(0)?.map(to_time),
                    last_success_at: r.get::<_, Option<i64>>(1)?.map(to_time),
                    last_error: r.get(2)?,
                    catalog_as_of: r.get::<_, Option<i64>>(3)?.map(to_time),
                    clock_offset_ms: r.get(4)?,
                })
            },
        )
        .map_err(st)?;
    status.enrolled = session.is_some();
    status.member_id = session.as_ref().map(|s| s.member_id.clone());
    status.server_url = session.map(|s| s.server_url);
    status.pending = crate::outbox::pending_count(conn)?;
    status.rejected = crate::outbox::rejected_count(conn)?;
    Ok(status)
}
