//! Where the server keeps its data, behind one trait: [`sqlite::SqliteStorage`] is the embedded
//! default, [`postgres::PostgresStorage`] the backend for several server processes over one
//! database (docs/adr/0022). The handlers and the business rules do not know which runs.

pub mod postgres;
pub mod repo;
pub mod sqlite;

pub use repo::Repo;

use async_trait::async_trait;
#[allow(unused_imports)]
use tessera_domain::api::MutationResponse;
use tessera_domain::api::{PurchaseRequest, PushProvider, RedemptionConflict, ReturnRequest};
use tessera_domain::catalog::{Catalog, Offer, Store};
use tessera_domain::consent::{Channel, ConsentRecord, Purpose};
use tessera_domain::coupon::CouponClaims;
use tessera_domain::rules::RuleSet;
use tessera_domain::{MemberCard, Program};

/// Failures of the storage layer, whatever the backend. Handlers turn them into problem documents.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A write broke a uniqueness rule of the schema (a card number drawn twice, an id reused).
    #[error("duplicate: {0}")]
    Duplicate(String),
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StorageError {
    /// A backend's failure, by its message.
    pub fn backend(e: impl std::fmt::Display) -> Self {
        StorageError::Backend(e.to_string())
    }
}

/// A stored count as the API's unsigned number (never negative in storage).
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A count as a stored integer (saturating: no count reaches it).
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A conflict's resolution from its stored columns (all set, or none).
pub(crate) fn resolution(
    outcome: Option<String>,
    note: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<i64>,
) -> Option<tessera_domain::api::ConflictResolution> {
    Some(tessera_domain::api::ConflictResolution {
        outcome: tessera_domain::api::ConflictOutcome::parse(&outcome?)?,
        note: note?,
        resolved_by: resolved_by?,
        resolved_at: tessera_domain::rfc3339_ms(resolved_at?),
    })
}

/// What an ingestion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Events new to the server (a repeated id counts once).
    pub accepted: u32,
    pub rewards_paid: u32,
}

/// Why the programme's rules refused a request, in the domain's terms: the routes turn it into a
/// problem document (`problem.rs`, also for the answers stored under idempotency keys); no
/// business rule speaks HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A consent record id already holds another record (records are never changed).
    #[error("consent record {record_id} holds another record")]
    ConsentRecordReused { record_id: String },
    /// An operator's correction would take the balance below zero.
    #[error(transparent)]
    Points(tessera_domain::loyalty::PointsError),
    /// An event later than the server's clock allows.
    #[error("event {event_id} is later than the server's clock")]
    EventInFuture { event_id: String },
    #[error("there is no store {store_id}")]
    UnknownStore { store_id: String },
    /// A clip of an offer the catalog does not have.
    #[error("there is no such offer")]
    UnknownOffer,
    /// A purchase with points of an offer that is not a reward.
    #[error("no such reward")]
    NotAReward,
    /// A rule of the offer (tier, segment, limit, dates, shop, channel, …).
    #[error(transparent)]
    Offer(tessera_domain::eligibility::Refusal),
    /// Not enough points for a reward.
    #[error(transparent)]
    RewardUnaffordable(tessera_domain::loyalty::PointsError),
    /// Analytics without the member's consent.
    #[error("the member has not consented to analytics")]
    ConsentRequired,
    #[error("the programme has no challenge {challenge_id}")]
    UnknownChallenge { challenge_id: String },
    /// Another purchase has this receipt in this shop.
    #[error("receipt used by {purchase_id}")]
    ReceiptReused { purchase_id: String },
    #[error("unknown card number")]
    UnknownCard,
    /// The scanned member code does not hold at the server.
    #[error(transparent)]
    MemberCode(tessera_domain::member_code::MemberCodeError),
    #[error("nothing to void under {receipt}")]
    NothingToVoid { receipt: String },
    /// The oldest thing under the receipt was recorded before the void window.
    #[error("too late to void")]
    VoidWindowClosed {
        recorded_ms: i64,
        window_minutes: u32,
    },
    /// A return of a purchase the shop has not recorded (or that was voided).
    #[error("no purchase under receipt {receipt} at {store_id}")]
    NoPurchase { store_id: String, receipt: String },
    #[error("{refundable_cents} cents can still be refunded")]
    OverRefund { refundable_cents: i64 },
    /// Redeemed before, online.
    #[error("redeemed at {store_id}")]
    AlreadyRedeemed { store_id: String, at_ms: i64 },
    /// Redeemed offline after another redemption: recorded as a conflict.
    #[error("redeemed at {store_id} before")]
    RedemptionConflict { store_id: String, at_ms: i64 },
    #[error("revoked")]
    CouponRevoked,
    #[error("unknown coupon")]
    UnknownCoupon,
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

/// A business transaction: run with a repository over one transaction, it says whether to
/// commit. A backend runs it on a thread that may block, and may run it again from the start in
/// a new transaction when the database refuses to commit the first for a concurrency reason
/// (PostgreSQL's serialization failures): only the last run's writes are ever committed, so a job
/// must not act outside the repository.
pub type Job = Box<dyn FnMut(&mut dyn Repo) -> Result<Finish, StorageError> + Send>;

