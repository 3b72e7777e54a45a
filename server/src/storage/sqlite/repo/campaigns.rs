//! Campaigns sent in batches, and the job queue, in SQLite (one writer: a claim needs no more
//! than the write lock every transaction takes).

use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, params};
use tessera_domain::api::CampaignState;
use tessera_domain::consent::{Channel, Purpose};

use super::{SqliteRepo, json, to_i64, to_u64};
use crate::storage::repo::{
    AudiencePage, CampaignRow, CampaignStep, Campaigns, JobRow, Jobs, RepoResult,
};
use crate::storage::{PushTarget, StorageError};

impl Campaigns for SqliteRepo<'_> {
    fn insert_campaign(&mut self, id: &str, body: &str, now_ms: i64) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO campaign (id, created_at, body, targeted, sent, failed, state)
                 VALUES (?1, ?2, ?3, 0, 0, 0, 'queued') ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![id, now_ms, body])?
            == 1)
    }

    fn campaign_ids(&mut self, limit: u32) -> RepoResult<Vec<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT id FROM campaign ORDER BY created_at DESC, id LIMIT ?1")?
            .query_map([limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn campaign(&mut self, id: &str) -> RepoResult<Option<CampaignRow>> {
        let row = self
            .c
            .prepare_cached(
                "SELECT body, state, cursor, targeted, without_device, sent, failed, pending
                 FROM campaign WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    [
                        r.get::<_, i64>(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ],
                ))
            })
            .optional()?;
        row.map(|(body, state, cursor, n)| {
            Ok(CampaignRow {
                id: id.to_owned(),
                body,
                state: CampaignState::parse(&state)
                    .ok_or_else(|| StorageError::backend(format!("campaign state {state}")))?,
                cursor,
                members: to_u64(n[0]),
                without_device: to_u64(n[1]),
                sent: to_u64(n[2]),
                failed: to_u64(n[3]),
                pending: to_u64(n[4]),
            })
        })
        .transpose()
    }

    fn audience_page(
        &mut self,
        purpose: Purpose,
        channel: Channel,
        after: &str,
        limit: u32,
    ) -> RepoResult<AudiencePage> {
        let last: Option<String> = self
            .c
            .prepare_cached(
                "SELECT max(id) FROM (SELECT id FROM member WHERE id > ?1 ORDER BY id LIMIT ?2)",
            )?
            .query_row(params![after, limit], |r| r.get(0))?;
        let Some(last) = last else {
            return Ok(AudiencePage::default());
        };
        let granted = self
            .c
            .prepare_cached(
                "SELECT member_id FROM (
                     SELECT member_id, decision, row_number() OVER (
                         PARTITION BY member_id
                         ORDER BY effective_ms DESC, decision != 'granted' DESC, record_id DESC)
                         AS latest
                     FROM consent_record
                     WHERE purpose = ?1 AND channel = ?2 AND member_id > ?3
                       AND member_id <= ?4)
                 WHERE latest = 1 AND decision = 'granted' ORDER BY member_id",
            )?
            .query_map(
                params![purpose.as_str(), channel.as_str(), after, last],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        Ok(AudiencePage {
            granted,
            last: Some(last),
        })
    }

    fn in_shops(&mut self, member_id: &str, shops: &[String]) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM favourite_store
                     WHERE member_id = ?1 AND store_id IN (SELECT value FROM json_each(?2)))
                 OR EXISTS (SELECT 1 FROM purchase
                     WHERE member_id = ?1 AND voided_at IS NULL
                       AND store_id IN (SELECT value FROM json_each(?2)))",
            )?
            .query_row(params![member_id, json(&shops)?], |r| r.get(0))?)
    }

    fn shops_members(&mut self, shops: &[String]) -> RepoResult<HashSet<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT member_id FROM favourite_store
                     WHERE store_id IN (SELECT value FROM json_each(?1))
                 UNION
                 SELECT member_id FROM purchase
                     WHERE store_id IN (SELECT value FROM json_each(?1))
                       AND voided_at IS NULL AND member_id IS NOT NULL",
            )?
            .query_map([json(&shops)?], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn tier_members(&mut self, tiers: &[String]) -> RepoResult<HashSet<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT id FROM member WHERE tier IN (SELECT value FROM json_each(?1))",
            )?
            .query_map([json(&tiers)?], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn push_device_counts(&mut self) -> RepoResult<HashMap<String, u64>> {
        self.c
            .prepare_cached("SELECT member_id, count(*) FROM push_token GROUP BY member_id")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .map(|row| {
                let (member, n) = row?;
                Ok((member, to_u64(n)))
            })
            .collect()
    }

    fn pending_delivery(
        &mut self,
        campaign_id: &str,
        t: &PushTarget,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO push_delivery (campaign_id, member_id, device_id, provider, status,
                    error, sent_at) VALUES (?1, ?2, ?3, ?4, -1, NULL, ?5)
                 ON CONFLICT (campaign_id, device_id) DO NOTHING",
            )?
            .execute(params![
                campaign_id,
                t.member_id,
                t.device_id,
                t.provider.as_str(),
                now_ms
            ])?
            == 1)
    }

    fn advance_campaign(
        &mut self,
        id: &str,
        step: &CampaignStep<'_>,
        now_ms: i64,
    ) -> RepoResult<()> {
        let done = step.state == CampaignState::Done;
        self.c
            .prepare_cached(
                "UPDATE campaign SET cursor = ?2, targeted = targeted + ?3,
                    without_device = without_device + ?4, pending = pending + ?5, state = ?6,
                    finished_at = CASE WHEN ?7 THEN ?8 ELSE finished_at END
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                step.cursor,
                to_i64(step.members),
                to_i64(step.without_device),
                to_i64(step.pending),
                step.state.as_str(),
                done,
                now_ms
            ])?;
        Ok(())
    }

    fn delivered(
        &mut self,
        campaign_id: &str,
        device_id: &str,
        outcome: Result<(), &str>,
        now_ms: i64,
    ) -> RepoResult<bool> {
        let changed = self
            .c
            .prepare_cached(
                "UPDATE push_delivery SET status = ?3, error = ?4, sent_at = ?5
                 WHERE campaign_id = ?1 AND device_id = ?2 AND status = -1",
            )?
            .execute(params![
                campaign_id,
                device_id,
                i64::from(outcome.is_ok()),
                outcome.err(),
                now_ms
            ])?
            == 1;
        if changed {
            self.c
                .prepare_cached(
                    "UPDATE campaign SET pending = pending - 1, sent = sent + ?2,
                        failed = failed + ?3 WHERE id = ?1",
                )?
                .execute(params![
                    campaign_id,
                    i64::from(outcome.is_ok()),
                    i64::from(outcome.is_err())
                ])?;
        }
        Ok(changed)
    }
}

