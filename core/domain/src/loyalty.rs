//! Points and tiers: the programme's rules and the arithmetic both the server (authoritative) and
//! the phone (what it shows offline) run. Pure functions over plain values; no I/O.
//!
//! - Points are earned in **lots** (one per purchase or positive adjustment) that expire after the
//!   programme's validity. Spending takes from the lot that expires first. The balance is the sum
//!   of what is left in unexpired lots, so it can never go negative: a burn larger than the
//!   balance is refused, a reversal takes what is left and reports the rest as unrecovered.
//! - Tiers are reached by **qualifying points** (points earned, before any spending) over a
//!   rolling window. Upgrades are immediate; a tier, once reached, is held at least
//!   `tier_hold_days`, after which a member whose qualifying points no longer reach it drops one
//!   tier (never more than one per review) and is held there again.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_id};

pub use crate::catalog::WEB_STORE;
const DAY_MS: i64 = 86_400_000;

/// The programme's points and tier rules (set by the operator, sent to phones with the member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoyaltyRules {
    /// Points per whole euro spent (before the tier's multiplier).
    pub points_per_euro: u32,
    /// Earned points expire this many days after they were earned; 0: never.
    pub points_validity_days: u32,
    /// Ascending thresholds; the first one's threshold is 0 (everyone has it).
    pub tiers: Vec<TierRule>,
    /// Qualifying points count over this many days back.
    pub tier_window_days: u32,
    /// A tier reached is kept at least this many days before a downgrade.
    pub tier_hold_days: u32,
    /// Redemptions and purchases can be voided this many minutes after they were recorded.
    pub void_window_minutes: u32,
    /// A purchase at or above `min_total_cents` issues a coupon for this (online) offer.
    #[serde(default)]
    pub web_coupon: Option<WebCouponRule>,
}

/// One tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TierRule {
    pub name: String,
    /// Qualifying points needed.
    pub threshold: u64,
    /// Earning multiplier in percent (100: ×1, 150: ×1.5).
    pub multiplier_percent: u32,
}

/// Store-to-web: a purchase in a shop earns a coupon for the website.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebCouponRule {
    pub min_total_cents: u64,
    pub offer_id: String,
}

impl Default for LoyaltyRules {
    /// One point per euro, valid a year; Member (0), Silver (500), Gold (2,000) over 365 days,
    /// held 365 days; voids within 30 minutes.
    fn default() -> Self {
        let tier = |name: &str, threshold, multiplier_percent| TierRule {
            name: name.into(),
            threshold,
            multiplier_percent,
        };
        LoyaltyRules {
            points_per_euro: 1,
            points_validity_days: 365,
            tiers: vec![
                tier("Member", 0, 100),
                tier("Silver", 500, 125),
                tier("Gold", 2000, 150),
            ],
            tier_window_days: 365,
            tier_hold_days: 365,
            void_window_minutes: 30,
            web_coupon: None,
        }
    }
}

impl LoyaltyRules {
    pub fn validate(&self) -> Result<(), CatalogError> {
        let e = CatalogError::new;
        if self.points_per_euro > 10_000 {
            return Err(e("points_per_euro", "at most 10000"));
        }
        if self.tiers.is_empty() || self.tiers.len() > 20 {
            return Err(e("tiers", "1 to 20 tiers"));
        }
        if self.tiers[0].threshold != 0 {
            return Err(e("tiers", "the first tier's threshold is 0"));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            if t.name.trim().is_empty() || t.name.chars().count() > 40 {
                return Err(e("tiers.name", "1 to 40 characters"));
            }
            if !(1..=1000).contains(&t.multiplier_percent) {
                return Err(e("tiers.multiplier_percent", "1 to 1000"));
            }
            if i > 0 && t.threshold <= self.tiers[i - 1].threshold {
                return Err(e("tiers.threshold", "thresholds must increase"));
            }
            if self.tiers[..i].iter().any(|o| o.name == t.name) {
                return Err(e("tiers.name", "names must be unique"));
            }
        }
        for (field, days) in [
            ("points_validity_days", self.points_validity_days),
            ("tier_window_days", self.tier_window_days),
            ("tier_hold_days", self.tier_hold_days),
        ] {
            if days > 3650 {
                return Err(e(field, "at most 3650 days"));
            }
        }
        if self.tier_window_days == 0 {
            return Err(e("tier_window_days", "at least 1 day"));
        }
        if self.void_window_minutes > 7 * 24 * 60 {
            return Err(e("void_window_minutes", "at most a week"));
        }
        if let Some(w) = &self.web_coupon {
            check_id("web_coupon.offer_id", &w.offer_id)?;
            crate::catalog::check_cents("web_coupon.min_total_cents", w.min_total_cents)?;
        }
        Ok(())
    }

