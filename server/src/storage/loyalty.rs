//! Points, tiers and purchases in the embedded database. The arithmetic is the core's
//! ([`tessera_domain::loyalty`]); this module stores lots and ledger entries and runs it inside the
//! caller's transaction, so a purchase, its points, its tier review and its web coupon commit
//! together or not at all.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_domain::api::{
    PointsEntry, PointsExpiry, PointsKind, PointsView, Problem, PurchaseReceipt, PurchaseRequest,
    ReturnReport, ReturnRequest, VoidReport, codes,
};
use tessera_domain::loyalty::{
    Lot, LoyaltyRules, TierProgress, TierState, WEB_STORE, plan_burn, reversal_for, take,
};

use super::coupons::{Origin, issue, live_offer};
use super::{StorageError, touch_member};
use tessera_domain::eligibility::OfferTerms;
use tessera_domain::rfc3339_ms as rfc3339;

const DAY_MS: i64 = 86_400_000;

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The programme's rules (the defaults until the operator sets some).
pub(crate) fn rules(c: &Connection) -> Result<LoyaltyRules, StorageError> {
    let data: Option<String> = c
        .prepare_cached("SELECT data FROM loyalty_rules WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    match data {
        Some(d) => serde_json::from_str(&d).map_err(backend),
        None => Ok(LoyaltyRules::default()),
    }
}

pub(crate) fn put_rules(
    tx: &Transaction<'_>,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO loyalty_rules (id, data, updated_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        params![serde_json::to_string(rules).map_err(backend)?, now_ms],
    )?;
    Ok(())
}

/// Live lots at `now_ms` in the order they are spent (soonest expiry first, then the lots that
/// never expire, oldest first), read only until they cover `enough` points: spending does not
/// read a member's whole history.
fn lots(
    c: &Connection,
    member_id: &str,
    now_ms: i64,
    enough: u64,
) -> Result<Vec<Lot>, StorageError> {
    let mut lots = Vec::new();
    let mut covered = 0u64;
    // Soonest expiry first (from the index), then the lots that never expire, oldest first.
    let expiring = "SELECT id, remaining, expires_at FROM points_entry
         WHERE member_id = ?1 AND remaining > 0 AND expires_at > ?2 ORDER BY expires_at, id";
    let lasting = "SELECT id, remaining, expires_at FROM points_entry
         WHERE member_id = ?1 AND remaining > 0 AND expires_at IS NULL ORDER BY id";
    for (sql, with_now) in [(expiring, true), (lasting, false)] {
        let mut stmt = c.prepare_cached(sql)?;
        let mut rows = if with_now {
            stmt.query(params![member_id, now_ms])?
        } else {
            stmt.query(params![member_id])?
        };
        while covered < enough
            && let Some(r) = rows.next()?
        {
            let lot = Lot {
                id: r.get(0)?,
                remaining: to_u64(r.get(1)?),
                expires_at_ms: r.get(2)?,
            };
            covered = covered.saturating_add(lot.remaining);
            lots.push(lot);
        }
    }
    Ok(lots)
}

