//! Challenges on the server, which is authoritative: the member's history (activity events,
//! till purchases, events the programme's systems report), evaluated by the domain's engine (the
//! phone runs the same code), and rewards paid once each.

use std::collections::BTreeMap;

use tessera_domain::loyalty::{LoyaltyRules, month_day};
use tessera_domain::rfc3339_ms as rfc3339;
use tessera_domain::rules::{
    Badge, ChallengeJoin, ChallengeProgress, Completion, EarningRules, Engine, EngineState,
    RuleEvent, RuleReward, RuleSet, evaluate,
};

use super::coupons::{issue, live_offer};
use super::{ledger, privacy};
use crate::storage::repo::{KeptRules, Origin, RepoResult, RewardPaid};
use crate::storage::{Ingested, Refusal, Repo, StorageError};

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
    let tz = zone(time_zone);
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

/// Count what just arrived for the member (`arrived`: the new events, given the member's time
/// zone; none for a join) and pay what is newly due: the n-th completion of a challenge is paid
/// once, whatever arrives later (a late offline event may move a completion earlier; a void does
/// not take a paid reward back). The member's engine is kept between events (`rule_state`), so
/// an event costs the same whatever the history's length; it is rebuilt from the whole history
/// only when it no longer fits (another rule set, time zone or joins, an event older than the
/// last one counted, a voided purchase). Returns how many rewards were paid.
pub(crate) fn settle(
    repo: &mut dyn Repo,
    member_id: &str,
    arrived: impl FnOnce(&jiff::tz::TimeZone) -> Vec<RuleEvent>,
    now_ms: i64,
) -> RepoResult<u32> {
    let Some((rules_seq, rules)) = repo.versioned_rule_set()? else {
        return Ok(0);
    };
    let time_zone = privacy::preferences(repo, member_id)?.timezone;
    let mut new = arrived(&zone(&time_zone));
    let joined = repo.joined(member_id)?;
    let basis = KeptRules {
        rules_seq,
        joins: joins_key(&joined),
        time_zone,
        state: String::new(),
    };
    let joined = joins(&joined);
    let kept = repo.rule_state(member_id)?.filter(|k| {
        (k.rules_seq, &k.time_zone, &k.joins) == (basis.rules_seq, &basis.time_zone, &basis.joins)
    });
    let counted = new.iter().any(|e| rules.counts(e.kind));
    let found = match kept {
        // Nothing kept and nothing that counts: nothing can have completed.
        None if !counted && !new.is_empty() => return Ok(0),
        None => None,
        Some(kept) => step(
            repo,
            member_id,
            &rules,
            &kept,
            joined.clone(),
            &mut new,
            now_ms,
        )?,
    };
    let found = match found {
        Some(found) => found,
        None => match rebuild(repo, member_id, &rules, basis, joined, now_ms)? {
            Some(found) => found,
            None => return Ok(0),
        },
    };
    pay(repo, member_id, &rules, &found, now_ms)
}

