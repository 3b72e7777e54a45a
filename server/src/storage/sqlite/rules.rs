//! Challenges on the server, which is authoritative: the member's history (activity events,
//! till purchases, events the programme's systems report), evaluated by the core's engine (the
//! phone runs the same code), and rewards paid once each.

use crate::storage::Refusal;
use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_domain::api::{ActivityEvent, EventKind, Problem, PurchaseLine, codes};
use tessera_domain::rules::{
    Badge, ChallengeJoin, ChallengeProgress, EarningRules, RuleEvent, RuleEventKind, RuleReward,
    RuleSet, evaluate,
};

use super::coupons::{Origin, issue, live_offer};
use super::{StorageError, touch_member};
use tessera_domain::rfc3339_ms as rfc3339;

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

/// The programme's rule set, if one was put.
pub(crate) fn rule_set(c: &Connection) -> Result<Option<RuleSet>, StorageError> {
    c.prepare_cached(
        "SELECT data FROM catalog_entity WHERE kind = 'rules' AND id = 'rules' AND data IS NOT NULL",
    )?
    .query_row([], |r| r.get::<_, String>(0))
    .optional()?
    .map(|d| serde_json::from_str(&d).map_err(backend))
    .transpose()
}

/// What the rules count for the member, oldest first: activity events, purchases not voided,
/// reported events.
/// `time_zone`: the member's (a till's visit is one per shop and day there).
pub(crate) fn history(
    c: &Connection,
    member_id: &str,
    time_zone: &str,
) -> Result<Vec<RuleEvent>, StorageError> {
    let mut events = Vec::new();
    let mut stmt = c.prepare_cached(
        "SELECT event_id, kind, occurred_at, store_id, attributes FROM event WHERE member_id = ?1",
    )?;
    let rows = stmt.query_map([member_id], |r| {
        <(String, String, String, Option<String>, String)>::try_from(r)
    })?;
    for row in rows {
        let (event_id, kind, occurred_at, store_id, attributes) = row?;
        let event = ActivityEvent {
            event_id,
            kind: EventKind::parse(&kind)
                .ok_or_else(|| backend(format!("unknown event kind {kind}")))?,
            occurred_at,
            store_id,
            attributes: serde_json::from_str(&attributes).map_err(backend)?,
        };
        events.extend(RuleEvent::of_activity(&event));
    }
    // A purchase with the member's card is also a visit to the shop (one per shop and day).
    let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let mut stmt = c.prepare_cached(
        "SELECT id, store_id, lines, total_cents, occurred_at FROM purchase
         WHERE member_id = ?1 AND voided_at IS NULL",
    )?;
    let rows = stmt.query_map([member_id], |r| {
        <(String, String, String, i64, i64)>::try_from(r)
    })?;
    for row in rows {
        let (id, store_id, lines, total, at) = row?;
        let lines: Vec<PurchaseLine> = serde_json::from_str(&lines).map_err(backend)?;
        events.push(RuleEvent::of_purchase(
            &id,
            &store_id,
            &lines,
            u64::try_from(total).unwrap_or(0),
            at,
        ));
        events.extend(RuleEvent::visit_at_till(&store_id, at, &tz));
    }
    let mut stmt = c.prepare_cached("SELECT data FROM rule_event WHERE member_id = ?1")?;
    for data in stmt.query_map([member_id], |r| r.get::<_, String>(0))? {
        events.push(serde_json::from_str(&data?).map_err(backend)?);
    }
    events.sort_by(|a, b| (a.at_ms, &a.event_id).cmp(&(b.at_ms, &b.event_id)));
    // Each id once, the earliest (several purchases in a shop on one day are one visit).
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.event_id.clone()));
    Ok(events)
}

/// How purchases earn points: the rule set's earning rules, else the loyalty rules' points per
/// euro.
pub(crate) fn earning(
    c: &Connection,
    loyalty: &tessera_domain::loyalty::LoyaltyRules,
) -> Result<EarningRules, StorageError> {
    Ok(rule_set(c)?
        .and_then(|r| r.earning)
        .unwrap_or_else(|| EarningRules::per_euro(loyalty.points_per_euro)))
}

