//! The HTTP protocol between the sync engine and the server, as types both sides use: version 1.
//!
//! | route | job |
//! |---|---|
//! | `POST /v1/enrol` | a member and a device; returns the card, the programme and tokens |
//! | `POST /v1/token` | a refresh token for fresh tokens |
//! | `GET /v1/me` | the member's state (tier, balance, favourites, events recorded) |
//! | `GET /v1/catalog?cursor=` | catalog changes after `cursor`, a page at a time; 304 when none |
//! | `POST /v1/mutations` | one member action, with an `Idempotency-Key` |
//!
//! Errors are `application/problem+json` ([`Problem`]) with a stable [`Problem::code`].
//! Every answer carries [`API_VERSION_HEADER`] and [`SERVER_TIME_HEADER`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, Offer, Store, check_cents, check_id, parse_instant};
use crate::consent::ConsentRecord;
use crate::preferences::{PreferenceChange, Preferences};
use crate::{MemberCard, Program};

/// The protocol version this build speaks.
pub const API_VERSION: u32 = 1;
/// Response header naming the protocol version of the answer.
pub const API_VERSION_HEADER: &str = "tessera-api-version";
/// Response header: the server's clock, milliseconds since the Unix epoch.
pub const SERVER_TIME_HEADER: &str = "tessera-server-time";
/// Catalog answer header: the version of the member's state; `GET /v1/me` is only needed when
/// it differs from the last one seen.
pub const MEMBER_VERSION_HEADER: &str = "tessera-member-version";
/// Request header carrying the key of a mutation.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Media type of error answers (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Largest member request body the server reads.
pub const MAX_MEMBER_BODY: usize = 64 * 1024;
/// Most changes in one catalog page.
pub const MAX_PAGE: u32 = 5000;
/// Attributes on one event.
pub const MAX_ATTRIBUTES: usize = 32;

/// The device a member enrols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    pub platform: Platform,
    /// The app's version ("3.2.0").
    pub app_version: String,
}

/// What a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Android,
    Ios,
    Cli,
    Web,
    Other,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Cli => "cli",
            Platform::Web => "web",
            Platform::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub holder_name: String,
    pub device: DeviceInfo,
}

/// Bearer tokens: `access_token` on every call until `access_expires_at`, then `refresh_token`
/// at `POST /v1/token` for a new pair (the old refresh token stops working).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    pub access_token: String,
    /// RFC 3339.
    pub access_expires_at: String,
    pub refresh_token: String,
    /// RFC 3339.
    pub refresh_expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrolResponse {
    pub member_id: String,
    pub device_id: String,
    pub program: Program,
    pub card: MemberCard,
    pub tokens: Tokens,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// The member as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberState {
    pub member_id: String,
    pub card_number: String,
    pub holder_name: String,
    pub tier: String,
    pub points_balance: i64,
    pub favourite_store_ids: Vec<String>,
    /// Activity events the server has applied for this member.
    pub events_recorded: u64,
    /// The member's whole consent ledger, oldest first (every source: app, web, store, call
    /// centre).
    pub consents: Vec<ConsentRecord>,
    pub preferences: Preferences,
    /// Marketing segments the programme put the member in (offers target them).
    #[serde(default)]
    pub segments: Vec<String>,
    /// The member's coupons, newest first.
    #[serde(default)]
    pub wallet: Vec<WalletCoupon>,
    /// Points: balance, what expires next, the latest ledger entries.
    #[serde(default)]
    pub points: PointsView,
    /// Where the member stands in the programme's tiers (when it has tier rules).
    #[serde(default)]
    pub tier_progress: Option<crate::loyalty::TierProgress>,
    /// What the rules engine counts for the member, oldest first: the member's activity
    /// events, till purchases and events the programme's systems reported (online orders,
    /// late deliveries). The phone evaluates these plus its unsent events.
    #[serde(default)]
    pub rule_events: Vec<crate::rules::RuleEvent>,
    /// Opt-in challenges the member joined.
    #[serde(default)]
    pub joined_challenges: Vec<crate::rules::ChallengeJoin>,
    /// The server's evaluation of the programme's challenges (authoritative), at
    /// `challenges_as_of`.
    #[serde(default)]
    pub challenges: Vec<crate::rules::ChallengeProgress>,
    /// RFC 3339, the server's clock; none without a rule set.
    #[serde(default)]
    pub challenges_as_of: Option<String>,
    /// Badges earned, oldest first.
    #[serde(default)]
    pub badges: Vec<crate::rules::Badge>,
}

