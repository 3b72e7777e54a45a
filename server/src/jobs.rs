//! Background work off the request path: a worker in each server process claims due jobs from
//! the database's queue (`storage::repo::Jobs`) under a lease and runs them. A job whose process
//! dies is claimed again once its lease runs out, and resumes where the database says it was.
//!
//! Jobs today:
//! - campaigns, sent in batches through the push gateway ([`run_campaign`]): each device at most
//!   once (its delivery is written as pending, with the cursor past its member, before it is
//!   handed to the push service), at a bounded rate, progress readable while it runs
//!   (`GET /admin/v1/campaigns/{id}`);
//! - every hour ([`run_scheduler`] queues them, named by the hour, so that one process runs
//!   each): points lapsed for members who do not come back (with their tier review), and the
//!   purge of idempotency keys and webhook deliveries past their retention, and the journeys
//!   ([`run_journeys`]: who enters each, then every due entry sent once or given up);
//!
//! Webhook deliveries have their own loop (`webhooks.rs` at the crate's root), claimed from their
//! own table under leases the same way.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::AppState;
use crate::push::{OutgoingPush, campaign_payload};
use crate::service::Services;
use crate::service::analytics::{ANALYTICS_JOB, AnalyticsServices};
use crate::service::campaigns::CAMPAIGN_JOB;
use crate::service::journeys::{JOURNEY_BATCH, JOURNEYS_JOB, JourneyServices};
use crate::storage::StorageError;
use crate::storage::repo::JobRow;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Whether this process runs jobs at all (a process may serve requests only).
    pub enabled: bool,
    /// How often an idle worker looks for due jobs (it is also woken when this process queues
    /// one).
    pub poll: Duration,
    /// How long a claimed job stays the worker's without news: renewed at every batch; a job
    /// whose process died is resumed by another after it.
    pub lease: Duration,
    /// Members read per campaign batch.
    pub batch_members: u32,
    /// Pushes per second, per process (0: no limit).
    pub push_rate: u32,
    /// Pushes in flight at once.
    pub concurrency: usize,
    /// A job failing this many times in a row is marked failed.
    pub max_attempts: u32,
    /// How often each process queues the recurring jobs of the current period (a job already
    /// queued for it, by this process or another, is not queued again).
    pub schedule_every: Duration,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            enabled: true,
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            batch_members: 500,
            push_rate: 1000,
            concurrency: 32,
            max_attempts: 5,
            schedule_every: Duration::from_secs(60),
        }
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Lapse expired points and review tiers of members who do not come back.
pub const LAPSE_POINTS: &str = "lapse_points";
/// Forget idempotency keys and webhook deliveries past their retention.
pub const PURGE_KEYS: &str = "purge_keys";
/// The jobs queued every hour.
pub const HOURLY: &[&str] = &[LAPSE_POINTS, PURGE_KEYS, JOURNEYS_JOB];

/// The jobs queued every day (the first tick of the UTC day), subject the day.
pub const DAILY: &[&str] = &[ANALYTICS_JOB];

/// A recurring job's subject: the UTC hour it is for (`2026-11-30T18`).
pub fn hour_of(now_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H").to_string())
        .unwrap_or_default()
}

/// Queue this hour's recurring jobs, every `schedule_every`, until the process drains.
pub async fn run_scheduler(state: AppState) {
    if !state.config.jobs.enabled {
        return;
    }
    let mut tick = tokio::time::interval(state.config.jobs.schedule_every);
    while !state.draining.load(Ordering::Relaxed) {
        tick.tick().await;
        let hour = hour_of(now_ms());
        let day = tessera_domain::api::day_text(tessera_domain::api::day_of(now_ms()));
        let recurring = HOURLY
            .iter()
            .map(|k| (*k, &hour))
            .chain(DAILY.iter().map(|k| (*k, &day)));
        for (kind, subject) in recurring {
            match state
                .storage
                .schedule_job(kind.to_owned(), subject.clone(), now_ms())
                .await
            {
                Ok(true) => state.jobs_waiting.notify_one(),
                Ok(false) => {}
                Err(e) => tracing::warn!(kind, error = %e, "recurring job not queued"),
            }
        }
    }
}

