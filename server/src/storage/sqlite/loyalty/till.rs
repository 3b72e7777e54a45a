//! What a till records: purchases (points, tier review, the web coupon, challenges), voids and
//! returns, each in the caller's transaction.

use rusqlite::{OptionalExtension, Transaction, params};
use tessera_domain::api::{
    PointsKind, Problem, PurchaseReceipt, PurchaseRequest, ReturnReport, ReturnRequest, VoidReport,
    codes,
};
use tessera_domain::loyalty::{WEB_STORE, reversal_for};

use super::*;
use crate::storage::sqlite::coupons::{Origin, issue, live_offer};
use crate::storage::{StorageError, touch_member};
use tessera_domain::rfc3339_ms as rfc3339;

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
        points = crate::storage::sqlite::rules::earning(tx, &rules)?.points(
            &purchase,
            rules.multiplier(tier),
            crate::storage::sqlite::rules::is_birthday(tx, m, occurred_ms)?,
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
        crate::storage::sqlite::rules::settle(tx, m, &[Purchase, StoreVisit], now_ms)?;
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