/// The member's points as the server counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointsView {
    pub balance: u64,
    /// The points that lapse on the (UTC) day of the next lapse, and the first instant; `None`
    /// if nothing expires.
    #[serde(default)]
    pub next_expiry: Option<PointsExpiry>,
    /// The latest entries, newest first (at most [`LEDGER_SHOWN`]).
    #[serde(default)]
    pub ledger: Vec<PointsEntry>,
}

/// How many ledger entries `GET /v1/me` carries.
pub const LEDGER_SHOWN: u32 = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointsExpiry {
    pub points: u64,
    pub expires_at: String,
}

/// One line of the points ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointsEntry {
    pub kind: PointsKind,
    /// Signed: earned and positive adjustments are above 0.
    pub points: i64,
    /// What it was for: a receipt, a reward, an operator's note.
    pub reason: String,
    /// RFC 3339, the server's clock.
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PointsKind {
    /// From a purchase.
    Earn,
    /// Spent on a reward.
    Burn,
    /// Lapsed after the programme's validity.
    Expire,
    /// By the operator (goodwill, correction).
    Adjust,
    /// Taken back after a return or a void.
    Reverse,
    /// A challenge's reward.
    Bonus,
}

impl PointsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PointsKind::Earn => "earn",
            PointsKind::Burn => "burn",
            PointsKind::Expire => "expire",
            PointsKind::Adjust => "adjust",
            PointsKind::Reverse => "reverse",
            PointsKind::Bonus => "bonus",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "earn" => PointsKind::Earn,
            "burn" => PointsKind::Burn,
            "expire" => PointsKind::Expire,
            "adjust" => PointsKind::Adjust,
            "reverse" => PointsKind::Reverse,
            "bonus" => PointsKind::Bonus,
            _ => return None,
        })
    }
}

/// A coupon in the member's wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WalletCoupon {
    pub coupon_id: String,
    pub offer_id: String,
    /// The signed code the till scans (render it as a QR code).
    pub code: String,
    /// RFC 3339.
    pub expires_at: String,
    pub state: CouponState,
}

/// Where a coupon stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum CouponState {
    Available,
    /// `redeemed_at` RFC 3339.
    Redeemed {
        store_id: String,
        redeemed_at: String,
    },
    Expired,
    /// Taken back: the purchase that earned it was voided.
    Revoked,
}

/// A till's request to redeem a scanned code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub code: String,
    /// The till's receipt number.
    pub receipt: String,
    pub basket_cents: u64,
    /// Set when the till redeemed it offline and is reporting it now: when it did (RFC 3339, the
    /// till's clock). The server checks the coupon as of then; a loser is a recorded conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_offline_at: Option<String>,
}

impl RedeemRequest {
    pub fn validate(&self) -> Result<(), CatalogError> {
        if self.code.is_empty() || self.code.len() > crate::coupon::MAX_CODE {
            return Err(CatalogError::new("code", "1 to 1024 characters"));
        }
        check_receipt("receipt", &self.receipt)?;
        check_cents("basket_cents", self.basket_cents)?;
        if let Some(at) = &self.redeemed_offline_at {
            parse_instant("redeemed_offline_at", at)?;
        }
        Ok(())
    }
}