/// The worker loop: until the process drains, claim a due job and run it.
pub async fn run_worker(state: AppState) {
    let config = state.config.jobs.clone();
    if !config.enabled {
        return;
    }
    let owner = state.process.to_string();
    let lease_ms = config.lease.as_millis() as i64;
    while !state.draining.load(Ordering::Relaxed) {
        match state
            .storage
            .claim_job(owner.clone(), now_ms(), lease_ms)
            .await
        {
            Ok(Some(job)) => run(&state, &owner, job).await,
            Ok(None) => {
                tokio::select! {
                    _ = state.jobs_waiting.notified() => {}
                    _ = tokio::time::sleep(config.poll) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a job");
                tokio::time::sleep(config.poll).await;
            }
        }
    }
}

async fn run(state: &AppState, owner: &str, job: JobRow) {
    let outcome = match job.kind.as_str() {
        CAMPAIGN_JOB => run_campaign(state, owner, &job).await,
        LAPSE_POINTS => run_lapses(state, owner, &job).await,
        PURGE_KEYS => purge(state).await,
        ANALYTICS_JOB => run_analytics(state, owner, &job).await,
        JOURNEYS_JOB => run_journeys(state, owner, &job).await,
        other => Err(StorageError::Backend(format!("unknown job kind {other}"))),
    };
    let storage = &state.storage;
    let result = match outcome {
        Ok(Ended::Done) => {
            storage
                .finish_job(job.id, owner.to_owned(), None, now_ms())
                .await
        }
        Ok(Ended::Stopping) => {
            storage
                .release_job(job.id, owner.to_owned(), now_ms())
                .await
        }
        Ok(Ended::LeaseLost) => Ok(()),
        Err(e) if job.attempts >= state.config.jobs.max_attempts => {
            tracing::error!(job = job.id, kind = %job.kind, subject = %job.subject, error = %e,
                "job failed for good");
            storage
                .finish_job(job.id, owner.to_owned(), Some(e.to_string()), now_ms())
                .await
        }
        Err(e) => {
            // Left to its lease: claimed again when it runs out.
            tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %e,
                "job failed; it will be run again");
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::warn!(job = job.id, error = %e, "could not end the job");
    }
}

/// Forget idempotency keys and webhook deliveries past their retention.
async fn purge(state: &AppState) -> Result<Ended, StorageError> {
    let keys = crate::purge_expired_keys(state, now_ms()).await?;
    let events = crate::webhooks::purge(state, now_ms()).await?;
    if keys + events > 0 {
        tracing::info!(
            keys,
            events,
            "old idempotency keys and webhook events purged"
        );
    }
    Ok(Ended::Done)
}

/// Analyse the programme (its generation: the job's id), renewing the lease while it runs.
async fn run_analytics(state: &AppState, owner: &str, job: &JobRow) -> Result<Ended, StorageError> {
    let lease_ms = state.config.jobs.lease.as_millis() as i64;
    let renew = {
        let (state, owner, id) = (state.clone(), owner.to_owned(), job.id);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.config.jobs.lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let renewed = state
                    .storage
                    .renew_job(id, owner.clone(), now_ms(), lease_ms)
                    .await;
                if !matches!(renewed, Ok(true)) {
                    return;
                }
            }
        })
    };
    let started = Instant::now();
    let outcome = state.storage.run_analysis(job.id, now_ms()).await;
    renew.abort();
    let published = outcome?;
    tracing::info!(
        generation = job.id,
        published,
        ms = started.elapsed().as_millis() as u64,
        "analytics computed"
    );
    Ok(Ended::Done)
}

/// How a job's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Done,
    /// The process is draining: the job is given back for another.
    Stopping,
    /// Another worker holds it now (this one stalled past its lease).
    LeaseLost,
}

