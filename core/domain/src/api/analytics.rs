//! The programme's analytics (issue #19): RFM scores and classes, named segments, retention, CLV,
//! cohorts and a churn-risk score per member. The types here are the admin API's; the
//! computation is `tessera-analytics` (a server-side crate: the phone library does not carry the
//! model), run by the server's job queue. See docs/analytics.md and docs/adr/0029.

use serde::{Deserialize, Serialize};

/// A member's standing in the RFM grid, from their recency and frequency scores (1–5 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RfmClass {
    /// Recency 4–5 and frequency 4–5.
    Champions,
    /// Recency and frequency 3 or more (not champions).
    Loyal,
    /// Recency 4–5, frequency 1–2: bought lately, not often yet.
    Promising,
    /// Recency 3, frequency 1–2.
    NeedsAttention,
    /// Recency 1–2, frequency 3–5: were good, have not come back.
    AtRisk,
    /// Recency 1–2, frequency 1–2.
    Hibernating,
    /// Never bought (no score).
    NoPurchase,
}

impl RfmClass {
    pub const ALL: [RfmClass; 7] = [
        RfmClass::Champions,
        RfmClass::Loyal,
        RfmClass::Promising,
        RfmClass::NeedsAttention,
        RfmClass::AtRisk,
        RfmClass::Hibernating,
        RfmClass::NoPurchase,
    ];

    /// The class of recency and frequency scores (1–5).
    pub fn of(r: u8, f: u8) -> RfmClass {
        match (r, f) {
            (4.., 4..) => RfmClass::Champions,
            (3.., 3..) => RfmClass::Loyal,
            (4.., _) => RfmClass::Promising,
            (3, _) => RfmClass::NeedsAttention,
            (_, 3..) => RfmClass::AtRisk,
            _ => RfmClass::Hibernating,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RfmClass::Champions => "champions",
            RfmClass::Loyal => "loyal",
            RfmClass::Promising => "promising",
            RfmClass::NeedsAttention => "needs_attention",
            RfmClass::AtRisk => "at_risk",
            RfmClass::Hibernating => "hibernating",
            RfmClass::NoPurchase => "no_purchase",
        }
    }

    pub fn parse(s: &str) -> Option<RfmClass> {
        RfmClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A named segment: the members for whom every condition given holds. A condition on purchases
/// or spend counts the `window_days` before the analysis' day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SegmentRule {
    /// `[a-z0-9_]`, 1–40 characters; what campaigns name.
    pub name: String,
    /// Last purchase fewer than this many days ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_purchase_under_days: Option<u32>,
    /// Bought before, but not for this many days or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_purchase_for_days: Option<u32>,
    /// More than this many purchases in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchases_over: Option<u32>,
    /// More than this much spent in the window, in cents (net of returns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_over_cents: Option<i64>,
    /// A churn risk of at least this many percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_risk_at_least_percent: Option<u8>,
    /// One of these RFM classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rfm_classes: Vec<RfmClass>,
    /// The days counted by `purchases_over` and `spend_over_cents` (182 unless told).
    #[serde(default = "default_window")]
    pub window_days: u32,
}

fn default_window() -> u32 {
    182
}

/// What a segment's rule is applied to: one member's figures on the analysis' day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentFacts {
    /// Days since the last purchase; `None`: never bought.
    pub recency_days: Option<u32>,
    /// Purchases and spend in the rule's window.
    pub purchases: u32,
    pub spend_cents: i64,
    pub churn_risk: Option<f64>,
    pub rfm_class: RfmClass,
}

impl SegmentRule {
    /// Whether a member with these figures is in the segment.
    pub fn holds(&self, m: &SegmentFacts) -> bool {
        self.last_purchase_under_days
            .is_none_or(|d| m.recency_days.is_some_and(|r| r < d))
            && self
                .no_purchase_for_days
                .is_none_or(|d| m.recency_days.is_some_and(|r| r >= d))
            && self.purchases_over.is_none_or(|n| m.purchases > n)
            && self.spend_over_cents.is_none_or(|c| m.spend_cents > c)
            && self
                .churn_risk_at_least_percent
                .is_none_or(|p| m.churn_risk.is_some_and(|r| r * 100.0 >= f64::from(p)))
            && (self.rfm_classes.is_empty() || self.rfm_classes.contains(&m.rfm_class))
    }

