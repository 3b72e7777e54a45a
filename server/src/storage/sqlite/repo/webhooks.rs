//! Webhook endpoints, events and deliveries in SQLite (the single writer makes a claim
//! exclusive).

use rusqlite::{OptionalExtension, params};

use super::SqliteRepo;
use crate::storage::repo::split_events;
use crate::storage::repo::{
    ClaimedDelivery, DeliveryOutcome, DeliveryRow, EndpointRow, EventRow, NewEvent, RepoResult,
    Webhooks,
};
use crate::storage::to_u64;

/// The endpoints receiving event type `?1`.
const RECEIVERS: &str = "FROM webhook_endpoint
    WHERE events = '' OR instr(',' || events || ',', ',' || ?1 || ',') > 0";

const ENDPOINT: &str = "SELECT p.id, p.url, p.secret, p.events, p.description, p.paused,
    p.created_at,
    (SELECT count(*) FROM webhook_delivery d WHERE d.endpoint_id = p.id
        AND d.state IN ('pending', 'waiting')),
    (SELECT count(*) FROM webhook_delivery d WHERE d.endpoint_id = p.id AND d.state = 'dead')
    FROM webhook_endpoint p";

fn endpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndpointRow> {
    let events: String = r.get(3)?;
    Ok(EndpointRow {
        id: r.get(0)?,
        url: r.get(1)?,
        secret: r.get(2)?,
        events: split_events(&events),
        description: r.get(4)?,
        paused: r.get::<_, i64>(5)? != 0,
        created_ms: r.get(6)?,
        pending: to_u64(r.get(7)?),
        dead: to_u64(r.get(8)?),
    })
}

/// A new delivery waits if the member has one before it to the endpoint (`?3`: the member).
const STATE: &str = "CASE WHEN EXISTS (SELECT 1 FROM webhook_delivery b
    WHERE b.endpoint_id = webhook_endpoint.id AND b.member_id = ?3
      AND b.state IN ('pending', 'waiting')) THEN 'waiting' ELSE 'pending' END";

/// The member's next waiting delivery to the endpoint becomes pending (`?1` the endpoint, `?2`
/// the member, `?3` now), unless one is pending (a replayed event).
const NEXT: &str = "UPDATE webhook_delivery SET state = 'pending', due_at = max(due_at, ?3)
    WHERE endpoint_id = ?1 AND event_seq = (
        SELECT min(event_seq) FROM webhook_delivery
        WHERE endpoint_id = ?1 AND member_id = ?2 AND state = 'waiting')
      AND NOT EXISTS (SELECT 1 FROM webhook_delivery b
        WHERE b.endpoint_id = ?1 AND b.member_id = ?2 AND b.state = 'pending')";

const EVENT_COLUMNS: &str = "e.seq, e.id, e.member_id, e.type, e.data, e.created_at";

fn event_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: r.get(i)?,
        id: r.get(i + 1)?,
        member_id: r.get(i + 2)?,
        event_type: r.get(i + 3)?,
        data: r.get(i + 4)?,
        created_ms: r.get(i + 5)?,
    })
}

