//! The narrow repository a backend implements for the server's business rules
//! (the `service` module): reads and writes of domain values inside one transaction, no rule of the
//! programme. A backend runs the rules by handing a `&mut dyn Repo` over one transaction to a
//! job ([`crate::storage::Storage::transaction`]); the same job runs on every backend.
//!
//! The trait is synchronous: a business transaction is a short sequence of indexed statements,
//! run on a blocking thread inside the backend's transaction (SQLite's connections are blocking,
//! and so is the `postgres` client of the PostgreSQL backend). Methods take `&mut self`, as a
//! PostgreSQL transaction's do. See ADR 0013.

use std::collections::{BTreeMap, HashMap, HashSet};

use tessera_domain::api::{
    ActivityEvent, AnalyticsEvent, CampaignState, DeviceExport, PointsKind, PurchaseLine,
    PushProvider,
};
use tessera_domain::catalog::Offer;
use tessera_domain::consent::{Channel, ConsentRecord, Purpose};
use tessera_domain::coupon::CouponKey;
use tessera_domain::loyalty::{Lot, LoyaltyRules};
use tessera_domain::rules::{Badge, ChallengeJoin, RuleEvent, RuleReward, RuleSet};

use super::{NewEnrolment, PushTarget, StorageError, StoredAnswer};

pub type RepoResult<T> = Result<T, StorageError>;

/// Everything a business transaction may read or write.
pub trait Repo:
    Keys
    + Members
    + Ledger
    + Purchases
    + Coupons
    + Challenges
    + Privacy
    + Campaigns
    + Jobs
    + Certificates
    + Wallets
    + Webhooks
    + Staff
    + Kpis
    + Analytics
    + Journeys
{
}

impl<
    T: Keys
        + Members
        + Ledger
        + Purchases
        + Coupons
        + Challenges
        + Privacy
        + Campaigns
        + Jobs
        + Certificates
        + Wallets
        + Webhooks
        + Staff
        + Kpis
        + Analytics
        + Journeys
        + ?Sized,
> Repo for T
{
}

/// Idempotency keys: the claim, the stored answer.
pub trait Keys {
    /// Claim `(owner, key)` for a request with `body_hash`: false if it is claimed already (by a
    /// committed request, or one in flight that this call waited for).
    fn claim_key(
        &mut self,
        owner: &str,
        key: &str,
        body_hash: &str,
        now_ms: i64,
    ) -> RepoResult<bool>;
    /// The body hash and answer stored under a claimed key.
    fn stored_key(&mut self, owner: &str, key: &str) -> RepoResult<(String, StoredAnswer)>;
    fn complete_key(&mut self, owner: &str, key: &str, answer: &StoredAnswer) -> RepoResult<()>;
}

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub card_number: String,
    pub holder_name: String,
    pub member_since: String,
    /// The tier's name as last reviewed.
    pub tier: String,
    /// When that tier was reached (0: since enrolment).
    pub tier_since_ms: i64,
    pub created_ms: i64,
    pub segments: Vec<String>,
    /// `MM-DD`.
    pub birthday: Option<String>,
}

pub trait Members {
    /// Whether a programme is set up (members can enrol).
    fn program_exists(&mut self) -> RepoResult<bool>;
    /// A new member and its first device.
    fn insert_member(&mut self, enrolment: &NewEnrolment, now_ms: i64) -> RepoResult<()>;
    fn member(&mut self, member_id: &str) -> RepoResult<Option<MemberRow>>;
    fn member_by_card(&mut self, card_number: &str) -> RepoResult<Option<String>>;
    /// The member's state (`GET /v1/me`) changed: a new version, so the next sync fetches it.
    fn touch_member(&mut self, member_id: &str) -> RepoResult<()>;
    /// Count one applied mutation (a new version too if it `changes_state`): the member's
    /// mutation sequence, `None` for an unknown member.
    fn count_mutation(&mut self, member_id: &str, changes_state: bool) -> RepoResult<Option<u64>>;
    fn set_tier(&mut self, member_id: &str, tier: &str, since_ms: i64) -> RepoResult<()>;
    /// `false` for an unknown member.
    fn set_birthday(&mut self, member_id: &str, birthday: Option<&str>) -> RepoResult<bool>;
    fn store_exists(&mut self, store_id: &str) -> RepoResult<bool>;
    fn favourites(&mut self, member_id: &str) -> RepoResult<Vec<String>>;
    fn set_favourite(&mut self, member_id: &str, store_id: &str, on: bool) -> RepoResult<()>;
    fn insert_activity(
        &mut self,
        member_id: &str,
        event: &ActivityEvent,
        now_ms: i64,
    ) -> RepoResult<()>;
    /// The member's activity events, oldest first.
    fn activity(&mut self, member_id: &str) -> RepoResult<Vec<ActivityEvent>>;
    fn activity_count(&mut self, member_id: &str) -> RepoResult<u64>;
    /// Register `device_id`'s push token, if the device is the member's.
    fn set_push_token(
        &mut self,
        member_id: &str,
        device_id: &str,
        provider: PushProvider,
        token: &str,
        now_ms: i64,
    ) -> RepoResult<()>;
    /// The member's devices with a push token: (device, provider, token), by device.
    fn push_tokens(&mut self, member_id: &str) -> RepoResult<Vec<(String, PushProvider, String)>>;
    /// [`Members::push_tokens`] of several members, in their order (a backend may read them at
    /// once).
    #[allow(clippy::type_complexity)]
    fn push_tokens_of(
        &mut self,
        member_ids: &[String],
    ) -> RepoResult<Vec<Vec<(String, PushProvider, String)>>> {
        member_ids.iter().map(|m| self.push_tokens(m)).collect()
    }
    fn devices(&mut self, member_id: &str) -> RepoResult<Vec<DeviceExport>>;
}