impl Jobs for SqliteRepo<'_> {
    fn insert_job(
        &mut self,
        kind: &str,
        subject: &str,
        run_after_ms: i64,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO job (kind, subject, state, run_after, created_at, updated_at)
                 VALUES (?1, ?2, 'queued', ?3, ?4, ?4) ON CONFLICT (kind, subject) DO NOTHING",
            )?
            .execute(params![kind, subject, run_after_ms, now_ms])?
            == 1)
    }

    fn claim_job(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> RepoResult<Option<JobRow>> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE job SET state = 'running', lease_owner = ?1, lease_until = ?2 + ?3,
                    attempts = attempts + 1, updated_at = ?2
                 WHERE id = (SELECT id FROM job
                             WHERE (state = 'queued' AND run_after <= ?2)
                                OR (state = 'running' AND lease_until < ?2)
                             ORDER BY id LIMIT 1)
                 RETURNING id, kind, subject, attempts",
            )?
            .query_row(params![owner, now_ms, lease_ms], |r| {
                Ok(JobRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    subject: r.get(2)?,
                    attempts: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn renew_job(&mut self, id: i64, owner: &str, now_ms: i64, lease_ms: i64) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE job SET lease_until = ?3 + ?4, updated_at = ?3
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            )?
            .execute(params![id, owner, now_ms, lease_ms])?
            == 1)
    }

    fn finish_job(
        &mut self,
        id: i64,
        owner: &str,
        error: Option<&str>,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE job SET state = CASE WHEN ?3 IS NULL THEN 'done' ELSE 'failed' END,
                    error = ?3, lease_owner = NULL, lease_until = NULL, updated_at = ?4
                 WHERE id = ?1 AND lease_owner = ?2",
            )?
            .execute(params![id, owner, error, now_ms])?;
        Ok(())
    }

    fn release_job(&mut self, id: i64, owner: &str, now_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE job SET state = 'queued', run_after = ?3, lease_owner = NULL,
                    lease_until = NULL, updated_at = ?3
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            )?
            .execute(params![id, owner, now_ms])?;
        Ok(())
    }

    fn heartbeat(&mut self, process: &str, now_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO server_process (id, started_at, seen_at) VALUES (?1, ?2, ?2)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            )?
            .execute(params![process, now_ms])?;
        Ok(())
    }

    fn forget_processes(&mut self, before_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached("DELETE FROM server_process WHERE seen_at < ?1")?
            .execute([before_ms])?;
        Ok(())
    }

    fn live_processes(&mut self, since_ms: i64) -> RepoResult<u32> {
        Ok(self
            .c
            .prepare_cached("SELECT count(*) FROM server_process WHERE seen_at >= ?1")?
            .query_row([since_ms], |r| r.get(0))?)
    }

    fn job_state(&mut self, kind: &str, subject: &str) -> RepoResult<Option<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT state FROM job WHERE kind = ?1 AND subject = ?2")?
            .query_row([kind, subject], |r| r.get(0))
            .optional()?)
    }

    fn leave(&mut self, process: &str) -> RepoResult<()> {
        self.c
            .prepare_cached("DELETE FROM server_process WHERE id = ?1")?
            .execute([process])?;
        Ok(())
    }
}
