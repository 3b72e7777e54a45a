//! The operator's side of the protocol: points adjustments, push campaigns, and the catalog feed
//! the operator's changes become.

use serde::{Deserialize, Serialize};

use crate::Program;
use crate::catalog::{CatalogError, Offer, Store, check_id};

/// An operator's correction to a member's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointsAdjustment {
    pub points: i64,
    pub reason: String,
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

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fcm" => Some(PushProvider::Fcm),
            "apns" => Some(PushProvider::Apns),
            _ => None,
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
    /// RFC 3339: not sent before it (absent: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
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
    /// Members in one of these segments of the latest analysis: a named segment (`vip`) or an
    /// RFM class (`rfm:champions`). See docs/analytics.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analytics_segments: Vec<String>,
    /// Members of these shops (catalog ids): who chose one as a favourite, or bought in one
    /// (a purchase not voided).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shops: Vec<String>,
}

/// Where a campaign is: sent in batches by the server's job queue, off the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Accepted; no batch sent yet.
    Queued,
    /// Batches are being sent.
    Sending,
    /// Every member of the audience was reached (or had no device).
    Done,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Queued => "queued",
            CampaignState::Sending => "sending",
            CampaignState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(CampaignState::Queued),
            "sending" => Some(CampaignState::Sending),
            "done" => Some(CampaignState::Done),
            _ => None,
        }
    }
}

/// What a campaign did so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignReport {
    pub campaign_id: String,
    pub state: CampaignState,
    /// Members of the audience reached so far with consent to offers by push.
    pub members: u64,
    /// Of those, members with no device registered for push.
    pub without_device: u64,
    pub sent: u64,
    pub failed: u64,
    /// Handed to the push service by a server process that stopped before it learnt the
    /// outcome: never sent again (each device at most once), counted here.
    pub unknown: u64,
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

/// A published version of the rule set (challenges and earning rules), kept.
#[cfg(feature = "server")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleVersion {
    pub version: i64,
    pub published_at: String,
    /// `operator` (the admin API) or the staff member's e-mail address (the console).
    pub published_by: String,
    pub note: String,
}

/// A rule set to try on a member's history before publishing it.
#[cfg(feature = "server")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleDryRunRequest {
    pub member_id: String,
    pub rules: crate::rules::RuleSet,
}
