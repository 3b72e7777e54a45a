//! Where the server keeps its data, behind one trait so that a PostgreSQL backend can be added
//! without touching the handlers. [`sqlite::SqliteStorage`] is the embedded default.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod sqlite;

// The SQLite backend's business transactions call it; it is SQLite's, not the trait's.
pub(crate) use sqlite::touch_member;

use async_trait::async_trait;
#[allow(unused_imports)]
use tessera_domain::api::MutationResponse;
use tessera_domain::api::{
    CampaignAudience, CampaignReport, ErasureReceipt, MemberExport, MemberState, Mutation,
    PointsAdjustment, PurchaseRequest, PushProvider, RedemptionConflict, ReturnRequest,
};
use tessera_domain::catalog::{Catalog, Offer, Store};
use tessera_domain::consent::{Channel, ConsentRecord, Purpose};
use tessera_domain::coupon::CouponClaims;
use tessera_domain::loyalty::LoyaltyRules;
use tessera_domain::rules::{RuleEvent, RuleSet};
use tessera_domain::{MemberCard, Program};

/// Failures of the storage layer, whatever the backend. Handlers turn them into problem documents.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("storage failure: {0}")]
    Backend(String),
}

/// What an ingestion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Events new to the server (a repeated id counts once).
    pub accepted: u32,
    pub rewards_paid: u32,
}

/// Why a storage operation refused a request, in the domain's terms: the routes turn it into a
/// problem document (`problem.rs`), the storage never speaks HTTP here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A consent record id already holds another record (records are never changed).
    #[error("consent record {record_id} holds another record")]
    ConsentRecordReused { record_id: String },
    /// The points balance cannot go below zero.
    #[error(transparent)]
    Points(#[from] tessera_domain::loyalty::PointsError),
    /// An event later than the server's clock allows.
    #[error("event {event_id} is later than the server's clock")]
    EventInFuture { event_id: String },
}

/// The device behind a valid access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    pub member_id: String,
    pub device_id: String,
}

/// What an access-token lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLookup {
    Valid(DeviceAuth),
    Expired,
    Unknown,
}

/// A new member and device, with the hashes of their first tokens.
#[derive(Debug, Clone)]
pub struct NewEnrolment {
    pub member_id: String,
    pub device_id: String,
    pub card: MemberCard,
    pub platform: String,
    pub app_version: String,
    pub tokens: TokenHashes,
}

/// Tokens are stored as SHA-256 hashes only; expiry in milliseconds since the epoch.
#[derive(Debug, Clone)]
pub struct TokenHashes {
    pub access_hash: String,
    pub access_expires_ms: i64,
    pub refresh_hash: String,
    pub refresh_expires_ms: i64,
}

/// The answer stored under an idempotency key: an HTTP status and its JSON body (a
/// [`MutationResponse`] or a problem document), replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}

/// The answer to a mutation under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationOutcome {
    /// Handled now; the answer is stored under the key.
    Applied(StoredAnswer),
    /// The key was seen with the same body: the stored answer.
    Replayed(StoredAnswer),
    /// The key was seen with another body.
    KeyReused,
}

/// One entry of the catalog feed. `data` is the entity's JSON; `None` is a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    pub seq: i64,
    pub kind: EntityKind,
    pub id: String,
    pub data: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    Program,
    Store,
    Offer,
    Rules,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Program => "program",
            EntityKind::Store => "store",
            EntityKind::Offer => "offer",
            EntityKind::Rules => "rules",
        }
    }
}

