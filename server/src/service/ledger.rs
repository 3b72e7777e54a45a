//! Points and tiers: lots (what was earned, when it lapses, what is left), credits and debits
//! (soonest expiry first, never below zero), reversals, the tier review, a reward bought with
//! points, an operator's correction, and the view `GET /v1/me` shows. The arithmetic is the
//! domain's ([`tessera_domain::loyalty`]); this runs it over the repository in the caller's
//! transaction, so a purchase, its points, its tier review and its coupons commit together.

use tessera_domain::api::{EventData, PointsEntry, PointsExpiry, PointsKind, PointsView};
use tessera_domain::eligibility::OfferTerms;
use tessera_domain::loyalty::{LoyaltyRules, TierProgress, TierState, plan_burn, take};
use tessera_domain::rfc3339_ms as rfc3339;

use super::coupons::{MemberFacts, issue};
use super::{to_i64, to_u64, webhooks};
use crate::storage::repo::{NewEntry, Origin, RepoResult};
use crate::storage::{Refusal, Repo, StorageError};

const DAY_MS: i64 = 86_400_000;

pub(crate) fn tier_state(
    repo: &mut dyn Repo,
    member_id: &str,
    rules: &LoyaltyRules,
) -> RepoResult<Option<TierState>> {
    Ok(repo.member(member_id)?.map(|m| TierState {
        tier: rules.tier_index(&m.tier),
        since_ms: if m.tier_since_ms == 0 {
            m.created_ms
        } else {
            m.tier_since_ms
        },
    }))
}

/// Append a ledger entry and tell the webhooks of it.
fn entry(repo: &mut dyn Repo, e: &NewEntry<'_>) -> RepoResult<i64> {
    let id = repo.append_entry(e)?;
    super::kpis::count(
        repo,
        &format!(
            "{}{}",
            tessera_domain::api::metric::POINTS_PREFIX,
            e.kind.as_str()
        ),
        None,
        e.at_ms,
        e.points,
    )?;
    webhooks::emit(
        repo,
        e.member_id,
        EventData::PointsChanged {
            kind: e.kind,
            points: e.points,
            reason: e.reason.to_owned(),
        },
        e.at_ms,
    )?;
    Ok(id)
}