/// One entry of a member's points ledger; `lot` makes it a lot of points (what is left, when it
/// lapses).
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub member_id: &'a str,
    pub kind: PointsKind,
    pub points: i64,
    /// Points counted towards tiers (negative: taken back).
    pub qualifying: i64,
    pub reason: &'a str,
    pub at_ms: i64,
    pub lot: Option<(u64, Option<i64>)>,
}

/// A ledger entry as `GET /v1/me` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub kind: PointsKind,
    pub points: i64,
    pub reason: String,
    pub at_ms: i64,
}

pub trait Ledger {
    /// The programme's rules (the defaults until the operator sets some).
    fn loyalty_rules(&mut self) -> RepoResult<LoyaltyRules>;
    /// Put the rules in force and keep them as a new version (by whom, with a note): its
    /// number.
    fn put_loyalty_rules(
        &mut self,
        rules: &LoyaltyRules,
        by: &str,
        note: &str,
        now_ms: i64,
    ) -> RepoResult<i64>;
    /// The latest `limit` versions of the loyalty rules, newest first: (version, published at,
    /// by, note).
    fn loyalty_versions(&mut self, limit: u32) -> RepoResult<Vec<(i64, i64, String, String)>>;
    fn loyalty_version(&mut self, version: i64) -> RepoResult<Option<LoyaltyRules>>;
    /// Live lots in the order they are spent (soonest expiry first, then those that never
    /// expire, oldest first), read only until they cover `enough` points.
    fn live_lots(&mut self, member_id: &str, now_ms: i64, enough: u64) -> RepoResult<Vec<Lot>>;
    /// Lots with points left whose expiry is at or before `now_ms`.
    fn lapsed_lots(&mut self, member_id: &str, now_ms: i64) -> RepoResult<Vec<Lot>>;
    /// Take `points` out of a lot.
    fn spend_lot(&mut self, lot_id: i64, points: u64) -> RepoResult<()>;
    /// Append an entry; its id.
    fn append_entry(&mut self, entry: &NewEntry<'_>) -> RepoResult<i64>;
    /// The member's qualifying points in entries made before `before_ms`, in all.
    fn qualifying_before(&mut self, member_id: &str, before_ms: i64) -> RepoResult<i64>;
    /// The stored balance, kept equal to the points left in live lots by every change.
    fn balance(&mut self, member_id: &str) -> RepoResult<u64>;
    fn add_balance(&mut self, member_id: &str, delta: i64) -> RepoResult<()>;
    /// Points left in lots expiring in `[from_ms, to_ms)`.
    fn expiring(&mut self, member_id: &str, from_ms: i64, to_ms: i64) -> RepoResult<u64>;
    /// The soonest expiry after `now_ms` of a lot with points left.
    fn next_expiry(&mut self, member_id: &str, now_ms: i64) -> RepoResult<Option<i64>>;
    /// The newest entries, newest first.
    fn entries(&mut self, member_id: &str, limit: u32) -> RepoResult<Vec<EntryRow>>;
    /// Members with a lot whose expiry is at or before `now_ms` and points left, at most
    /// `limit`, in id order.
    fn members_with_lapsed_lots(&mut self, now_ms: i64, limit: u32) -> RepoResult<Vec<String>>;
}

/// A purchase a till recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    pub id: String,
    pub store_id: String,
    pub member_id: Option<String>,
    pub points: u64,
    pub total_cents: u64,
    pub returned_cents: u64,
    pub web_coupon_id: Option<String>,
    pub lines: Vec<PurchaseLine>,
    pub occurred_ms: i64,
    pub recorded_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewPurchase<'a> {
    pub id: &'a str,
    pub store_id: &'a str,
    pub till_id: &'a str,
    pub receipt: &'a str,
    pub member_id: Option<&'a str>,
    pub total_cents: u64,
    pub lines: &'a [PurchaseLine],
    pub occurred_ms: i64,
    pub recorded_ms: i64,
    pub points: u64,
    pub web_coupon_id: Option<&'a str>,
}

pub trait Purchases {
    /// The id of a purchase (voided or not) recorded under `receipt` in the shop.
    fn receipt_taken(&mut self, store_id: &str, receipt: &str) -> RepoResult<Option<String>>;
    /// The purchase under `receipt` in the shop, unless voided.
    fn live_purchase(&mut self, store_id: &str, receipt: &str) -> RepoResult<Option<PurchaseRow>>;
    fn insert_purchase(&mut self, purchase: &NewPurchase<'_>) -> RepoResult<()>;
    fn void_purchase(&mut self, purchase_id: &str, now_ms: i64) -> RepoResult<()>;
    fn add_returned(&mut self, purchase_id: &str, cents: u64) -> RepoResult<()>;
    /// The member's purchases not voided.
    fn member_purchases(&mut self, member_id: &str) -> RepoResult<Vec<PurchaseRow>>;
}

/// Why a coupon was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The member clipped the offer (app or website).
    Clip,
    /// A purchase in a shop earned it, for the website.
    Purchase,
    /// Bought with points.
    Reward,
    /// A challenge's reward.
    Challenge,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Clip => "clip",
            Origin::Purchase => "purchase",
            Origin::Reward => "reward",
            Origin::Challenge => "challenge",
        }
    }
}

/// A coupon as stored. Times in seconds (`expires_s`, as in its claims) or milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRow {
    pub id: String,
    pub member_id: String,
    pub offer_id: String,
    pub code: String,
    pub issued_s: i64,
    pub expires_s: i64,
    pub origin: Origin,
    pub redeemed_at_ms: Option<i64>,
    pub redeemed_store: Option<String>,
    pub redeemed_till: Option<String>,
    pub receipt: Option<String>,
    pub revoked_at_ms: Option<i64>,
}

/// What happened to a coupon, for the merchant's audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponEventKind {
    Redeemed,
    Voided,
    /// Redeemed offline after another redemption.
    Conflict,
}