/// One page of the catalog feed.
pub type FeedPage = Vec<FeedItem>;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    async fn program(&self) -> Result<Option<Program>, StorageError>;
    async fn put_program(&self, program: Program) -> Result<(), StorageError>;
    async fn put_store(&self, store: Store) -> Result<(), StorageError>;
    async fn delete_store(&self, id: String) -> Result<(), StorageError>;
    async fn put_offer(&self, offer: Offer) -> Result<(), StorageError>;
    async fn delete_offer(&self, id: String) -> Result<(), StorageError>;
    /// Replace the whole catalog: what is missing from `catalog` is deleted (tombstoned).
    async fn load_catalog(&self, catalog: Catalog) -> Result<CatalogCounts, StorageError>;
    /// Replace the whole catalog with the JSON document in `file`, read one entity at a time
    /// (memory stays that of one entity), in one transaction: nothing changes if any of it is
    /// refused.
    async fn import_catalog(
        &self,
        file: std::fs::File,
    ) -> Result<Result<CatalogCounts, ImportError>, StorageError>;
    /// Changes with a sequence above `after`, at most `limit`, and the latest sequence.
    async fn feed(&self, after: i64, limit: u32) -> Result<(FeedPage, i64), StorageError>;
    async fn latest_sequence(&self) -> Result<i64, StorageError>;

    async fn enrol(&self, enrolment: NewEnrolment) -> Result<(), StorageError>;
    async fn lookup_access(&self, hash: String, now_ms: i64) -> Result<TokenLookup, StorageError>;
    /// Swap a live refresh token for new tokens; `None` if it is unknown or expired.
    async fn refresh(
        &self,
        refresh_hash: String,
        now_ms: i64,
        new: TokenHashes,
    ) -> Result<Option<DeviceAuth>, StorageError>;
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
    /// Changes whenever the member's state (`GET /v1/me`) changes.
    async fn member_version(&self, member_id: String) -> Result<i64, StorageError>;
    /// Forget idempotency keys first seen before `before_ms`. Returns how many.
    async fn purge_keys(&self, before_ms: i64) -> Result<u64, StorageError>;
    /// A consent record made by staff on the member's behalf (`record.member_id`): stored and
    /// returned, or refused; `None` if there is no such member.
    async fn staff_consent(
        &self,
        record: ConsentRecord,
        now_ms: i64,
    ) -> Result<Option<Result<ConsentRecord, Refusal>>, StorageError>;
    /// The member's consent ledger, oldest first; `None` if there is no such member.
    async fn consent_history(
        &self,
        member_id: String,
    ) -> Result<Option<Vec<ConsentRecord>>, StorageError>;
    /// Members who may be targeted for `purpose` on `channel` now.
    async fn audience(
        &self,
        purpose: Purpose,
        channel: Channel,
    ) -> Result<Vec<String>, StorageError>;
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
    /// Replace the member's segments; `None` if there is no such member.
    async fn set_segments(
        &self,
        member_id: String,
        segments: Vec<String>,
    ) -> Result<Option<()>, StorageError>;
    /// The devices to push a campaign to: members who consented to offers by push and match the
    /// audience, with their push tokens; and how many matching members have none.
    async fn campaign_targets(
        &self,
        audience: CampaignAudience,
    ) -> Result<CampaignTargets, StorageError>;
    /// Claim a campaign id before sending anything: false if it was used already.
    async fn reserve_campaign(
        &self,
        campaign_id: String,
        body: String,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
    /// Record a reserved campaign's deliveries.
    async fn record_campaign(
        &self,
        campaign_id: String,
        targets: CampaignTargets,
        outcomes: Vec<Result<(), String>>,
        now_ms: i64,
    ) -> Result<CampaignReport, StorageError>;
    /// The public keys tills verify coupons with (a signing key is made on first use).
    async fn coupon_keys(
        &self,
        now_ms: i64,
    ) -> Result<Vec<tessera_domain::coupon::CouponKey>, StorageError>;
    /// A shop as the offer rules see it (tags, time zone); `None` if there is no such shop.
    async fn shop(
        &self,
        store_id: String,
    ) -> Result<Option<tessera_domain::eligibility::ShopFacts>, StorageError>;
    /// Register a till of `store_id`; `None` if there is no such shop.
    async fn register_till(
        &self,
        store_id: String,
        token_hash: String,
        now_ms: i64,
    ) -> Result<Option<String>, StorageError>;
    /// The till (id, shop) behind a token hash.
    async fn till_by_token(
        &self,
        token_hash: String,
    ) -> Result<Option<(String, String)>, StorageError>;
    /// Apply a till's request once per till idempotency key: look the key up, apply (redeem with
    /// one conditional UPDATE, record a purchase, void, return) and store the answer, in one
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
    /// Replace them; `false` if the web coupon's offer does not exist.
    async fn put_loyalty_rules(
        &self,
        rules: LoyaltyRules,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
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
    /// Replace the programme's challenges (sent to phones with the catalog feed).
    async fn put_challenge_rules(&self, rules: RuleSet) -> Result<(), StorageError>;
    /// The programme's challenges, if any were put.
    async fn challenge_rules(&self) -> Result<Option<RuleSet>, StorageError>;
    /// Record events the programme's systems report for a member and evaluate; `None` for an
    /// unknown member.
    async fn ingest_rule_events(
        &self,
        member_id: String,
        events: Vec<RuleEvent>,
        now_ms: i64,
    ) -> Result<Option<Result<Ingested, Refusal>>, StorageError>;
    /// Offline redemptions that lost to an earlier one, newest first.
    async fn redemption_conflicts(
        &self,
        limit: u32,
    ) -> Result<Vec<RedemptionConflict>, StorageError>;
    /// Every event id the server holds for a member, with how many times each was applied
    /// (tests and audits: each must be 1).
    async fn event_ids(&self, member_id: String) -> Result<Vec<(String, u64)>, StorageError>;
}

/// The till behind a till token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TillAuth {
    pub till_id: String,
    pub store_id: String,
}

/// What a till asks for, checked by its handler.
#[derive(Debug, Clone)]
pub enum TillOp {
    Redeem {
        claims: CouponClaims,
        /// The till's shop (tags, time zone) the claims were checked against.
        shop: tessera_domain::coupon::TillShop,
        receipt: String,
        /// When it was redeemed offline (the till's clock), for a late report.
        offline_at_ms: Option<i64>,
    },
    Purchase {
        request: PurchaseRequest,
        occurred_ms: i64,
    },
    Void {
        receipt: String,
        /// When the till voided it (now, or its clock for an offline void).
        at_ms: i64,
    },
    Return {
        request: ReturnRequest,
    },
}

/// One device to push to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub member_id: String,
    pub device_id: String,
    pub provider: PushProvider,
    pub token: String,
}

/// Who a campaign reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignTargets {
    pub members: u64,
    pub without_device: u64,
    pub devices: Vec<PushTarget>,
}

/// What a catalog load changed.
/// Why an imported catalog was refused (nothing of it was applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not JSON, or not shaped as a catalog.
    #[error("{0}")]
    Syntax(String),
    /// An entity breaks a rule, or an id is given twice.
    #[error(transparent)]
    Invalid(tessera_domain::catalog::CatalogError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CatalogCounts {
    pub stores: u64,
    pub offers: u64,
    pub deleted: u64,
}
