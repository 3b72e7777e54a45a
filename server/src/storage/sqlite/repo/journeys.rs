//! Journeys' settings and entries in SQLite (issue #19; the same statements in PostgreSQL's
//! `storage/postgres/journeys.rs`).

use rusqlite::{OptionalExtension, params};
use tessera_domain::journeys::JourneySettings;

use super::{SqliteRepo, json};
use crate::storage::StorageError;
use crate::storage::repo::{
    EntryOutcome, JourneyCountRow, JourneyEntry, JourneyTrigger, Journeys, RepoResult,
};

/// The columns every entry starts with: `?1` journey, `?2` occurrence, `?3` due, `?4` expires,
/// `?5` now; the trigger's own parameters from `?6`.
const ENTER: &str = "INSERT OR IGNORE INTO journey_entry
     (journey, member_id, occurrence, state, due_at, expires_at, created_at)";

impl Journeys for SqliteRepo<'_> {
    fn journey_settings(&mut self) -> RepoResult<Option<JourneySettings>> {
        self.c
            .prepare_cached("SELECT data FROM journey_settings WHERE id = 1")?
            .query_row([], |r| r.get::<_, String>(0))
            .optional()?
            .map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
    }

    fn put_journey_settings(&mut self, s: &JourneySettings, now_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO journey_settings (id, data, updated_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![json(s)?, now_ms])?;
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
        let base = params![journey, occurrence, due_ms, expires_ms, now_ms];
        let n = match trigger {
            JourneyTrigger::Enrolled {
                after_ms,
                delay_ms,
                within_ms,
            } => self
                .c
                .prepare_cached(&format!(
                    "{ENTER} SELECT ?1, id, ?2, 'due', created_at + ?6, created_at + ?7, ?5
                     FROM member WHERE created_at > ?8"
                ))?
                .execute(params![
                    base[0], base[1], base[2], base[3], base[4], delay_ms, within_ms, after_ms
                ])?,
            JourneyTrigger::Birthday { days } => {
                let first = days.first().map(String::as_str).unwrap_or("");
                let second = days.get(1).map(String::as_str).unwrap_or(first);
                self.c
                    .prepare_cached(&format!(
                        "{ENTER} SELECT ?1, id, ?2, 'due', ?3, ?4, ?5
                         FROM member WHERE birthday IN (?6, ?7)"
                    ))?
                    .execute(params![
                        base[0], base[1], base[2], base[3], base[4], first, second
                    ])?
            }
            JourneyTrigger::Expiring { from_ms, to_ms } => self
                .c
                .prepare_cached(&format!(
                    "{ENTER} SELECT DISTINCT ?1, member_id, ?2, 'due', ?3, ?4, ?5
                     FROM points_entry
                     WHERE remaining > 0 AND expires_at > ?6 AND expires_at <= ?7"
                ))?
                .execute(params![
                    base[0], base[1], base[2], base[3], base[4], from_ms, to_ms
                ])?,
            JourneyTrigger::TierReview {
                base: base_tier,
                hold_ms,
                from_ms,
                to_ms,
            } => self
                .c
                .prepare_cached(&format!(
                    "{ENTER} SELECT ?1, id, ?2, 'due', ?3, ?4, ?5 FROM member
                     WHERE tier <> ?6
                       AND (CASE WHEN tier_since = 0 THEN created_at ELSE tier_since END) + ?7
                           > ?8
                       AND (CASE WHEN tier_since = 0 THEN created_at ELSE tier_since END) + ?7
                           <= ?9"
                ))?
                .execute(params![
                    base[0], base[1], base[2], base[3], base[4], base_tier, hold_ms, from_ms, to_ms
                ])?,
            JourneyTrigger::Segment(segment) => self
                .c
                .prepare_cached(&format!(
                    "{ENTER} SELECT ?1, s.member_id, ?2, 'due', ?3, ?4, ?5
                     FROM member_segment s JOIN analytics_report a
                         ON a.id = 1 AND s.generation = a.generation
                     WHERE s.segment = ?6"
                ))?
                .execute(params![
                    base[0], base[1], base[2], base[3], base[4], segment
                ])?,
        };
        Ok(n as u64)
    }

    fn due_journey_entries(&mut self, now_ms: i64, limit: u32) -> RepoResult<Vec<JourneyEntry>> {
        let mut statement = self.c.prepare_cached(
            "SELECT journey, member_id, occurrence, expires_at FROM journey_entry
             WHERE state = 'due' AND due_at <= ?1 ORDER BY due_at, journey, member_id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![now_ms, limit], |r| {
            Ok(JourneyEntry {
                journey: r.get(0)?,
                member_id: r.get(1)?,
                occurrence: r.get(2)?,
                expires_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn journey_sends(&mut self, member_id: &str, since_ms: i64) -> RepoResult<Vec<(String, i64)>> {
        let mut statement = self.c.prepare_cached(
            "SELECT journey, done_at FROM journey_entry
             WHERE member_id = ?1 AND state = 'sent' AND done_at > ?2",
        )?;
        let rows =
            statement.query_map(params![member_id, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn settle_journey_entry(
        &mut self,
        e: &JourneyEntry,
        outcome: EntryOutcome<'_>,
        now_ms: i64,
    ) -> RepoResult<()> {
        let (state, due, reason, pushes, done): (&str, Option<i64>, Option<&str>, u32, _) =
            match outcome {
                EntryOutcome::Sent { pushes } => ("sent", None, None, pushes, Some(now_ms)),
                EntryOutcome::Waiting { until_ms, reason } => {
                    ("due", Some(until_ms), Some(reason), 0, None)
                }
                EntryOutcome::Skipped { reason } => {
                    ("skipped", None, Some(reason), 0, Some(now_ms))
                }
            };
        self.c
            .prepare_cached(
                "UPDATE journey_entry SET state = ?4, due_at = ?5, reason = ?6, pushes = ?7,
                     done_at = ?8
                 WHERE journey = ?1 AND member_id = ?2 AND occurrence = ?3",
            )?
            .execute(params![
                e.journey,
                e.member_id,
                e.occurrence,
                state,
                due,
                reason,
                pushes,
                done
            ])?;
        Ok(())
    }

    fn journey_push_failures(&mut self, e: &JourneyEntry, failed: u32) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE journey_entry SET failed = failed + ?4
                 WHERE journey = ?1 AND member_id = ?2 AND occurrence = ?3",
            )?
            .execute(params![e.journey, e.member_id, e.occurrence, failed])?;
        Ok(())
    }

    fn journey_counts(&mut self, since_ms: i64) -> RepoResult<Vec<JourneyCountRow>> {
        let mut statement = self.c.prepare_cached(
            "SELECT journey, state, reason, count(*), sum(pushes), sum(failed)
             FROM journey_entry WHERE created_at >= ?1
             GROUP BY journey, state, reason ORDER BY journey, state, reason",
        )?;
        let rows = statement.query_map([since_ms], |r| {
            Ok(JourneyCountRow {
                journey: r.get(0)?,
                state: r.get(1)?,
                reason: r.get(2)?,
                entries: r.get::<_, i64>(3)? as u64,
                pushes: r.get::<_, i64>(4)? as u64,
                failed: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
