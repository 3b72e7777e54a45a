//! The server's business rules, backend-neutral: enrolment, mutations, purchases, voids,
//! returns, points and tiers, challenge rewards, coupons and their redemption, offline
//! reconciliation, consent, erasure, campaigns. Each runs over the narrow
//! [`Repo`](crate::storage::Repo) inside one transaction of any [`Storage`] backend, with the
//! domain's code (`tessera_domain`) for every rule, and answers in domain terms (a
//! [`Refusal`], never HTTP).
//!
//! [`Services`] is how the routes, the CLI and the tests call them: an extension of every
//! [`Storage`], so `storage.apply_mutation(…)` runs the same rules on SQLite or any backend.

pub mod analytics;
pub mod campaigns;
mod challenges;
mod coupons;
pub mod journeys;
pub mod kpis;
mod ledger;
mod member_codes;
mod members;
mod privacy;
pub mod staff;
mod till;
pub mod wallet;
pub mod webhooks;

use async_trait::async_trait;
use tessera_domain::api::{
    CampaignAudience, CampaignReport, ErasureReceipt, MemberExport, MemberState, Mutation,
    PointsAdjustment,
};
use tessera_domain::consent::ConsentRecord;
use tessera_domain::coupon::CouponKey;
use tessera_domain::loyalty::LoyaltyRules;
use tessera_domain::rules::RuleEvent;

use crate::storage::repo::JobRow;
use crate::storage::{
    AudienceCount, Ingested, MutationOutcome, NewEnrolment, Refusal, Storage, StorageError,
    TillAuth, TillOp, read, write,
};

pub(crate) use crate::storage::{to_i64, to_u64};

