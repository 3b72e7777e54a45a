//! What a till asks for: a redemption, a purchase (points, tier review, the web coupon,
//! challenges), a void, a return; each in the caller's transaction, once per till key.

use tessera_domain::api::{
    PointsKind, PurchaseReceipt, PurchaseRequest, ReturnReport, ReturnRequest, VoidReport,
};
use tessera_domain::loyalty::{WEB_STORE, reversal_for};
use tessera_domain::rules::RuleEvent;

use super::challenges;
use super::coupons::{RedeemAt, issue, live_offer, redeem};
use super::ledger::{credit, reverse, settle, tier_state};
use super::to_i64;
use crate::problem::answer_of;
use crate::storage::repo::{CouponEvent, CouponEventKind, NewPurchase, Origin, RepoResult};
use crate::storage::{Refusal, Repo, StoredAnswer, TillAuth, TillOp};

/// Apply one till request and the answer to store under its key.
pub(crate) fn apply(
    repo: &mut dyn Repo,
    till: &TillAuth,
    op: &TillOp,
    now_ms: i64,
) -> RepoResult<StoredAnswer> {
    let (till_id, store_id) = (till.till_id.as_str(), till.store_id.as_str());
    match op {
        TillOp::Redeem {
            claims,
            shop,
            receipt,
            offline_at_ms,
        } => {
            let at = RedeemAt {
                till_id,
                store_id,
                shop,
                receipt,
                offline_at_ms: *offline_at_ms,
            };
            answer_of(redeem(repo, &at, claims, now_ms)?)
        }
        TillOp::Purchase {
            request,
            occurred_ms,
        } => answer_of(purchase(
            repo,
            till_id,
            store_id,
            request,
            *occurred_ms,
            now_ms,
        )?),
        TillOp::Void { receipt, at_ms } => {
            answer_of(void(repo, till_id, store_id, receipt, *at_ms, now_ms)?)
        }
        TillOp::Return { request } => answer_of(return_goods(repo, store_id, request, now_ms)?),
    }
}