/// Lapse expired points a page of members at a time (each page one transaction), until none
/// is left.
async fn run_lapses(state: &AppState, owner: &str, job: &JobRow) -> Result<Ended, StorageError> {
    let lease_ms = state.config.jobs.lease.as_millis() as i64;
    let mut members = 0u64;
    loop {
        if state.draining.load(Ordering::Relaxed) {
            return Ok(Ended::Stopping);
        }
        if !state
            .storage
            .renew_job(job.id, owner.to_owned(), now_ms(), lease_ms)
            .await?
        {
            return Ok(Ended::LeaseLost);
        }
        let n = state.storage.lapse_points(now_ms(), 200).await?;
        if n == 0 {
            if members > 0 {
                tracing::info!(members, "expired points lapsed");
            }
            return Ok(Ended::Done);
        }
        members += u64::from(n);
    }
}

/// Send a campaign batch by batch until its audience is exhausted.
async fn run_campaign(state: &AppState, owner: &str, job: &JobRow) -> Result<Ended, StorageError> {
    let config = &state.config.jobs;
    let lease_ms = config.lease.as_millis() as i64;
    let limit = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    loop {
        if state.draining.load(Ordering::Relaxed) {
            return Ok(Ended::Stopping);
        }
        let Some(batch) = state
            .storage
            .campaign_batch(
                job.id,
                owner.to_owned(),
                lease_ms,
                job.subject.clone(),
                config.batch_members,
                now_ms(),
            )
            .await?
        else {
            return Ok(Ended::LeaseLost);
        };
        if batch.done {
            tracing::info!(campaign = %job.subject, "campaign sent");
            return Ok(Ended::Done);
        }
        let expires_at_s = tessera_domain::catalog::parse_instant(
            "campaign.expires_at",
            &batch.campaign.expires_at,
        )
        .map(|t| t.as_second())
        .unwrap_or(0);
        let pushes = batch
            .targets
            .into_iter()
            .map(|target| {
                let push = OutgoingPush {
                    provider: target.provider,
                    device_token: target.token.clone(),
                    payload: campaign_payload(&batch.campaign, &target.device_id),
                    expires_at_s,
                };
                (target.device_id, push)
            })
            .collect();
        let outcomes = send_all(state, pushes, &limit).await;
        state
            .storage
            .record_deliveries(job.subject.clone(), outcomes, now_ms())
            .await?;
    }
}

