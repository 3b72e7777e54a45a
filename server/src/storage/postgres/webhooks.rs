//! Webhook endpoints, events and deliveries in PostgreSQL: the same statements as SQLite's
//! (`storage/sqlite/repo/webhooks.rs`); a claim skips deliveries another process is claiming
//! (`FOR UPDATE SKIP LOCKED`).

use postgres::Row;

use super::repo::PgRepo;
use crate::storage::StorageError;
use crate::storage::repo::split_events;
use crate::storage::repo::{
    ClaimedDelivery, DeliveryOutcome, DeliveryRow, EndpointRow, EventRow, NewEvent, RepoResult,
    Webhooks,
};
use crate::storage::to_u64;

/// The endpoints receiving event type `$1`.
const RECEIVERS: &str = "FROM webhook_endpoint
    WHERE events = '' OR strpos(',' || events || ',', ',' || $1 || ',') > 0";

const ENDPOINT: &str = "SELECT p.id, p.url, p.secret, p.events, p.description, p.paused,
    p.created_at,
    (SELECT count(*) FROM webhook_delivery d WHERE d.endpoint_id = p.id
        AND d.state IN ('pending', 'waiting')),
    (SELECT count(*) FROM webhook_delivery d WHERE d.endpoint_id = p.id AND d.state = 'dead')
    FROM webhook_endpoint p";

/// A new delivery waits if the member has one before it to the endpoint (`$3`: the member).
const STATE: &str = "CASE WHEN EXISTS (SELECT 1 FROM webhook_delivery b
    WHERE b.endpoint_id = webhook_endpoint.id AND b.member_id = $3
      AND b.state IN ('pending', 'waiting')) THEN 'waiting' ELSE 'pending' END";

/// The member's next waiting delivery to the endpoint becomes pending (`$1` the endpoint, `$2`
/// the member, `$3` now), unless one is pending (a replayed event).
const NEXT: &str = "UPDATE webhook_delivery SET state = 'pending', due_at = greatest(due_at, $3)
    WHERE endpoint_id = $1 AND event_seq = (
        SELECT min(event_seq) FROM webhook_delivery
        WHERE endpoint_id = $1 AND member_id = $2 AND state = 'waiting')
      AND NOT EXISTS (SELECT 1 FROM webhook_delivery b
        WHERE b.endpoint_id = $1 AND b.member_id = $2 AND b.state = 'pending')";

const EVENT_COLUMNS: &str = "e.seq, e.id, e.member_id, e.type, e.data, e.created_at";

fn get<'r, T: postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> RepoResult<T> {
    row.try_get(i)
        .map_err(|e| StorageError::backend(format!("reading a column: {e}")))
}

fn endpoint(r: &Row) -> RepoResult<EndpointRow> {
    Ok(EndpointRow {
        id: get(r, 0)?,
        url: get(r, 1)?,
        secret: get(r, 2)?,
        events: split_events(&get::<String>(r, 3)?),
        description: get(r, 4)?,
        paused: get::<i64>(r, 5)? != 0,
        created_ms: get(r, 6)?,
        pending: to_u64(get(r, 7)?),
        dead: to_u64(get(r, 8)?),
    })
}

