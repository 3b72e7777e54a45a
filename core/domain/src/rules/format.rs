//! The rule set's format: what an operator writes (docs/rules.md) and a screen shows — challenges,
//! goals, filters, rewards, badges, progress — and the events as the engine reads them.

use serde::{Deserialize, Serialize};

use super::*;
use crate::catalog::CatalogError;

/// The programme's challenges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Always [`RULES_VERSION`] for this build; a newer set is refused, not misread.
    pub version: u32,
    pub challenges: Vec<Challenge>,
    /// How purchases earn points; without it, the loyalty rules' points per euro.
    #[serde(default)]
    pub earning: Option<EarningRules>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The badge's art reference (the app's asset name), when completing it earns a badge.
    #[serde(default)]
    pub badge: Option<String>,
    pub window: Window,
    pub goal: Goal,
    pub reward: RuleReward,
    /// Only events after the member joined count.
    #[serde(default)]
    pub opt_in: bool,
    #[serde(default)]
    pub repeat: Repeat,
}

/// When events count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    /// The calendar week (Monday to Sunday) in the member's time zone.
    CalendarWeek,
    /// The calendar month in the member's time zone.
    CalendarMonth,
    /// The last `days` days.
    RollingDays { days: u32 },
    /// From `from` to `to` (RFC 3339).
    Fixed { from: String, to: String },
}

/// A calendar period in the member's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

/// What must happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    /// `target` matching events.
    Count { filter: Filter, target: u32 },
    /// `target` different products, shops or categories among matching events.
    Distinct {
        filter: Filter,
        of: DistinctOf,
        target: u32,
    },
    /// Matching amounts (cents) or quantities adding up to `target`.
    Sum {
        filter: Filter,
        of: SumOf,
        target: u64,
    },
    /// A matching event in each of `target` consecutive periods.
    Streak {
        filter: Filter,
        period: Period,
        target: u32,
    },
    /// Every one of these.
    AllOf {
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        goals: Vec<Goal>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DistinctOf {
    Sku,
    Store,
    Category,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SumOf {
    AmountCents,
    Quantity,
}

/// Which events (and, for purchases, which lines) count. Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub kinds: Vec<RuleEventKind>,
    #[serde(default)]
    pub skus: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub collections: Vec<String>,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub channel: Option<RuleChannel>,
    /// The event's amount at least this (purchases, orders).
    #[serde(default)]
    pub min_amount_cents: Option<u64>,
}

/// What completing a challenge pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleReward {
    Points {
        points: u64,
    },
    /// The challenge's badge alone.
    Badge,
    /// A coupon for this offer (through the redemption path).
    Coupon {
        offer_id: String,
    },
    /// Points that count towards tiers.
    TierBonus {
        points: u64,
    },
}

/// Once, or again in each new window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Repeat {
    #[default]
    Once,
    /// Once per window (per week, per month…); with a rolling window, again after each
    /// completion, counting afresh from the next event. At most `max_total` times in all if set.
    PerWindow {
        #[serde(default)]
        max_total: Option<u32>,
    },
}

/// What a member did, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleEventKind {
    Purchase,
    StoreVisit,
    OnlineOrder,
    ReviewPosted,
    NewsletterSubscribed,
    ProfileCompleted,
    SocialShare,
    ReferralConverted,
    /// Goodwill for a late delivery.
    LateDelivery,
    AppOpened,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleChannel {
    InStore,
    Online,
}

/// One event for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleEvent {
    /// Unique per member: the same id twice counts once.
    pub event_id: String,
    pub kind: RuleEventKind,
    pub at_ms: i64,
    pub store_id: Option<String>,
    pub channel: Option<RuleChannel>,
    pub amount_cents: u64,
    pub lines: Vec<RuleLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleLine {
    pub sku: String,
    pub category: Option<String>,
    pub collection: Option<String>,
    pub quantity: u32,
    pub amount_cents: u64,
}

/// When the member joined an opt-in challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeJoin {
    pub challenge_id: String,
    pub joined_at_ms: i64,
}

/// A badge the member earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Badge {
    /// The badge's art reference (the app's asset name).
    pub badge: String,
    pub challenge_id: String,
    /// The challenge's title when it was earned.
    pub title: String,
    /// RFC 3339: when the completing event happened.
    pub earned_at: String,
}

impl Completion {
    /// The badge it earned, if the challenge has one.
    pub fn badge(&self, title: &str) -> Option<Badge> {
        self.badge.as_ref().map(|b| Badge {
            badge: b.clone(),
            challenge_id: self.challenge_id.clone(),
            title: title.to_owned(),
            earned_at: crate::rfc3339_ms(self.at_ms),
        })
    }
}

/// Why rules or events are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum RulesError {
    /// A rule breaks the format (`field` names it).
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A rule no history can complete.
    #[error("challenge {challenge_id} cannot be completed: {reason}")]
    Unsatisfiable {
        challenge_id: String,
        reason: String,
    },
    #[error("rules version {found} is newer than this build's {supported}")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("unknown time zone {name}")]
    UnknownTimeZone { name: String },
    /// Later than the evaluator's clock allows.
    #[error("event {event_id} is in the future")]
    EventInFuture { event_id: String },
    /// Older than an event already applied: evaluate again from the history.
    #[error("event {event_id} is older than the last one applied")]
    OutOfOrder { event_id: String },
}

pub(super) fn invalid(e: CatalogError) -> RulesError {
    RulesError::Invalid {
        field: e.field.to_owned(),
        reason: e.reason,
    }
}

/// A challenge completed: its reward is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Completion {
    pub challenge_id: String,
    /// The event that completed it.
    pub event_id: String,
    pub at_ms: i64,
    pub reward: RuleReward,
    pub badge: Option<String>,
}

/// Where a challenge stands, for a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeProgress {
    pub challenge_id: String,
    pub title: String,
    pub description: String,
    pub badge: Option<String>,
    pub done: u64,
    pub target: u64,
    /// `target - done`.
    pub left: u64,
    /// When the current window ends (RFC 3339); `None` for rolling windows.
    pub deadline: Option<String>,
    pub reward: RuleReward,
    pub completions: u32,
    /// Completed and cannot be completed again (now or in this window).
    pub completed: bool,
    /// `false` while an opt-in challenge is not joined: nothing counts.
    pub joined: bool,
}
