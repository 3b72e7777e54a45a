//! What the member does on the phone, and what the phone shows from its cache. Every action
//! writes its local effect and its outbox row in one transaction, with no network.

use crate::clock::now_ms;
use crate::invalid;
use std::collections::BTreeMap;
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::api::{ActivityEvent, EventKind, MemberState, Mutation};
use crate::catalog::{Store, check_id};
use crate::clock::to_time;
use crate::db::StorageError;
use crate::outbox::enqueue;
use crate::{Error, Result};

fn st(e: rusqlite::Error) -> StorageError {
    StorageError::from(e)
}

/// One action in the member's history on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ActivityEntry {
    pub event_id: String,
    pub kind: EventKind,
    /// RFC 3339, device clock.
    pub occurred_at: String,
    pub store_id: Option<String>,
    /// When the server acknowledged it; none while it waits in the outbox.
    pub synced_at: Option<SystemTime>,
}

/// An action the server refused for good, kept with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RejectedAction {
    pub kind: String,
    pub status: u16,
    /// The server's stable problem code (`unknown_store`, `event_in_future`…).
    pub code: String,
    pub detail: Option<String>,
    pub created_at: SystemTime,
    pub rejected_at: SystemTime,
}

/// The member's state from the cache, and when the server sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CachedMemberState {
    pub state: MemberState,
    pub as_of: SystemTime,
}

/// What the catalog cache holds, and when it was last brought up to date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CatalogSummary {
    pub stores: u64,
    pub offers: u64,
    pub as_of: Option<SystemTime>,
}