    fn has_condition(&self) -> bool {
        self.last_purchase_under_days.is_some()
            || self.no_purchase_for_days.is_some()
            || self.purchases_over.is_some()
            || self.spend_over_cents.is_some()
            || self.churn_risk_at_least_percent.is_some()
            || !self.rfm_classes.is_empty()
    }
}

/// The analysis' settings: named segments, the margin and the reward cost for the margin-aware
/// CLV, the churn horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettings {
    pub segments: Vec<SegmentRule>,
    /// The gross margin on sales, in percent (0–100).
    pub margin_percent: u8,
    /// What a point given costs the programme, in thousandths of a cent (1000: a cent a point).
    pub point_cost_millicents: u32,
    /// A member churns who buys nothing in this many days (30–365).
    pub churn_horizon_days: u32,
    /// The days that RFM's frequency and monetary scores count (30–730).
    pub rfm_window_days: u32,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            segments: vec![
                SegmentRule {
                    name: "vip".into(),
                    last_purchase_under_days: Some(30),
                    no_purchase_for_days: None,
                    purchases_over: Some(3),
                    spend_over_cents: Some(50_000),
                    churn_risk_at_least_percent: None,
                    rfm_classes: vec![],
                    window_days: 182,
                },
                SegmentRule {
                    name: "lapsed".into(),
                    last_purchase_under_days: None,
                    no_purchase_for_days: Some(90),
                    purchases_over: None,
                    spend_over_cents: None,
                    churn_risk_at_least_percent: None,
                    rfm_classes: vec![],
                    window_days: 182,
                },
                SegmentRule {
                    name: "likely_to_churn".into(),
                    last_purchase_under_days: None,
                    no_purchase_for_days: None,
                    purchases_over: None,
                    spend_over_cents: None,
                    churn_risk_at_least_percent: Some(70),
                    rfm_classes: vec![],
                    window_days: 182,
                },
            ],
            margin_percent: 30,
            point_cost_millicents: 1000,
            churn_horizon_days: 90,
            rfm_window_days: 365,
        }
    }
}

/// The most named segments.
pub const MAX_SEGMENTS: usize = 50;

/// Why analytics settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsSettingsError {
    #[error("segment name {0:?}: 1–40 characters of a-z, 0-9 and _")]
    SegmentName(String),
    #[error("segment {0:?} is defined twice")]
    RepeatedSegment(String),
    #[error("segment {0:?} has no condition: it would hold every member")]
    NoCondition(String),
    #[error("segment {0:?}: window_days from 1 to 730")]
    Window(String),
    #[error("segment {0:?}: a churn risk is a percentage (0–100)")]
    Percent(String),
    #[error("at most {MAX_SEGMENTS} segments")]
    TooManySegments,
    #[error("margin_percent: 0–100")]
    Margin,
    #[error("churn_horizon_days: 30–365")]
    Horizon,
    #[error("rfm_window_days: 30–730")]
    RfmWindow,
}

impl AnalyticsSettings {
    /// Whether a campaign may name `segment`: one of these named segments, or `rfm:<class>`.
    pub fn knows_segment(&self, segment: &str) -> bool {
        match segment.strip_prefix("rfm:") {
            Some(class) => RfmClass::parse(class).is_some(),
            None => self.segments.iter().any(|s| s.name == segment),
        }
    }

