//! The member's side of the protocol: the state `GET /v1/me` returns (points, wallet), the
//! mutations the phone sends, and the answers to them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_id, parse_instant};
use crate::consent::ConsentRecord;
use crate::preferences::{PreferenceChange, Preferences};

use super::*;
use crate::event::check_attributes;

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

/// The analytics event an app reports when the member opens a push (its attributes:
/// `offer_id`, and `campaign_id` when the push named one): counted among the KPIs.
pub const PUSH_OPENED_EVENT: &str = "push_opened";

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

/// A device's request to have its key certified for the rotating member code (at enrolment,
/// and again before the certificate ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceKeyRequest {
    /// The device's Ed25519 public key: 32 bytes, base64url without padding.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{43}$"))]
    pub public_key: String,
}

impl DeviceKeyRequest {
    /// The key's 32 bytes.
    pub fn key(&self) -> Result<[u8; 32], CatalogError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.public_key)
            .map_err(|_| CatalogError::new("public_key", "base64url without padding"))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| CatalogError::new("public_key", "an Ed25519 public key: 32 bytes"))
    }
}

/// A "Save to Google Wallet" link for the member's card or a coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GoogleSaveLink {
    /// Open it (or put it behind the official button): `https://pay.google.com/gp/v/save/<jwt>`.
    pub save_url: String,
    /// The Google Wallet object's id (`{issuer}.{serial}`).
    pub object_id: String,
}

/// The programme's certificate for a device key ([`crate::member_code::DeviceCertificate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceCertificateAnswer {
    /// The certificate's bytes, base64url without padding: what every code carries.
    pub certificate: String,
    /// What the revocation list names (below 2^53).
    pub serial: u64,
    /// The programme key that signed it.
    pub key_id: String,
    /// How often the code changes, in seconds.
    pub period_s: u16,
    /// RFC 3339: renew before then.
    pub not_after: String,
}

/// The device certificates tills must refuse (revoked, not yet expired), with their key refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Revocations {
    /// Serials, ascending.
    pub revoked: Vec<u64>,
    /// RFC 3339: the server's time of the list.
    pub as_of: String,
}