/// Whether `at_ms` is the member's birthday in their time zone (29 February: the 28th in
/// other years).
pub(crate) fn is_birthday(
    c: &Connection,
    member_id: &str,
    at_ms: i64,
) -> Result<bool, StorageError> {
    let birthday: Option<String> = c
        .prepare_cached("SELECT birthday FROM member WHERE id = ?1")?
        .query_row([member_id], |r| r.get(0))
        .optional()?
        .flatten();
    let Some((month, day)) = birthday.as_deref().and_then(month_day) else {
        return Ok(false);
    };
    let tz = super::privacy::preferences(c, member_id)?.timezone;
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

use tessera_domain::loyalty::month_day;

/// Set or clear the member's birthday; `false` for an unknown member.
pub(crate) fn set_birthday(
    tx: &Transaction<'_>,
    member_id: &str,
    birthday: Option<&str>,
) -> Result<bool, StorageError> {
    Ok(tx
        .prepare_cached("UPDATE member SET birthday = ?2 WHERE id = ?1")?
        .execute(params![member_id, birthday])?
        == 1)
}

/// The opt-in challenges the member joined.
pub(crate) fn joined(c: &Connection, member_id: &str) -> Result<Vec<ChallengeJoin>, StorageError> {
    c.prepare_cached(
        "SELECT challenge_id, joined_at FROM challenge_join WHERE member_id = ?1
         ORDER BY joined_at, challenge_id",
    )?
    .query_map([member_id], |r| {
        Ok(ChallengeJoin {
            challenge_id: r.get(0)?,
            joined_at_ms: r.get(1)?,
        })
    })?
    .collect::<Result<_, _>>()
    .map_err(Into::into)
}

/// The badges the member earned, oldest first.
pub(crate) fn badges(c: &Connection, member_id: &str) -> Result<Vec<Badge>, StorageError> {
    c.prepare_cached(
        "SELECT badge, challenge_id, title, completed_at FROM challenge_reward
         WHERE member_id = ?1 AND badge IS NOT NULL ORDER BY completed_at, challenge_id, seq",
    )?
    .query_map([member_id], |r| {
        Ok(Badge {
            badge: r.get(0)?,
            challenge_id: r.get(1)?,
            title: r.get(2)?,
            earned_at: rfc3339(r.get(3)?),
        })
    })?
    .collect::<Result<_, _>>()
    .map_err(Into::into)
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
    c: &Connection,
    member_id: &str,
    time_zone: &str,
    now_ms: i64,
) -> Result<View, StorageError> {
    let rule_events = history(c, member_id, time_zone)?;
    let joined = joined(c, member_id)?;
    let (challenges, as_of) = match rule_set(c)? {
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
        badges: badges(c, member_id)?,
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
    tx: &Transaction<'_>,
    member_id: &str,
    new: &[RuleEventKind],
    now_ms: i64,
) -> Result<u32, StorageError> {
    let Some(rules) = rule_set(tx)? else {
        return Ok(0);
    };
    if !new.is_empty() && !new.iter().any(|k| rules.counts(*k)) {
        return Ok(0);
    }
    let tz = super::privacy::preferences(tx, member_id)?.timezone;
    let history = history(tx, member_id, &tz)?;
    let evaluation = match evaluate(
        &rules,
        &tz,
        joins(&joined(tx, member_id)?),
        &history,
        now_ms,
    ) {
        Ok(e) => e,
        Err(e) => {
            // Every input was checked on the way in: this is a bug, not the member's doing.
            tracing::error!(member = %member_id, error = %e, "challenges not evaluated");
            return Ok(0);
        }
    };
    let paid: BTreeMap<String, u32> = tx
        .prepare_cached(
            "SELECT challenge_id, count(*) FROM challenge_reward WHERE member_id = ?1
             GROUP BY challenge_id",
        )?
        .query_map([member_id], |r| <(String, u32)>::try_from(r))?
        .collect::<Result<_, _>>()?;
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
                super::loyalty::bonus(tx, member_id, *points, false, &reason, now_ms)?
            }
            RuleReward::TierBonus { points } => {
                super::loyalty::bonus(tx, member_id, *points, true, &reason, now_ms)?
            }
            RuleReward::Coupon { offer_id } => match live_offer(tx, offer_id, now_ms)? {
                Some(offer) => {
                    issue(tx, member_id, &offer, Origin::Challenge, now_ms)?;
                }
                None => tracing::warn!(offer = %offer_id, challenge = %c.challenge_id,
                    "the challenge's coupon offer is gone: nothing issued"),
            },
            RuleReward::Badge => {}
        }
        tx.prepare_cached(
            "INSERT INTO challenge_reward (member_id, challenge_id, seq, event_id, completed_at,
               title, reward, badge, paid_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            member_id,
            c.challenge_id,
            *n,
            c.event_id,
            c.at_ms,
            title,
            serde_json::to_string(&c.reward).map_err(backend)?,
            c.badge,
            now_ms
        ])?;
        count += 1;
    }
    if count > 0 {
        touch_member(tx, member_id)?;
    }
    Ok(count)
}

/// Join an opt-in challenge (again: no change).
pub(crate) fn join(
    tx: &Transaction<'_>,
    member_id: &str,
    challenge_id: &str,
    now_ms: i64,
) -> Result<Result<(), Problem>, StorageError> {
    let known = rule_set(tx)?.is_some_and(|r| r.challenges.iter().any(|c| c.id == challenge_id));
    if !known {
        return Ok(Err(Problem::new(
            422,
            codes::UNKNOWN_CHALLENGE,
            "Unknown challenge",
            Some(format!("the programme has no challenge {challenge_id}")),
        )));
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO challenge_join (member_id, challenge_id, joined_at)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![member_id, challenge_id, now_ms])?;
    Ok(Ok(()))
}

use crate::storage::Ingested;

/// Record events the programme's systems report for a member (idempotent per event id), then
/// evaluate.
pub(crate) fn ingest(
    tx: &Transaction<'_>,
    member_id: &str,
    events: &[RuleEvent],
    now_ms: i64,
) -> Result<Result<Ingested, Refusal>, StorageError> {
    for e in events {
        if !tessera_domain::api::not_too_far_ahead(e.at_ms, now_ms) {
            return Ok(Err(Refusal::EventInFuture {
                event_id: e.event_id.clone(),
            }));
        }
    }
    let mut accepted = 0;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO rule_event (member_id, event_id, at_ms, data, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for e in events {
        accepted += insert.execute(params![
            member_id,
            e.event_id,
            e.at_ms,
            serde_json::to_string(e).map_err(backend)?,
            now_ms
        ])? as u32;
    }
    drop(insert);
    if accepted > 0 {
        touch_member(tx, member_id)?;
    }
    let kinds: Vec<RuleEventKind> = events.iter().map(|e| e.kind).collect();
    let rewards_paid = settle(tx, member_id, &kinds, now_ms)?;
    Ok(Ok(Ingested {
        accepted,
        rewards_paid,
    }))
}