/// Record a purchase: points for the member (in the tier the member has when it is recorded),
/// a tier review, and a web coupon when the purchase qualifies.
pub(crate) fn purchase(
    repo: &mut dyn Repo,
    till_id: &str,
    store_id: &str,
    req: &PurchaseRequest,
    occurred_ms: i64,
    now_ms: i64,
) -> RepoResult<Result<PurchaseReceipt, Refusal>> {
    if let Some(purchase_id) = repo.receipt_taken(store_id, &req.receipt)? {
        return Ok(Err(Refusal::ReceiptReused { purchase_id }));
    }
    let scanned = match &req.member_code {
        None => None,
        Some(code) => match super::member_codes::scanned_card(
            repo,
            code,
            req.card_number.as_deref(),
            occurred_ms,
        )? {
            Ok(card) => Some(card),
            Err(e) => return Ok(Err(Refusal::MemberCode(e))),
        },
    };
    let member_id = match scanned.as_ref().or(req.card_number.as_ref()) {
        None => None,
        Some(card) => match repo.member_by_card(card)? {
            None => return Ok(Err(Refusal::UnknownCard)),
            found => found,
        },
    };
    let rules = repo.loyalty_rules()?;
    let purchase_id = format!("pu-{}", uuid::Uuid::new_v4().simple());
    let (mut points, mut balance, mut web_coupon, mut web_coupon_id) = (0, 0, None, None);
    if let Some(m) = &member_id {
        settle(repo, m, &rules, now_ms)?;
        let tier = tier_state(repo, m, &rules)?.map_or(0, |t| t.tier);
        let purchase = tessera_domain::rules::RuleEvent::of_purchase(
            &purchase_id,
            store_id,
            &req.lines,
            req.total_cents,
            occurred_ms,
        );
        points = challenges::earning(repo, &rules)?.points(
            &purchase,
            rules.multiplier(tier),
            challenges::is_birthday(repo, m, occurred_ms)?,
        );
        if points > 0 {
            credit(
                repo,
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
            match live_offer(repo, &rule.offer_id, now_ms)? {
                Some(offer) => {
                    let (id, code) = issue(repo, m, &offer, Origin::Purchase, now_ms)?;
                    web_coupon_id = Some(id);
                    web_coupon = Some(code);
                }
                None => tracing::warn!(offer = %rule.offer_id, "the web coupon's offer is gone"),
            }
        }
        settle(repo, m, &rules, now_ms)?;
        repo.touch_member(m)?;
    }
    super::kpis::count_sale(
        repo,
        store_id,
        member_id.is_some(),
        occurred_ms,
        1,
        to_i64(req.total_cents),
    )?;
    repo.insert_purchase(&NewPurchase {
        id: &purchase_id,
        store_id,
        till_id,
        receipt: &req.receipt,
        member_id: member_id.as_deref(),
        total_cents: req.total_cents,
        lines: &req.lines,
        occurred_ms,
        recorded_ms: now_ms,
        points,
        web_coupon_id: web_coupon_id.as_deref(),
    })?;
    if let Some(m) = &member_id {
        // Challenges count the purchase and the visit (and may pay points or a coupon at once).
        challenges::settle(
            repo,
            m,
            |tz| {
                let bought = RuleEvent::of_purchase(
                    &purchase_id,
                    store_id,
                    &req.lines,
                    req.total_cents,
                    occurred_ms,
                );
                let visit = RuleEvent::visit_at_till(store_id, occurred_ms, tz);
                std::iter::once(bought).chain(visit).collect()
            },
            now_ms,
        )?;
        balance = repo.balance(m)?;
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
    repo: &mut dyn Repo,
    till_id: &str,
    store_id: &str,
    receipt: &str,
    voided_at_ms: i64,
    now_ms: i64,
) -> RepoResult<Result<VoidReport, Refusal>> {
    let rules = repo.loyalty_rules()?;
    let window_start = voided_at_ms - i64::from(rules.void_window_minutes) * 60_000;
    let coupons = repo.redeemed_under(store_id, receipt)?;
    let bought = repo.live_purchase(store_id, receipt)?;
    if coupons.is_empty() && bought.is_none() {
        return Ok(Err(Refusal::NothingToVoid {
            receipt: receipt.to_owned(),
        }));
    }
    let oldest = coupons
        .iter()
        .filter_map(|c| c.redeemed_at_ms)
        .chain(bought.as_ref().map(|b| b.recorded_ms))
        .min()
        .unwrap_or(now_ms);
    if oldest < window_start {
        return Ok(Err(Refusal::VoidWindowClosed {
            recorded_ms: oldest,
            window_minutes: rules.void_window_minutes,
        }));
    }
    let mut restored = Vec::new();
    for coupon in coupons {
        repo.unredeem(&coupon.id)?;
        repo.coupon_event(&CouponEvent {
            coupon_id: &coupon.id,
            kind: CouponEventKind::Voided,
            store_id,
            till_id,
            receipt,
            till_at_ms: None,
            at_ms: now_ms,
        })?;
        super::kpis::count_redemption(
            repo,
            &coupon.offer_id,
            coupon.origin,
            store_id,
            coupon.redeemed_at_ms.unwrap_or(now_ms),
            -1,
        )?;
        super::webhooks::emit(
            repo,
            &coupon.member_id,
            tessera_domain::api::EventData::CouponRedemptionVoided {
                coupon_id: coupon.id.clone(),
                store_id: store_id.to_owned(),
            },
            now_ms,
        )?;
        repo.touch_member(&coupon.member_id)?;
        restored.push(coupon.id);
    }
    let mut points_reversed = 0;
    let purchase_voided = bought.is_some();
    if let Some(p) = bought {
        repo.void_purchase(&p.id, now_ms)?;
        super::kpis::count_sale(
            repo,
            &p.store_id,
            p.member_id.is_some(),
            p.occurred_ms,
            -1,
            -(to_i64(p.total_cents) - to_i64(p.returned_cents)),
        )?;
        if let Some(m) = &p.member_id {
            // The history lost the purchase (and maybe its visit): challenges are counted
            // again from it on the member's next event.
            repo.forget_rule_state(m)?;
            settle(repo, m, &rules, now_ms)?;
            let owed = reversal_for(
                p.points,
                p.total_cents,
                p.returned_cents,
                p.total_cents - p.returned_cents,
            );
            points_reversed = reverse(repo, m, owed, &format!("void of {receipt}"), now_ms)?.0;
            if let Some(c) = &p.web_coupon_id {
                repo.revoke_unused(c, now_ms)?;
            }
            settle(repo, m, &rules, now_ms)?;
            repo.touch_member(m)?;
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
    repo: &mut dyn Repo,
    store_id: &str,
    req: &ReturnRequest,
    now_ms: i64,
) -> RepoResult<Result<ReturnReport, Refusal>> {
    let shop = req.store_id.as_deref().unwrap_or(store_id);
    let Some(p) = repo.live_purchase(shop, &req.receipt)? else {
        return Ok(Err(Refusal::NoPurchase {
            store_id: shop.to_owned(),
            receipt: req.receipt.clone(),
        }));
    };
    let refundable = to_i64(p.total_cents) - to_i64(p.returned_cents);
    if req.refunded_cents == 0 || to_i64(req.refunded_cents) > refundable {
        return Ok(Err(Refusal::OverRefund {
            refundable_cents: refundable,
        }));
    }
    repo.add_returned(&p.id, req.refunded_cents)?;
    super::kpis::count_sale(
        repo,
        &p.store_id,
        p.member_id.is_some(),
        p.occurred_ms,
        0,
        -to_i64(req.refunded_cents),
    )?;
    let (mut reversed, mut unrecovered, mut balance) = (0, 0, 0);
    if let Some(m) = &p.member_id {
        let rules = repo.loyalty_rules()?;
        settle(repo, m, &rules, now_ms)?;
        let owed = reversal_for(
            p.points,
            p.total_cents,
            p.returned_cents,
            req.refunded_cents,
        );
        (reversed, unrecovered) = reverse(
            repo,
            m,
            owed,
            &format!("return on receipt {}", req.receipt),
            now_ms,
        )?;
        settle(repo, m, &rules, now_ms)?;
        repo.touch_member(m)?;
        balance = repo.balance(m)?;
    }
    Ok(Ok(ReturnReport {
        purchase_id: p.id,
        points_reversed: reversed,
        points_unrecovered: unrecovered,
        points_balance: balance,
    }))
}