fn wall_clock_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The business operations, on any [`Storage`].
#[async_trait]
pub trait Services {
    /// Enrol a member and its first device; a conflict if no programme is set up.
    async fn enrol(&self, enrolment: NewEnrolment) -> Result<(), StorageError>;
    /// What `GET /v1/me` shows now.
    async fn member_state(&self, member_id: String) -> Result<MemberState, StorageError>;
    /// Apply `mutation` once per `(member, key)`: look the key up, apply and store the answer in
    /// one transaction.
    async fn apply_mutation(
        &self,
        member_id: String,
        key: String,
        body_hash: String,
        mutation: Mutation,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError>;
    /// A consent record made by staff on the member's behalf (`record.member_id`): stored and
    /// returned, or refused; `None` if there is no such member.
    async fn staff_consent(
        &self,
        record: ConsentRecord,
        now_ms: i64,
    ) -> Result<Option<Result<ConsentRecord, Refusal>>, StorageError>;
    /// Everything held about the member; `None` if there is no such member.
    async fn export(
        &self,
        member_id: String,
        now_ms: i64,
    ) -> Result<Option<MemberExport>, StorageError>;
    /// Erase the member (consent records detached and kept, the rest deleted); `None` if there
    /// is no such member.
    async fn erase(
        &self,
        member_id: String,
        now_ms: i64,
        requested_by: String,
    ) -> Result<Option<ErasureReceipt>, StorageError>;
    /// How many a campaign to the audience would reach now: members who consented to offers by
    /// push and match it, their devices with a push token, and how many of them have none.
    async fn audience_count(
        &self,
        audience: CampaignAudience,
    ) -> Result<AudienceCount, StorageError>;
    /// A new campaign and the job that sends it from `send_at_ms`: false if the id is taken.
    async fn create_campaign(
        &self,
        campaign_id: String,
        body: String,
        send_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
    /// The latest `limit` campaigns and where each is, newest first.
    async fn recent_campaigns(
        &self,
        limit: u32,
    ) -> Result<Vec<(tessera_domain::api::Campaign, CampaignReport)>, StorageError>;
    /// An offer of the catalog.
    async fn catalog_offer(
        &self,
        offer_id: String,
    ) -> Result<Option<tessera_domain::catalog::Offer>, StorageError>;
    /// What `rules` would have given the member ([`challenges::dry_run`]).
    async fn rule_dry_run(
        &self,
        member_id: String,
        rules: tessera_domain::rules::RuleSet,
        now_ms: i64,
    ) -> Result<
        Option<Result<tessera_domain::rules::RuleDryRun, tessera_domain::rules::RulesError>>,
        StorageError,
    >;
    /// The latest `limit` published versions of the rule set, newest first.
    async fn rule_versions(
        &self,
        limit: u32,
    ) -> Result<Vec<tessera_domain::api::RuleVersion>, StorageError>;
    async fn rule_version(
        &self,
        version: i64,
    ) -> Result<Option<tessera_domain::rules::RuleSet>, StorageError>;
    /// Where a campaign is; `None` if there is no such campaign.
    async fn campaign_report(
        &self,
        campaign_id: String,
    ) -> Result<Option<CampaignReport>, StorageError>;
    /// The campaign's next batch for the worker holding its job ([`campaigns::next_batch`]).
    #[allow(clippy::too_many_arguments)]
    async fn campaign_batch(
        &self,
        job_id: i64,
        owner: String,
        lease_ms: i64,
        campaign_id: String,
        members: u32,
        now_ms: i64,
    ) -> Result<Option<campaigns::Batch>, StorageError>;
    /// What the push service answered for a batch's devices.
    async fn record_deliveries(
        &self,
        campaign_id: String,
        outcomes: Vec<(String, Result<(), String>)>,
        now_ms: i64,
    ) -> Result<(), StorageError>;
    /// Claim the next due job for `owner` (see [`crate::storage::repo::Jobs`]).
    async fn claim_job(
        &self,
        owner: String,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRow>, StorageError>;
    /// End `owner`'s job: done, or failed with `error`.
    async fn finish_job(
        &self,
        job_id: i64,
        owner: String,
        error: Option<String>,
        now_ms: i64,
    ) -> Result<(), StorageError>;
    /// Give `owner`'s job back, due at once.
    async fn release_job(
        &self,
        job_id: i64,
        owner: String,
        now_ms: i64,
    ) -> Result<(), StorageError>;
    /// Note that this process is alive; how many are (see [`crate::storage::repo::Jobs`]).
    async fn heartbeat(
        &self,
        process: String,
        now_ms: i64,
        alive_ms: i64,
    ) -> Result<u32, StorageError>;
    /// This process stops: the others take its share of the rate limits.
    async fn leave(&self, process: String) -> Result<(), StorageError>;
    /// Queue job `kind` for `subject` now unless it exists (a recurring job names its period):
    /// whether it was queued.
    async fn schedule_job(
        &self,
        kind: String,
        subject: String,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
    /// The state of job `kind` for `subject`.
    async fn job_state(
        &self,
        kind: String,
        subject: String,
    ) -> Result<Option<String>, StorageError>;
    /// Extend `owner`'s lease on a job: false if it is no longer its.
    async fn renew_job(
        &self,
        job_id: i64,
        owner: String,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StorageError>;
    /// Lapse expired points (and review tiers) of up to `limit` members: how many.
    async fn lapse_points(&self, now_ms: i64, limit: u32) -> Result<u32, StorageError>;
    /// The public keys tills verify coupons with (a signing key is made on first use).
    async fn coupon_keys(&self, now_ms: i64) -> Result<Vec<CouponKey>, StorageError>;
    /// Certify a device's key for the rotating member code; `None` for an unknown member.
    async fn certify_device(
        &self,
        member_id: String,
        device_id: String,
        public_key: [u8; 32],
        now_ms: i64,
    ) -> Result<Option<tessera_domain::api::DeviceCertificateAnswer>, StorageError>;
    /// Revoke the member's device certificates (one device's, or all): how many were live;
    /// `None` for an unknown member.
    async fn revoke_devices(
        &self,
        member_id: String,
        device_id: Option<String>,
        now_ms: i64,
    ) -> Result<Option<u64>, StorageError>;
    /// The certificates tills refuse: revoked and not yet expired.
    async fn revocations(&self, now_ms: i64) -> Result<Vec<u64>, StorageError>;
    /// Apply a till's request once per till idempotency key: look the key up, apply (redeem with
    /// one conditional write, record a purchase, void, return) and store the answer, in one
    /// transaction.
    async fn apply_till_op(
        &self,
        till: TillAuth,
        key: String,
        body_hash: String,
        op: TillOp,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError>;
    /// The programme's points and tier rules.
    async fn loyalty_rules(&self) -> Result<LoyaltyRules, StorageError>;
    /// Put them in force (checked already: `LoyaltyRules::validate`) and keep them as a new
    /// version, by `by` (`operator` or a staff member's address) with a note: the version, or
    /// `None` if the web coupon's offer does not exist or has ended (nothing written).
    async fn put_loyalty_rules(
        &self,
        rules: LoyaltyRules,
        by: String,
        note: String,
        now_ms: i64,
    ) -> Result<Option<i64>, StorageError>;
    /// The latest `limit` versions of the loyalty rules, newest first.
    async fn loyalty_rule_versions(
        &self,
        limit: u32,
    ) -> Result<Vec<tessera_domain::api::RuleVersion>, StorageError>;
    async fn loyalty_rule_version(
        &self,
        version: i64,
    ) -> Result<Option<LoyaltyRules>, StorageError>;
    /// An operator's correction: the new balance, or why not; `None` if there is no such member.
    async fn adjust_points(
        &self,
        member_id: String,
        adjustment: PointsAdjustment,
        now_ms: i64,
    ) -> Result<Option<Result<u64, Refusal>>, StorageError>;
    /// Set or clear a member's birthday (`MM-DD`, checked by the caller); `false` for an unknown
    /// member.
    async fn set_birthday(
        &self,
        member_id: String,
        birthday: Option<String>,
    ) -> Result<bool, StorageError>;
    /// Record events the programme's systems report for a member and evaluate; `None` for an
    /// unknown member.
    async fn ingest_rule_events(
        &self,
        member_id: String,
        events: Vec<RuleEvent>,
        now_ms: i64,
    ) -> Result<Option<Result<Ingested, Refusal>>, StorageError>;
}

#[async_trait]
impl<S: Storage + ?Sized> Services for S {
    async fn enrol(&self, enrolment: NewEnrolment) -> Result<(), StorageError> {
        write(self, move |repo| {
            members::enrol(repo, &enrolment, wall_clock_ms())
        })
        .await
    }

    async fn member_state(&self, member_id: String) -> Result<MemberState, StorageError> {
        read(self, move |repo| {
            members::state(repo, &member_id, wall_clock_ms())
        })
        .await
    }

    async fn apply_mutation(
        &self,
        member_id: String,
        key: String,
        body_hash: String,
        mutation: Mutation,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError> {
        write(self, move |repo| {
            members::apply_once(repo, &member_id, &key, &body_hash, &mutation, now_ms)
        })
        .await
    }

    async fn staff_consent(
        &self,
        record: ConsentRecord,
        now_ms: i64,
    ) -> Result<Option<Result<ConsentRecord, Refusal>>, StorageError> {
        write(self, move |repo| {
            privacy::staff_consent(repo, &record, now_ms)
        })
        .await
    }

    async fn export(
        &self,
        member_id: String,
        now_ms: i64,
    ) -> Result<Option<MemberExport>, StorageError> {
        read(self, move |repo| {
            if repo.member(&member_id)?.is_none() {
                return Ok(None);
            }
            let state = members::state(repo, &member_id, wall_clock_ms())?;
            privacy::export(repo, state, now_ms).map(Some)
        })
        .await
    }

    async fn erase(
        &self,
        member_id: String,
        now_ms: i64,
        requested_by: String,
    ) -> Result<Option<ErasureReceipt>, StorageError> {
        write(self, move |repo| {
            privacy::erase(repo, &member_id, now_ms, &requested_by)
        })
        .await
    }

    async fn audience_count(
        &self,
        audience: CampaignAudience,
    ) -> Result<AudienceCount, StorageError> {
        read(self, move |repo| campaigns::count(repo, &audience)).await
    }

    async fn create_campaign(
        &self,
        campaign_id: String,
        body: String,
        send_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        write(self, move |repo| {
            campaigns::create(repo, &campaign_id, &body, send_at_ms, now_ms)
        })
        .await
    }

    async fn recent_campaigns(
        &self,
        limit: u32,
    ) -> Result<Vec<(tessera_domain::api::Campaign, CampaignReport)>, StorageError> {
        read(self, move |repo| campaigns::recent(repo, limit)).await
    }

    async fn catalog_offer(
        &self,
        offer_id: String,
    ) -> Result<Option<tessera_domain::catalog::Offer>, StorageError> {
        read(self, move |repo| repo.offer(&offer_id)).await
    }

    async fn rule_dry_run(
        &self,
        member_id: String,
        rules: tessera_domain::rules::RuleSet,
        now_ms: i64,
    ) -> Result<
        Option<Result<tessera_domain::rules::RuleDryRun, tessera_domain::rules::RulesError>>,
        StorageError,
    > {
        read(self, move |repo| {
            challenges::dry_run(repo, &member_id, &rules, now_ms)
        })
        .await
    }

    async fn rule_versions(
        &self,
        limit: u32,
    ) -> Result<Vec<tessera_domain::api::RuleVersion>, StorageError> {
        read(self, move |repo| Ok(versions(repo.rule_versions(limit)?))).await
    }

    async fn rule_version(
        &self,
        version: i64,
    ) -> Result<Option<tessera_domain::rules::RuleSet>, StorageError> {
        read(self, move |repo| repo.rule_version(version)).await
    }

    async fn campaign_report(
        &self,
        campaign_id: String,
    ) -> Result<Option<CampaignReport>, StorageError> {
        read(self, move |repo| {
            Ok(repo.campaign(&campaign_id)?.as_ref().map(campaigns::report))
        })
        .await
    }

    async fn campaign_batch(
        &self,
        job_id: i64,
        owner: String,
        lease_ms: i64,
        campaign_id: String,
        members: u32,
        now_ms: i64,
    ) -> Result<Option<campaigns::Batch>, StorageError> {
        write(self, move |repo| {
            campaigns::next_batch(
                repo,
                job_id,
                &owner,
                lease_ms,
                &campaign_id,
                members,
                now_ms,
            )
        })
        .await
    }

    async fn record_deliveries(
        &self,
        campaign_id: String,
        outcomes: Vec<(String, Result<(), String>)>,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| {
            campaigns::record(repo, &campaign_id, &outcomes, now_ms)
        })
        .await
    }

    async fn claim_job(
        &self,
        owner: String,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRow>, StorageError> {
        write(self, move |repo| repo.claim_job(&owner, now_ms, lease_ms)).await
    }

    async fn finish_job(
        &self,
        job_id: i64,
        owner: String,
        error: Option<String>,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| {
            repo.finish_job(job_id, &owner, error.as_deref(), now_ms)
        })
        .await
    }

    async fn release_job(
        &self,
        job_id: i64,
        owner: String,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| repo.release_job(job_id, &owner, now_ms)).await
    }

    async fn heartbeat(
        &self,
        process: String,
        now_ms: i64,
        alive_ms: i64,
    ) -> Result<u32, StorageError> {
        // Three transactions, not one: a transaction that read every process's row and wrote
        // its own would conflict with every other process's doing the same at once
        // (SERIALIZABLE on PostgreSQL), and the heartbeats would run again and again.
        write(self, move |repo| repo.heartbeat(&process, now_ms)).await?;
        let forget = now_ms.saturating_sub(alive_ms.saturating_mul(10));
        write(self, move |repo| repo.forget_processes(forget)).await?;
        let since = now_ms.saturating_sub(alive_ms);
        read(self, move |repo| {
            repo.live_processes(since).map(|n| n.max(1))
        })
        .await
    }

    async fn leave(&self, process: String) -> Result<(), StorageError> {
        write(self, move |repo| repo.leave(&process)).await
    }

    async fn schedule_job(
        &self,
        kind: String,
        subject: String,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        write(self, move |repo| {
            repo.insert_job(&kind, &subject, now_ms, now_ms)
        })
        .await
    }

    async fn job_state(
        &self,
        kind: String,
        subject: String,
    ) -> Result<Option<String>, StorageError> {
        read(self, move |repo| repo.job_state(&kind, &subject)).await
    }

    async fn renew_job(
        &self,
        job_id: i64,
        owner: String,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StorageError> {
        write(self, move |repo| {
            repo.renew_job(job_id, &owner, now_ms, lease_ms)
        })
        .await
    }

    async fn lapse_points(&self, now_ms: i64, limit: u32) -> Result<u32, StorageError> {
        write(self, move |repo| ledger::lapse_due(repo, now_ms, limit)).await
    }

    async fn coupon_keys(&self, now_ms: i64) -> Result<Vec<CouponKey>, StorageError> {
        write(self, move |repo| coupons::keys(repo, now_ms)).await
    }

    async fn certify_device(
        &self,
        member_id: String,
        device_id: String,
        public_key: [u8; 32],
        now_ms: i64,
    ) -> Result<Option<tessera_domain::api::DeviceCertificateAnswer>, StorageError> {
        write(self, move |repo| {
            member_codes::certify_device(repo, &member_id, &device_id, public_key, now_ms)
        })
        .await
    }

    async fn revoke_devices(
        &self,
        member_id: String,
        device_id: Option<String>,
        now_ms: i64,
    ) -> Result<Option<u64>, StorageError> {
        write(self, move |repo| {
            member_codes::revoke_devices(repo, &member_id, device_id.as_deref(), now_ms)
        })
        .await
    }

    async fn revocations(&self, now_ms: i64) -> Result<Vec<u64>, StorageError> {
        read(self, move |repo| {
            Ok(repo
                .revoked_serials(now_ms)?
                .into_iter()
                .map(|s| s as u64)
                .collect())
        })
        .await
    }

    async fn apply_till_op(
        &self,
        till: TillAuth,
        key: String,
        body_hash: String,
        op: TillOp,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError> {
        write(self, move |repo| {
            let owner = format!("till:{}", till.till_id);
            members::once_per_key(repo, &owner, &key, &body_hash, now_ms, |repo| {
                till::apply(repo, &till, &op, now_ms)
            })
        })
        .await
    }

    async fn loyalty_rules(&self) -> Result<LoyaltyRules, StorageError> {
        read(self, |repo| repo.loyalty_rules()).await
    }

    async fn put_loyalty_rules(
        &self,
        rules: LoyaltyRules,
        by: String,
        note: String,
        now_ms: i64,
    ) -> Result<Option<i64>, StorageError> {
        write(self, move |repo| {
            if let Some(w) = &rules.web_coupon
                && coupons::live_offer(repo, &w.offer_id, now_ms)?.is_none()
            {
                return Ok(None);
            }
            repo.put_loyalty_rules(&rules, &by, &note, now_ms).map(Some)
        })
        .await
    }

    async fn loyalty_rule_versions(
        &self,
        limit: u32,
    ) -> Result<Vec<tessera_domain::api::RuleVersion>, StorageError> {
        read(self, move |repo| {
            Ok(versions(repo.loyalty_versions(limit)?))
        })
        .await
    }

    async fn loyalty_rule_version(
        &self,
        version: i64,
    ) -> Result<Option<LoyaltyRules>, StorageError> {
        read(self, move |repo| repo.loyalty_version(version)).await
    }

    async fn adjust_points(
        &self,
        member_id: String,
        adjustment: PointsAdjustment,
        now_ms: i64,
    ) -> Result<Option<Result<u64, Refusal>>, StorageError> {
        write(self, move |repo| {
            if repo.member(&member_id)?.is_none() {
                return Ok(None);
            }
            ledger::adjust(
                repo,
                &member_id,
                adjustment.points,
                &adjustment.reason,
                now_ms,
            )
            .map(Some)
        })
        .await
    }

    async fn set_birthday(
        &self,
        member_id: String,
        birthday: Option<String>,
    ) -> Result<bool, StorageError> {
        write(self, move |repo| {
            repo.set_birthday(&member_id, birthday.as_deref())
        })
        .await
    }

    async fn ingest_rule_events(
        &self,
        member_id: String,
        events: Vec<RuleEvent>,
        now_ms: i64,
    ) -> Result<Option<Result<Ingested, Refusal>>, StorageError> {
        write(self, move |repo| {
            if repo.member(&member_id)?.is_none() {
                return Ok(None);
            }
            challenges::ingest(repo, &member_id, &events, now_ms).map(Some)
        })
        .await
    }
}

/// Versions of a set of rules as the repository lists them — (version, published at, by,
/// note) — as the admin API and the console show them.
fn versions(rows: Vec<(i64, i64, String, String)>) -> Vec<tessera_domain::api::RuleVersion> {
    rows.into_iter()
        .map(|(version, at, by, note)| tessera_domain::api::RuleVersion {
            version,
            published_at: tessera_domain::rfc3339_ms(at),
            published_by: by,
            note,
        })
        .collect()
}