/// How long a till may stay offline with redemptions and purchases to report.
pub const OFFLINE_WINDOW_MS: i64 = 7 * 86_400_000;

/// How far ahead of the server's clock a time a device, a till or the programme's systems give
/// may be (device clocks drift, and some are set by hand): the one rule for times in the future,
/// applied by the server's routes and by the rules engine alike, so that an event the server
/// accepted is one the engine evaluates.
pub const MAX_CLOCK_AHEAD_MS: i64 = 24 * 3_600_000;

/// Whether `at_ms` is within [`MAX_CLOCK_AHEAD_MS`] of `now_ms`.
pub fn not_too_far_ahead(at_ms: i64, now_ms: i64) -> bool {
    at_ms <= now_ms.saturating_add(MAX_CLOCK_AHEAD_MS)
}

/// A purchase at a till (or the web checkout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// Unique per shop.
    pub receipt: String,
    /// The member card scanned at the till, if any.
    #[serde(default)]
    pub card_number: Option<String>,
    pub lines: Vec<PurchaseLine>,
    /// What was paid, in cents (after discounts).
    pub total_cents: u64,
    /// Set by a till reporting a purchase it recorded offline (RFC 3339, the till's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_offline_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurchaseLine {
    pub sku: String,
    #[serde(default)]
    pub category: Option<String>,
    /// The product's collection ("autumn-2026"), for challenges.
    #[serde(default)]
    pub collection: Option<String>,
    pub quantity: u32,
    pub amount_cents: u64,
}

/// The most lines a purchase has.
pub const MAX_PURCHASE_LINES: usize = 500;
/// The largest total a till may report: the programme's one bound for money.
pub const MAX_TOTAL_CENTS: u64 = crate::catalog::MAX_CENTS;

impl PurchaseRequest {
    pub fn validate(&self) -> Result<(), CatalogError> {
        check_receipt("receipt", &self.receipt)?;
        if self.lines.is_empty() || self.lines.len() > MAX_PURCHASE_LINES {
            return Err(CatalogError::new("lines", "1 to 500 lines"));
        }
        let mut sum = 0u64;
        for line in &self.lines {
            check_id("lines.sku", &line.sku)?;
            if let Some(c) = &line.category {
                check_id("lines.category", c)?;
            }
            if line.quantity == 0 || line.quantity > 10_000 {
                return Err(CatalogError::new("lines.quantity", "1 to 10000"));
            }
            check_cents("lines.amount_cents", line.amount_cents)?;
            sum = sum.saturating_add(line.amount_cents);
        }
        check_cents("total_cents", self.total_cents)?;
        check_cents("lines.amount_cents", sum)?;
        if self.total_cents > sum {
            return Err(CatalogError::new(
                "total_cents",
                "more than the lines add up to",
            ));
        }
        if let Some(at) = &self.occurred_offline_at {
            parse_instant("occurred_offline_at", at)?;
        }
        Ok(())
    }
}

/// A receipt number: 1–64 printable characters.
pub fn check_receipt(field: &'static str, receipt: &str) -> Result<(), CatalogError> {
    if receipt.is_empty() || receipt.len() > 64 || receipt.chars().any(char::is_control) {
        return Err(CatalogError::new(field, "1 to 64 printable characters"));
    }
    Ok(())
}

/// What a purchase earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurchaseReceipt {
    pub purchase_id: String,
    /// `None`: no card was scanned.
    pub member_id: Option<String>,
    pub points_earned: u64,
    /// The member's balance after it.
    pub points_balance: u64,
    /// Store-to-web: a coupon for the website, when the purchase qualifies.
    pub web_coupon: Option<String>,
}

/// Undo what was recorded under a receipt of this shop (its coupon redemptions and its
/// purchase), within the programme's void window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    pub receipt: String,
    /// Set by a till reporting a void it made offline (RFC 3339, the till's clock): the void
    /// window is checked as of then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided_offline_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VoidReport {
    pub receipt: String,
    /// Coupons usable again.
    pub coupons_restored: Vec<String>,
    pub purchase_voided: bool,
    pub points_reversed: u64,
}