/// Send `pushes` (each with its key) at the configured rate, at most `limit` in flight: each
/// key with what its push service answered.
async fn send_all<K: Send + 'static>(
    state: &AppState,
    pushes: Vec<(K, OutgoingPush)>,
    limit: &Arc<tokio::sync::Semaphore>,
) -> Vec<(K, Result<(), String>)> {
    let config = &state.config.jobs;
    let pacing = (config.push_rate > 0).then(|| Duration::from_secs(1) / config.push_rate);
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for (i, (key, push)) in pushes.into_iter().enumerate() {
        if let Some(gap) = pacing {
            // The rate: the i-th push of the batch no sooner than i gaps after its start.
            let due = started + gap * i as u32;
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = limit.clone().acquire_owned().await;
        let gateway = state.gateway.clone();
        sends.spawn(async move {
            let outcome = gateway.send(&push).await;
            drop(permit);
            (key, outcome)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = sends.join_next().await {
        match done {
            Ok(o) => outcomes.push(o),
            Err(e) => tracing::error!(error = %e, "a push task failed"),
        }
    }
    outcomes
}

/// Enter the members each journey finds, then settle due entries a batch at a time (each batch
/// one transaction, before its pushes leave) until none is due.
async fn run_journeys(state: &AppState, owner: &str, job: &JobRow) -> Result<Ended, StorageError> {
    let lease_ms = state.config.jobs.lease.as_millis() as i64;
    let limit = Arc::new(tokio::sync::Semaphore::new(
        state.config.jobs.concurrency.max(1),
    ));
    let entered = state.storage.enter_journeys(now_ms()).await?;
    let mut sent = 0usize;
    loop {
        if state.draining.load(Ordering::Relaxed) {
            return Ok(Ended::Stopping);
        }
        let Some(batch) = state
            .storage
            .journey_batch(job.id, owner.to_owned(), lease_ms, JOURNEY_BATCH, now_ms())
            .await?
        else {
            return Ok(Ended::LeaseLost);
        };
        if batch.is_empty() {
            if entered > 0 || sent > 0 {
                tracing::info!(entered, sent, "journeys");
            }
            return Ok(Ended::Done);
        }
        let mut pushes = vec![];
        for (i, send) in batch.iter().enumerate() {
            pushes.extend(send.pushes.iter().map(|p| (i, p.clone())));
        }
        sent += batch.len();
        let mut failed = vec![0u32; batch.len()];
        let mut delivered = 0u64;
        for (i, outcome) in send_all(state, pushes, &limit).await {
            match outcome {
                Ok(()) => delivered += 1,
                Err(e) => {
                    tracing::warn!(journey = %batch[i].entry.journey, error = %e, "journey push refused");
                    failed[i] += 1;
                }
            }
        }
        let failures = batch
            .into_iter()
            .zip(failed)
            .filter(|(_, f)| *f > 0)
            .map(|(s, f)| (s.entry, f))
            .collect();
        state
            .storage
            .record_journey_pushes(failures, delivered, now_ms())
            .await?;
    }
}

/// Passes looked at per round.
const WALLET_BATCH: u32 = 100;

/// Tell the wallets of changed passes, until the process drains: every change to a member marks
/// their passes stale (in the same transaction); this loop looks at them in serial order
/// (round-robin, so that a wallet failing over and over delays no other), and for a pass whose
/// content changed pushes each registered Apple device and updates the Google object. A pass is
/// cleared only once every wallet was told (at least once, whatever crashes).
pub async fn run_wallet_updates(state: AppState) {
    use crate::service::wallet::WalletServices;
    let Some(wallet) = state.config.wallet.clone() else {
        return;
    };
    if !state.config.jobs.enabled {
        return;
    }
    let poll = state.config.jobs.poll;
    let mut after = String::new();
    while !state.draining.load(Ordering::Relaxed) {
        let stale = match state
            .storage
            .stale_passes(after.clone(), WALLET_BATCH)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the stale passes");
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        if stale.is_empty() {
            if after.is_empty() {
                tokio::time::sleep(poll).await;
            }
            after.clear();
            continue;
        }
        let mut failed = false;
        for (serial, _) in &stale {
            if let Err(e) = tell_wallets(&state, &wallet, serial).await {
                tracing::warn!(serial = %serial, error = %e, "a wallet was not told; again later");
                failed = true;
            }
        }
        after = stale.last().map(|(s, _)| s.clone()).unwrap_or_default();
        if failed {
            tokio::time::sleep(poll).await;
        }
    }
}

async fn tell_wallets(
    state: &AppState,
    wallet: &crate::wallet::WalletConfig,
    serial: &str,
) -> Result<(), String> {
    use crate::service::wallet::WalletServices;
    use crate::wallet::{Told, push_pass_update, update_google_object};
    let Some(looked) = state
        .storage
        .look_at_pass(serial.to_owned(), now_ms())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    if let Some(content) = &looked.content
        && looked.row.digest != looked.row.pushed_digest
    {
        if let Some(apple) = &wallet.apple {
            for token in &looked.push_tokens {
                if push_pass_update(apple, token).await? == Told::Gone {
                    state
                        .storage
                        .forget_pass_push_token(token.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        if let Some(google) = &wallet.google
            && looked.row.google
        {
            match content.google(google) {
                Ok((kind, object)) => {
                    update_google_object(google, kind, &object).await?;
                }
                Err(e) => tracing::warn!(serial, error = %e, "no Google object for this pass"),
            }
        }
    }
    state
        .storage
        .pass_pushed(serial.to_owned(), looked.row.digest.clone(), looked.stale)
        .await
        .map_err(|e| e.to_string())
}