    /// Points a purchase of `total_cents` earns in tier `tier` (an index into `tiers`).
    pub fn points_for(&self, total_cents: u64, tier: usize) -> u64 {
        let purchase = crate::rules::RuleEvent::of_purchase("", "", &[], total_cents, 0);
        crate::rules::EarningRules::per_euro(self.points_per_euro).points(
            &purchase,
            self.multiplier(tier),
            false,
        )
    }

    /// The earning multiplier of tier `tier` (percent; 100 without tiers).
    pub fn multiplier(&self, tier: usize) -> u32 {
        self.tiers.get(tier).map_or(100, |t| t.multiplier_percent)
    }

    /// When points earned at `at_ms` expire; `None`: never.
    pub fn expiry_of(&self, at_ms: i64) -> Option<i64> {
        (self.points_validity_days > 0)
            .then(|| at_ms.saturating_add(i64::from(self.points_validity_days) * DAY_MS))
    }

    /// Where the rolling qualifying window starts for `now_ms`.
    pub fn window_start(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(i64::from(self.tier_window_days) * DAY_MS)
    }

    /// The index of the tier called `name` (0 if the name is not one of the rules').
    pub fn tier_index(&self, name: &str) -> usize {
        self.tiers.iter().position(|t| t.name == name).unwrap_or(0)
    }

    /// The highest tier `qualifying` points reach.
    pub fn reached(&self, qualifying: u64) -> usize {
        self.tiers
            .iter()
            .rposition(|t| t.threshold <= qualifying)
            .unwrap_or(0)
    }

    /// The member's tier after a review at `now_ms`: up at once to what the points reach; down
    /// one tier at most, and only once the current tier has been held `tier_hold_days`.
    pub fn review(&self, current: TierState, qualifying: u64, now_ms: i64) -> TierState {
        let reached = self.reached(qualifying);
        let current_tier = current.tier.min(self.tiers.len().saturating_sub(1));
        if reached > current_tier {
            return TierState {
                tier: reached,
                since_ms: now_ms,
            };
        }
        let held_until = self.held_until(current.since_ms);
        if reached < current_tier && now_ms >= held_until {
            return TierState {
                tier: current_tier - 1,
                since_ms: now_ms,
            };
        }
        TierState {
            tier: current_tier,
            since_ms: current.since_ms,
        }
    }

    fn held_until(&self, since_ms: i64) -> i64 {
        since_ms.saturating_add(i64::from(self.tier_hold_days) * DAY_MS)
    }

    /// What a screen shows about tiers.
    pub fn progress(&self, state: TierState, qualifying: u64) -> TierProgress {
        let tier = state.tier.min(self.tiers.len().saturating_sub(1));
        let next = self.tiers.get(tier + 1);
        let keep_threshold = self.tiers.get(tier).map_or(0, |t| t.threshold);
        TierProgress {
            tier: self
                .tiers
                .get(tier)
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            qualifying_points: qualifying,
            next_tier: next.map(|t| t.name.clone()),
            points_to_next: next.map_or(0, |t| t.threshold.saturating_sub(qualifying)),
            review_at: crate::rfc3339_ms(self.held_until(state.since_ms)),
            points_to_keep: keep_threshold.saturating_sub(qualifying),
        }
    }
}

/// A member's tier (an index into the rules' tiers) and since when it is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierState {
    pub tier: usize,
    pub since_ms: i64,
}

/// Where the member stands and what the next tier needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TierProgress {
    pub tier: String,
    /// Points earned within the rolling window.
    pub qualifying_points: u64,
    /// `None` at the top tier.
    pub next_tier: Option<String>,
    pub points_to_next: u64,
    /// RFC 3339: from then on the tier can drop if `points_to_keep` is not 0.
    pub review_at: String,
    /// Qualifying points still missing to keep the current tier at the review.
    pub points_to_keep: u64,
}

/// What is left of one lot of earned points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lot {
    pub id: i64,
    pub remaining: u64,
    /// `None`: never expires.
    pub expires_at_ms: Option<i64>,
}

impl Lot {
    pub fn live_at(&self, now_ms: i64) -> bool {
        self.remaining > 0 && self.expires_at_ms.is_none_or(|e| e > now_ms)
    }
}

/// Why points cannot be spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum PointsError {
    #[error("{needed} points needed, {balance} available")]
    Insufficient { needed: u64, balance: u64 },
}

/// The balance at `now_ms`: what is left in unexpired lots.
pub fn balance(lots: &[Lot], now_ms: i64) -> u64 {
    lots.iter()
        .filter(|l| l.live_at(now_ms))
        .fold(0u64, |sum, l| sum.saturating_add(l.remaining))
}