/// Goods brought back: points earned by the original purchase are taken back in proportion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// The original purchase's receipt.
    pub receipt: String,
    /// The original purchase's shop; the till's own shop if absent.
    #[serde(default)]
    pub store_id: Option<String>,
    pub refunded_cents: u64,
}

impl ReturnRequest {
    pub fn validate(&self) -> Result<(), CatalogError> {
        check_receipt("receipt", &self.receipt)?;
        if let Some(store) = &self.store_id {
            check_id("store_id", store)?;
        }
        check_cents("refunded_cents", self.refunded_cents)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnReport {
    pub purchase_id: String,
    pub points_reversed: u64,
    /// Points the member had spent already: the balance does not go below zero, the rest is
    /// written off (and reported here).
    pub points_unrecovered: u64,
    pub points_balance: u64,
}

/// An operator's correction to a member's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointsAdjustment {
    pub points: i64,
    pub reason: String,
}

/// A coupon redeemed offline at two tills or more: the first report won; the others are kept
/// for the merchant to review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedemptionConflict {
    pub coupon_id: String,
    pub offer_id: String,
    /// The redemption that counts.
    pub winner_store_id: String,
    pub winner_till_id: String,
    pub winner_at: String,
    /// The one that lost: where, its receipt, when the till says it happened, when it reached
    /// the server.
    pub store_id: String,
    pub till_id: String,
    pub receipt: String,
    pub redeemed_offline_at: String,
    pub reported_at: String,
}

/// A redemption the server accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Redemption {
    pub coupon_id: String,
    pub offer_id: String,
    pub member_id: String,
    pub store_id: String,
    pub till_id: String,
    /// RFC 3339, the server's clock.
    pub redeemed_at: String,
}

/// Register a till of a shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TillRegistration {
    pub store_id: String,
}

/// A till's credentials (the token is shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TillCredentials {
    pub till_id: String,
    pub store_id: String,
    pub token: String,
}

/// Which push service delivers to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushProvider {
    /// Firebase Cloud Messaging (Android).
    Fcm,
    /// Apple Push Notification service (iOS).
    Apns,
}

impl PushProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            PushProvider::Fcm => "fcm",
            PushProvider::Apns => "apns",
        }
    }
}

/// A push campaign: an offer, to the members who consented to offers by push and match the
/// audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: String,
    pub offer: Offer,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// RFC 3339: not shown after it.
    pub expires_at: String,
    #[serde(default)]
    pub collapse_key: Option<String>,
    #[serde(default)]
    pub audience: CampaignAudience,
}

/// Who a campaign is for, on top of consent: empty lists mean everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CampaignAudience {
    #[serde(default)]
    pub tiers: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    /// Members whose interests (if they declared any) include one of these.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// What a campaign did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignReport {
    pub campaign_id: String,
    /// Members in the audience with consent to offers by push.
    pub members: u64,
    /// Of those, members with no device registered for push.
    pub without_device: u64,
    pub sent: u64,
    pub failed: u64,
}

/// One change in the catalog feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CatalogChange {
    Program {
        program: Program,
    },
    /// The programme's challenges (the whole rule set).
    Rules {
        rules: crate::rules::RuleSet,
    },
    Store {
        store: Store,
    },
    Offer {
        offer: Offer,
    },
    StoreDeleted {
        id: String,
    },
    OfferDeleted {
        id: String,
    },
}

