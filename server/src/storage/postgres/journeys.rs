//! Journeys' settings and entries in PostgreSQL (the same statements as SQLite's
//! `storage/sqlite/repo/journeys.rs`).

use tessera_domain::journeys::JourneySettings;

use super::repo::PgRepo;
use crate::storage::StorageError;
use crate::storage::repo::{
    EntryOutcome, JourneyCountRow, JourneyEntry, JourneyTrigger, Journeys, RepoResult,
};

fn column(e: postgres::Error) -> StorageError {
    StorageError::backend(format!("reading a column: {e}"))
}

const ENTER: &str = "INSERT INTO journey_entry
     (journey, member_id, occurrence, state, due_at, expires_at, created_at)";

impl Journeys for PgRepo<'_, '_> {
    fn journey_settings(&mut self) -> RepoResult<Option<JourneySettings>> {
        self.value::<String>("SELECT data FROM journey_settings WHERE id = 1", &[])?
            .map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
    }

    fn put_journey_settings(&mut self, s: &JourneySettings, now_ms: i64) -> RepoResult<()> {
        let data = serde_json::to_string(s).map_err(StorageError::backend)?;
        self.exec(
            "INSERT INTO journey_settings (id, data, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data,
                 updated_at = excluded.updated_at",
            &[&data, &now_ms],
        )?;
        Ok(())
    }

    fn enter_journey(
        &mut self,
        journey: &str,
        occurrence: &str,
        trigger: &JourneyTrigger,
        due_ms: i64,
        expires_ms: i64,
        now_ms: i64,
    ) -> RepoResult<u64> {
        match trigger {
            JourneyTrigger::Enrolled {
                after_ms,
                delay_ms,
                within_ms,
            } => self.exec(
                &format!(
                    "{ENTER} SELECT $1, id, $2, 'due', created_at + $3, created_at + $4, $5
                     FROM member WHERE created_at > $6
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &journey,
                    &occurrence,
                    delay_ms,
                    within_ms,
                    &now_ms,
                    after_ms,
                ],
            ),
            JourneyTrigger::Birthday { days } => self.exec(
                &format!(
                    "{ENTER} SELECT $1, id, $2, 'due', $3, $4, $5
                     FROM member WHERE birthday = ANY ($6)
                     ON CONFLICT DO NOTHING"
                ),
                &[&journey, &occurrence, &due_ms, &expires_ms, &now_ms, days],
            ),
            JourneyTrigger::Expiring { from_ms, to_ms } => self.exec(
                &format!(
                    "{ENTER} SELECT DISTINCT $1, member_id, $2, 'due', $3::bigint, $4::bigint,
                         $5::bigint
                     FROM points_entry
                     WHERE remaining > 0 AND expires_at > $6 AND expires_at <= $7
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &journey,
                    &occurrence,
                    &due_ms,
                    &expires_ms,
                    &now_ms,
                    from_ms,
                    to_ms,
                ],
            ),
            JourneyTrigger::TierReview {
                base,
                hold_ms,
                from_ms,
                to_ms,
            } => self.exec(
                &format!(
                    "{ENTER} SELECT $1, id, $2, 'due', $3, $4, $5 FROM member
                     WHERE tier <> $6
                       AND (CASE WHEN tier_since = 0 THEN created_at ELSE tier_since END) + $7
                           > $8
                       AND (CASE WHEN tier_since = 0 THEN created_at ELSE tier_since END) + $7
                           <= $9
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &journey,
                    &occurrence,
                    &due_ms,
                    &expires_ms,
                    &now_ms,
                    base,
                    hold_ms,
                    from_ms,
                    to_ms,
                ],
            ),
            JourneyTrigger::Segment(segment) => self.exec(
                &format!(
                    "{ENTER} SELECT $1, s.member_id, $2, 'due', $3, $4, $5
                     FROM member_segment s JOIN analytics_report a
                         ON a.id = 1 AND s.generation = a.generation
                     WHERE s.segment = $6
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &journey,
                    &occurrence,
                    &due_ms,
                    &expires_ms,
                    &now_ms,
                    segment,
                ],
            ),
        }
    }

    fn due_journey_entries(&mut self, now_ms: i64, limit: u32) -> RepoResult<Vec<JourneyEntry>> {
        self.rows(
            "SELECT journey, member_id, occurrence, expires_at FROM journey_entry
             WHERE state = 'due' AND due_at <= $1 ORDER BY due_at, journey, member_id LIMIT $2",
            &[&now_ms, &i64::from(limit)],
        )?
        .iter()
        .map(|r| {
            Ok(JourneyEntry {
                journey: r.try_get(0).map_err(column)?,
                member_id: r.try_get(1).map_err(column)?,
                occurrence: r.try_get(2).map_err(column)?,
                expires_ms: r.try_get(3).map_err(column)?,
            })
        })
        .collect()
    }

    fn journey_sends(&mut self, member_id: &str, since_ms: i64) -> RepoResult<Vec<(String, i64)>> {
        self.rows(
            "SELECT journey, done_at FROM journey_entry
             WHERE member_id = $1 AND state = 'sent' AND done_at > $2",
            &[&member_id, &since_ms],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(column)?, r.try_get(1).map_err(column)?)))
        .collect()
    }

    fn settle_journey_entry(
        &mut self,
        e: &JourneyEntry,
        outcome: EntryOutcome<'_>,
        now_ms: i64,
    ) -> RepoResult<()> {
        let (state, due, reason, pushes, done): (&str, Option<i64>, Option<&str>, i64, _) =
            match outcome {
                EntryOutcome::Sent { pushes } => {
                    ("sent", None, None, i64::from(pushes), Some(now_ms))
                }
                EntryOutcome::Waiting { until_ms, reason } => {
                    ("due", Some(until_ms), Some(reason), 0, None)
                }
                EntryOutcome::Skipped { reason } => {
                    ("skipped", None, Some(reason), 0, Some(now_ms))
                }
            };
        self.exec(
            "UPDATE journey_entry SET state = $4, due_at = $5, reason = $6, pushes = $7,
                 done_at = $8
             WHERE journey = $1 AND member_id = $2 AND occurrence = $3",
            &[
                &e.journey,
                &e.member_id,
                &e.occurrence,
                &state,
                &due,
                &reason,
                &pushes,
                &done,
            ],
        )?;
        Ok(())
    }

    fn journey_push_failures(&mut self, e: &JourneyEntry, failed: u32) -> RepoResult<()> {
        self.exec(
            "UPDATE journey_entry SET failed = failed + $4
             WHERE journey = $1 AND member_id = $2 AND occurrence = $3",
            &[&e.journey, &e.member_id, &e.occurrence, &i64::from(failed)],
        )?;
        Ok(())
    }

    fn journey_counts(&mut self, since_ms: i64) -> RepoResult<Vec<JourneyCountRow>> {
        self.rows(
            "SELECT journey, state, reason, count(*), sum(pushes)::bigint,
                 sum(failed)::bigint
             FROM journey_entry WHERE created_at >= $1
             GROUP BY journey, state, reason ORDER BY journey, state, reason",
            &[&since_ms],
        )?
        .iter()
        .map(|r| {
            Ok(JourneyCountRow {
                journey: r.try_get(0).map_err(column)?,
                state: r.try_get(1).map_err(column)?,
                reason: r.try_get(2).map_err(column)?,
                entries: r.try_get::<_, i64>(3).map_err(column)? as u64,
                pushes: r.try_get::<_, i64>(4).map_err(column)? as u64,
                failed: r.try_get::<_, i64>(5).map_err(column)? as u64,
            })
        })
        .collect()
    }
}