    pub fn validate(&self) -> Result<(), AnalyticsSettingsError> {
        if self.segments.len() > MAX_SEGMENTS {
            return Err(AnalyticsSettingsError::TooManySegments);
        }
        if self.margin_percent > 100 {
            return Err(AnalyticsSettingsError::Margin);
        }
        if !(30..=365).contains(&self.churn_horizon_days) {
            return Err(AnalyticsSettingsError::Horizon);
        }
        if !(30..=730).contains(&self.rfm_window_days) {
            return Err(AnalyticsSettingsError::RfmWindow);
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.segments {
            let n = &s.name;
            if n.is_empty()
                || n.len() > 40
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(AnalyticsSettingsError::SegmentName(n.clone()));
            }
            if !names.insert(n.as_str()) {
                return Err(AnalyticsSettingsError::RepeatedSegment(n.clone()));
            }
            if !s.has_condition() {
                return Err(AnalyticsSettingsError::NoCondition(n.clone()));
            }
            if !(1..=730).contains(&s.window_days) {
                return Err(AnalyticsSettingsError::Window(n.clone()));
            }
            if s.churn_risk_at_least_percent.is_some_and(|p| p > 100) {
                return Err(AnalyticsSettingsError::Percent(n.clone()));
            }
        }
        Ok(())
    }
}

/// One member's scores on the analysis' day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberScore {
    pub member_id: String,
    /// Days since the last purchase; absent: never bought.
    pub recency_days: Option<u32>,
    /// Purchases and spend (cents, net of returns) in the RFM window.
    pub purchases: u32,
    pub spend_cents: i64,
    /// RFM scores, 1–5 (5 best) among the members who bought; 0: never bought.
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub rfm_class: RfmClass,
    /// The named segments the member is in.
    pub segments: Vec<String>,
    /// The probability of no purchase in the churn horizon (0–1); absent: no purchase in the
    /// year before, or no model (too little history).
    pub churn_risk: Option<f64>,
}

/// Members and spend of an RFM class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RfmClassCount {
    pub class: RfmClass,
    pub members: u64,
    /// Spend in the RFM window, cents.
    pub spend_cents: i64,
}

/// Members of a named segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SegmentCount {
    pub name: String,
    pub members: u64,
}

/// A calendar month's retention: (members active at its end − new ones) / members active at its
/// start, where the active members of a month are those who bought in it, those at its start
/// the ones who bought in the month before, and the new ones those whose first purchase it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionPeriod {
    /// `YYYY-MM`.
    pub month: String,
    pub at_start: u64,
    pub at_end: u64,
    pub new: u64,
    /// Absent when nobody was active at the start.
    pub rate: Option<f64>,
}

/// Customer lifetime value over the year before the analysis' day: average basket × purchases a
/// year per buying member × relationship length (1 / (1 − annual retention), at most 10 years).
/// The margin-aware value takes the margin on the basket and the points it earned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Clv {
    pub average_basket_cents: f64,
    pub purchases_per_year: f64,
    /// Share of the members who bought in the year before last that bought again last year;
    /// absent without a year before last.
    pub annual_retention: Option<f64>,
    pub lifespan_years: f64,
    pub clv_cents: f64,
    pub margin_percent: u8,
    /// The cost of the points an average purchase earned, cents.
    pub reward_cost_per_purchase_cents: f64,
    pub margin_clv_cents: f64,
}

/// The members who enrolled in a month, and the share of them who bought in each month since
/// (index 0: the month of enrolment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CohortRow {
    /// `YYYY-MM`.
    pub month: String,
    pub members: u64,
    pub active: Vec<f64>,
}

/// A feature of the churn model and its weight (on the standardised feature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureWeight {
    pub feature: String,
    pub weight: f64,
}

/// How the churn model was trained and how well it ranks members on a later period it did not
/// see, next to ranking them by recency alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChurnReport {
    pub horizon_days: u32,
    /// Features as of this day, labels from the horizon after it.
    pub trained_on: String,
    /// The held-out period: features as of this day, labels from the horizon after it.
    pub tested_on: String,
    pub training_members: u64,
    pub test_members: u64,
    /// Share of the test members who churned.
    pub test_churn_rate: f64,
    /// Area under the ROC curve on the held-out period.
    pub auc: f64,
    /// The same, ranking by days since the last purchase.
    pub recency_auc: f64,
    pub training_ms: u64,
    pub weights: Vec<FeatureWeight>,
}

