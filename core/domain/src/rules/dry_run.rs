//! What a rule set would have given a member over their history, next to the rules in force:
//! the points each purchase earns and each challenge's completions. The console shows it before
//! a rule set is published (issue #19); the server gathers the member's history and calls this.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{EarningRules, RuleEvent, RuleEventKind, RuleReward, RuleSet, RulesError, evaluate};

/// One purchase of the history under both rule sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunPurchase {
    pub event_id: String,
    pub at: String,
    pub amount_cents: u64,
    pub points_in_force: u64,
    pub points_with_rules: u64,
}

/// One challenge's completions under both rule sets (absent from one of them: 0 there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunChallenge {
    pub challenge_id: String,
    pub title: String,
    pub completions_in_force: u32,
    pub completions_with_rules: u32,
    /// Points its completions would pay under the rule set tried.
    pub reward_points_with_rules: u64,
}

/// A dry run's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleDryRun {
    pub member_id: String,
    /// The history as of this instant.
    pub as_of: String,
    pub purchases: Vec<DryRunPurchase>,
    pub points_in_force: u64,
    pub points_with_rules: u64,
    pub challenges: Vec<DryRunChallenge>,
    /// Points paid by challenge completions under each.
    pub reward_points_in_force: u64,
    pub reward_points_with_rules: u64,
}

/// The member's history as a dry run reads it.
#[derive(Debug, Clone)]
pub struct DryRunInput<'a> {
    pub member_id: &'a str,
    pub time_zone: &'a str,
    pub joined: BTreeMap<String, i64>,
    pub events: &'a [RuleEvent],
    /// The tier multiplier (percent) the member's purchases earn at.
    pub tier_percent: u32,
    /// Whether each purchase event (by id) fell on the member's birthday.
    pub birthdays: &'a BTreeSet<String>,
    /// Earning without earning rules in a rule set: the loyalty rules' points per euro.
    pub fallback: &'a EarningRules,
    pub now_ms: i64,
}

fn reward_points(r: &RuleReward) -> u64 {
    match r {
        RuleReward::Points { points } | RuleReward::TierBonus { points } => *points,
        RuleReward::Badge | RuleReward::Coupon { .. } => 0,
    }
}

/// Compare `candidate` with `in_force` (none: no challenges, the fallback earning) over the
/// member's history.
pub fn dry_run(
    in_force: Option<&RuleSet>,
    candidate: &RuleSet,
    input: &DryRunInput<'_>,
) -> Result<RuleDryRun, RulesError> {
    let earning_now = in_force
        .and_then(|r| r.earning.as_ref())
        .unwrap_or(input.fallback);
    let earning_new = candidate.earning.as_ref().unwrap_or(input.fallback);
    let purchases: Vec<DryRunPurchase> = input
        .events
        .iter()
        .filter(|e| e.kind == RuleEventKind::Purchase)
        .map(|e| {
            let birthday = input.birthdays.contains(&e.event_id);
            DryRunPurchase {
                event_id: e.event_id.clone(),
                at: crate::rfc3339_ms(e.at_ms),
                amount_cents: e.amount_cents,
                points_in_force: earning_now.points(e, input.tier_percent, birthday),
                points_with_rules: earning_new.points(e, input.tier_percent, birthday),
            }
        })
        .collect();

    let completions = |rules: &RuleSet| -> Result<Vec<super::Completion>, RulesError> {
        Ok(evaluate(
            rules,
            input.time_zone,
            input.joined.clone(),
            input.events,
            input.now_ms,
        )?
        .completions)
    };
    let now = match in_force {
        Some(r) => completions(r)?,
        None => vec![],
    };
    let new = completions(candidate)?;
    let mut challenges: BTreeMap<&str, DryRunChallenge> = BTreeMap::new();
    for c in in_force
        .map(|r| r.challenges.as_slice())
        .unwrap_or_default()
        .iter()
        .chain(&candidate.challenges)
    {
        challenges
            .entry(&c.id)
            .or_insert_with(|| DryRunChallenge {
                challenge_id: c.id.clone(),
                title: c.title.clone(),
                completions_in_force: 0,
                completions_with_rules: 0,
                reward_points_with_rules: 0,
            })
            .title = c.title.clone();
    }
    for c in &now {
        if let Some(row) = challenges.get_mut(c.challenge_id.as_str()) {
            row.completions_in_force += 1;
        }
    }
    for c in &new {
        if let Some(row) = challenges.get_mut(c.challenge_id.as_str()) {
            row.completions_with_rules += 1;
            row.reward_points_with_rules += reward_points(&c.reward);
        }
    }
    Ok(RuleDryRun {
        member_id: input.member_id.to_owned(),
        as_of: crate::rfc3339_ms(input.now_ms),
        points_in_force: purchases.iter().map(|p| p.points_in_force).sum(),
        points_with_rules: purchases.iter().map(|p| p.points_with_rules).sum(),
        purchases,
        reward_points_in_force: now.iter().map(|c| reward_points(&c.reward)).sum(),
        reward_points_with_rules: new.iter().map(|c| reward_points(&c.reward)).sum(),
        challenges: challenges.into_values().collect(),
    })
}
