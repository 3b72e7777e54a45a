//! The rule set's checks: every id, window, goal and filter of a set an operator uploads, before
//! anything is evaluated with it.

use std::collections::BTreeSet;

use super::*;
use crate::catalog::{CatalogError, check_id, parse_instant};

impl Filter {
    pub(super) fn validate(&self) -> Result<(), CatalogError> {
        for (field, ids) in [
            ("filter.skus", &self.skus),
            ("filter.categories", &self.categories),
            ("filter.collections", &self.collections),
            ("filter.stores", &self.stores),
        ] {
            for id in ids {
                check_id(field, id)?;
            }
        }
        if let Some(min) = self.min_amount_cents {
            crate::catalog::check_cents("filter.min_amount_cents", min)?;
        }
        Ok(())
    }
}

impl Goal {
    pub(super) fn validate(&self, depth: u32) -> Result<(), CatalogError> {
        if depth > MAX_DEPTH {
            return Err(CatalogError::new("goal", "all_of nested more than 4 deep"));
        }
        let positive = |n: u64| {
            if n == 0 {
                Err(CatalogError::new("goal.target", "must be at least 1"))
            } else {
                Ok(())
            }
        };
        match self {
            Goal::Count { filter, target }
            | Goal::Distinct { filter, target, .. }
            | Goal::Streak { filter, target, .. } => {
                filter.validate()?;
                positive(u64::from(*target))
            }
            Goal::Sum { filter, target, .. } => {
                filter.validate()?;
                positive(*target)
            }
            Goal::AllOf { goals } => {
                if goals.is_empty() || goals.len() > 16 {
                    return Err(CatalogError::new("goal.goals", "1 to 16 goals"));
                }
                goals.iter().try_for_each(|g| g.validate(depth + 1))
            }
        }
    }

    pub(super) fn streaks(&self) -> Vec<(Period, u32)> {
        match self {
            Goal::Streak { period, target, .. } => vec![(*period, *target)],
            Goal::AllOf { goals } => goals.iter().flat_map(Goal::streaks).collect(),
            _ => Vec::new(),
        }
    }
}

impl RuleSet {
    /// Whether some challenge counts events of `kind`: an event no challenge counts cannot
    /// complete anything, and its evaluation can be skipped.
    pub fn counts(&self, kind: RuleEventKind) -> bool {
        fn goal_counts(g: &Goal, kind: RuleEventKind) -> bool {
            match g {
                Goal::Count { filter, .. }
                | Goal::Distinct { filter, .. }
                | Goal::Sum { filter, .. }
                | Goal::Streak { filter, .. } => {
                    filter.kinds.is_empty() || filter.kinds.contains(&kind)
                }
                Goal::AllOf { goals } => goals.iter().any(|g| goal_counts(g, kind)),
            }
        }
        self.challenges.iter().any(|c| goal_counts(&c.goal, kind))
    }

    /// Every rule obeys the format and can be completed.
    pub fn validate(&self) -> Result<(), RulesError> {
        if self.version != RULES_VERSION {
            return Err(RulesError::UnsupportedVersion {
                found: self.version,
                supported: RULES_VERSION,
            });
        }
        if self.challenges.len() > MAX_CHALLENGES {
            return Err(invalid(CatalogError::new(
                "challenges",
                "at most 500 challenges",
            )));
        }
        if let Some(e) = &self.earning {
            e.validate().map_err(invalid)?;
        }
        let mut ids = BTreeSet::new();
        for c in &self.challenges {
            check_id("challenge.id", &c.id).map_err(invalid)?;
            if !ids.insert(&c.id) {
                return Err(invalid(CatalogError::new(
                    "challenge.id",
                    format!("{} appears twice", c.id),
                )));
            }
            if c.title.trim().is_empty() || c.title.chars().count() > 120 {
                return Err(invalid(CatalogError::new(
                    "challenge.title",
                    "1 to 120 characters",
                )));
            }
            c.goal.validate(0).map_err(invalid)?;
            let unsatisfiable = |reason: String| RulesError::Unsatisfiable {
                challenge_id: c.id.clone(),
                reason,
            };
            match &c.window {
                Window::RollingDays { days } if !(1..=3650).contains(days) => {
                    return Err(invalid(CatalogError::new("window.days", "1 to 3650 days")));
                }
                Window::Fixed { from, to } => {
                    let f = parse_instant("window.from", from).map_err(invalid)?;
                    let t = parse_instant("window.to", to).map_err(invalid)?;
                    if t <= f {
                        return Err(unsatisfiable("the window ends before it starts".into()));
                    }
                }
                _ => {}
            }
            for (period, target) in c.goal.streaks() {
                let most = periods_in(&c.window, period).unwrap_or(0);
                if u64::from(target) > most {
                    return Err(unsatisfiable(format!(
                        "a streak of {target} {period:?} periods in a window that spans {most}"
                    )));
                }
            }
            if let RuleReward::Coupon { offer_id } = &c.reward {
                check_id("reward.offer_id", offer_id).map_err(invalid)?;
            }
            if let Repeat::PerWindow { max_total: Some(0) } = c.repeat {
                return Err(unsatisfiable("repeat.max_total is 0".into()));
            }
            if matches!(c.repeat, Repeat::PerWindow { .. })
                && matches!(c.window, Window::Fixed { .. })
            {
                return Err(invalid(CatalogError::new(
                    "repeat",
                    "a fixed window has one period: use once",
                )));
            }
        }
        Ok(())
    }
}
