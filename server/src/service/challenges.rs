//! Challenges on the server, which is authoritative: the member's history (activity events,
//! till purchases, events the programme's systems report), evaluated by the domain's engine (the
//! phone runs the same code), and rewards paid once each.

use std::collections::BTreeMap;

use tessera_domain::loyalty::{LoyaltyRules, month_day};
use tessera_domain::rfc3339_ms as rfc3339;
use tessera_domain::rules::{
    Badge, ChallengeJoin, ChallengeProgress, EarningRules, RuleEvent, RuleEventKind, RuleReward,
    evaluate,
};

use super::coupons::{issue, live_offer};
use super::{ledger, privacy};
use crate::storage::repo::{Origin, RepoResult, RewardPaid};
use crate::storage::{Ingested, Refusal, Repo};

/// What the rules count for the member, oldest first: activity events, purchases not voided
/// (each also a visit, one per shop and day in `time_zone`, the member's), reported events.
pub(crate) fn history(
    repo: &mut dyn Repo,
    member_id: &str,
    time_zone: &str,
) -> RepoResult<Vec<RuleEvent>> {
    let mut events: Vec<RuleEvent> = repo
        .activity(member_id)?
        .iter()
        .flat_map(RuleEvent::of_activity)
        .collect();
    let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    for p in repo.member_purchases(member_id)? {
        events.push(RuleEvent::of_purchase(
            &p.id,
            &p.store_id,
            &p.lines,
            p.total_cents,
            p.occurred_ms,
        ));
        events.extend(RuleEvent::visit_at_till(&p.store_id, p.occurred_ms, &tz));
    }
    events.extend(repo.reported_events(member_id)?);
    events.sort_by(|a, b| (a.at_ms, &a.event_id).cmp(&(b.at_ms, &b.event_id)));
    // Each id once, the earliest (several purchases in a shop on one day are one visit).
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.event_id.clone()));
    Ok(events)
}

/// How purchases earn points: the rule set's earning rules, else the loyalty rules' points per
/// euro.
pub(crate) fn earning(repo: &mut dyn Repo, loyalty: &LoyaltyRules) -> RepoResult<EarningRules> {
    Ok(repo
        .rule_set()?
        .and_then(|r| r.earning)
        .unwrap_or_else(|| EarningRules::per_euro(loyalty.points_per_euro)))
}

/// Whether `at_ms` is the member's birthday in their time zone (29 February: the 28th in
/// other years).
pub(crate) fn is_birthday(repo: &mut dyn Repo, member_id: &str, at_ms: i64) -> RepoResult<bool> {
    let birthday = repo.member(member_id)?.and_then(|m| m.birthday);
    let Some((month, day)) = birthday.as_deref().and_then(month_day) else {
        return Ok(false);
    };
    let tz = privacy::preferences(repo, member_id)?.timezone;
    let Ok(zone) = jiff::tz::TimeZone::get(&tz) else {
        return Ok(false);
    };
    let Ok(at) = jiff::Timestamp::from_millisecond(at_ms) else {
        return Ok(false);
    };
    let date = at.to_zoned_datetime(zone).date();
    let day = if (month, day) == (2, 29) && !date.in_leap_year() {
        28
    } else {
        day
    };
    Ok(date.month() == month && date.day() == day)
}

/// Everything `GET /v1/me` shows about challenges at `now_ms`.
pub(crate) struct View {
    pub rule_events: Vec<RuleEvent>,
    pub joined: Vec<ChallengeJoin>,
    pub challenges: Vec<ChallengeProgress>,
    pub as_of: Option<String>,
    pub badges: Vec<Badge>,
}

/// The member's challenges in `time_zone` (theirs), read-only (rewards are paid when events
/// arrive, not when read).
pub(crate) fn view(
    repo: &mut dyn Repo,
    member_id: &str,
    time_zone: &str,
    now_ms: i64,
) -> RepoResult<View> {
    let rule_events = history(repo, member_id, time_zone)?;
    let joined = repo.joined(member_id)?;
    let (challenges, as_of) = match repo.rule_set()? {
        Some(rules) => match evaluate(&rules, time_zone, joins(&joined), &rule_events, now_ms) {
            Ok(e) => (e.progress, Some(rfc3339(now_ms))),
            Err(e) => {
                tracing::warn!(member = %member_id, error = %e, "challenges not evaluated");
                (Vec::new(), None)
            }
        },
        None => (Vec::new(), None),
    };
    Ok(View {
        rule_events,
        joined,
        challenges,
        as_of,
        badges: repo.badges(member_id)?,
    })
}

fn joins(joined: &[ChallengeJoin]) -> BTreeMap<String, i64> {
    joined
        .iter()
        .map(|j| (j.challenge_id.clone(), j.joined_at_ms))
        .collect()
}