impl Webhooks for SqliteRepo<'_> {
    fn emit_event(&mut self, e: &NewEvent<'_>) -> RepoResult<Option<i64>> {
        let seq: Option<i64> = self
            .c
            .prepare_cached(&format!(
                "INSERT INTO webhook_event (id, member_id, type, data, created_at)
                 SELECT ?2, ?3, ?1, ?4, ?5 WHERE EXISTS (SELECT 1 {RECEIVERS})
                 RETURNING seq"
            ))?
            .query_row(
                params![e.event_type, e.id, e.member_id, e.data, e.now_ms],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(seq) = seq {
            self.c
                .prepare_cached(&format!(
                    "INSERT INTO webhook_delivery (endpoint_id, event_seq, member_id, due_at, state)
                     SELECT id, ?2, ?3, ?4, {STATE} {RECEIVERS}"
                ))?
                .execute(params![e.event_type, seq, e.member_id, e.now_ms])?;
        }
        Ok(seq)
    }

    fn insert_endpoint(&mut self, p: &EndpointRow) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO webhook_endpoint (id, url, secret, events, description, paused,
                    created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![
                p.id,
                p.url,
                p.secret,
                p.events.join(","),
                p.description,
                i64::from(p.paused),
                p.created_ms
            ])?
            == 1)
    }

    fn update_endpoint(&mut self, p: &EndpointRow) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE webhook_endpoint SET url = ?2, events = ?3, description = ?4, paused = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                p.id,
                p.url,
                p.events.join(","),
                p.description,
                i64::from(p.paused)
            ])?
            == 1)
    }

    fn delete_endpoint(&mut self, id: &str) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached("DELETE FROM webhook_endpoint WHERE id = ?1")?
            .execute([id])?
            == 1)
    }

    fn endpoints(&mut self) -> RepoResult<Vec<EndpointRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{ENDPOINT} ORDER BY p.id"))?
            .query_map([], endpoint)?
            .collect::<Result<_, _>>()?)
    }

    fn endpoint(&mut self, id: &str) -> RepoResult<Option<EndpointRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{ENDPOINT} WHERE p.id = ?1"))?
            .query_row([id], endpoint)
            .optional()?)
    }

    fn claim_deliveries(
        &mut self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> RepoResult<Vec<ClaimedDelivery>> {
        let until = now_ms + lease_ms;
        let claimed: Vec<(String, i64)> = self
            .c
            .prepare_cached(
                "UPDATE webhook_delivery SET lease_owner = ?1, lease_until = ?3,
                    attempts = attempts + 1
                 WHERE rowid IN (
                    SELECT d.rowid FROM webhook_delivery d
                    JOIN webhook_endpoint p ON p.id = d.endpoint_id AND p.paused = 0
                    WHERE d.state = 'pending' AND d.due_at <= ?2
                      AND (d.lease_until IS NULL OR d.lease_until <= ?2)
                    ORDER BY d.due_at, d.event_seq LIMIT ?4)
                 RETURNING endpoint_id, event_seq",
            )?
            .query_map(params![owner, now_ms, until, limit], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut read = self.c.prepare_cached(&format!(
            "SELECT p.url, p.secret, d.attempts, {EVENT_COLUMNS}
             FROM webhook_delivery d JOIN webhook_endpoint p ON p.id = d.endpoint_id
             JOIN webhook_event e ON e.seq = d.event_seq
             WHERE d.endpoint_id = ?1 AND d.event_seq = ?2"
        ))?;
        let mut out = Vec::with_capacity(claimed.len());
        for (endpoint_id, seq) in claimed {
            let c = read.query_row(params![endpoint_id, seq], |r| {
                Ok(ClaimedDelivery {
                    endpoint_id: endpoint_id.clone(),
                    url: r.get(0)?,
                    secret: r.get(1)?,
                    attempts: r.get(2)?,
                    event: event_at(r, 3)?,
                })
            })?;
            out.push(c);
        }
        out.sort_by_key(|c| (c.event.seq, c.endpoint_id.clone()));
        Ok(out)
    }

    fn record_outcomes(
        &mut self,
        owner: &str,
        outcomes: &[DeliveryOutcome],
        now_ms: i64,
    ) -> RepoResult<u64> {
        let mut update = self.c.prepare_cached(
            "UPDATE webhook_delivery SET state = ?4, due_at = coalesce(?5, ?8),
                lease_owner = NULL, lease_until = NULL, last_status = ?6, last_error = ?7,
                delivered_at = CASE WHEN ?4 = 'delivered' THEN ?8 ELSE delivered_at END
             WHERE endpoint_id = ?1 AND event_seq = ?2 AND lease_owner = ?3
               AND state = 'pending'
             RETURNING member_id",
        )?;
        let mut next = self.c.prepare_cached(NEXT)?;
        let mut n = 0;
        for o in outcomes {
            let state = match (&o.error, o.retry_at_ms) {
                (None, _) => "delivered",
                (Some(_), Some(_)) => "pending",
                (Some(_), None) => "dead",
            };
            let member: Option<String> = update
                .query_row(
                    params![
                        o.endpoint_id,
                        o.event_seq,
                        owner,
                        state,
                        o.retry_at_ms,
                        o.status,
                        o.error,
                        now_ms
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(member) = member {
                n += 1;
                if state != "pending" {
                    next.execute(params![o.endpoint_id, member, now_ms])?;
                }
            }
        }
        Ok(n)
    }

    fn deliveries(
        &mut self,
        endpoint_id: &str,
        state: Option<&str>,
        after: i64,
        limit: u32,
    ) -> RepoResult<Vec<DeliveryRow>> {
        Ok(self
            .c
            .prepare_cached(&format!(
                "SELECT d.state, d.attempts, d.due_at, d.last_status, d.last_error,
                    d.delivered_at, {EVENT_COLUMNS}
                 FROM webhook_delivery d JOIN webhook_event e ON e.seq = d.event_seq
                 WHERE d.endpoint_id = ?1 AND d.event_seq > ?3
                   AND (?2 IS NULL OR d.state = ?2 OR (?2 = 'pending' AND d.state = 'waiting'))
                 ORDER BY d.event_seq LIMIT ?4"
            ))?
            .query_map(params![endpoint_id, state, after, limit], |r| {
                Ok(DeliveryRow {
                    state: r.get(0)?,
                    attempts: r.get(1)?,
                    due_ms: r.get(2)?,
                    last_status: r.get(3)?,
                    last_error: r.get(4)?,
                    delivered_ms: r.get(5)?,
                    event: event_at(r, 6)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn replay_deliveries(
        &mut self,
        endpoint_id: &str,
        event_ids: Option<&[String]>,
        now_ms: i64,
    ) -> RepoResult<u64> {
        const AGAIN: &str = "UPDATE webhook_delivery SET state = 'pending', attempts = 0,
            due_at = ?2, lease_owner = NULL, lease_until = NULL, delivered_at = NULL";
        match event_ids {
            None => Ok(self
                .c
                .prepare_cached(&format!(
                    "{AGAIN} WHERE endpoint_id = ?1 AND state = 'dead'"
                ))?
                .execute(params![endpoint_id, now_ms])? as u64),
            Some(ids) => {
                let mut one = self.c.prepare_cached(&format!(
                    "{AGAIN} WHERE endpoint_id = ?1 AND state IN ('delivered', 'dead')
                       AND event_seq = (SELECT seq FROM webhook_event WHERE id = ?3)"
                ))?;
                let mut n = 0;
                for id in ids {
                    n += one.execute(params![endpoint_id, now_ms, id])? as u64;
                }
                Ok(n)
            }
        }
    }

    fn hurry_deliveries(&mut self, endpoint_id: &str, now_ms: i64) -> RepoResult<u64> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE webhook_delivery SET due_at = ?2
                 WHERE endpoint_id = ?1 AND state = 'pending' AND due_at > ?2",
            )?
            .execute(params![endpoint_id, now_ms])? as u64)
    }

    fn forget_member_events(&mut self, member_id: &str) -> RepoResult<u64> {
        Ok(self
            .c
            .prepare_cached(
                "DELETE FROM webhook_event WHERE member_id = ?1 AND NOT EXISTS (
                    SELECT 1 FROM webhook_delivery d
                    WHERE d.event_seq = webhook_event.seq AND d.state IN ('pending', 'waiting'))",
            )?
            .execute([member_id])? as u64)
    }

    fn purge_webhooks(&mut self, delivered_before_ms: i64, dead_before_ms: i64) -> RepoResult<u64> {
        self.c
            .prepare_cached(
                "DELETE FROM webhook_delivery
                 WHERE (state = 'delivered' AND delivered_at < ?1)
                    OR (state = 'dead' AND due_at < ?2)",
            )?
            .execute(params![delivered_before_ms, dead_before_ms])?;
        Ok(self
            .c
            .prepare_cached(
                "DELETE FROM webhook_event WHERE NOT EXISTS (
                    SELECT 1 FROM webhook_delivery d WHERE d.event_seq = webhook_event.seq)",
            )?
            .execute([])? as u64)
    }
}
