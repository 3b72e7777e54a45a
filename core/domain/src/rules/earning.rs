//! Earning rules: the points a purchase earns (per euro, bonuses by category, SKU, shop or
//! channel).

use serde::{Deserialize, Serialize};

use super::*;
use crate::catalog::CatalogError;
use crate::intern::Interner;

/// How a purchase earns points: per whole euro, more on some products (bonus categories), more
/// on the member's birthday, times the tier's multiplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EarningRules {
    pub points_per_euro: u32,
    /// Extra points on the lines each filter matches (the first matching bonus per line).
    #[serde(default)]
    pub bonuses: Vec<EarningBonus>,
    /// On the member's birthday (in their time zone), earning is multiplied by this (percent:
    /// 200 doubles it).
    #[serde(default)]
    pub birthday_multiplier_percent: Option<u32>,
}

/// "Double points on tea": `extra_percent` 100 on the lines `filter` matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EarningBonus {
    pub filter: Filter,
    pub extra_percent: u32,
}

impl EarningRules {
    /// Plain points per euro: what the loyalty rules alone say.
    pub fn per_euro(points_per_euro: u32) -> EarningRules {
        EarningRules {
            points_per_euro,
            bonuses: Vec::new(),
            birthday_multiplier_percent: None,
        }
    }

    pub(super) fn validate(&self) -> Result<(), CatalogError> {
        if self.points_per_euro > 10_000 {
            return Err(CatalogError::new(
                "earning.points_per_euro",
                "at most 10,000",
            ));
        }
        if self.bonuses.len() > 50 {
            return Err(CatalogError::new("earning.bonuses", "at most 50"));
        }
        for b in &self.bonuses {
            b.filter.validate()?;
            if b.extra_percent == 0 || b.extra_percent > 10_000 {
                return Err(CatalogError::new(
                    "earning.bonuses.extra_percent",
                    "1 to 10,000",
                ));
            }
        }
        if self
            .birthday_multiplier_percent
            .is_some_and(|m| !(100..=1000).contains(&m))
        {
            return Err(CatalogError::new(
                "earning.birthday_multiplier_percent",
                "100 to 1,000",
            ));
        }
        Ok(())
    }

    /// The sum over `purchase`'s lines of their cents times their percent (100 plus the first
    /// matching bonus).
    pub(super) fn weighted_lines(&self, purchase: &RuleEvent) -> u128 {
        if purchase.lines.is_empty() {
            return 0;
        }
        let mut ids = Interner::default();
        let mut events = Events::default();
        let index = events.push(
            purchase,
            Local::at(purchase.at_ms, 0),
            &mut ids,
            Needs::all(),
        );
        let event = events.list[index];
        let bonuses: Vec<(CFilter, u32)> = self
            .bonuses
            .iter()
            .map(|b| (CFilter::new(&b.filter, &mut ids), b.extra_percent))
            .collect();
        events
            .lines_of(&event)
            .iter()
            .map(|l| {
                let extra = bonuses
                    .iter()
                    .find(|(f, _)| f.matches(&event, std::slice::from_ref(l)))
                    .map_or(0, |(_, e)| *e);
                u128::from(l.amount_cents) * (100 + u128::from(extra))
            })
            .sum()
    }

    /// The points `purchase` earns at a tier whose multiplier is `tier_percent`, `birthday` if
    /// it is the member's birthday. Line amounts weighted by their bonus are scaled to what
    /// was paid (discounts spread over the lines), counted in whole euros, then multiplied.
    pub fn points(&self, purchase: &RuleEvent, tier_percent: u32, birthday: bool) -> u64 {
        let paid = u128::from(purchase.amount_cents);
        let lines: u128 = purchase
            .lines
            .iter()
            .map(|l| u128::from(l.amount_cents))
            .sum();
        // Each line's cents times its percent (100 without a bonus), scaled to what was paid;
        // without lines (or lines worth nothing) the total at 100 %.
        let weighted = self
            .weighted_lines(purchase)
            .saturating_mul(paid)
            .checked_div(lines)
            .unwrap_or(paid * 100);
        let euros = weighted / 10_000;
        let birthday = if birthday {
            self.birthday_multiplier_percent.unwrap_or(100)
        } else {
            100
        };
        let points = euros
            * u128::from(self.points_per_euro)
            * u128::from(tier_percent)
            * u128::from(birthday)
            / 10_000;
        u64::try_from(points).unwrap_or(u64::MAX)
    }
}