/// Which lots a spend of `amount` takes from, soonest expiry first (then oldest): `(lot id,
/// points)`. All or nothing.
pub fn plan_burn(lots: &[Lot], amount: u64, now_ms: i64) -> Result<Vec<(i64, u64)>, PointsError> {
    let have = balance(lots, now_ms);
    if amount > have {
        return Err(PointsError::Insufficient {
            needed: amount,
            balance: have,
        });
    }
    Ok(take(lots, amount, now_ms))
}

/// Take up to `amount` from the live lots, soonest expiry first; what cannot be taken is the
/// caller's shortfall (`amount - sum`).
pub fn take(lots: &[Lot], amount: u64, now_ms: i64) -> Vec<(i64, u64)> {
    let mut live: Vec<&Lot> = lots.iter().filter(|l| l.live_at(now_ms)).collect();
    live.sort_by_key(|l| (l.expires_at_ms.unwrap_or(i64::MAX), l.id));
    let mut left = amount;
    let mut plan = Vec::new();
    for lot in live {
        if left == 0 {
            break;
        }
        let n = lot.remaining.min(left);
        plan.push((lot.id, n));
        left -= n;
    }
    plan
}

/// Points to reverse when `returned_cents` more of a purchase of `total_cents` that earned
/// `earned` points comes back, `already_returned_cents` having come back before: the reversal is
/// proportional and the sum of all reversals never exceeds `earned`.
pub fn reversal_for(
    earned: u64,
    total_cents: u64,
    already_returned_cents: u64,
    returned_cents: u64,
) -> u64 {
    if total_cents == 0 {
        return 0;
    }
    let share = |cents: u64| {
        (u128::from(earned) * u128::from(cents.min(total_cents)) / u128::from(total_cents)) as u64
    };
    share(already_returned_cents.saturating_add(returned_cents)) - share(already_returned_cents)
}