impl CouponEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponEventKind::Redeemed => "redeemed",
            CouponEventKind::Voided => "voided",
            CouponEventKind::Conflict => "conflict",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CouponEvent<'a> {
    pub coupon_id: &'a str,
    pub kind: CouponEventKind,
    pub store_id: &'a str,
    pub till_id: &'a str,
    pub receipt: &'a str,
    /// The till's clock, for an offline redemption.
    pub till_at_ms: Option<i64>,
    pub at_ms: i64,
}

/// Where and when a coupon is redeemed.
#[derive(Debug, Clone)]
pub struct RedeemedAt<'a> {
    pub store_id: &'a str,
    pub till_id: &'a str,
    pub receipt: &'a str,
    pub at_ms: i64,
}

pub trait Coupons {
    /// The offer, if it is in the catalog.
    fn offer(&mut self, offer_id: &str) -> RepoResult<Option<Offer>>;
    /// The newest signing key: id and PKCS#8 document.
    fn signing_key(&mut self) -> RepoResult<Option<(String, Vec<u8>)>>;
    fn insert_signing_key(
        &mut self,
        key_id: &str,
        pkcs8: &[u8],
        public_key: &str,
        now_ms: i64,
    ) -> RepoResult<()>;
    fn public_keys(&mut self) -> RepoResult<Vec<CouponKey>>;
    /// How many of the offer's coupons the member redeemed, `except` one, counted up to `limit`.
    fn redeemed_count(
        &mut self,
        member_id: &str,
        offer_id: &str,
        except: Option<&str>,
        limit: u32,
    ) -> RepoResult<u32>;
    /// Whether the member holds a clipped coupon of the offer still usable at `now_s`.
    fn usable_clip(&mut self, member_id: &str, offer_id: &str, now_s: i64) -> RepoResult<bool>;
    /// Store a new coupon (`redeemed_*`, `receipt`, `revoked_at_ms` unset).
    fn insert_coupon(&mut self, coupon: &CouponRow) -> RepoResult<()>;
    fn coupon(&mut self, coupon_id: &str, member_id: &str) -> RepoResult<Option<CouponRow>>;
    /// The member's coupons, newest first.
    fn wallet(&mut self, member_id: &str) -> RepoResult<Vec<CouponRow>>;
    /// Mark the coupon redeemed if it is unused and not revoked: whether it was (one
    /// conditional write: two tills cannot both succeed).
    fn mark_redeemed(
        &mut self,
        coupon_id: &str,
        member_id: &str,
        at: &RedeemedAt<'_>,
    ) -> RepoResult<bool>;
    fn coupon_event(&mut self, event: &CouponEvent<'_>) -> RepoResult<()>;
    /// Coupons redeemed in the shop under `receipt`.
    fn redeemed_under(&mut self, store_id: &str, receipt: &str) -> RepoResult<Vec<CouponRow>>;
    /// Make a redeemed coupon usable again.
    fn unredeem(&mut self, coupon_id: &str) -> RepoResult<()>;
    /// Revoke the coupon unless it was redeemed.
    fn revoke_unused(&mut self, coupon_id: &str, now_ms: i64) -> RepoResult<()>;
}

/// A challenge completion paid.
#[derive(Debug, Clone)]
pub struct RewardPaid<'a> {
    pub member_id: &'a str,
    pub challenge_id: &'a str,
    /// The completion's number (1 for the first).
    pub seq: u32,
    pub event_id: &'a str,
    pub completed_ms: i64,
    pub title: &'a str,
    pub reward: &'a RuleReward,
    pub badge: Option<&'a str>,
    pub paid_ms: i64,
}

/// A member's rules engine kept between events ([`tessera_domain::rules::EngineState`] as
/// JSON) and what it was built for: the rule set's version (its catalog sequence number), the
/// member's time zone and joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRules {
    pub rules_seq: i64,
    pub time_zone: String,
    /// The joins as `challenge@millis`, comma-separated, in the order `joined` gives them.
    pub joins: String,
    pub state: String,
}