/// Qualifying points earned in the rolling window: a difference of two running totals, so it
/// costs two index lookups however long the member's history.
fn qualifying(
    c: &Connection,
    member_id: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<u64, StorageError> {
    let total_before = |before: i64| -> Result<i64, StorageError> {
        Ok(c.prepare_cached(
            "SELECT qualifying_total FROM points_entry
             WHERE member_id = ?1 AND qualifying != 0 AND created_at < ?2
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row(params![member_id, before], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
    };
    let sum = total_before(i64::MAX)? - total_before(rules.window_start(now_ms))?;
    Ok(to_u64(sum))
}

fn tier_state(
    c: &Connection,
    member_id: &str,
    rules: &LoyaltyRules,
) -> Result<Option<TierState>, StorageError> {
    Ok(
        c.prepare_cached("SELECT tier, tier_since, created_at FROM member WHERE id = ?1")?
            .query_row([member_id], |r| {
                let since: i64 = r.get(1)?;
                let created: i64 = r.get(2)?;
                Ok(TierState {
                    tier: rules.tier_index(&r.get::<_, String>(0)?),
                    since_ms: if since == 0 { created } else { since },
                })
            })
            .optional()?,
    )
}

/// Bring the member up to date at `now_ms`: lapse expired lots (one `expire` entry each) and
/// review the tier. Every caller changes the member and bumps its version once at the end.
pub(crate) fn settle(
    tx: &Transaction<'_>,
    member_id: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<(), StorageError> {
    let lapsed: Vec<(i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT id, remaining, expires_at FROM points_entry
             WHERE member_id = ?1 AND remaining > 0 AND expires_at <= ?2",
        )?
        .query_map(params![member_id, now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, remaining, at) in lapsed {
        tx.prepare_cached("UPDATE points_entry SET remaining = 0 WHERE id = ?1")?
            .execute([id])?;
        add_balance(tx, member_id, -remaining)?;
        entry(
            tx,
            member_id,
            PointsKind::Expire,
            -remaining,
            0,
            "expired",
            at,
        )?;
    }
    let Some(current) = tier_state(tx, member_id, rules)? else {
        return Err(StorageError::NotFound);
    };
    let reviewed = rules.review(current, qualifying(tx, member_id, rules, now_ms)?, now_ms);
    let name = &rules.tiers[reviewed.tier.min(rules.tiers.len() - 1)].name;
    tx.prepare_cached("UPDATE member SET tier = ?2, tier_since = ?3 WHERE id = ?1")?
        .execute(params![member_id, name, reviewed.since_ms])?;
    Ok(())
}

/// `member.points_balance` is kept equal to what is left in live lots: every change to a lot
/// changes it by as much, in the same transaction.
fn add_balance(tx: &Transaction<'_>, member_id: &str, delta: i64) -> Result<(), StorageError> {
    tx.prepare_cached("UPDATE member SET points_balance = points_balance + ?2 WHERE id = ?1")?
        .execute(params![member_id, delta])?;
    Ok(())
}

fn entry(
    tx: &Transaction<'_>,
    member_id: &str,
    kind: PointsKind,
    points: i64,
    qualifying: i64,
    reason: &str,
    at: i64,
) -> Result<i64, StorageError> {
    // The member's running total of qualifying points, for `qualifying`.
    let total: i64 = if qualifying == 0 {
        0
    } else {
        tx.prepare_cached(
            "SELECT qualifying_total FROM points_entry WHERE member_id = ?1 AND qualifying != 0
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row([member_id], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0)
            + qualifying
    };
    tx.prepare_cached(
        "INSERT INTO points_entry (member_id, kind, points, qualifying, qualifying_total, reason,
           created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        member_id,
        kind.as_str(),
        points,
        qualifying,
        total,
        reason,
        at
    ])?;
    Ok(tx.last_insert_rowid())
}

/// A new lot of `points`, spendable until the rules' validity runs out, counted towards tiers
/// if `qualifying` (earned points and tier bonuses; not an operator's adjustment).
#[allow(clippy::too_many_arguments)]
fn credit(
    tx: &Transaction<'_>,
    member_id: &str,
    kind: PointsKind,
    points: u64,
    qualifying: bool,
    reason: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<(), StorageError> {
    let n = to_i64(points);
    let id = entry(
        tx,
        member_id,
        kind,
        n,
        if qualifying { n } else { 0 },
        reason,
        now_ms,
    )?;
    tx.prepare_cached("UPDATE points_entry SET remaining = ?2, expires_at = ?3 WHERE id = ?1")?
        .execute(params![id, n, rules.expiry_of(now_ms)])?;
    add_balance(tx, member_id, n)
}

/// Take `plan` out of the lots and write one ledger entry for it.
fn debit(
    tx: &Transaction<'_>,
    member_id: &str,
    kind: PointsKind,
    plan: &[(i64, u64)],
    qualifying: i64,
    reason: &str,
    now_ms: i64,
) -> Result<u64, StorageError> {
    let mut total = 0u64;
    for &(lot, n) in plan {
        tx.prepare_cached("UPDATE points_entry SET remaining = remaining - ?2 WHERE id = ?1")?
            .execute(params![lot, to_i64(n)])?;
        total += n;
    }
    add_balance(tx, member_id, -to_i64(total))?;
    if total > 0 || qualifying != 0 {
        entry(
            tx,
            member_id,
            kind,
            -to_i64(total),
            qualifying,
            reason,
            now_ms,
        )?;
    }
    Ok(total)
}

/// Take back up to `points` (a return or a void): what the balance cannot cover is written off
/// and returned as unrecovered. `qualifying` tier points are taken back in full.
fn reverse(
    tx: &Transaction<'_>,
    member_id: &str,
    points: u64,
    reason: &str,
    now_ms: i64,
) -> Result<(u64, u64), StorageError> {
    let plan = take(&lots(tx, member_id, now_ms, points)?, points, now_ms);
    let taken = debit(
        tx,
        member_id,
        PointsKind::Reverse,
        &plan,
        -to_i64(points),
        reason,
        now_ms,
    )?;
    Ok((taken, points - taken))
}

fn problem(status: u16, code: &str, title: &str, detail: impl Into<String>) -> Problem {
    Problem::new(status, code, title, Some(detail.into()))
}

fn member_balance(tx: &Transaction<'_>, member_id: &str) -> Result<u64, StorageError> {
    let b: i64 = tx
        .prepare_cached("SELECT points_balance FROM member WHERE id = ?1")?
        .query_row([member_id], |r| r.get(0))?;
    Ok(to_u64(b))
}

/// Record a purchase: points for the member (in the tier the member has when it is recorded),
/// a tier review, and a web coupon when the purchase qualifies.
pub(crate) fn purchase(
    tx: &Transaction<'_>,
    till_id: &str,
    store_id: &str,
    req: &PurchaseRequest,
    occurred_ms: i64,
    now_ms: i64,
) -> Result<Result<PurchaseReceipt, Problem>, StorageError> {
    let taken: Option<String> = tx
        .prepare_cached("SELECT id FROM purchase WHERE store_id = ?1 AND receipt = ?2")?
        .query_row(params![store_id, req.receipt], |r| r.get(0))
        .optional()?;
    if let Some(id) = taken {
        return Ok(Err(problem(
            409,
            codes::RECEIPT_REUSED,
            "Another purchase has this receipt in this shop",
            id,
        )));
    }
    let member_id: Option<String> = match &req.card_number {
        None => None,
        Some(card) => {
            let found = tx
                .prepare_cached("SELECT id FROM member WHERE card_number = ?1")?
                .query_row([card], |r| r.get(0))
                .optional()?;
            if found.is_none() {
                return Ok(Err(problem(
                    422,
                    codes::UNKNOWN_CARD,
                    "No member has this card",
                    "unknown card number",
                )));
            }
            found
        }
    };
    let rules = rules(tx)?;
    let purchase_id = format!("pu-{}", uuid::Uuid::new_v4().simple());
    let (mut points, mut balance, mut web_coupon, mut web_coupon_id) = (0, 0, None, None);
    if let Some(m) = &member_id {
        settle(tx, m, &rules, now_ms)?;
        let tier = tier_state(tx, m, &rules)?.map_or(0, |t| t.tier);
        let purchase = tessera_domain::rules::RuleEvent::of_purchase(
            &purchase_id,
            store_id,
            &req.lines,
            req.total_cents,
            occurred_ms,
        );
        points = super::rules::earning(tx, &rules)?.points(
            &purchase,
            rules.multiplier(tier),
            super::rules::is_birthday(tx, m, occurred_ms)?,
        );
        if points > 0 {
            credit(
                tx,
                m,
                PointsKind::Earn,
                points,
                true,
                &format!("receipt {} at {store_id}", req.receipt),
                &rules,
                now_ms,
            )?;
        }
        if let Some(rule) = &rules.web_coupon
            && req.total_cents >= rule.min_total_cents
            && store_id != WEB_STORE
        {
            match live_offer(tx, &rule.offer_id, now_ms)? {
                Some(offer) => {
                    let (id, code) = issue(tx, m, &offer, Origin::Purchase, now_ms)?;
                    web_coupon_id = Some(id);
                    web_coupon = Some(code);
                }
                None => tracing::warn!(offer = %rule.offer_id, "the web coupon's offer is gone"),
            }
        }
        settle(tx, m, &rules, now_ms)?;
        touch_member(tx, m)?;
    }
    tx.prepare_cached(
        "INSERT INTO purchase (id, store_id, till_id, receipt, member_id, total_cents, lines,
           occurred_at, recorded_at, points, web_coupon_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        purchase_id,
        store_id,
        till_id,
        req.receipt,
        member_id,
        to_i64(req.total_cents),
        serde_json::to_string(&req.lines).map_err(backend)?,
        occurred_ms,
        now_ms,
        to_i64(points),
        web_coupon_id,
    ])?;
    if let Some(m) = &member_id {
        // Challenges count the purchase and the visit (and may pay points or a coupon at once).
        use tessera_domain::rules::RuleEventKind::{Purchase, StoreVisit};
        super::rules::settle(tx, m, &[Purchase, StoreVisit], now_ms)?;
        balance = member_balance(tx, m)?;
    }
    Ok(Ok(PurchaseReceipt {
        purchase_id,
        member_id,
        points_earned: points,
        points_balance: balance,
        web_coupon,
    }))
}

/// Undo what this shop recorded under `receipt`: coupon redemptions (usable again) and the
/// purchase (its points taken back, its web coupon revoked), all or nothing, if the void
/// (`voided_at_ms`, the till's clock for an offline void) is within the window.
pub(crate) fn void(
    tx: &Transaction<'_>,
    till_id: &str,
    store_id: &str,
    receipt: &str,
    voided_at_ms: i64,
    now_ms: i64,
) -> Result<Result<VoidReport, Problem>, StorageError> {
    let rules = rules(tx)?;
    let window_start = voided_at_ms - i64::from(rules.void_window_minutes) * 60_000;
    let coupons: Vec<(String, String, i64)> = tx
        .prepare_cached(
            "SELECT id, member_id, redeemed_at FROM coupon
             WHERE redeemed_store = ?1 AND receipt = ?2 AND redeemed_at IS NOT NULL",
        )?
        .query_map(params![store_id, receipt], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    type PurchaseRow = (String, Option<String>, i64, i64, i64, Option<String>, i64);
    let bought: Option<PurchaseRow> = tx
        .prepare_cached(
            "SELECT id, member_id, points, total_cents, returned_cents, web_coupon_id, recorded_at
             FROM purchase WHERE store_id = ?1 AND receipt = ?2 AND voided_at IS NULL",
        )?
        .query_row(params![store_id, receipt], |r| r.try_into())
        .optional()?;
    let purchase_at = bought.as_ref().map(|b| b.6);
    if coupons.is_empty() && bought.is_none() {
        return Ok(Err(problem(
            404,
            codes::NOTHING_TO_VOID,
            "Nothing to void under this receipt in this shop",
            receipt,
        )));
    }
    let oldest = coupons
        .iter()
        .map(|c| c.2)
        .chain(purchase_at)
        .min()
        .unwrap_or(now_ms);
    if oldest < window_start {
        return Ok(Err(problem(
            422,
            codes::VOID_WINDOW_CLOSED,
            "Too late to void",
            format!(
                "recorded at {}; voids are accepted for {} minutes",
                rfc3339(oldest),
                rules.void_window_minutes
            ),
        )));
    }
    let mut restored = Vec::new();
    for (coupon_id, member_id, _) in coupons {
        tx.prepare_cached(
            "UPDATE coupon SET redeemed_at = NULL, redeemed_store = NULL, redeemed_till = NULL,
               receipt = NULL WHERE id = ?1",
        )?
        .execute([&coupon_id])?;
        tx.prepare_cached(
            "INSERT INTO coupon_event (coupon_id, kind, store_id, till_id, receipt, at)
             VALUES (?1, 'voided', ?2, ?3, ?4, ?5)",
        )?
        .execute(params![coupon_id, store_id, till_id, receipt, now_ms])?;
        touch_member(tx, &member_id)?;
        restored.push(coupon_id);
    }
    let mut points_reversed = 0;
    let purchase_voided = bought.is_some();
    if let Some((id, member_id, points, total, returned, web_coupon, _)) = bought {
        tx.prepare_cached("UPDATE purchase SET voided_at = ?2 WHERE id = ?1")?
            .execute(params![id, now_ms])?;
        if let Some(m) = member_id {
            settle(tx, &m, &rules, now_ms)?;
            let owed = reversal_for(
                to_u64(points),
                to_u64(total),
                to_u64(returned),
                to_u64(total - returned),
            );
            points_reversed = reverse(tx, &m, owed, &format!("void of {receipt}"), now_ms)?.0;
            if let Some(c) = web_coupon {
                tx.prepare_cached(
                    "UPDATE coupon SET revoked_at = ?2 WHERE id = ?1 AND redeemed_at IS NULL",
                )?
                .execute(params![c, now_ms])?;
            }
            settle(tx, &m, &rules, now_ms)?;
            touch_member(tx, &m)?;
        }
    }
    Ok(Ok(VoidReport {
        receipt: receipt.to_owned(),
        coupons_restored: restored,
        purchase_voided,
        points_reversed,
    }))
}

/// Goods brought back: take back the points they earned, in proportion, never below a zero
/// balance.
pub(crate) fn return_goods(
    tx: &Transaction<'_>,
    store_id: &str,
    req: &ReturnRequest,
    now_ms: i64,
) -> Result<Result<ReturnReport, Problem>, StorageError> {
    let shop = req.store_id.as_deref().unwrap_or(store_id);
    let found: Option<(String, Option<String>, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT id, member_id, points, total_cents, returned_cents FROM purchase
             WHERE store_id = ?1 AND receipt = ?2 AND voided_at IS NULL",
        )?
        .query_row(params![shop, req.receipt], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((purchase_id, member_id, points, total, returned)) = found else {
        return Ok(Err(problem(
            404,
            codes::RETURN_REFUSED,
            "No purchase under this receipt",
            format!(
                "no purchase under receipt {} at {shop} (never recorded there, or voided)",
                req.receipt
            ),
        )));
    };
    if req.refunded_cents == 0 || to_i64(req.refunded_cents) > total - returned {
        return Ok(Err(problem(
            422,
            codes::RETURN_REFUSED,
            "More refunded than the purchase is still worth",
            format!("{} cents can still be refunded", total - returned),
        )));
    }
    tx.prepare_cached("UPDATE purchase SET returned_cents = returned_cents + ?2 WHERE id = ?1")?
        .execute(params![purchase_id, to_i64(req.refunded_cents)])?;
    let (mut reversed, mut unrecovered, mut balance) = (0, 0, 0);
    if let Some(m) = member_id {
        let rules = rules(tx)?;
        settle(tx, &m, &rules, now_ms)?;
        let owed = reversal_for(
            to_u64(points),
            to_u64(total),
            to_u64(returned),
            req.refunded_cents,
        );
        (reversed, unrecovered) = reverse(
            tx,
            &m,
            owed,
            &format!("return on receipt {}", req.receipt),
            now_ms,
        )?;
        settle(tx, &m, &rules, now_ms)?;
        touch_member(tx, &m)?;
        balance = member_balance(tx, &m)?;
    }
    Ok(Ok(ReturnReport {
        purchase_id,
        points_reversed: reversed,
        points_unrecovered: unrecovered,
        points_balance: balance,
    }))
}

/// Spend points on a reward: its coupon into the wallet, or `insufficient_points`.
pub(crate) fn buy_reward(
    tx: &Transaction<'_>,
    member_id: &str,
    offer_id: &str,
    now_ms: i64,
) -> Result<Result<(), Problem>, StorageError> {
    let offer = super::coupons::offer(tx, offer_id)?;
    let Some((offer, cost)) = offer.and_then(|o| o.points_cost.map(|c| (o, c))) else {
        return Ok(Err(problem(
            422,
            codes::UNKNOWN_OFFER,
            "This reward cannot be bought",
            "no such reward",
        )));
    };
    let terms = OfferTerms::of(&offer).map_err(|e| StorageError::Backend(e.to_string()))?;
    let member = super::coupons::MemberFacts::read(tx, member_id, &offer)?;
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

/// A challenge's reward in points (a tier bonus counts towards tiers, which are reviewed).
pub(crate) fn bonus(
    tx: &Transaction<'_>,
    member_id: &str,
    points: u64,
    towards_tiers: bool,
    reason: &str,
    now_ms: i64,
) -> Result<(), StorageError> {
    if points == 0 {
        return Ok(());
    }
    let rules = rules(tx)?;
    settle(tx, member_id, &rules, now_ms)?;
    credit(
        tx,
        member_id,
        PointsKind::Bonus,
        points,
        towards_tiers,
        reason,
        &rules,
        now_ms,
    )?;
    settle(tx, member_id, &rules, now_ms)
}

/// An operator's correction: a positive one is a new lot (not counted towards tiers); a
/// negative one is refused beyond the balance.
pub(crate) fn adjust(
    tx: &Transaction<'_>,
    member_id: &str,
    points: i64,
    reason: &str,
    now_ms: i64,
) -> Result<Result<u64, Problem>, StorageError> {
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
            Err(e) => {
                return Ok(Err(problem(
                    422,
                    codes::INSUFFICIENT_POINTS,
                    "The balance cannot go below zero",
                    e.to_string(),
                )));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::api::PurchaseLine;

    const T0: i64 = 1_800_000_000_000;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::super::sqlite::MIGRATIONS.to_latest(&mut c).unwrap();
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
        let r = purchase(&tx, "till-1", "st-1", &req, at, at)
            .unwrap()
            .unwrap();
        tx.commit().unwrap();
        r
    }

    fn at(c: &mut Connection, now: i64) -> (PointsView, TierProgress) {
        let tx = c.transaction().unwrap();
        settle(&tx, "m1", &rules(&tx).unwrap(), now).unwrap();
        tx.commit().unwrap();
        let (points, tier) = view(c, "m1", now).unwrap();
        (points, tier.unwrap())
    }

    const DAY: i64 = 86_400_000;

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
        let before = view(&c, "m1", later).unwrap();
        let after = at(&mut c, later);
        assert_eq!(before.0.balance, after.0.balance);
        assert_eq!(before.1.unwrap(), after.1);
    }
}
