//! What a member or an operator does with points: buy a reward, a correction; and the view
//! `GET /v1/me` shows.

use crate::storage::Refusal;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_domain::api::{PointsEntry, PointsExpiry, PointsKind, PointsView, Problem, codes};
use tessera_domain::loyalty::{TierProgress, plan_burn};

use super::*;
use crate::storage::sqlite::coupons::{Origin, issue};
use crate::storage::{StorageError, touch_member};
use tessera_domain::eligibility::OfferTerms;
use tessera_domain::rfc3339_ms as rfc3339;

/// Spend points on a reward: its coupon into the wallet, or `insufficient_points`.
pub(crate) fn buy_reward(
    tx: &Transaction<'_>,
    member_id: &str,
    offer_id: &str,
    now_ms: i64,
) -> Result<Result<(), Problem>, StorageError> {
    let offer = crate::storage::sqlite::coupons::offer(tx, offer_id)?;
    let Some((offer, cost)) = offer.and_then(|o| o.points_cost.map(|c| (o, c))) else {
        return Ok(Err(problem(
            422,
            codes::UNKNOWN_OFFER,
            "This reward cannot be bought",
            "no such reward",
        )));
    };
    let terms = OfferTerms::of(&offer).map_err(|e| StorageError::Backend(e.to_string()))?;
    let member = crate::storage::sqlite::coupons::MemberFacts::read(tx, member_id, &offer)?;
    if let Err(refusal) =
        tessera_domain::eligibility::check_purchase(&terms.terms(), &member.holder(), now_ms)
    {
        return Ok(Err(Problem::offer_refused(&refusal)));
    }
    let rules = rules(tx)?;
    settle(tx, member_id, &rules, now_ms)?;
    let plan = match plan_burn(
        &lots(tx, member_id, now_ms, u64::from(cost))?,
        u64::from(cost),
        now_ms,
    ) {
        Ok(plan) => plan,
        Err(e) => {
            return Ok(Err(problem(
                422,
                codes::INSUFFICIENT_POINTS,
                "Not enough points",
                e.to_string(),
            )));
        }
    };
    debit(
        tx,
        member_id,
        PointsKind::Burn,
        &plan,
        0,
        &format!("reward {offer_id}"),
        now_ms,
    )?;
    issue(tx, member_id, &offer, Origin::Reward, now_ms)?;
    settle(tx, member_id, &rules, now_ms)?;
    Ok(Ok(()))
}

/// An operator's correction: a positive one is a new lot (not counted towards tiers); a
/// negative one is refused beyond the balance.
pub(crate) fn adjust(
    tx: &Transaction<'_>,
    member_id: &str,
    points: i64,
    reason: &str,
    now_ms: i64,
) -> Result<Result<u64, Refusal>, StorageError> {
    let rules = rules(tx)?;
    settle(tx, member_id, &rules, now_ms)?;
    if points > 0 {
        credit(
            tx,
            member_id,
            PointsKind::Adjust,
            to_u64(points),
            false,
            reason,
            &rules,
            now_ms,
        )?;
    } else {
        match plan_burn(
            &lots(tx, member_id, now_ms, points.unsigned_abs())?,
            points.unsigned_abs(),
            now_ms,
        ) {
            Ok(plan) => {
                debit(tx, member_id, PointsKind::Adjust, &plan, 0, reason, now_ms)?;
            }
            Err(e) => return Ok(Err(Refusal::Points(e))),
        }
    }
    settle(tx, member_id, &rules, now_ms)?;
    touch_member(tx, member_id)?;
    Ok(Ok(member_balance(tx, member_id)?))
}

/// What `GET /v1/me` shows at `now_ms`, read-only: lots that lapsed since the last write are
/// left out of the balance and the tier is reviewed as it would be now.
pub(crate) fn view(
    c: &Connection,
    member_id: &str,
    now_ms: i64,
) -> Result<(PointsView, Option<TierProgress>), StorageError> {
    let rules = rules(c)?;
    // The stored balance, less what lapsed since the member was last settled.
    let (stored, lapsed): (i64, i64) = c
        .prepare_cached(
            "SELECT points_balance, (SELECT coalesce(sum(remaining), 0) FROM points_entry
               WHERE member_id = ?1 AND remaining > 0 AND expires_at <= ?2)
             FROM member WHERE id = ?1",
        )?
        .query_row(params![member_id, now_ms], |r| r.try_into())
        .optional()?
        .ok_or(StorageError::NotFound)?;
    let first: Option<i64> = c
        .prepare_cached(
            "SELECT min(expires_at) FROM points_entry
             WHERE member_id = ?1 AND remaining > 0 AND expires_at > ?2",
        )?
        .query_row(params![member_id, now_ms], |r| r.get(0))?;
    // Lots lapse one by one, but a member reads "45 points expire on 24 November": everything
    // lapsing on the first lapse's (UTC) day.
    let next_expiry = match first {
        None => None,
        Some(first) => {
            let day_end = (first.div_euclid(DAY_MS) + 1) * DAY_MS;
            let points: i64 = c
                .prepare_cached(
                    "SELECT coalesce(sum(remaining), 0) FROM points_entry
                     WHERE member_id = ?1 AND remaining > 0 AND expires_at >= ?2 AND expires_at < ?3",
                )?
                .query_row(params![member_id, first, day_end], |r| r.get(0))?;
            Some(PointsExpiry {
                points: to_u64(points),
                expires_at: rfc3339(first),
            })
        }
    };
    let mut stmt = c.prepare_cached(
        "SELECT kind, points, reason, created_at FROM points_entry WHERE member_id = ?1
         ORDER BY created_at DESC, id DESC LIMIT ?2",
    )?;
    let ledger = stmt
        .query_map(params![member_id, tessera_domain::api::LEDGER_SHOWN], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .map(|row| {
            let (kind, points, reason, at) = row?;
            Ok(PointsEntry {
                kind: PointsKind::parse(&kind)
                    .ok_or_else(|| backend(format!("points kind {kind}")))?,
                points,
                reason,
                at: rfc3339(at),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let progress = match tier_state(c, member_id, &rules)? {
        Some(state) => {
            let q = qualifying(c, member_id, &rules, now_ms)?;
            Some(rules.progress(rules.review(state, q, now_ms), q))
        }
        None => None,
    };
    Ok((
        PointsView {
            balance: to_u64(stored - lapsed),
            next_expiry,
            ledger,
        },
        progress,
    ))
}