pub trait Challenges {
    /// The programme's challenges, if any were put, with the catalog sequence number they were
    /// put at: a new rule set has a new number.
    fn versioned_rule_set(&mut self) -> RepoResult<Option<(i64, RuleSet)>>;
    /// The programme's challenges, if any were put.
    fn rule_set(&mut self) -> RepoResult<Option<RuleSet>> {
        Ok(self.versioned_rule_set()?.map(|(_, rules)| rules))
    }
    /// The member's kept engine, if any.
    fn rule_state(&mut self, member_id: &str) -> RepoResult<Option<KeptRules>>;
    fn put_rule_state(&mut self, member_id: &str, kept: &KeptRules) -> RepoResult<()>;
    /// Drop the member's kept engine (their history lost an event): rebuilt on the next event.
    fn forget_rule_state(&mut self, member_id: &str) -> RepoResult<()>;
    /// Note that event `event_id` at `at_ms` is in the member's history as the rules count it:
    /// `None` if it was not yet, else the (earliest) time it was noted at, unchanged.
    fn note_applied(
        &mut self,
        member_id: &str,
        event_id: &str,
        at_ms: i64,
    ) -> RepoResult<Option<i64>>;
    /// The member's noted events replaced by `events` (id, time; each id once).
    fn reset_applied(&mut self, member_id: &str, events: &[(&str, i64)]) -> RepoResult<()>;
    /// Events the programme's systems reported for the member.
    fn reported_events(&mut self, member_id: &str) -> RepoResult<Vec<RuleEvent>>;
    /// Store a reported event; false if its id was seen for the member.
    fn insert_reported(
        &mut self,
        member_id: &str,
        event: &RuleEvent,
        now_ms: i64,
    ) -> RepoResult<bool>;
    fn joined(&mut self, member_id: &str) -> RepoResult<Vec<ChallengeJoin>>;
    /// Join (again: no change).
    fn join(&mut self, member_id: &str, challenge_id: &str, at_ms: i64) -> RepoResult<()>;
    /// Completions paid so far, per challenge.
    fn paid(&mut self, member_id: &str) -> RepoResult<BTreeMap<String, u32>>;
    fn record_reward(&mut self, reward: &RewardPaid<'_>) -> RepoResult<()>;
    /// The member's badges, oldest first.
    fn badges(&mut self, member_id: &str) -> RepoResult<Vec<Badge>>;
    /// The latest `limit` published versions of the rule set, newest first: (version,
    /// published at, by, note).
    fn rule_versions(&mut self, limit: u32) -> RepoResult<Vec<(i64, i64, String, String)>>;
    /// A published version of the rule set.
    fn rule_version(&mut self, version: i64) -> RepoResult<Option<RuleSet>>;
}

pub trait Privacy {
    /// The member's consent ledger, oldest first (effective time, then arrival).
    fn consent_records(&mut self, member_id: &str) -> RepoResult<Vec<ConsentRecord>>;
    /// A stored record and the hash of its body.
    fn consent_record(&mut self, record_id: &str) -> RepoResult<Option<(ConsentRecord, String)>>;
    fn insert_consent(
        &mut self,
        record: &ConsentRecord,
        effective_ms: i64,
        body_hash: &str,
    ) -> RepoResult<()>;
    /// The member's preference fields: (field, JSON value).
    fn preference_values(&mut self, member_id: &str) -> RepoResult<Vec<(String, String)>>;
    /// Every member's value of one preference field: (member, JSON value).
    fn field_values(&mut self, field: &str) -> RepoResult<Vec<(String, String)>>;
    /// Set a field, in the server's order of writes.
    fn set_preference(&mut self, member_id: &str, field: &str, value: &str) -> RepoResult<()>;
    fn insert_analytics(
        &mut self,
        member_id: &str,
        event: &AnalyticsEvent,
        now_ms: i64,
    ) -> RepoResult<()>;
    fn analytics(&mut self, member_id: &str) -> RepoResult<Vec<AnalyticsEvent>>;
    /// Members whose latest decision for `purpose` on `channel` is a grant.
    fn audience(&mut self, purpose: Purpose, channel: Channel) -> RepoResult<Vec<String>>;
    /// Delete the member and what hangs off it; detach its consent records (each under a random
    /// id), coupons and purchases (the merchant's records); record the erasure. How many consent
    /// records were detached.
    fn erase_member(&mut self, member_id: &str, now_ms: i64, requested_by: &str)
    -> RepoResult<u64>;
}

/// A push campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    pub id: String,
    /// The campaign as the operator sent it (JSON).
    pub body: String,
    pub state: CampaignState,
    /// The last member handled (ids in order; empty: none yet).
    pub cursor: String,
    pub members: u64,
    pub without_device: u64,
    pub sent: u64,
    pub failed: u64,
    /// Deliveries written but whose outcome is not recorded.
    pub pending: u64,
}

/// One page of a campaign's audience.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudiencePage {
    /// The members of the page who may be sent to, in id order.
    pub granted: Vec<String>,
    /// The last member of the page, granted or not (`None`: no member after the cursor).
    pub last: Option<String>,
}

/// A campaign moved past one batch.
#[derive(Debug, Clone)]
pub struct CampaignStep<'a> {
    pub cursor: &'a str,
    pub members: u64,
    pub without_device: u64,
    pub pending: u64,
    pub state: CampaignState,
}

pub trait Campaigns {
    /// A new campaign, queued; false if the id is taken.
    fn insert_campaign(&mut self, id: &str, body: &str, now_ms: i64) -> RepoResult<bool>;
    fn campaign(&mut self, id: &str) -> RepoResult<Option<CampaignRow>>;
    /// The ids of the latest `limit` campaigns, newest first.
    fn campaign_ids(&mut self, limit: u32) -> RepoResult<Vec<String>>;
    /// The next `limit` members after `after` (in id order), and of those the ones whose latest
    /// decision for `purpose` on `channel` is a grant: a page costs the same wherever it is.
    fn audience_page(
        &mut self,
        purpose: Purpose,
        channel: Channel,
        after: &str,
        limit: u32,
    ) -> RepoResult<AudiencePage>;
    /// Whether the member is one of the shops' (an audience's `shops`): they chose one as a
    /// favourite, or bought in one (a purchase not voided).
    fn in_shops(&mut self, member_id: &str, shops: &[String]) -> RepoResult<bool>;
    /// Every member [`Campaigns::in_shops`] is true of (one statement: counting an audience).
    fn shops_members(&mut self, shops: &[String]) -> RepoResult<HashSet<String>>;
    /// The members at one of these tiers (one statement: counting an audience).
    fn tier_members(&mut self, tiers: &[String]) -> RepoResult<HashSet<String>>;
    /// How many devices with a push token each member has (members with none left out).
    fn push_device_counts(&mut self) -> RepoResult<HashMap<String, u64>>;
    /// Write a delivery as pending, before it is handed to the push service: false if the
    /// campaign has one for the device already (each device at most once).
    fn pending_delivery(
        &mut self,
        campaign_id: &str,
        target: &PushTarget,
        now_ms: i64,
    ) -> RepoResult<bool>;
    /// [`Campaigns::pending_delivery`] for a batch: per target, whether it was written. A backend
    /// where a statement is a round trip writes them at once.
    fn pending_deliveries(
        &mut self,
        campaign_id: &str,
        targets: &[PushTarget],
        now_ms: i64,
    ) -> RepoResult<Vec<bool>> {
        targets
            .iter()
            .map(|t| self.pending_delivery(campaign_id, t, now_ms))
            .collect()
    }
    /// Move the campaign past a batch: its cursor, the counts added, its state.
    fn advance_campaign(
        &mut self,
        id: &str,
        step: &CampaignStep<'_>,
        now_ms: i64,
    ) -> RepoResult<()>;
    /// A pending delivery's outcome, counted: false if it was not pending.
    fn delivered(
        &mut self,
        campaign_id: &str,
        device_id: &str,
        outcome: Result<(), &str>,
        now_ms: i64,
    ) -> RepoResult<bool>;
    /// [`Campaigns::delivered`] for a batch's devices (a backend may record them at once): how
    /// many pending deliveries it recorded as sent.
    fn delivered_all(
        &mut self,
        campaign_id: &str,
        outcomes: &[(String, Result<(), String>)],
        now_ms: i64,
    ) -> RepoResult<u64> {
        let mut sent = 0;
        for (device_id, outcome) in outcomes {
            let ok = outcome.is_ok();
            let outcome = match outcome {
                Ok(()) => Ok(()),
                Err(why) => Err(why.as_str()),
            };
            if self.delivered(campaign_id, device_id, outcome, now_ms)? && ok {
                sent += 1;
            }
        }
        Ok(sent)
    }
}