fn zone(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The joins as a `KeptRules` records them.
fn joins_key(joined: &[ChallengeJoin]) -> String {
    joined
        .iter()
        .map(|j| format!("{}@{}", j.challenge_id, j.joined_at_ms))
        .collect::<Vec<_>>()
        .join(",")
}

/// Completions with their number for their challenge (the n-th completion of a challenge).
type Found = Vec<(Completion, u32)>;

/// The new events applied to the kept engine, which is saved again: the completions, or `None`
/// when the engine cannot carry on (an event older than the last one counted, an id the history
/// has at an earlier or equal time, a state that does not restore).
fn step(
    repo: &mut dyn Repo,
    member_id: &str,
    rules: &RuleSet,
    kept: &KeptRules,
    joined: BTreeMap<String, i64>,
    new: &mut [RuleEvent],
    now_ms: i64,
) -> RepoResult<Option<Found>> {
    new.sort_by(|a, b| (a.at_ms, &a.event_id).cmp(&(b.at_ms, &b.event_id)));
    let mut engine: Option<(Engine, Vec<u32>)> = None;
    let mut found = Vec::new();
    for e in new.iter() {
        match repo.note_applied(member_id, &e.event_id, e.at_ms)? {
            // The history has this id already, earlier: it counts there, not here.
            Some(at) if at < e.at_ms => continue,
            // Earlier than the one counted (or as early, from elsewhere): the history changed.
            Some(_) => return Ok(None),
            None => {}
        }
        if !rules.counts(e.kind) {
            continue;
        }
        if engine.is_none() {
            let restored = serde_json::from_str::<EngineState>(&kept.state)
                .map_err(|e| e.to_string())
                .and_then(|state| {
                    Engine::restore(rules, &kept.time_zone, joined.clone(), &state)
                        .map_err(|e| e.to_string())
                });
            match restored {
                Ok(restored) => {
                    let counts = restored.completion_counts();
                    engine = Some((restored, counts));
                }
                Err(error) => {
                    tracing::info!(member = %member_id, %error, "challenges rebuilt from the history");
                    return Ok(None);
                }
            }
        }
        let Some((engine, counts)) = engine.as_mut() else {
            continue;
        };
        if engine
            .last()
            .is_some_and(|(at, id)| (e.at_ms, e.event_id.as_str()) <= (at, id))
        {
            return Ok(None);
        }
        match engine.apply(e, now_ms) {
            Ok(done) => {
                for c in done {
                    let i = rules
                        .challenges
                        .iter()
                        .position(|r| r.id == c.challenge_id)
                        .unwrap_or_default();
                    counts[i] += 1;
                    found.push((c, counts[i]));
                }
            }
            Err(error) => {
                tracing::warn!(member = %member_id, %error, "challenges rebuilt from the history");
                return Ok(None);
            }
        }
    }
    if let Some((engine, _)) = engine {
        let state = serde_json::to_string(&engine.save()).map_err(StorageError::backend)?;
        repo.put_rule_state(
            member_id,
            &KeptRules {
                state,
                ..kept.clone()
            },
        )?;
    }
    Ok(Some(found))
}

/// The member's engine built again from the whole history, kept, with the ids it holds: every
/// completion, or `None` when the history cannot be evaluated (nothing kept).
fn rebuild(
    repo: &mut dyn Repo,
    member_id: &str,
    rules: &RuleSet,
    basis: KeptRules,
    joined: BTreeMap<String, i64>,
    now_ms: i64,
) -> RepoResult<Option<Found>> {
    let history = history(repo, member_id, &basis.time_zone)?;
    let (engine, completions) =
        match Engine::replay(rules, &basis.time_zone, joined, &history, now_ms) {
            Ok(done) => done,
            Err(e) => {
                // Every input was checked on the way in: this is a bug, not the member's doing.
                tracing::error!(member = %member_id, error = %e, "challenges not evaluated");
                repo.forget_rule_state(member_id)?;
                return Ok(None);
            }
        };
    let ids: Vec<(&str, i64)> = history
        .iter()
        .map(|e| (e.event_id.as_str(), e.at_ms))
        .collect();
    repo.reset_applied(member_id, &ids)?;
    let state = serde_json::to_string(&engine.save()).map_err(StorageError::backend)?;
    repo.put_rule_state(member_id, &KeptRules { state, ..basis })?;
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    Ok(Some(
        completions
            .into_iter()
            .map(|c| {
                let n = seen.entry(c.challenge_id.clone()).or_insert(0);
                *n += 1;
                let n = *n;
                (c, n)
            })
            .collect(),
    ))
}

/// Pay the completions not paid yet (by their number for their challenge).
fn pay(
    repo: &mut dyn Repo,
    member_id: &str,
    rules: &RuleSet,
    found: &Found,
    now_ms: i64,
) -> RepoResult<u32> {
    if found.is_empty() {
        return Ok(0);
    }
    let paid = repo.paid(member_id)?;
    let titles: BTreeMap<&str, &str> = rules
        .challenges
        .iter()
        .map(|c| (c.id.as_str(), c.title.as_str()))
        .collect();
    let mut count = 0;
    for (c, n) in found {
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
        let points = match &c.reward {
            RuleReward::Points { points } | RuleReward::TierBonus { points } => *points,
            RuleReward::Coupon { .. } | RuleReward::Badge => 0,
        };
        super::kpis::count(
            repo,
            tessera_domain::api::metric::CHALLENGE_COMPLETIONS,
            None,
            now_ms,
            1,
        )?;
        super::webhooks::emit(
            repo,
            member_id,
            tessera_domain::api::EventData::ChallengeCompleted {
                challenge_id: c.challenge_id.clone(),
                completion: *n,
                points,
                badge: c.badge.clone(),
            },
            now_ms,
        )?;
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
    let again = repo
        .joined(member_id)?
        .iter()
        .any(|j| j.challenge_id == challenge_id);
    repo.join(member_id, challenge_id, at_ms)?;
    if !again {
        super::kpis::count(
            repo,
            tessera_domain::api::metric::CHALLENGE_JOINS,
            None,
            at_ms,
            1,
        )?;
        super::webhooks::emit(
            repo,
            member_id,
            tessera_domain::api::EventData::ChallengeJoined {
                challenge_id: challenge_id.to_owned(),
            },
            at_ms,
        )?;
    }
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
    let mut new = Vec::new();
    for e in events {
        if repo.insert_reported(member_id, e, now_ms)? {
            new.push(e.clone());
        }
    }
    let accepted = new.len() as u32;
    if accepted > 0 {
        repo.touch_member(member_id)?;
    }
    let rewards_paid = settle(repo, member_id, |_| new, now_ms)?;
    Ok(Ok(Ingested {
        accepted,
        rewards_paid,
    }))
}

/// What `candidate` would have given the member over their history, next to the rules in force
/// (`None`: no such member; `Some(Err)`: the rule set does not evaluate). Purchases earn at the
/// member's tier of today; birthdays are the member's.
pub(crate) fn dry_run(
    repo: &mut dyn Repo,
    member_id: &str,
    candidate: &RuleSet,
    now_ms: i64,
) -> RepoResult<Option<Result<tessera_domain::rules::RuleDryRun, tessera_domain::rules::RulesError>>>
{
    if repo.member(member_id)?.is_none() {
        return Ok(None);
    }
    let time_zone = privacy::preferences(repo, member_id)?.timezone;
    let events = history(repo, member_id, &time_zone)?;
    let loyalty = repo.loyalty_rules()?;
    let tier = ledger::tier_state(repo, member_id, &loyalty)?.map_or(0, |t| t.tier);
    let mut birthdays = std::collections::BTreeSet::new();
    for e in events
        .iter()
        .filter(|e| e.kind == tessera_domain::rules::RuleEventKind::Purchase)
    {
        if is_birthday(repo, member_id, e.at_ms)? {
            birthdays.insert(e.event_id.clone());
        }
    }
    let fallback = EarningRules::per_euro(loyalty.points_per_euro);
    let in_force = repo.rule_set()?;
    let input = tessera_domain::rules::DryRunInput {
        member_id,
        time_zone: &time_zone,
        joined: joins(&repo.joined(member_id)?),
        events: &events,
        tier_percent: loyalty.multiplier(tier),
        birthdays: &birthdays,
        fallback: &fallback,
        now_ms,
    };
    Ok(Some(tessera_domain::rules::dry_run(
        in_force.as_ref(),
        candidate,
        &input,
    )))
}