/// A read job: run over a consistent read-only view (again, like a [`Job`], if it must be).
pub type ReadJob = Box<dyn FnMut(&mut dyn Repo) -> Result<(), StorageError> + Send>;

/// How a [`Job`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Commit,
    /// Undo everything the job wrote (a business refusal).
    Rollback,
}

/// The server's data, whatever the backend: a few plain reads and writes, and
/// [`Storage::transaction`], in which the business rules (the `service` module) run over the
/// backend's [`Repo`].
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Run `job` in one write transaction, as if no other ran at the same time (SQLite runs one
    /// write at a time; PostgreSQL runs it SERIALIZABLE and may run the job again), and commit
    /// if it says so. An error rolls back.
    async fn transaction(&self, job: Job) -> Result<(), StorageError>;
    /// Run `job` over a consistent read-only view (it must not write).
    async fn snapshot(&self, job: ReadJob) -> Result<(), StorageError>;
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
    async fn lookup_access(&self, hash: String, now_ms: i64) -> Result<TokenLookup, StorageError>;
    /// Swap a live refresh token for new tokens; `None` if it is unknown or expired.
    async fn refresh(
        &self,
        refresh_hash: String,
        now_ms: i64,
        new: TokenHashes,
    ) -> Result<Option<DeviceAuth>, StorageError>;
    /// Changes whenever the member's state (`GET /v1/me`) changes.
    async fn member_version(&self, member_id: String) -> Result<i64, StorageError>;
    /// Forget idempotency keys first seen before `before_ms`. Returns how many.
    async fn purge_keys(&self, before_ms: i64) -> Result<u64, StorageError>;
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
    /// Replace the member's segments; `None` if there is no such member.
    async fn set_segments(
        &self,
        member_id: String,
        segments: Vec<String>,
    ) -> Result<Option<()>, StorageError>;
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
    /// Replace the programme's challenges (sent to phones with the catalog feed), kept as a new
    /// version published by `by` with `note`: its number.
    async fn publish_rule_set(
        &self,
        rules: RuleSet,
        by: String,
        note: String,
        now_ms: i64,
    ) -> Result<i64, StorageError>;
    /// [`Storage::publish_rule_set`] by the operator, now.
    async fn put_challenge_rules(&self, rules: RuleSet) -> Result<(), StorageError> {
        let now = jiff::Timestamp::now().as_millisecond();
        self.publish_rule_set(rules, "operator".into(), String::new(), now)
            .await
            .map(|_| ())
    }
    /// The programme's challenges, if any were put.
    async fn challenge_rules(&self) -> Result<Option<RuleSet>, StorageError>;
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

/// How many a campaign would reach now (the console answers it as JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AudienceCount {
    /// Members who consented to offers by push and match the audience.
    pub members: u64,
    /// Their devices with a push token.
    pub devices: u64,
    /// Those of them with none.
    pub without_device: u64,
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

/// Run `f` in one write transaction on `storage`, committed if `f` succeeds. `f` may run more
/// than once (see [`Job`]).
pub async fn write<S: Storage + ?Sized, T: Send + 'static>(
    storage: &S,
    mut f: impl FnMut(&mut dyn Repo) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    match write_unless(storage, move |repo| {
        f(repo).map(Ok::<T, std::convert::Infallible>)
    })
    .await?
    {
        Ok(v) => Ok(v),
        Err(never) => match never {},
    }
}

/// The result of a job's last run, carried out of the backend.
type Slot<T> = std::sync::Arc<std::sync::Mutex<Option<T>>>;

fn take<T>(slot: &Slot<T>, what: &str) -> Result<T, StorageError> {
    slot.lock()
        .ok()
        .and_then(|mut s| s.take())
        .ok_or_else(|| StorageError::Backend(format!("the {what} did not run its job")))
}

/// Run `f` in one write transaction on `storage`: committed if it returns `Ok(Ok(_))`; an
/// `Ok(Err(refusal))` rolls back everything `f` wrote and is returned. `f` may run more than
/// once (see [`Job`]); the answer is that of the run that ended the transaction.
pub async fn write_unless<S: Storage + ?Sized, T: Send + 'static, E: Send + 'static>(
    storage: &S,
    mut f: impl FnMut(&mut dyn Repo) -> Result<Result<T, E>, StorageError> + Send + 'static,
) -> Result<Result<T, E>, StorageError> {
    let slot: Slot<Result<T, E>> = Default::default();
    let out = slot.clone();
    storage
        .transaction(Box::new(move |repo| {
            let result = f(repo)?;
            let finish = if result.is_ok() {
                Finish::Commit
            } else {
                Finish::Rollback
            };
            if let Ok(mut s) = out.lock() {
                *s = Some(result);
            }
            Ok(finish)
        }))
        .await?;
    take(&slot, "transaction")
}

/// Run `f` over a read-only view of `storage` (more than once if it must be).
pub async fn read<S: Storage + ?Sized, T: Send + 'static>(
    storage: &S,
    mut f: impl FnMut(&mut dyn Repo) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let slot: Slot<T> = Default::default();
    let out = slot.clone();
    storage
        .snapshot(Box::new(move |repo| {
            let value = f(repo)?;
            if let Ok(mut s) = out.lock() {
                *s = Some(value);
            }
            Ok(())
        }))
        .await?;
    take(&slot, "read")
}