/// A job claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    /// How many times it was claimed, this time included.
    pub attempts: u32,
}

/// The job queue: due jobs are claimed under a lease by one worker of any server process; a job
/// whose lease runs out (its process died) is claimed again.
pub trait Jobs {
    /// Queue `kind` for `subject`, due at `run_after_ms`: false if that job exists.
    fn insert_job(
        &mut self,
        kind: &str,
        subject: &str,
        run_after_ms: i64,
        now_ms: i64,
    ) -> RepoResult<bool>;
    /// Claim the oldest due job (queued and due, or running with a lease that ran out) for
    /// `owner` until `now_ms + lease_ms`. Concurrent workers never claim the same job.
    fn claim_job(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> RepoResult<Option<JobRow>>;
    /// Extend `owner`'s lease: false if the job is no longer its.
    fn renew_job(&mut self, id: i64, owner: &str, now_ms: i64, lease_ms: i64) -> RepoResult<bool>;
    /// End `owner`'s job: done, or failed with `error`.
    fn finish_job(
        &mut self,
        id: i64,
        owner: &str,
        error: Option<&str>,
        now_ms: i64,
    ) -> RepoResult<()>;
    /// Give `owner`'s job back, due at once (a process stopping).
    fn release_job(&mut self, id: i64, owner: &str, now_ms: i64) -> RepoResult<()>;
    /// Note that `process` is alive at `now_ms` (its own row only: heartbeats of several
    /// processes never conflict).
    fn heartbeat(&mut self, process: &str, now_ms: i64) -> RepoResult<()>;
    /// Forget the processes not seen since `before_ms`.
    fn forget_processes(&mut self, before_ms: i64) -> RepoResult<()>;
    /// How many processes were seen since `since_ms`.
    fn live_processes(&mut self, since_ms: i64) -> RepoResult<u32>;
    /// `process` stops.
    fn leave(&mut self, process: &str) -> RepoResult<()>;
    /// The state of the job `kind` for `subject`, if there is one (`queued`, `running`, `done`,
    /// `failed`).
    fn job_state(&mut self, kind: &str, subject: &str) -> RepoResult<Option<String>>;
}

/// A device certificate the programme signed (the rotating member code, issue #18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate<'a> {
    /// Positive, random.
    pub serial: i64,
    pub member_id: &'a str,
    pub device_id: &'a str,
    /// Base64url.
    pub public_key: &'a str,
    pub issued_ms: i64,
    pub not_after_ms: i64,
}

pub trait Certificates {
    fn insert_certificate(&mut self, c: &NewCertificate<'_>) -> RepoResult<()>;
    /// Revoke the member's certificates (one device's, or all): how many were live.
    fn revoke_certificates(
        &mut self,
        member_id: &str,
        device_id: Option<&str>,
        now_ms: i64,
    ) -> RepoResult<u64>;
    /// The serials revoked and not yet expired at `now_ms` (what tills must refuse), ascending.
    fn revoked_serials(&mut self, now_ms: i64) -> RepoResult<Vec<i64>>;
    /// When the certificate `serial` was revoked: `None` for an unknown serial, `Some(None)`
    /// while it stands.
    fn certificate_revoked_at(&mut self, serial: i64) -> RepoResult<Option<Option<i64>>>;
}

/// A wallet pass as stored (issue #18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassRow {
    pub serial: String,
    pub member_id: String,
    /// `None` for the member's card.
    pub coupon_id: Option<String>,
    pub auth_token: String,
    /// The shops it lists (JSON of `Vec<PassShop>`), chosen when it was issued.
    pub shops: String,
    pub digest: String,
    pub pushed_digest: String,
    pub updated_ms: i64,
    /// Changes to the member not looked at yet (0: none).
    pub stale: i64,
    /// A Google Wallet object was offered for it (its updates are sent to Google).
    pub google: bool,
}

/// Wallet passes and the devices registered for their updates. A change to a member's state
/// ([`Members::touch_member`], or a mutation that changes it) marks the member's passes stale.
pub trait Wallets {
    fn wallet_pass(&mut self, serial: &str) -> RepoResult<Option<PassRow>>;
    /// Insert the pass unless it exists: false if it did.
    fn insert_wallet_pass(&mut self, pass: &PassRow) -> RepoResult<bool>;
    /// The pass's content is now `digest` (changed at `now_ms`).
    fn pass_changed(&mut self, serial: &str, digest: &str, now_ms: i64) -> RepoResult<()>;
    /// A Google object was offered for the pass.
    fn pass_offered_to_google(&mut self, serial: &str) -> RepoResult<()>;
    /// The wallets were told of `digest`; the pass is no longer stale unless it changed again
    /// since `stale` was read.
    fn pass_pushed(&mut self, serial: &str, digest: &str, stale: i64) -> RepoResult<()>;
    /// Up to `limit` stale passes with a serial after `after`, by serial: (serial, stale
    /// count).
    fn stale_passes(&mut self, after: &str, limit: u32) -> RepoResult<Vec<(String, i64)>>;
    /// Register `device_id` for the pass's updates: true if it was not.
    fn register_pass(
        &mut self,
        device_id: &str,
        serial: &str,
        push_token: &str,
        now_ms: i64,
    ) -> RepoResult<bool>;
    /// True if the device was registered.
    fn unregister_pass(&mut self, device_id: &str, serial: &str) -> RepoResult<bool>;
    /// The passes `device_id` is registered for, changed after `since_ms`: (serial, updated).
    fn device_passes(&mut self, device_id: &str, since_ms: i64) -> RepoResult<Vec<(String, i64)>>;
    /// The push tokens of the devices registered for the pass.
    fn pass_push_tokens(&mut self, serial: &str) -> RepoResult<Vec<String>>;
    /// APNs no longer knows `push_token`: forget the registrations made with it.
    fn forget_pass_push_token(&mut self, push_token: &str) -> RepoResult<u64>;
    /// Forget the member's passes and their registrations (erasure).
    fn delete_member_passes(&mut self, member_id: &str) -> RepoResult<u64>;
    /// Mark the member's passes stale (what they show may have changed).
    fn mark_passes_stale(&mut self, member_id: &str) -> RepoResult<()>;
    /// The member's passes, by serial.
    fn member_passes(&mut self, member_id: &str) -> RepoResult<Vec<PassRow>>;
    /// The programme as the catalog has it (its card's symbology).
    fn catalog_program(&mut self) -> RepoResult<Option<tessera_domain::card::Program>>;
    /// The catalog's shops, by id (a pass lists the nearest when it is issued).
    fn catalog_stores(&mut self) -> RepoResult<Vec<tessera_domain::catalog::Store>>;
}