impl CatalogChange {
    pub fn validate(&self) -> Result<(), CatalogError> {
        match self {
            CatalogChange::Program { program } => program
                .validated()
                .map(|_| ())
                .map_err(|e| CatalogError::new("program", e.to_string())),
            CatalogChange::Rules { rules } => rules.validate().map_err(|e| match e {
                crate::rules::RulesError::Invalid { field, reason } => {
                    CatalogError::new("rules", format!("{field}: {reason}"))
                }
                other => CatalogError::new("rules", other.to_string()),
            }),
            CatalogChange::Store { store } => store.validate(),
            CatalogChange::Offer { offer } => offer.validate(),
            CatalogChange::StoreDeleted { id } => check_id("store.id", id),
            CatalogChange::OfferDeleted { id } => check_id("offer.id", id),
        }
    }
}

/// A page of the catalog feed: the changes after the request's cursor, in order. Apply it whole,
/// then ask again with `cursor` while `has_more`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CatalogPage {
    /// Always [`API_VERSION`].
    pub format: u32,
    pub changes: Vec<CatalogChange>,
    /// Opaque: send it back as `?cursor=`.
    pub cursor: String,
    pub has_more: bool,
}

/// What a member did on the phone, as queued in the outbox and sent to `POST /v1/mutations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Mutation {
    /// Something the member did (the rules engine counts these).
    RecordEvent { event: ActivityEvent },
    /// Mark or unmark a store as a favourite.
    SetFavouriteStore { store_id: String, favourite: bool },
    /// Append a consent decision to the ledger (`recorded_at` is set by the server).
    RecordConsent { record: ConsentRecord },
    /// Change these preference fields (the last write wins per field, in the server's order).
    SetPreferences { changes: Vec<PreferenceChange> },
    /// A usage event, sent only with analytics consent.
    TrackEvent { event: AnalyticsEvent },
    /// Clip an offer: the server issues a coupon into the member's wallet.
    ClipOffer { offer_id: String },
    /// Spend points on a reward (an offer with a points cost): a coupon into the wallet.
    BuyReward { offer_id: String },
    /// Join an opt-in challenge: events from `joined_at` on count towards it (RFC 3339, the
    /// phone's clock: a join made offline counts the events recorded after it; the server
    /// accepts it back to the offline window and never later than its own clock).
    JoinChallenge {
        challenge_id: String,
        joined_at: String,
    },
    /// This device's push token (the OS rotates it).
    SetPushToken {
        device_id: String,
        provider: PushProvider,
        token: String,
    },
}

/// A usage event ("offer_opened", "screen_viewed"…), for analytics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AnalyticsEvent {
    pub event_id: String,
    pub name: String,
    /// RFC 3339, the phone's clock.
    pub occurred_at: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn check_attributes(
    field: &'static str,
    attributes: &BTreeMap<String, String>,
) -> Result<(), CatalogError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(CatalogError::new(field, "has more than 32 entries"));
    }
    for (k, v) in attributes {
        check_id(field, k)?;
        if v.chars().count() > 200 || v.chars().any(char::is_control) {
            return Err(CatalogError::new(
                field,
                "values are at most 200 printable characters",
            ));
        }
    }
    Ok(())
}

/// Kinds of member activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AppOpened,
    StoreVisit,
    OnlineOrder,
    ReviewPosted,
    NewsletterSubscribed,
    ProfileCompleted,
    SocialShare,
    ReferralConverted,
}

impl EventKind {
    /// The kind named by [`EventKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AppOpened => "app_opened",
            EventKind::StoreVisit => "store_visit",
            EventKind::OnlineOrder => "online_order",
            EventKind::ReviewPosted => "review_posted",
            EventKind::NewsletterSubscribed => "newsletter_subscribed",
            EventKind::ProfileCompleted => "profile_completed",
            EventKind::SocialShare => "social_share",
            EventKind::ReferralConverted => "referral_converted",
        }
    }
}

