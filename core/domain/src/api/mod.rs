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

use serde::{Deserialize, Serialize};

use crate::{MemberCard, Program};

mod admin;
// The analytics' wire types: the server's and its analytics crate's only. Out of the phone
// library's build, where their mere presence cost bytes (measured: docs/adr/0029).
#[cfg(feature = "server")]
mod analytics;
mod console;
// The KPIs' counters and report: the server's only (like the analytics' types, out of the phone
// library's build).
#[cfg(feature = "server")]
mod kpi;
mod member;
mod till;
mod webhooks;

pub use crate::event::{
    ActivityEvent, EventKind, MAX_ATTRIBUTES, MAX_CLOCK_AHEAD_MS, MAX_PURCHASE_LINES, PurchaseLine,
    not_too_far_ahead,
};
pub use admin::*;
#[cfg(feature = "server")]
pub use analytics::*;
pub use console::*;
#[cfg(feature = "server")]
pub use kpi::*;
pub use member::*;
pub use till::*;
pub use webhooks::*;

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

    /// How many regions the platform lets an app monitor at once: 100 on Android, 20 on iOS
    /// (and on anything else, the smaller budget).
    pub const fn geofence_budget(self) -> u32 {
        match self {
            Platform::Android => 100,
            _ => 20,
        }
    }
}

/// The smallest geofence budget a plan accepts: one store region and the re-plan region.
pub const MIN_GEOFENCE_BUDGET: u32 = 2;
/// The largest geofence budget a plan accepts (above any platform's).
pub const MAX_GEOFENCE_BUDGET: u32 = 1000;

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
    /// `per_member_limit`, `not_started`, `ended`, `day`, `hours`, `shop`, `channel`, `reward`);
    /// for `member_code_refused`: the reason (`stale`, `revoked`, `bad_signature`, …).
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
    /// Not sent since idempotency claims moved into the database (a request with a key in
    /// flight waits for the first and gets its answer); phones still retry it, for older servers.
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
    /// The server issues no passes for this wallet (Apple or Google Wallet not set up).
    pub const WALLET_NOT_CONFIGURED: &str = "wallet_not_configured";
    /// A wallet pass cannot be made of this (a platform's limit; which in `detail`).
    pub const PASS_REFUSED: &str = "pass_refused";
    /// The scanned rotating member code does not hold (the reason in the problem's `rule`).
    pub const MEMBER_CODE_REFUSED: &str = "member_code_refused";
    /// A webhook endpoint the server will not deliver to (the reason in `detail`).
    pub const WEBHOOK_REFUSED: &str = "webhook_refused";
    /// Analytics settings the server will not use (the reason in `detail`).
    pub const ANALYTICS_SETTINGS_REFUSED: &str = "analytics_settings_refused";
    /// Journey settings the server will not use (the reason in `detail`).
    pub const JOURNEY_SETTINGS_REFUSED: &str = "journey_settings_refused";
    /// A staff account has this e-mail address already.
    pub const ACCOUNT_EXISTS: &str = "account_exists";
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