/// The programme's analytics as of a day (computed by a job, daily and on demand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnalyticsReport {
    /// The analysis counts purchases before this day (`YYYY-MM-DD`).
    pub as_of: String,
    /// When it was computed (RFC 3339).
    pub computed_at: String,
    pub settings: AnalyticsSettings,
    pub members: u64,
    /// Members who ever bought.
    pub buyers: u64,
    /// Members who bought in the last 30 and 90 days.
    pub active_30: u64,
    pub active_90: u64,
    /// Members' purchases in the last 30 and 90 days: over the active members, their visit
    /// frequency.
    #[serde(default)]
    pub visits_30: u64,
    #[serde(default)]
    pub visits_90: u64,
    pub rfm: Vec<RfmClassCount>,
    pub segments: Vec<SegmentCount>,
    /// The twelve calendar months before the one of `as_of`.
    pub retention: Vec<RetentionPeriod>,
    pub clv: Clv,
    /// Members by month of enrolment, the twelve months before the one of `as_of`.
    pub cohorts: Vec<CohortRow>,
    /// Absent when the history is too short or one-sided to train on (`churn_note` says why).
    pub churn: Option<ChurnReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_note: Option<String>,
}

/// A run of the analysis: its name and where it is (`queued`, `running`, `done`, `failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnalyticsRun {
    pub run: String,
    pub state: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfm_grid() {
        assert_eq!(RfmClass::of(5, 5), RfmClass::Champions);
        assert_eq!(RfmClass::of(4, 4), RfmClass::Champions);
        assert_eq!(RfmClass::of(3, 5), RfmClass::Loyal);
        assert_eq!(RfmClass::of(5, 3), RfmClass::Loyal);
        assert_eq!(RfmClass::of(5, 2), RfmClass::Promising);
        assert_eq!(RfmClass::of(3, 1), RfmClass::NeedsAttention);
        assert_eq!(RfmClass::of(2, 5), RfmClass::AtRisk);
        assert_eq!(RfmClass::of(1, 2), RfmClass::Hibernating);
        for c in RfmClass::ALL {
            assert_eq!(RfmClass::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn the_vip_rule_of_the_issue() {
        let vip = &AnalyticsSettings::default().segments[0];
        let m = SegmentFacts {
            recency_days: Some(29),
            purchases: 4,
            spend_cents: 50_001,
            churn_risk: None,
            rfm_class: RfmClass::Champions,
        };
        assert!(vip.holds(&m));
        assert!(!vip.holds(&SegmentFacts {
            recency_days: Some(30),
            ..m
        }));
        assert!(!vip.holds(&SegmentFacts { purchases: 3, ..m }));
        assert!(!vip.holds(&SegmentFacts {
            spend_cents: 50_000,
            ..m
        }));
        assert!(!vip.holds(&SegmentFacts {
            recency_days: None,
            ..m
        }));
    }

    #[test]
    fn campaigns_name_segments_and_classes() {
        let s = AnalyticsSettings::default();
        assert!(s.knows_segment("vip") && s.knows_segment("rfm:at_risk"));
        assert!(!s.knows_segment("VIP") && !s.knows_segment("rfm:vip"));
        assert!(!s.knows_segment("at_risk"));
    }

    #[test]
    fn settings_refused() {
        assert_eq!(AnalyticsSettings::default().validate(), Ok(()));
        let mut s = AnalyticsSettings::default();
        s.segments[1].name = "vip".into();
        assert!(matches!(
            s.validate(),
            Err(AnalyticsSettingsError::RepeatedSegment(_))
        ));
        let mut s = AnalyticsSettings::default();
        s.segments[0].name = "V I P".into();
        assert!(matches!(
            s.validate(),
            Err(AnalyticsSettingsError::SegmentName(_))
        ));
        let mut s = AnalyticsSettings::default();
        s.segments[2].churn_risk_at_least_percent = None;
        assert!(matches!(
            s.validate(),
            Err(AnalyticsSettingsError::NoCondition(_))
        ));
        let s = AnalyticsSettings {
            churn_horizon_days: 7,
            ..AnalyticsSettings::default()
        };
        assert_eq!(s.validate(), Err(AnalyticsSettingsError::Horizon));
        let s = AnalyticsSettings {
            margin_percent: 101,
            ..AnalyticsSettings::default()
        };
        assert_eq!(s.validate(), Err(AnalyticsSettingsError::Margin));
    }
}