/// One member action, identified by `event_id` (made on the phone, unique per member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivityEvent {
    pub event_id: String,
    pub kind: EventKind,
    /// RFC 3339, the phone's clock.
    pub occurred_at: String,
    #[serde(default)]
    pub store_id: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Mutation {
    /// Rules every mutation obeys wherever it is checked (phone before queueing, server before
    /// applying).
    pub fn validate(&self) -> Result<(), CatalogError> {
        match self {
            Mutation::RecordEvent { event } => {
                check_id("event.event_id", &event.event_id)?;
                parse_instant("event.occurred_at", &event.occurred_at)?;
                if let Some(store) = &event.store_id {
                    check_id("event.store_id", store)?;
                }
                check_attributes("event.attributes", &event.attributes)
            }
            Mutation::SetFavouriteStore { store_id, .. } => check_id("store_id", store_id),
            Mutation::RecordConsent { record } => {
                record.validate()?;
                if record.recorded_at.is_some() {
                    return Err(CatalogError::new(
                        "consent.recorded_at",
                        "is set by the server",
                    ));
                }
                Ok(())
            }
            Mutation::SetPreferences { changes } => {
                if changes.is_empty() || changes.len() > 6 {
                    return Err(CatalogError::new(
                        "preferences",
                        "must change 1 to 6 fields",
                    ));
                }
                for (i, c) in changes.iter().enumerate() {
                    if changes[..i].iter().any(|d| d.field() == c.field()) {
                        return Err(CatalogError::new("preferences", "changes a field twice"));
                    }
                    c.validate()?;
                }
                Ok(())
            }
            Mutation::ClipOffer { offer_id } | Mutation::BuyReward { offer_id } => {
                check_id("offer_id", offer_id)
            }
            Mutation::JoinChallenge {
                challenge_id,
                joined_at,
            } => {
                check_id("challenge_id", challenge_id)?;
                parse_instant("joined_at", joined_at).map(|_| ())
            }
            Mutation::SetPushToken {
                device_id, token, ..
            } => {
                check_id("device_id", device_id)?;
                if token.is_empty()
                    || token.len() > 4096
                    || !token.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(CatalogError::new(
                        "push_token",
                        "must be 1 to 4096 printable ASCII characters",
                    ));
                }
                Ok(())
            }
            Mutation::TrackEvent { event } => {
                check_id("analytics.event_id", &event.event_id)?;
                check_id("analytics.name", &event.name)?;
                parse_instant("analytics.occurred_at", &event.occurred_at)?;
                check_attributes("analytics.attributes", &event.attributes)
            }
        }
    }
}

/// Everything the server holds about a member (the right of access), as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberExport {
    /// RFC 3339, the server's clock.
    pub generated_at: String,
    /// RFC 3339.
    pub member_since: String,
    pub member: MemberState,
    pub devices: Vec<DeviceExport>,
    pub events: Vec<ActivityEvent>,
    pub analytics: Vec<AnalyticsEvent>,
}

/// A device enrolled for the member (never its tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceExport {
    pub device_id: String,
    pub platform: String,
    pub app_version: String,
    /// RFC 3339.
    pub enrolled_at: String,
}

/// The answer to an erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErasureReceipt {
    /// RFC 3339, the server's clock.
    pub erased_at: String,
    /// Consent records kept, detached from the member, as proof of past consent.
    pub consent_records_anonymised: u64,
}

/// The server's answer to an applied mutation (replayed unchanged for a repeated key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MutationResponse {
    /// RFC 3339, the server's clock.
    pub applied_at: String,
    /// Position of this mutation in the member's server-side history (1, 2, …).
    pub sequence: u64,
}

/// An error answer (RFC 9457). `code` is stable; `title` and `detail` are for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: String,
    /// For `offer_refused`: the programme rule that refused (`tier`, `segment`,
    /// `per_member_limit`, `not_started`, `ended`, `day`, `hours`, `shop`, `channel`, `reward`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Problem {
    pub fn new(status: u16, code: &str, title: &str, detail: Option<String>) -> Self {
        Problem {
            type_uri: format!("https://tessera.app/problems/{code}"),
            title: title.to_owned(),
            status,
            detail,
            code: code.to_owned(),
            rule: None,
        }
    }

    /// 422 `offer_refused`: a rule of the programme refuses the offer (which one in `rule`).
    pub fn offer_refused(refusal: &crate::eligibility::Refusal) -> Self {
        Problem {
            rule: Some(refusal.rule().to_owned()),
            ..Problem::new(
                422,
                codes::OFFER_REFUSED,
                "A rule of the programme refuses this offer",
                Some(refusal.to_string()),
            )
        }
    }
}