pub(crate) fn require_session(tx: &Transaction<'_>) -> Result<()> {
    let enrolled: Option<i64> = tx
        .query_row("SELECT 1 FROM session WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(st)?;
    enrolled.map(|_| ()).ok_or(Error::NotEnrolled)
}

pub(crate) fn queue(tx: &Transaction<'_>, mutation: &Mutation, kind: &str, now: i64) -> Result<()> {
    let body = serde_json::to_string(mutation).map_err(|e| Error::InvalidInput {
        field: "action",
        reason: e.to_string(),
    })?;
    enqueue(tx, kind, &body, now)?;
    Ok(())
}

/// Record an event now: returns its id.
pub(crate) fn record_event(
    tx: &Transaction<'_>,
    kind: EventKind,
    store_id: Option<String>,
    attributes: BTreeMap<String, String>,
) -> Result<String> {
    record_event_at(tx, kind, store_id, attributes, now_ms())
}

/// Record an event that happened at `occurred_ms` (a geofence event delivered late).
pub(crate) fn record_event_at(
    tx: &Transaction<'_>,
    kind: EventKind,
    store_id: Option<String>,
    attributes: BTreeMap<String, String>,
    occurred_ms: i64,
) -> Result<String> {
    require_session(tx)?;
    let now = occurred_ms;
    let event = ActivityEvent {
        event_id: format!("e-{}", uuid::Uuid::new_v4().simple()),
        kind,
        // The one formatter: always three fractional digits, so the text sorts as the time does
        // (the activity list and the server's export order by it).
        occurred_at: {
            jiff::Timestamp::from_millisecond(now).map_err(|_| Error::InvalidInput {
                field: "clock",
                reason: "the device clock is out of range".into(),
            })?;
            crate::rfc3339_ms(now)
        },
        store_id,
        attributes,
    };
    let mutation = Mutation::RecordEvent {
        event: event.clone(),
    };
    mutation.validate().map_err(invalid)?;
    tx.prepare_cached(
        "INSERT INTO activity (event_id, kind, occurred_at, store_id, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(st)?
    .execute(params![
        event.event_id,
        kind.as_str(),
        event.occurred_at,
        event.store_id,
        serde_json::to_string(&event.attributes).unwrap_or_else(|_| "{}".into())
    ])
    .map_err(st)?;
    queue(tx, &mutation, "record_event", now)?;
    Ok(event.event_id)
}

pub(crate) fn set_favourite_store(
    tx: &Transaction<'_>,
    store_id: &str,
    favourite: bool,
) -> Result<()> {
    require_session(tx)?;
    check_id("store_id", store_id).map_err(invalid)?;
    let now = now_ms();
    if favourite {
        tx.execute(
            "INSERT OR REPLACE INTO favourite_store (store_id, updated_at) VALUES (?1, ?2)",
            params![store_id, now],
        )
        .map_err(st)?;
    } else {
        tx.execute(
            "DELETE FROM favourite_store WHERE store_id = ?1",
            [store_id],
        )
        .map_err(st)?;
    }
    let mutation = Mutation::SetFavouriteStore {
        store_id: store_id.to_owned(),
        favourite,
    };
    queue(tx, &mutation, "set_favourite_store", now)
}

/// Queue a clip, or with `with_points` the purchase of a reward: the server issues the coupon
/// (and, for a reward, spends the points, or refuses if the balance is short then).
pub(crate) fn clip_offer(tx: &Transaction<'_>, offer_id: &str, with_points: bool) -> Result<()> {
    require_session(tx)?;
    check_id("offer_id", offer_id).map_err(invalid)?;
    let offer_id = offer_id.to_owned();
    let (mutation, label) = if with_points {
        (Mutation::BuyReward { offer_id }, "buy_reward")
    } else {
        (Mutation::ClipOffer { offer_id }, "clip_offer")
    };
    queue(tx, &mutation, label, now_ms())
}

/// An offer bought with points.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Reward {
    pub offer_id: String,
    pub title: String,
    pub points_cost: u32,
    /// The cached balance covers it.
    pub affordable: bool,
    /// RFC 3339.
    pub valid_to: String,
}

/// Rewards in the cached catalog that are valid now, cheapest first.
pub(crate) fn rewards(conn: &Connection, balance: u64, now_ms: i64) -> Result<Vec<Reward>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, title, json_extract(data, '$.points_cost') AS cost, valid_from, valid_to
             FROM offer WHERE cost IS NOT NULL ORDER BY cost, id",
        )
        .map_err(st)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    let live = |from: &str, to: &str| {
        let at = |s: &str| s.parse::<jiff::Timestamp>().map(|t| t.as_millisecond());
        matches!((at(from), at(to)), (Ok(f), Ok(t)) if f <= now_ms && now_ms < t)
    };
    Ok(rows
        .into_iter()
        .filter(|(_, _, _, from, to)| live(from, to))
        .filter_map(|(offer_id, title, cost, _, valid_to)| {
            let points_cost = u32::try_from(cost).ok()?;
            Some(Reward {
                offer_id,
                title,
                points_cost,
                affordable: u64::from(points_cost) <= balance,
                valid_to,
            })
        })
        .collect())
}

/// The latest `limit` actions, newest first.
pub(crate) fn activity(conn: &Connection, limit: u32) -> Result<Vec<ActivityEntry>, StorageError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT event_id, kind, occurred_at, store_id, synced_at FROM activity
             ORDER BY occurred_at DESC, event_id LIMIT ?1",
        )
        .map_err(st)?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    rows.into_iter()
        .map(|(event_id, kind, occurred_at, store_id, synced)| {
            Ok(ActivityEntry {
                event_id,
                kind: EventKind::parse(&kind).ok_or(StorageError::Corrupt)?,
                occurred_at,
                store_id,
                synced_at: synced.map(to_time),
            })
        })
        .collect()
}

pub(crate) fn rejected(conn: &Connection) -> Result<Vec<RejectedAction>, StorageError> {
    let mut stmt = conn
        .prepare(
            "SELECT kind, status, code, detail, created_at, rejected_at FROM outbox_rejected
             ORDER BY seq",
        )
        .map_err(st)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(RejectedAction {
                kind: r.get(0)?,
                status: r.get(1)?,
                code: r.get(2)?,
                detail: r.get(3)?,
                created_at: to_time(r.get(4)?),
                rejected_at: to_time(r.get(5)?),
            })
        })
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    Ok(rows)
}

pub(crate) fn favourite_stores(conn: &Connection) -> Result<Vec<String>, StorageError> {
    let mut stmt = conn
        .prepare("SELECT store_id FROM favourite_store ORDER BY store_id")
        .map_err(st)?;
    let rows = stmt
        .query_map([], |r| r.get(0))
        .map_err(st)?
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(st)?;
    Ok(rows)
}

