//! What a member did, as the phone records it and the rules engine reads it: activity events and
//! purchase lines, and the one rule for how far in the future a time may be.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_id};

/// Attributes on one event.
pub const MAX_ATTRIBUTES: usize = 32;

/// How far ahead of the server's clock a time a device, a till or the programme's systems give
/// may be (device clocks drift, and some are set by hand): the one rule for times in the future,
/// applied by the server's routes and by the rules engine alike, so that an event the server
/// accepted is one the engine evaluates.
pub const MAX_CLOCK_AHEAD_MS: i64 = 24 * 3_600_000;

/// Whether `at_ms` is within [`MAX_CLOCK_AHEAD_MS`] of `now_ms`.
pub fn not_too_far_ahead(at_ms: i64, now_ms: i64) -> bool {
    at_ms <= now_ms.saturating_add(MAX_CLOCK_AHEAD_MS)
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

pub(crate) fn check_attributes(
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