/// A birthday as `MM-DD`: a month and a day that exist in some year (29 February too).
pub fn month_day(s: &str) -> Option<(i8, i8)> {
    let (m, d) = s.split_once('-')?;
    if m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (m, d): (i8, i8) = (m.parse().ok()?, d.parse().ok()?);
    jiff::civil::Date::new(2024, m, d).ok().map(|_| (m, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn default_rules_are_valid_and_bad_ones_are_refused() {
        assert_eq!(LoyaltyRules::default().validate(), Ok(()));
        let mut r = LoyaltyRules::default();
        r.tiers[0].threshold = 10;
        assert_eq!(r.validate().unwrap_err().field, "tiers");
        let mut r = LoyaltyRules::default();
        r.tiers[2].threshold = 500;
        assert_eq!(r.validate().unwrap_err().field, "tiers.threshold");
        let mut r = LoyaltyRules::default();
        r.tiers[2].name = "Silver".into();
        assert_eq!(r.validate().unwrap_err().field, "tiers.name");
        let r = LoyaltyRules {
            tier_window_days: 0,
            ..LoyaltyRules::default()
        };
        assert_eq!(r.validate().unwrap_err().field, "tier_window_days");
        let mut r = LoyaltyRules::default();
        r.tiers.clear();
        assert_eq!(r.validate().unwrap_err().field, "tiers");
    }

    #[test]
    fn points_follow_whole_euros_and_the_tier_multiplier() {
        let r = LoyaltyRules::default();
        assert_eq!(r.points_for(4_599, 0), 45);
        assert_eq!(r.points_for(4_599, 1), 56); // 45 × 1.25 = 56.25
        assert_eq!(r.points_for(4_599, 2), 67); // 45 × 1.5 = 67.5
        assert_eq!(r.points_for(99, 2), 0);
        assert_eq!(r.points_for(u64::MAX, 2), u64::MAX / 100 * 3 / 2);
    }

    #[test]
    fn spending_takes_from_the_lot_expiring_first_and_never_more_than_the_balance() {
        let lots = [
            Lot {
                id: 1,
                remaining: 50,
                expires_at_ms: Some(NOW + 10),
            },
            Lot {
                id: 2,
                remaining: 30,
                expires_at_ms: None,
            },
            Lot {
                id: 3,
                remaining: 40,
                expires_at_ms: Some(NOW + 5),
            },
            Lot {
                id: 4,
                remaining: 100,
                expires_at_ms: Some(NOW - 1),
            },
        ];
        assert_eq!(balance(&lots, NOW), 120);
        assert_eq!(
            plan_burn(&lots, 100, NOW),
            Ok(vec![(3, 40), (1, 50), (2, 10)])
        );
        assert_eq!(
            plan_burn(&lots, 121, NOW),
            Err(PointsError::Insufficient {
                needed: 121,
                balance: 120
            })
        );
        assert_eq!(take(&lots, 500, NOW).iter().map(|t| t.1).sum::<u64>(), 120);
    }

    #[test]
    fn tiers_go_up_at_once_and_down_one_step_after_the_hold() {
        let r = LoyaltyRules::default();
        let day = DAY_MS;
        let start = TierState {
            tier: 0,
            since_ms: NOW,
        };
        let gold = r.review(start, 2500, NOW + day);
        assert_eq!(gold.tier, 2);
        assert_eq!(gold.since_ms, NOW + day);
        // Points fall away, but the hold keeps Gold for a year.
        assert_eq!(r.review(gold, 0, NOW + 200 * day), gold);
        // After the hold: one step down, and a new hold.
        let silver = r.review(gold, 0, NOW + 367 * day);
        assert_eq!(silver.tier, 1);
        assert_eq!(r.review(silver, 0, NOW + 368 * day), silver);
        assert_eq!(r.review(silver, 0, NOW + 733 * day).tier, 0);
        // Still reaching the tier: no change and the same hold.
        assert_eq!(r.review(gold, 2000, NOW + 400 * day), gold);
        let p = r.progress(silver, 300);
        assert_eq!(p.tier, "Silver");
        assert_eq!(p.next_tier.as_deref(), Some("Gold"));
        assert_eq!(p.points_to_next, 1700);
        assert_eq!(p.points_to_keep, 200);
        let top = r.progress(gold, 2500);
        assert_eq!((top.next_tier, top.points_to_next), (None, 0));
    }

    #[test]
    fn reversals_are_proportional_and_never_exceed_what_was_earned() {
        assert_eq!(reversal_for(100, 10_000, 0, 2_500), 25);
        assert_eq!(reversal_for(100, 10_000, 2_500, 2_500), 25);
        assert_eq!(reversal_for(100, 10_000, 5_000, 9_999), 50);
        assert_eq!(reversal_for(7, 3, 1, 1), 2);
        assert_eq!(reversal_for(7, 0, 0, 1), 0);
    }

    proptest! {
        /// Any sequence of earning, spending, expiring and reversing keeps every lot and the
        /// balance at or above zero, and a spend is refused exactly when it exceeds the balance.
        #[test]
        fn the_balance_never_goes_negative(ops in proptest::collection::vec((0u8..4, 0u64..500, 0i64..40), 1..60)) {
            let mut lots: Vec<Lot> = Vec::new();
            let mut now = NOW;
            for (i, (op, n, dt)) in ops.into_iter().enumerate() {
                now += dt * DAY_MS;
                let before = balance(&lots, now);
                match op {
                    0 => lots.push(Lot { id: i as i64, remaining: n, expires_at_ms: Some(now + 30 * DAY_MS) }),
                    1 => match plan_burn(&lots, n, now) {
                        Ok(plan) => {
                            prop_assert!(n <= before);
                            for (id, k) in plan {
                                let lot = lots.iter_mut().find(|l| l.id == id).unwrap();
                                prop_assert!(lot.live_at(now) && k <= lot.remaining);
                                lot.remaining -= k;
                            }
                            prop_assert_eq!(balance(&lots, now), before - n);
                        }
                        Err(PointsError::Insufficient { balance: b, .. }) => {
                            prop_assert!(n > before);
                            prop_assert_eq!(b, before);
                        }
                    },
                    _ => {
                        let plan = take(&lots, n, now);
                        let taken: u64 = plan.iter().map(|p| p.1).sum();
                        prop_assert_eq!(taken, n.min(before));
                        for (id, k) in plan {
                            let lot = lots.iter_mut().find(|l| l.id == id).unwrap();
                            lot.remaining -= k;
                        }
                    }
                }
            }
        }

        /// A review never skips the hold, never drops more than one tier, and always upgrades to
        /// what the points reach.
        #[test]
        fn reviews_follow_the_downgrade_rules(tier in 0usize..3, held in 0i64..800, q in 0u64..3000) {
            let r = LoyaltyRules::default();
            let cur = TierState { tier, since_ms: NOW };
            let now = NOW + held * DAY_MS;
            let next = r.review(cur, q, now);
            let reached = r.reached(q);
            if reached >= tier {
                prop_assert_eq!(next.tier, reached);
            } else if held < 365 {
                prop_assert_eq!(next, cur);
            } else {
                prop_assert_eq!(next.tier, tier - 1);
                prop_assert_eq!(next.since_ms, now);
            }
        }
    }
}