/// Stable problem codes.
pub mod codes {
    pub const INVALID_BODY: &str = "invalid_body";
    pub const INVALID_QUERY: &str = "invalid_query";
    pub const VALIDATION_FAILED: &str = "validation_failed";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const TOKEN_EXPIRED: &str = "token_expired";
    pub const INVALID_REFRESH_TOKEN: &str = "invalid_refresh_token";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const IDEMPOTENCY_KEY_MISSING: &str = "idempotency_key_missing";
    pub const IDEMPOTENCY_KEY_INVALID: &str = "idempotency_key_invalid";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    pub const REQUEST_IN_FLIGHT: &str = "request_in_flight";
    pub const UNKNOWN_STORE: &str = "unknown_store";
    pub const EVENT_IN_FUTURE: &str = "event_in_future";
    /// The programme has no challenge with that id.
    pub const UNKNOWN_CHALLENGE: &str = "unknown_challenge";
    /// A time later than the server's clock allows: the device clock is far off.
    pub const CLOCK_SKEW: &str = "clock_skew";
    /// The member has not consented to what the request needs.
    pub const CONSENT_REQUIRED: &str = "consent_required";
    /// The coupon was redeemed already; the problem's detail says where and when.
    pub const ALREADY_REDEEMED: &str = "already_redeemed";
    /// The code is forged, altered, expired, for another shop or below its minimum basket.
    pub const COUPON_REFUSED: &str = "coupon_refused";
    /// No such offer, or it cannot be clipped now.
    pub const UNKNOWN_OFFER: &str = "unknown_offer";
    /// A rule of the programme refuses the offer: the problem's `rule` names it.
    pub const OFFER_REFUSED: &str = "offer_refused";
    /// Too many requests: wait for `Retry-After` seconds.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// An offline redemption reported after another till's: the coupon was used twice; the
    /// detail says where and when it counted. The conflict is recorded for the merchant.
    pub const REDEMPTION_CONFLICT: &str = "redemption_conflict";
    /// Nothing was recorded under that receipt in this shop.
    pub const NOTHING_TO_VOID: &str = "nothing_to_void";
    /// Too late to void: the programme's void window has passed.
    pub const VOID_WINDOW_CLOSED: &str = "void_window_closed";
    pub const INSUFFICIENT_POINTS: &str = "insufficient_points";
    /// No member has the scanned card number.
    pub const UNKNOWN_CARD: &str = "unknown_card";
    /// Another purchase was recorded under this receipt in this shop.
    pub const RECEIPT_REUSED: &str = "receipt_reused";
    /// No purchase under that receipt, or more refunded than it was worth.
    pub const RETURN_REFUSED: &str = "return_refused";
    /// A till's offline report is older than the offline window.
    pub const REPORT_TOO_OLD: &str = "report_too_old";
    /// The push token is for another device than the caller.
    pub const WRONG_DEVICE: &str = "wrong_device";
    /// The record names another member than the caller.
    pub const WRONG_MEMBER: &str = "wrong_member";
    /// A consent record id already used for another record.
    pub const RECORD_ID_REUSED: &str = "record_id_reused";
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    pub const TIMEOUT: &str = "timeout";
    pub const INTERNAL: &str = "internal";
    pub const UNAVAILABLE: &str = "unavailable";
}

/// An idempotency key: 8–128 of `A-Z a-z 0-9 - _ .`.
pub fn check_idempotency_key(key: &str) -> bool {
    (8..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