/// A webhook endpoint as stored (issue #19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// The event types it receives, by name (empty: all).
    pub events: Vec<String>,
    pub description: Option<String>,
    pub paused: bool,
    pub created_ms: i64,
    /// Deliveries pending, and dead (read only: ignored when writing).
    pub pending: u64,
    pub dead: u64,
}

/// An event for the endpoints that receive its type.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub member_id: &'a str,
    pub event_type: &'a str,
    /// The event's `data` (JSON).
    pub data: &'a str,
    pub now_ms: i64,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub member_id: String,
    pub event_type: String,
    pub data: String,
    pub created_ms: i64,
}

/// A delivery a dispatcher claimed: what to send where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub event: EventRow,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub endpoint_id: String,
    pub event_seq: i64,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// `None`: delivered; else why not.
    pub error: Option<String>,
    /// After a failure: when to try again (`None`: dead).
    pub retry_at_ms: Option<i64>,
}

/// A delivery as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub event: EventRow,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub due_ms: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_ms: Option<i64>,
}

/// An endpoint's event types as stored (comma-separated; empty: all).
pub(crate) fn split_events(events: &str) -> Vec<String> {
    events
        .split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Webhooks: endpoints, the outbox of events written in the transaction that made them, and
/// their deliveries, claimed under a lease by a dispatcher of any server process, one at a time
/// per (endpoint, member) in the events' order.
pub trait Webhooks {
    /// Write the event and a pending delivery to each endpoint receiving its type, due at once:
    /// the event's sequence number, `None` if no endpoint receives it (nothing is written).
    fn emit_event(&mut self, event: &NewEvent<'_>) -> RepoResult<Option<i64>>;
    /// A new endpoint: false if the id is taken.
    fn insert_endpoint(&mut self, endpoint: &EndpointRow) -> RepoResult<bool>;
    /// Change the endpoint's URL, events, description and pause (not its secret): false if
    /// there is no such endpoint.
    fn update_endpoint(&mut self, endpoint: &EndpointRow) -> RepoResult<bool>;
    /// Delete the endpoint and its deliveries: false if there was none.
    fn delete_endpoint(&mut self, id: &str) -> RepoResult<bool>;
    fn endpoints(&mut self) -> RepoResult<Vec<EndpointRow>>;
    fn endpoint(&mut self, id: &str) -> RepoResult<Option<EndpointRow>> {
        Ok(self.endpoints()?.into_iter().find(|e| e.id == id))
    }
    /// Claim up to `limit` due deliveries for `owner` until `now_ms + lease_ms`, each the
    /// member's oldest pending delivery to its endpoint (none of a paused endpoint), soonest due
    /// first; each claim counts an attempt. Concurrent dispatchers never claim the same one.
    fn claim_deliveries(
        &mut self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> RepoResult<Vec<ClaimedDelivery>>;
    /// Record what `owner`'s attempts came to, at `now_ms`: a delivery no longer `owner`'s (its
    /// lease ran out and another dispatcher claimed it) is left alone. How many were recorded.
    fn record_outcomes(
        &mut self,
        owner: &str,
        outcomes: &[DeliveryOutcome],
        now_ms: i64,
    ) -> RepoResult<u64>;
    /// The endpoint's deliveries (in one state, or all) with an event sequence after `after`,
    /// by sequence, at most `limit`.
    fn deliveries(
        &mut self,
        endpoint_id: &str,
        state: Option<&str>,
        after: i64,
        limit: u32,
    ) -> RepoResult<Vec<DeliveryRow>>;
    /// Queue again, due at `now_ms` with no attempt counted, the endpoint's deliveries of these
    /// events (delivered or dead), or every dead one: how many.
    fn replay_deliveries(
        &mut self,
        endpoint_id: &str,
        event_ids: Option<&[String]>,
        now_ms: i64,
    ) -> RepoResult<u64>;
    /// The endpoint answers again: its pending deliveries waiting for a later retry are due at
    /// `now_ms`. How many.
    fn hurry_deliveries(&mut self, endpoint_id: &str, now_ms: i64) -> RepoResult<u64>;
    /// Forget the member's events that nothing waits to deliver (erasure).
    fn forget_member_events(&mut self, member_id: &str) -> RepoResult<u64>;
    /// Forget deliveries delivered before `delivered_before_ms`, dead ones last tried before
    /// `dead_before_ms`, and events left with no delivery: how many events.
    fn purge_webhooks(&mut self, delivered_before_ms: i64, dead_before_ms: i64) -> RepoResult<u64>;
}

/// A staff account as stored (the console, issue #19).
#[derive(Clone, PartialEq, Eq)]
pub struct StaffRow {
    pub id: String,
    /// Lower case.
    pub email: String,
    pub name: String,
    /// `admin`, `marketer`, `support` or `store_staff`.
    pub role: String,
    pub store_id: Option<String>,
    /// Argon2id, PHC string.
    pub password_hash: String,
    pub disabled: bool,
    /// The TOTP secret (base32) when two-factor sign-in is on.
    pub totp_secret: Option<String>,
}

impl std::fmt::Debug for StaffRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("store_id", &self.store_id)
            .finish_non_exhaustive()
    }
}

/// A console session and its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub staff: StaffRow,
    pub csrf: String,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    /// The account's e-mail address.
    pub staff: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// Staff accounts, console sessions (by the SHA-256 of their token) and the audit log.
pub trait Staff {
    /// A new account: false if the e-mail address is taken.
    fn insert_staff(&mut self, row: &StaffRow, now_ms: i64) -> RepoResult<bool>;
    fn staff_by_email(&mut self, email: &str) -> RepoResult<Option<StaffRow>>;
    /// The accounts, by e-mail address.
    fn staff_accounts(&mut self) -> RepoResult<Vec<StaffRow>>;
    fn staff_by_id(&mut self, id: &str) -> RepoResult<Option<StaffRow>>;
    /// Disable or enable the account, and/or give it a new password hash: false if there is
    /// no such account.
    fn update_staff(
        &mut self,
        id: &str,
        disabled: Option<bool>,
        password_hash: Option<&str>,
    ) -> RepoResult<bool>;
    /// End the account's sessions but the one whose token hashes to `keep`: how many ended.
    fn end_staff_sessions(&mut self, staff_id: &str, keep: &str) -> RepoResult<u64>;
    /// Turn two-factor sign-in on (a TOTP secret) or off; false if there is no such account.
    fn set_staff_totp(&mut self, id: &str, secret: Option<&str>) -> RepoResult<bool>;
    /// Accept a code of time step `step` once: false if a code of this step or a later one was
    /// accepted already (a replay).
    fn use_totp_step(&mut self, id: &str, step: i64) -> RepoResult<bool>;
    fn insert_session(
        &mut self,
        token_hash: &str,
        staff_id: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> RepoResult<()>;
    fn session(&mut self, token_hash: &str) -> RepoResult<Option<SessionRow>>;
    fn touch_session(&mut self, token_hash: &str, now_ms: i64) -> RepoResult<()>;
    fn delete_session(&mut self, token_hash: &str) -> RepoResult<()>;
    /// Forget sessions last seen before `idle_before_ms` or ended at `now_ms`.
    fn purge_sessions(&mut self, idle_before_ms: i64, now_ms: i64) -> RepoResult<u64>;
    fn audit(
        &mut self,
        at_ms: i64,
        staff: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> RepoResult<()>;
    /// Up to `limit` entries before `before` (a sequence number), newest first.
    fn audit_log(&mut self, before: i64, limit: u32) -> RepoResult<Vec<AuditRow>>;
    /// When each sign-in refused to `email` after `since_ms` and after its last sign-in
    /// happened, oldest first.
    fn failed_sign_ins(&mut self, email: &str, since_ms: i64) -> RepoResult<Vec<i64>>;
    /// Decide redemption conflict `event_id`: false if there is no such conflict or it was
    /// decided already (a decision is never changed).
    fn resolve_conflict(
        &mut self,
        event_id: i64,
        outcome: &str,
        note: &str,
        staff: &str,
        now_ms: i64,
    ) -> RepoResult<bool>;
}

/// The rows of [`Kpis::add_kpis`]: each increment for `*` and for its shop (shop, day, metric,
/// delta), zeros left out.
pub(crate) fn kpi_rows_of<'a>(
    increments: &[(&'a str, Option<&'a str>, i64, i64)],
) -> Vec<(&'a str, i64, &'a str, i64)> {
    increments
        .iter()
        .filter(|(.., delta)| *delta != 0)
        .flat_map(|&(metric, shop, day, delta)| {
            std::iter::once((tessera_domain::api::metric::ALL_SHOPS, day, metric, delta))
                .chain(shop.map(|s| (s, day, metric, delta)))
        })
        .collect()
}

/// The KPIs' counters (issue #19): increments appended with each change (`kpi_delta`, inserts
/// only, so concurrent changes never contend for a row), folded into the sums (`kpi`) every few
/// seconds; reads add both.
pub trait Kpis {
    /// Add each (metric, shop, day, delta) for every shop together (`*`) and, if given, its shop,
    /// with one statement.
    fn add_kpis(&mut self, increments: &[(&str, Option<&str>, i64, i64)]) -> RepoResult<()>;
    /// [`Kpis::add_kpis`] of one increment.
    fn add_kpi(
        &mut self,
        metric: &str,
        shop: Option<&str>,
        day: i64,
        delta: i64,
    ) -> RepoResult<()> {
        self.add_kpis(&[(metric, shop, day, delta)])
    }
    /// The counters of `shop` (`*`: all) for days `from..=to`: (metric, day, value); the coupon
    /// funnel's counters summed over the period (as on its first day: a report shows their
    /// totals only, and a year of them is 100 offers × 3 × 365 rows).
    fn kpi_rows(&mut self, shop: &str, from: i64, to: i64) -> RepoResult<Vec<(String, i64, i64)>>;
    /// The sum of the points counters of `shop` before `day` (members' points at its start).
    fn kpi_points_before(&mut self, shop: &str, day: i64) -> RepoResult<i64>;
    /// The levels `metrics` (members, consent) of `shop` before `day`, each summed over every
    /// day before it (those with no counter left out).
    fn kpi_levels_before(
        &mut self,
        shop: &str,
        day: i64,
        metrics: &[String],
    ) -> RepoResult<Vec<(String, i64)>>;
    /// Fold up to `limit` increments into the sums: how many rows it wrote (0: none was left).
    fn fold_kpis(&mut self, limit: u32) -> RepoResult<u64>;
}

/// The segments a score puts its member in: the named ones and `rfm:<class>`.
pub(crate) fn segments_of(
    score: &tessera_domain::api::MemberScore,
) -> impl Iterator<Item = String> + '_ {
    score
        .segments
        .iter()
        .cloned()
        .chain(std::iter::once(format!("rfm:{}", score.rfm_class.as_str())))
}

/// The programme's analytics (issue #19): the operator's settings, the published report and
/// members' scores. A run writes its scores under its own generation (its job's id) a batch at a
/// time, then publishes; readers see the published generation only.
pub trait Analytics {
    /// Every member enrolled before `before_ms`, with their purchases before it that were not
    /// voided and paid something (total above what was returned), by member and day.
    fn purchase_histories(&mut self, before_ms: i64)
    -> RepoResult<Vec<tessera_analytics::History>>;
    fn analytics_settings(&mut self) -> RepoResult<Option<tessera_domain::api::AnalyticsSettings>>;
    fn put_analytics_settings(
        &mut self,
        settings: &tessera_domain::api::AnalyticsSettings,
        now_ms: i64,
    ) -> RepoResult<()>;
    /// Write scores (and the member's segments and RFM class, `rfm:<class>`) under `generation`;
    /// members erased since their history was read are skipped.
    fn insert_scores(
        &mut self,
        generation: i64,
        scores: &[tessera_domain::api::MemberScore],
    ) -> RepoResult<()>;
    /// Publish `report` as `generation`'s: false (nothing changed) if a later generation is
    /// published already.
    fn publish_analysis(
        &mut self,
        generation: i64,
        report: &tessera_domain::api::AnalyticsReport,
        now_ms: i64,
    ) -> RepoResult<bool>;
    /// Delete up to `limit` score rows of `generation` (an earlier attempt's): how many.
    fn clear_generation(&mut self, generation: i64, limit: u32) -> RepoResult<u64>;
    /// Delete up to `limit` score rows of generations before the published one: how many.
    fn drop_old_scores(&mut self, limit: u32) -> RepoResult<u64>;
    fn analytics_report(&mut self) -> RepoResult<Option<tessera_domain::api::AnalyticsReport>>;
    fn member_score(
        &mut self,
        member_id: &str,
    ) -> RepoResult<Option<tessera_domain::api::MemberScore>>;
    /// Whether the member is in one of `segments` as published.
    fn member_in_segments(&mut self, member_id: &str, segments: &[String]) -> RepoResult<bool>;
    /// The members in `segment` (a named segment, or `rfm:<class>`) as published, by id.
    fn segment_members(&mut self, segment: &str) -> RepoResult<Vec<String>>;
}

/// Who a journey finds ([`Journeys::enter_journey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JourneyTrigger {
    /// Members enrolled after `after_ms`: due `delay_ms` after their enrolment, given up
    /// `within_ms` after it.
    Enrolled {
        after_ms: i64,
        delay_ms: i64,
        within_ms: i64,
    },
    /// Members whose birthday (`MM-DD`) is one of these.
    Birthday { days: Vec<String> },
    /// Members with live points expiring in `(from_ms, to_ms]`.
    Expiring { from_ms: i64, to_ms: i64 },
    /// Members above the `base` tier whose tier, held since it was reached (or since enrolment),
    /// is reviewed (`hold_ms` after) in `(from_ms, to_ms]`.
    TierReview {
        base: String,
        hold_ms: i64,
        from_ms: i64,
        to_ms: i64,
    },
    /// Members in `segment` of the published analysis.
    Segment(String),
}