fn event_at(r: &Row, i: usize) -> RepoResult<EventRow> {
    Ok(EventRow {
        seq: get(r, i)?,
        id: get(r, i + 1)?,
        member_id: get(r, i + 2)?,
        event_type: get(r, i + 3)?,
        data: get(r, i + 4)?,
        created_ms: get(r, i + 5)?,
    })
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Webhooks for PgRepo<'_, '_> {
    fn emit_event(&mut self, e: &NewEvent<'_>) -> RepoResult<Option<i64>> {
        let seq: Option<i64> = self.value(
            &format!(
                "INSERT INTO webhook_event (id, member_id, type, data, created_at)
                 SELECT $2, $3, $1, $4, $5 WHERE EXISTS (SELECT 1 {RECEIVERS})
                 RETURNING seq"
            ),
            &[&e.event_type, &e.id, &e.member_id, &e.data, &e.now_ms],
        )?;
        if let Some(seq) = seq {
            self.exec(
                &format!(
                    "INSERT INTO webhook_delivery (endpoint_id, event_seq, member_id, due_at, state)
                     SELECT id, $2, $3, $4, {STATE} {RECEIVERS}"
                ),
                &[&e.event_type, &seq, &e.member_id, &e.now_ms],
            )?;
        }
        Ok(seq)
    }

    fn insert_endpoint(&mut self, p: &EndpointRow) -> RepoResult<bool> {
        let (events, paused) = (p.events.join(","), i64::from(p.paused));
        Ok(self.exec(
            "INSERT INTO webhook_endpoint (id, url, secret, events, description, paused,
                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            &[
                &p.id,
                &p.url,
                &p.secret,
                &events,
                &p.description,
                &paused,
                &p.created_ms,
            ],
        )? == 1)
    }

    fn update_endpoint(&mut self, p: &EndpointRow) -> RepoResult<bool> {
        let (events, paused) = (p.events.join(","), i64::from(p.paused));
        Ok(self.exec(
            "UPDATE webhook_endpoint SET url = $2, events = $3, description = $4, paused = $5
             WHERE id = $1",
            &[&p.id, &p.url, &events, &p.description, &paused],
        )? == 1)
    }

    fn delete_endpoint(&mut self, id: &str) -> RepoResult<bool> {
        Ok(self.exec("DELETE FROM webhook_endpoint WHERE id = $1", &[&id])? == 1)
    }

    fn endpoints(&mut self) -> RepoResult<Vec<EndpointRow>> {
        self.rows(&format!("{ENDPOINT} ORDER BY p.id"), &[])?
            .iter()
            .map(endpoint)
            .collect()
    }

    fn endpoint(&mut self, id: &str) -> RepoResult<Option<EndpointRow>> {
        self.opt(&format!("{ENDPOINT} WHERE p.id = $1"), &[&id])?
            .map(|r| endpoint(&r))
            .transpose()
    }

    fn claim_deliveries(
        &mut self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> RepoResult<Vec<ClaimedDelivery>> {
        let (until, limit) = (now_ms + lease_ms, i64::from(limit));
        let rows = self.rows(
            &format!(
                "WITH picked AS (
                    SELECT d.endpoint_id, d.event_seq FROM webhook_delivery d
                    JOIN webhook_endpoint p ON p.id = d.endpoint_id AND p.paused = 0
                    WHERE d.state = 'pending' AND d.due_at <= $2
                      AND (d.lease_until IS NULL OR d.lease_until <= $2)
                    ORDER BY d.due_at, d.event_seq LIMIT $4
                    FOR UPDATE OF d SKIP LOCKED),
                 claimed AS (
                    UPDATE webhook_delivery w SET lease_owner = $1, lease_until = $3,
                        attempts = w.attempts + 1
                    FROM picked
                    WHERE w.endpoint_id = picked.endpoint_id AND w.event_seq = picked.event_seq
                    RETURNING w.endpoint_id, w.event_seq, w.attempts)
                 SELECT c.endpoint_id, p.url, p.secret, c.attempts, {EVENT_COLUMNS}
                 FROM claimed c JOIN webhook_endpoint p ON p.id = c.endpoint_id
                 JOIN webhook_event e ON e.seq = c.event_seq
                 ORDER BY e.seq, c.endpoint_id"
            ),
            &[&owner, &now_ms, &until, &limit],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    endpoint_id: get(r, 0)?,
                    url: get(r, 1)?,
                    secret: get(r, 2)?,
                    attempts: count(get(r, 3)?),
                    event: event_at(r, 4)?,
                })
            })
            .collect()
    }

    fn record_outcomes(
        &mut self,
        owner: &str,
        outcomes: &[DeliveryOutcome],
        now_ms: i64,
    ) -> RepoResult<u64> {
        let mut n = 0;
        for o in outcomes {
            let state = match (&o.error, o.retry_at_ms) {
                (None, _) => "delivered",
                (Some(_), Some(_)) => "pending",
                (Some(_), None) => "dead",
            };
            let status = o.status.map(i64::from);
            let member: Option<String> = self.value(
                "UPDATE webhook_delivery SET state = $4::text, due_at = coalesce($5, $8::bigint),
                    lease_owner = NULL, lease_until = NULL, last_status = $6, last_error = $7,
                    delivered_at = CASE WHEN $4::text = 'delivered' THEN $8::bigint
                        ELSE delivered_at END
                 WHERE endpoint_id = $1 AND event_seq = $2 AND lease_owner = $3
                   AND state = 'pending'
                 RETURNING member_id",
                &[
                    &o.endpoint_id,
                    &o.event_seq,
                    &owner,
                    &state,
                    &o.retry_at_ms,
                    &status,
                    &o.error,
                    &now_ms,
                ],
            )?;
            if let Some(member) = member {
                n += 1;
                if state != "pending" {
                    self.exec(NEXT, &[&o.endpoint_id, &member, &now_ms])?;
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
        let limit = i64::from(limit);
        self.rows(
            &format!(
                "SELECT d.state, d.attempts, d.due_at, d.last_status, d.last_error,
                    d.delivered_at, {EVENT_COLUMNS}
                 FROM webhook_delivery d JOIN webhook_event e ON e.seq = d.event_seq
                 WHERE d.endpoint_id = $1 AND d.event_seq > $3
                   AND ($2::text IS NULL OR d.state = $2
                        OR ($2::text = 'pending' AND d.state = 'waiting'))
                 ORDER BY d.event_seq LIMIT $4"
            ),
            &[&endpoint_id, &state, &after, &limit],
        )?
        .iter()
        .map(|r| {
            Ok(DeliveryRow {
                state: get(r, 0)?,
                attempts: count(get(r, 1)?),
                due_ms: get(r, 2)?,
                last_status: get::<Option<i64>>(r, 3)?.and_then(|s| u16::try_from(s).ok()),
                last_error: get(r, 4)?,
                delivered_ms: get(r, 5)?,
                event: event_at(r, 6)?,
            })
        })
        .collect()
    }

    fn replay_deliveries(
        &mut self,
        endpoint_id: &str,
        event_ids: Option<&[String]>,
        now_ms: i64,
    ) -> RepoResult<u64> {
        const AGAIN: &str = "UPDATE webhook_delivery SET state = 'pending', attempts = 0,
            due_at = $2, lease_owner = NULL, lease_until = NULL, delivered_at = NULL";
        match event_ids {
            None => self.exec(
                &format!("{AGAIN} WHERE endpoint_id = $1 AND state = 'dead'"),
                &[&endpoint_id, &now_ms],
            ),
            Some(ids) => self.exec(
                &format!(
                    "{AGAIN} WHERE endpoint_id = $1 AND state IN ('delivered', 'dead')
                       AND event_seq IN (SELECT seq FROM webhook_event WHERE id = ANY($3))"
                ),
                &[&endpoint_id, &now_ms, &ids],
            ),
        }
    }

    fn hurry_deliveries(&mut self, endpoint_id: &str, now_ms: i64) -> RepoResult<u64> {
        self.exec(
            "UPDATE webhook_delivery SET due_at = $2
             WHERE endpoint_id = $1 AND state = 'pending' AND due_at > $2",
            &[&endpoint_id, &now_ms],
        )
    }

    fn forget_member_events(&mut self, member_id: &str) -> RepoResult<u64> {
        self.exec(
            "DELETE FROM webhook_event e WHERE e.member_id = $1 AND NOT EXISTS (
                SELECT 1 FROM webhook_delivery d WHERE d.event_seq = e.seq
                    AND d.state IN ('pending', 'waiting'))",
            &[&member_id],
        )
    }

    fn purge_webhooks(&mut self, delivered_before_ms: i64, dead_before_ms: i64) -> RepoResult<u64> {
        self.exec(
            "DELETE FROM webhook_delivery
             WHERE (state = 'delivered' AND delivered_at < $1)
                OR (state = 'dead' AND due_at < $2)",
            &[&delivered_before_ms, &dead_before_ms],
        )?;
        self.exec(
            "DELETE FROM webhook_event e WHERE NOT EXISTS (
                SELECT 1 FROM webhook_delivery d WHERE d.event_seq = e.seq)",
            &[],
        )
    }
}
