//! The outbox: every member action waits here, in the transaction that wrote its local effect,
//! until the server acknowledges or rejects it. Feature services enqueue; the sync engine drains.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::api::Problem;
use crate::db::StorageError;

fn st(e: rusqlite::Error) -> StorageError {
    StorageError::from(e)
}

/// A pending action.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub seq: i64,
    pub idempotency_key: String,
    pub kind: String,
    pub body: String,
    pub created_at: i64,
}

/// Queue an action: called inside the transaction that writes its local effect.
pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    kind: &str,
    body: &str,
    now: i64,
) -> Result<String, StorageError> {
    let key = format!("k-{}", uuid::Uuid::new_v4().simple());
    tx.prepare_cached(
        "INSERT INTO outbox (idempotency_key, kind, body, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(st)?
    .execute(params![key, kind, body, now])
    .map_err(st)?;
    Ok(key)
}

pub(crate) fn pending_count(conn: &Connection) -> Result<u64, StorageError> {
    conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(st)
}

pub(crate) fn rejected_count(conn: &Connection) -> Result<u64, StorageError> {
    conn.query_row("SELECT count(*) FROM outbox_rejected", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .map_err(st)
}

pub(crate) fn first_pending(conn: &Connection) -> Result<Option<OutboxRow>, StorageError> {
    conn.query_row(
        "SELECT seq, idempotency_key, kind, body, created_at FROM outbox ORDER BY seq LIMIT 1",
        [],
        |r| {
            Ok(OutboxRow {
                seq: r.get(0)?,
                idempotency_key: r.get(1)?,
                kind: r.get(2)?,
                body: r.get(3)?,
                created_at: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(st)
}

pub(crate) fn note_attempt(
    tx: &Transaction<'_>,
    seq: i64,
    error: &str,
) -> Result<(), StorageError> {
    tx.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE seq = ?1",
        params![seq, error],
    )
    .map_err(st)?;
    Ok(())
}

/// The server applied the action: it leaves the outbox, and its local effect is marked synced.
pub(crate) fn acknowledge(
    tx: &Transaction<'_>,
    row: &OutboxRow,
    now: i64,
) -> Result<(), StorageError> {
    tx.execute("DELETE FROM outbox WHERE seq = ?1", [row.seq])
        .map_err(st)?;
    if row.kind == "record_event"
        && let Ok(crate::api::Mutation::RecordEvent { event }) =
            serde_json::from_str::<crate::api::Mutation>(&row.body)
    {
        tx.execute(
            "UPDATE activity SET synced_at = ?2 WHERE event_id = ?1",
            params![event.event_id, now],
        )
        .map_err(st)?;
    }
    Ok(())
}

/// The server refused the action for good: set it aside with the reason.
pub(crate) fn reject(
    tx: &Transaction<'_>,
    row: &OutboxRow,
    problem: &Problem,
    now: i64,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT OR REPLACE INTO outbox_rejected (seq, idempotency_key, kind, body, created_at,
            status, code, detail, rejected_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            row.seq,
            row.idempotency_key,
            row.kind,
            row.body,
            row.created_at,
            problem.status,
            problem.code.chars().take(64).collect::<String>(),
            problem
                .detail
                .as_ref()
                .map(|d| d.chars().take(500).collect::<String>()),
            now
        ],
    )
    .map_err(st)?;
    tx.execute("DELETE FROM outbox WHERE seq = ?1", [row.seq])
        .map_err(st)?;
    Ok(())
}