/// A member's entry into a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyEntry {
    pub journey: String,
    pub member_id: String,
    pub occurrence: String,
    pub expires_ms: i64,
}

/// What became of a due entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryOutcome<'a> {
    Sent { pushes: u32 },
    Waiting { until_ms: i64, reason: &'a str },
    Skipped { reason: &'a str },
}

/// Entries made in a period, by journey, state and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyCountRow {
    pub journey: String,
    pub state: String,
    pub reason: Option<String>,
    pub entries: u64,
    pub pushes: u64,
    pub failed: u64,
}

/// Journeys (issue #19): the operator's settings and members' entries, each entered once per
/// occurrence.
pub trait Journeys {
    fn journey_settings(&mut self)
    -> RepoResult<Option<tessera_domain::journeys::JourneySettings>>;
    fn put_journey_settings(
        &mut self,
        settings: &tessera_domain::journeys::JourneySettings,
        now_ms: i64,
    ) -> RepoResult<()>;
    /// Enter every member `trigger` finds into `journey`'s `occurrence`, due at `due_ms` and
    /// given up after `expires_ms` (the welcome's: from each enrolment); members in it already
    /// are left as they are. How many entered.
    fn enter_journey(
        &mut self,
        journey: &str,
        occurrence: &str,
        trigger: &JourneyTrigger,
        due_ms: i64,
        expires_ms: i64,
        now_ms: i64,
    ) -> RepoResult<u64>;
    /// Up to `limit` entries due at `now_ms`, the longest due first.
    fn due_journey_entries(&mut self, now_ms: i64, limit: u32) -> RepoResult<Vec<JourneyEntry>>;
    /// The member's journey pushes sent since `since_ms`: (journey, when).
    fn journey_sends(&mut self, member_id: &str, since_ms: i64) -> RepoResult<Vec<(String, i64)>>;
    fn settle_journey_entry(
        &mut self,
        entry: &JourneyEntry,
        outcome: EntryOutcome<'_>,
        now_ms: i64,
    ) -> RepoResult<()>;
    /// Pushes of a sent entry that the push services refused.
    fn journey_push_failures(&mut self, entry: &JourneyEntry, failed: u32) -> RepoResult<()>;
    /// Entries made since `since_ms`, counted by journey, state and reason.
    fn journey_counts(&mut self, since_ms: i64) -> RepoResult<Vec<JourneyCountRow>>;
}