/// Evaluate the member's history and pay what is newly due: the n-th completion of a challenge
/// is paid once, whatever arrives later (a late offline event may move a completion earlier; a
/// void does not take a paid reward back). `new`: the kinds of the events that just arrived
/// (none for a join); when no challenge counts any of them nothing can have completed and the
/// history is not read. Returns how many rewards were paid.
pub(crate) fn settle(
    repo: &mut dyn Repo,
    member_id: &str,
    new: &[RuleEventKind],
    now_ms: i64,
) -> RepoResult<u32> {
    let Some(rules) = repo.rule_set()? else {
        return Ok(0);
    };
    if !new.is_empty() && !new.iter().any(|k| rules.counts(*k)) {
        return Ok(0);
    }
    let tz = privacy::preferences(repo, member_id)?.timezone;
    let history = history(repo, member_id, &tz)?;
    let joined = joins(&repo.joined(member_id)?);
    let evaluation = match evaluate(&rules, &tz, joined, &history, now_ms) {
        Ok(e) => e,
        Err(e) => {
            // Every input was checked on the way in: this is a bug, not the member's doing.
            tracing::error!(member = %member_id, error = %e, "challenges not evaluated");
            return Ok(0);
        }
    };
    let paid = repo.paid(member_id)?;
    let titles: BTreeMap<&str, &str> = rules
        .challenges
        .iter()
        .map(|c| (c.id.as_str(), c.title.as_str()))
        .collect();
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    let mut count = 0;
    for c in &evaluation.completions {
        let n = seen.entry(&c.challenge_id).or_insert(0);
        *n += 1;
        if *n <= paid.get(&c.challenge_id).copied().unwrap_or(0) {
            continue;
        }
        let title = titles.get(c.challenge_id.as_str()).copied().unwrap_or("");
        let reason = format!("challenge {}", c.challenge_id);
        match &c.reward {
            RuleReward::Points { points } => {
                ledger::bonus(repo, member_id, *points, false, &reason, now_ms)?
            }
            RuleReward::TierBonus { points } => {
                ledger::bonus(repo, member_id, *points, true, &reason, now_ms)?
            }
            RuleReward::Coupon { offer_id } => match live_offer(repo, offer_id, now_ms)? {
                Some(offer) => {
                    issue(repo, member_id, &offer, Origin::Challenge, now_ms)?;
                }
                None => tracing::warn!(offer = %offer_id, challenge = %c.challenge_id,
                    "the challenge's coupon offer is gone: nothing issued"),
            },
            RuleReward::Badge => {}
        }
        repo.record_reward(&RewardPaid {
            member_id,
            challenge_id: &c.challenge_id,
            seq: *n,
            event_id: &c.event_id,
            completed_ms: c.at_ms,
            title,
            reward: &c.reward,
            badge: c.badge.as_deref(),
            paid_ms: now_ms,
        })?;
        count += 1;
    }
    if count > 0 {
        repo.touch_member(member_id)?;
    }
    Ok(count)
}

/// Join an opt-in challenge (again: no change).
pub(crate) fn join(
    repo: &mut dyn Repo,
    member_id: &str,
    challenge_id: &str,
    at_ms: i64,
) -> RepoResult<Result<(), Refusal>> {
    let known = repo
        .rule_set()?
        .is_some_and(|r| r.challenges.iter().any(|c| c.id == challenge_id));
    if !known {
        return Ok(Err(Refusal::UnknownChallenge {
            challenge_id: challenge_id.to_owned(),
        }));
    }
    repo.join(member_id, challenge_id, at_ms)?;
    Ok(Ok(()))
}

/// Record events the programme's systems report for a member (idempotent per event id), then
/// evaluate.
pub(crate) fn ingest(
    repo: &mut dyn Repo,
    member_id: &str,
    events: &[RuleEvent],
    now_ms: i64,
) -> RepoResult<Result<Ingested, Refusal>> {
    if let Some(e) = events
        .iter()
        .find(|e| !tessera_domain::api::not_too_far_ahead(e.at_ms, now_ms))
    {
        return Ok(Err(Refusal::EventInFuture {
            event_id: e.event_id.clone(),
        }));
    }
    let mut accepted = 0;
    for e in events {
        accepted += u32::from(repo.insert_reported(member_id, e, now_ms)?);
    }
    if accepted > 0 {
        repo.touch_member(member_id)?;
    }
    let kinds: Vec<RuleEventKind> = events.iter().map(|e| e.kind).collect();
    let rewards_paid = settle(repo, member_id, &kinds, now_ms)?;
    Ok(Ok(Ingested {
        accepted,
        rewards_paid,
    }))
}