/// Qualifying points earned in the rolling window: a difference of two running totals, so it
/// costs two lookups however long the member's history.
pub(crate) fn qualifying(
    repo: &mut dyn Repo,
    member_id: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> RepoResult<u64> {
    let all = repo.qualifying_before(member_id, i64::MAX)?;
    let before = repo.qualifying_before(member_id, rules.window_start(now_ms))?;
    Ok(to_u64(all - before))
}

/// Bring the member up to date at `now_ms`: lapse expired lots (one `expire` entry each) and
/// review the tier. Every caller changes the member and bumps its version once at the end.
pub(crate) fn settle(
    repo: &mut dyn Repo,
    member_id: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> RepoResult<()> {
    for lot in repo.lapsed_lots(member_id, now_ms)? {
        repo.spend_lot(lot.id, lot.remaining)?;
        repo.add_balance(member_id, -to_i64(lot.remaining))?;
        entry(
            repo,
            &NewEntry {
                member_id,
                kind: PointsKind::Expire,
                points: -to_i64(lot.remaining),
                qualifying: 0,
                reason: "expired",
                at_ms: lot.expires_at_ms.unwrap_or(now_ms),
                lot: None,
            },
        )?;
    }
    let Some(current) = tier_state(repo, member_id, rules)? else {
        return Err(StorageError::NotFound);
    };
    let reviewed = rules.review(current, qualifying(repo, member_id, rules, now_ms)?, now_ms);
    let name = &rules.tiers[reviewed.tier.min(rules.tiers.len() - 1)].name;
    let before = &rules.tiers[current.tier.min(rules.tiers.len() - 1)].name;
    if name != before {
        webhooks::emit(
            repo,
            member_id,
            EventData::MemberTierChanged {
                from: before.clone(),
                to: name.clone(),
            },
            now_ms,
        )?;
    }
    repo.set_tier(member_id, name, reviewed.since_ms)
}

/// Lapse the expired points of up to `limit` members who have some, and review their tiers, as
/// their next visit would (the background job for members who do not come back): how many
/// members were brought up to date.
pub(crate) fn lapse_due(repo: &mut dyn Repo, now_ms: i64, limit: u32) -> RepoResult<u32> {
    let members = repo.members_with_lapsed_lots(now_ms, limit)?;
    if members.is_empty() {
        return Ok(0);
    }
    let rules = repo.loyalty_rules()?;
    for m in &members {
        settle(repo, m, &rules, now_ms)?;
        repo.touch_member(m)?;
    }
    Ok(members.len() as u32)
}

/// A new lot of `points`, spendable until the rules' validity runs out, counted towards tiers
/// if `qualifying` (earned points and tier bonuses; not an operator's adjustment).
#[allow(clippy::too_many_arguments)]
pub(crate) fn credit(
    repo: &mut dyn Repo,
    member_id: &str,
    kind: PointsKind,
    points: u64,
    qualifying: bool,
    reason: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> RepoResult<()> {
    let n = to_i64(points);
    entry(
        repo,
        &NewEntry {
            member_id,
            kind,
            points: n,
            qualifying: if qualifying { n } else { 0 },
            reason,
            at_ms: now_ms,
            lot: Some((points, rules.expiry_of(now_ms))),
        },
    )?;
    // `member.points_balance` is kept equal to what is left in live lots.
    repo.add_balance(member_id, n)
}

/// Take `plan` out of the lots and write one ledger entry for it.
pub(crate) fn debit(
    repo: &mut dyn Repo,
    member_id: &str,
    kind: PointsKind,
    plan: &[(i64, u64)],
    qualifying: i64,
    reason: &str,
    now_ms: i64,
) -> RepoResult<u64> {
    let mut total = 0u64;
    for &(lot, n) in plan {
        repo.spend_lot(lot, n)?;
        total += n;
    }
    repo.add_balance(member_id, -to_i64(total))?;
    if total > 0 || qualifying != 0 {
        entry(
            repo,
            &NewEntry {
                member_id,
                kind,
                points: -to_i64(total),
                qualifying,
                reason,
                at_ms: now_ms,
                lot: None,
            },
        )?;
    }
    Ok(total)
}

/// Take back up to `points` (a return or a void): what the balance cannot cover is written off
/// and returned as unrecovered. `qualifying` tier points are taken back in full.
pub(crate) fn reverse(
    repo: &mut dyn Repo,
    member_id: &str,
    points: u64,
    reason: &str,
    now_ms: i64,
) -> RepoResult<(u64, u64)> {
    let plan = take(&repo.live_lots(member_id, now_ms, points)?, points, now_ms);
    let taken = debit(
        repo,
        member_id,
        PointsKind::Reverse,
        &plan,
        -to_i64(points),
        reason,
        now_ms,
    )?;
    Ok((taken, points - taken))
}

/// A challenge's reward in points (a tier bonus counts towards tiers, which are reviewed).
pub(crate) fn bonus(
    repo: &mut dyn Repo,
    member_id: &str,
    points: u64,
    towards_tiers: bool,
    reason: &str,
    now_ms: i64,
) -> RepoResult<()> {
    if points == 0 {
        return Ok(());
    }
    let rules = repo.loyalty_rules()?;
    settle(repo, member_id, &rules, now_ms)?;
    credit(
        repo,
        member_id,
        PointsKind::Bonus,
        points,
        towards_tiers,
        reason,
        &rules,
        now_ms,
    )?;
    settle(repo, member_id, &rules, now_ms)
}

/// Spend points on a reward: its coupon into the wallet, or why not.
pub(crate) fn buy_reward(
    repo: &mut dyn Repo,
    member_id: &str,
    offer_id: &str,
    now_ms: i64,
) -> RepoResult<Result<(), Refusal>> {
    let Some((offer, cost)) = repo
        .offer(offer_id)?
        .and_then(|o| o.points_cost.map(|c| (o, c)))
    else {
        return Ok(Err(Refusal::NotAReward));
    };
    let terms = OfferTerms::of(&offer).map_err(StorageError::backend)?;
    let member = MemberFacts::read(repo, member_id, &offer)?;
    if let Err(refusal) =
        tessera_domain::eligibility::check_purchase(&terms.terms(), &member.holder(), now_ms)
    {
        return Ok(Err(Refusal::Offer(refusal)));
    }
    let rules = repo.loyalty_rules()?;
    settle(repo, member_id, &rules, now_ms)?;
    let cost = u64::from(cost);
    let plan = match plan_burn(&repo.live_lots(member_id, now_ms, cost)?, cost, now_ms) {
        Ok(plan) => plan,
        Err(e) => return Ok(Err(Refusal::RewardUnaffordable(e))),
    };
    debit(
        repo,
        member_id,
        PointsKind::Burn,
        &plan,
        0,
        &format!("reward {offer_id}"),
        now_ms,
    )?;
    issue(repo, member_id, &offer, Origin::Reward, now_ms)?;
    settle(repo, member_id, &rules, now_ms)?;
    Ok(Ok(()))
}

/// An operator's correction: a positive one is a new lot (not counted towards tiers); a
/// negative one is refused beyond the balance. The new balance.
pub(crate) fn adjust(
    repo: &mut dyn Repo,
    member_id: &str,
    points: i64,
    reason: &str,
    now_ms: i64,
) -> RepoResult<Result<u64, Refusal>> {
    let rules = repo.loyalty_rules()?;
    settle(repo, member_id, &rules, now_ms)?;
    if points > 0 {
        credit(
            repo,
            member_id,
            PointsKind::Adjust,
            to_u64(points),
            false,
            reason,
            &rules,
            now_ms,
        )?;
    } else {
        let amount = points.unsigned_abs();
        match plan_burn(&repo.live_lots(member_id, now_ms, amount)?, amount, now_ms) {
            Ok(plan) => {
                debit(
                    repo,
                    member_id,
                    PointsKind::Adjust,
                    &plan,
                    0,
                    reason,
                    now_ms,
                )?;
            }
            Err(e) => return Ok(Err(Refusal::Points(e))),
        }
    }
    settle(repo, member_id, &rules, now_ms)?;
    repo.touch_member(member_id)?;
    Ok(Ok(repo.balance(member_id)?))
}

/// What `GET /v1/me` shows at `now_ms`, read-only: lots that lapsed since the last write are
/// left out of the balance and the tier is reviewed as it would be now.
pub(crate) fn view(
    repo: &mut dyn Repo,
    member_id: &str,
    now_ms: i64,
) -> RepoResult<(PointsView, Option<TierProgress>)> {
    let rules = repo.loyalty_rules()?;
    let stored = repo.balance(member_id)?;
    let lapsed: u64 = repo
        .lapsed_lots(member_id, now_ms)?
        .iter()
        .map(|l| l.remaining)
        .sum();
    // Lots lapse one by one, but a member reads "45 points expire on 24 November": everything
    // lapsing on the first lapse's (UTC) day.
    let next_expiry = match repo.next_expiry(member_id, now_ms)? {
        None => None,
        Some(first) => {
            let day_end = (first.div_euclid(DAY_MS) + 1) * DAY_MS;
            Some(PointsExpiry {
                points: repo.expiring(member_id, first, day_end)?,
                expires_at: rfc3339(first),
            })
        }
    };
    let ledger = repo
        .entries(member_id, tessera_domain::api::LEDGER_SHOWN)?
        .into_iter()
        .map(|e| PointsEntry {
            kind: e.kind,
            points: e.points,
            reason: e.reason,
            at: rfc3339(e.at_ms),
        })
        .collect();
    let progress = match tier_state(repo, member_id, &rules)? {
        Some(state) => {
            let q = qualifying(repo, member_id, &rules, now_ms)?;
            Some(rules.progress(rules.review(state, q, now_ms), q))
        }
        None => None,
    };
    Ok((
        PointsView {
            balance: stored.saturating_sub(lapsed),
            next_expiry,
            ledger,
        },
        progress,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::repo::Ledger as _;
    use crate::storage::sqlite::SqliteRepo;
    use rusqlite::Connection;
    use tessera_domain::api::{PurchaseLine, PurchaseReceipt, PurchaseRequest};

    const T0: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::storage::sqlite::MIGRATIONS
            .to_latest(&mut c)
            .unwrap();
        c.execute(
            "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)
             VALUES ('m1', '4006381333931', 'Chloé', '2026-01-01', 'Member', ?1)",
            [T0],
        )
        .unwrap();
        c
    }

    fn buy(c: &mut Connection, receipt: &str, cents: u64, at: i64) -> PurchaseReceipt {
        let tx = c.transaction().unwrap();
        let req = PurchaseRequest {
            receipt: receipt.into(),
            card_number: Some("4006381333931".into()),
            member_code: None,
            lines: vec![PurchaseLine {
                sku: "sku-1".into(),
                category: None,
                collection: None,
                quantity: 1,
                amount_cents: cents,
            }],
            total_cents: cents,
            occurred_offline_at: None,
        };
        let repo = &mut SqliteRepo { c: &tx };
        let r = super::super::till::purchase(repo, "till-1", "st-1", &req, at, at)
            .unwrap()
            .unwrap();
        tx.commit().unwrap();
        r
    }

    fn at(c: &mut Connection, now: i64) -> (PointsView, TierProgress) {
        let tx = c.transaction().unwrap();
        let repo = &mut SqliteRepo { c: &tx };
        let rules = repo.loyalty_rules().unwrap();
        settle(repo, "m1", &rules, now).unwrap();
        tx.commit().unwrap();
        let (points, tier) = view(&mut SqliteRepo { c }, "m1", now).unwrap();
        (points, tier.unwrap())
    }

    #[test]
    fn points_lapse_after_a_year_and_tiers_step_down_after_their_hold() {
        let mut c = db();
        assert_eq!(buy(&mut c, "R-1", 250_000, T0).points_earned, 2500);
        let (points, tier) = at(&mut c, T0 + DAY);
        assert_eq!((points.balance, tier.tier.as_str()), (2500, "Gold"));
        // Before the year is out: still there, the next lapse announced.
        let (points, tier) = at(&mut c, T0 + 300 * DAY);
        assert_eq!(points.balance, 2500);
        assert_eq!(points.next_expiry.unwrap().points, 2500);
        assert_eq!(tier.tier, "Gold");
        // After a year: the lot lapses (one `expire` entry), and the tier drops one step.
        let (points, tier) = at(&mut c, T0 + 366 * DAY);
        assert_eq!(points.balance, 0);
        assert_eq!(points.ledger[0].kind, PointsKind::Expire);
        assert_eq!(points.ledger[0].points, -2500);
        assert_eq!(tier.tier, "Silver");
        assert_eq!(tier.points_to_keep, 500);
        // Settling again changes nothing: one lapse, one downgrade per hold.
        let (again, tier) = at(&mut c, T0 + 367 * DAY);
        assert_eq!(again.ledger.len(), points.ledger.len());
        assert_eq!(tier.tier, "Silver");
        // A year later still without purchases: Member.
        assert_eq!(at(&mut c, T0 + 732 * DAY).1.tier, "Member");
        // Earning in Member tier: ×1.
        assert_eq!(
            buy(&mut c, "R-2", 10_000, T0 + 733 * DAY).points_earned,
            100
        );
    }

    #[test]
    fn the_read_only_view_agrees_with_a_settled_member() {
        let mut c = db();
        buy(&mut c, "R-1", 60_000, T0);
        let later = T0 + 400 * DAY;
        let before = view(&mut SqliteRepo { c: &c }, "m1", later).unwrap();
        let after = at(&mut c, later);
        assert_eq!(before.0.balance, after.0.balance);
        assert_eq!(before.1.unwrap(), after.1);
    }
}