pub(crate) fn catalog_summary(conn: &Connection) -> Result<CatalogSummary, StorageError> {
    let (stores, offers, as_of): (i64, i64, Option<i64>) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM store), (SELECT count(*) FROM offer),
                    (SELECT catalog_as_of FROM sync_state WHERE id = 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(st)?;
    Ok(CatalogSummary {
        stores: stores as u64,
        offers: offers as u64,
        as_of: as_of.map(to_time),
    })
}

/// Stores from the cache, by name; only those in `city` when given.
pub(crate) fn stores(
    conn: &Connection,
    city: Option<&str>,
    limit: u32,
) -> Result<Vec<Store>, StorageError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT data FROM store WHERE ?1 IS NULL OR city = ?1 ORDER BY name, id LIMIT ?2",
        )
        .map_err(st)?;
    let rows = stmt
        .query_map(params![city, limit], |r| r.get::<_, String>(0))
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    rows.iter()
        .map(|d| serde_json::from_str(d).map_err(|_| StorageError::Corrupt))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_times_sort_as_text() {
        let at = |ms: i64| format!("{:.3}", jiff::Timestamp::from_millisecond(ms).unwrap());
        let (a, b) = (at(1_795_000_000_500), at(1_795_000_000_501));
        assert_eq!(a, "2026-11-18T11:06:40.500Z");
        assert!(a < b);
    }
}

/// The member's state as the server last sent it, with when; none before the first sync.
pub(crate) fn cached_state(conn: &Connection) -> Result<Option<CachedMemberState>, StorageError> {
    Ok(
        crate::sync::local::member_state(conn)?.map(|(state, as_of)| CachedMemberState {
            state,
            as_of: to_time(as_of),
        }),
    )
}

/// The member's actions and the cached reads: what they did on this device (written locally
/// with its outbox row, offline), what the server refused, their favourite stores, the member's
/// state as last synced, and the catalog cache.
#[derive(Debug)]
pub struct Activity {
    db: std::sync::Arc<crate::db::Db>,
}

impl Activity {
    pub(crate) fn new(db: std::sync::Arc<crate::db::Db>) -> Self {
        Activity { db }
    }

    /// Record something the member did, now. Works offline; sent at the next sync. Returns the
    /// event's id.
    pub fn record_event(
        &self,
        kind: EventKind,
        store_id: Option<String>,
        attributes: BTreeMap<String, String>,
    ) -> Result<String> {
        self.db
            .write(|tx| record_event(tx, kind, store_id, attributes))
    }

    /// Mark or unmark a favourite store. Works offline; sent at the next sync.
    pub fn set_favourite_store(&self, store_id: &str, favourite: bool) -> Result<()> {
        self.db
            .write(|tx| set_favourite_store(tx, store_id, favourite))
    }

    /// The member's latest actions on this device, newest first.
    pub fn history(&self, limit: u32) -> Result<Vec<ActivityEntry>, StorageError> {
        self.db.read(|c| activity(c, limit))
    }

    /// Actions the server refused for good, with its reasons.
    pub fn rejected(&self) -> Result<Vec<RejectedAction>, StorageError> {
        self.db.read(rejected)
    }

    pub fn favourite_stores(&self) -> Result<Vec<String>, StorageError> {
        self.db.read(favourite_stores)
    }

    /// The member's state as the server last sent it; none before the first sync. Its
    /// `rule_events` are left empty (the history can be long and every screen reads the state):
    /// `challenges()` is what uses them.
    pub fn member_state(&self) -> Result<Option<CachedMemberState>, StorageError> {
        self.db.read(cached_state)
    }

    pub fn catalog_summary(&self) -> Result<CatalogSummary, StorageError> {
        self.db.read(catalog_summary)
    }

    /// Stores from the cache, by name (only those in `city` when given), at most `limit`.
    pub fn stores(&self, city: Option<&str>, limit: u32) -> Result<Vec<Store>, StorageError> {
        self.db.read(|c| stores(c, city, limit))
    }
}
