//! The KPIs' counters follow every change in its transaction, and equal what the raw tables
//! say: receipts and revenue net of returns and voids, per shop and for all; points by kind and
//! the liability; the coupon funnel; enrolments.

use serde_json::json;
use tessera_domain::api::{PointsAdjustment, ReturnRequest, day_of};

use super::money::{purchase, till};
use super::{Backend, NOW, answer, enrol, mutate, seeded};
use crate::service::Services;
use crate::service::kpis::KpiServices;
use crate::storage::TillOp;

pub async fn kpi_counters_follow_every_change(s: Backend) {
    seeded(&s).await;
    let today = day_of(NOW);
    let (m1, m2) = (enrol(&s, 1).await, enrol(&s, 2).await);
    let (a, b) = (till(&s, "st-a", 1).await, till(&s, "st-b", 1).await);
    let op = |t: &crate::storage::TillAuth, key: &str, op: TillOp| {
        let (s, t, key) = (s.clone(), t.clone(), key.to_owned());
        async move {
            super::money::till_op(&s, &t, &key, op).await;
        }
    };
    op(&a, "key-kpi-0001", purchase("R-1", "CARD-1", 4_000)).await;
    let mut anonymous = purchase("R-2", "CARD-1", 2_000);
    if let TillOp::Purchase { request, .. } = &mut anonymous {
        request.card_number = None;
    }
    op(&a, "key-kpi-0002", anonymous).await;
    op(&b, "key-kpi-0003", purchase("R-3", "CARD-2", 1_000)).await;
    let refund = ReturnRequest {
        receipt: "R-1".into(),
        store_id: None,
        refunded_cents: 500,
    };
    op(&a, "key-kpi-0004", TillOp::Return { request: refund }).await;
    op(
        &b,
        "key-kpi-0005",
        TillOp::Void {
            receipt: "R-3".into(),
            at_ms: NOW,
        },
    )
    .await;
    mutate(
        &s,
        &m1,
        "key-kpi-clip",
        json!({"type": "clip_offer", "offer_id": "of-any"}),
    )
    .await;
    let adjust = PointsAdjustment {
        points: 15,
        reason: "goodwill".into(),
    };
    s.adjust_points(m2.clone(), adjust, NOW)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let all = s.kpis(None, today - 1, today).await.unwrap();
    let t = &all.totals;
    // Enrolments count on the day the server enrolled them (its clock, not the suite's).
    let enrolled = day_of(jiff::Timestamp::now().as_millisecond());
    let on_the_day = s.kpis(None, enrolled, enrolled).await.unwrap();
    assert_eq!(on_the_day.totals.enrolments, 2);
    assert_eq!((t.receipts, t.member_receipts), (2, 1), "R-3 voided");
    assert_eq!(
        (t.revenue_cents, t.member_revenue_cents),
        (5_500, 3_500),
        "net of the return and the void"
    );
    assert_eq!(all.days.len(), 2);
    assert_eq!(all.days[1].receipts, 2);
    // Points: what the members' ledgers say, kind by kind, and what they hold.
    let mut ledgers = Vec::new();
    let mut held = 0;
    for m in [&m1, &m2] {
        let state = s.member_state(m.clone()).await.unwrap();
        held += state.points_balance;
        ledgers.extend(state.points.ledger);
    }
    let sum = |kind: &str| -> i64 {
        ledgers
            .iter()
            .filter(|e| e.kind.as_str() == kind)
            .map(|e| e.points)
            .sum()
    };
    assert_eq!(t.points_earned, sum("earn"));
    assert!(t.points_earned > 0);
    assert_eq!(t.points_reversed, sum("reverse"));
    assert!(t.points_reversed < 0);
    assert_eq!(t.points_adjusted, 15);
    assert_eq!(all.points_liability, held);
    let funnel = all.coupons.iter().find(|c| c.offer_id == "of-any").unwrap();
    assert_eq!((funnel.issued, funnel.clipped, funnel.redeemed), (1, 1, 0));

    let shop_a = s.kpis(Some("st-a".into()), today, today).await.unwrap();
    assert_eq!(
        (shop_a.totals.receipts, shop_a.totals.revenue_cents),
        (2, 5_500)
    );
    assert_eq!(shop_a.member_revenue_share, Some(3_500.0 / 5_500.0));
    assert_eq!(
        shop_a.points_liability, held,
        "the programme's, whatever the shop"
    );
    let shop_b = s.kpis(Some("st-b".into()), today, today).await.unwrap();
    assert_eq!(
        (shop_b.totals.receipts, shop_b.totals.revenue_cents),
        (0, 0),
        "bought and voided"
    );
    let before = s.kpis(None, today - 5, today - 1).await.unwrap();
    assert_eq!(
        (before.totals.receipts, before.points_liability),
        (0, 0),
        "nothing counted before"
    );
    // Folding the increments into the sums, a few at a time, changes no figure.
    let (was_all, was_a) = (all.clone(), shop_a.clone());
    let mut folds = 0;
    while s.fold_kpis(3).await.unwrap() > 0 {
        folds += 1;
    }
    assert!(folds > 2, "{folds} folds");
    assert_eq!(s.kpis(None, today - 1, today).await.unwrap(), was_all);
    assert_eq!(
        s.kpis(Some("st-a".into()), today, today).await.unwrap(),
        was_a
    );
    // Counted after a fold: both read together.
    mutate(
        &s,
        &m2,
        "key-kpi-clip2",
        json!({"type": "clip_offer", "offer_id": "of-any"}),
    )
    .await;
    let after = s.kpis(None, today, today).await.unwrap();
    assert_eq!(after.coupons[0].clipped, 2);
}

/// Redemptions that cross channels are counted where and when they happen, and a void takes
/// them off: a coupon clipped online redeemed in a shop (web-to-store), one a shop's purchase
/// earned redeemed on the website (store-to-web).
pub async fn redemptions_across_channels_are_counted(s: Backend) {
    use super::money::{clip, redeem, with_web_coupon};
    use tessera_domain::coupon::{TillShop, verify};
    use tessera_domain::loyalty::WEB_STORE;
    seeded(&s).await;
    with_web_coupon(&s).await;
    let m = enrol(&s, 1).await;
    let (shop_till, web_till) = (till(&s, "st-a", 1).await, till(&s, WEB_STORE, 1).await);
    let (claims, shop) = clip(&s, &m, "of-cafe", "st-a").await;
    let redeemed = redeem(&s, &shop_till, "key-kx-0001", &claims, &shop, None).await;
    assert_eq!(answer(&redeemed).status, 200);
    let bought = s
        .apply_till_op(
            shop_till.clone(),
            "key-kx-buy1".into(),
            "h-kx-buy".into(),
            purchase("R-KX-BUY", "CARD-1", 5_000),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(answer(&bought).status, 200);
    let web = s
        .member_state(m.clone())
        .await
        .unwrap()
        .wallet
        .into_iter()
        .find(|c| c.offer_id == "of-any")
        .expect("the web coupon");
    let keys = s.coupon_keys(NOW).await.unwrap();
    let web_shop = TillShop::bare(WEB_STORE);
    let web_claims = verify(&web.code, &keys, NOW / 1000, &web_shop, None, 0).expect("valid");
    let online = redeem(&s, &web_till, "key-kx-0002", &web_claims, &web_shop, None).await;
    assert_eq!(answer(&online).status, 200, "{:?}", answer(&online));

    let today = day_of(NOW);
    let figures = |shop: Option<&str>| {
        let (s, shop) = (s.clone(), shop.map(str::to_owned));
        async move {
            let t = s.kpis(shop, today, today).await.unwrap().totals;
            (t.web_to_store, t.store_to_web)
        }
    };
    assert_eq!(figures(None).await, (1, 1));
    assert_eq!(figures(Some("st-a")).await, (1, 0));
    assert_eq!(figures(Some(WEB_STORE)).await, (0, 1));
    // The shop's redemption voided: taken off.
    let voided = s
        .apply_till_op(
            shop_till,
            "key-kx-void".into(),
            "h-kx-void".into(),
            TillOp::Void {
                receipt: "R-key-kx-0001".into(),
                at_ms: NOW,
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(answer(&voided).status, 200, "{:?}", answer(&voided));
    assert_eq!(figures(None).await, (0, 1));
    assert_eq!(figures(Some("st-a")).await, (0, 0));
}

/// Members and consent are levels: each grant counted when it becomes the member's decision for
/// its purpose and channel and taken off when it stops being it or the member is erased; a
/// push a member opens counts as acted on.
pub async fn members_consent_and_opened_pushes_are_counted(s: Backend) {
    use tessera_domain::consent::{Channel, Decision, Purpose};
    seeded(&s).await;
    let (m1, m2) = (enrol(&s, 1).await, enrol(&s, 2).await);
    let end = day_of(jiff::Timestamp::now().as_millisecond());
    let report = |to: i64| {
        let s = s.clone();
        async move { s.kpis(None, to, to).await.unwrap() }
    };
    let consent = |id: &str, m: &str, purpose, channel, decision| {
        let mut r = super::members::staff_record(id, m, purpose, decision);
        r.channel = channel;
        // Each record after the one before (the ledger orders them by when they took effect).
        let n: u32 = id.rsplit('-').next().unwrap().parse().unwrap();
        r.decided_at = format!("2026-09-21T12:00:{n:02}Z");
        r.effective_at = r.decided_at.clone();
        let s = s.clone();
        async move {
            s.staff_consent(r, NOW).await.unwrap().unwrap().unwrap();
        }
    };
    let push = (Purpose::MarketingOffers, Channel::Push);
    let rate = |r: &tessera_domain::api::KpiReport| {
        r.consent_opt_in
            .iter()
            .find(|c| c.purpose == "marketing_offers" && c.channel == "push")
            .map(|c| (c.members, c.rate))
    };
    assert_eq!(report(end).await.members, 2);
    consent("c-k-1", &m1, push.0, push.1, Decision::Granted).await;
    // Granted twice: still one member.
    consent("c-k-2", &m1, push.0, push.1, Decision::Granted).await;
    consent("c-k-3", &m2, push.0, push.1, Decision::Denied).await;
    assert_eq!(rate(&report(end).await), Some((1, Some(0.5))));
    consent("c-k-4", &m1, push.0, push.1, Decision::Withdrawn).await;
    assert_eq!(rate(&report(end).await), None, "no grant left");
    consent("c-k-5", &m1, push.0, push.1, Decision::Granted).await;
    consent("c-k-6", &m2, push.0, push.1, Decision::Granted).await;
    assert_eq!(rate(&report(end).await), Some((2, Some(1.0))));
    // Before the grants were recorded: none.
    assert_eq!(rate(&report(day_of(NOW) - 1).await), None);

    // A push opened, reported by the app as an analytics event (with consent to analytics).
    consent(
        "c-k-7",
        &m2,
        Purpose::Analytics,
        Channel::InApp,
        Decision::Granted,
    )
    .await;
    let opened = json!({"type": "track_event", "event": {"event_id": "ev-open-1",
        "name": "push_opened", "occurred_at": "2026-09-21T12:00:00Z",
        "attributes": {"offer_id": "of-any"}}});
    assert_eq!(
        answer(&mutate(&s, &m2, "key-k-open", opened).await).status,
        200
    );
    let other = json!({"type": "track_event", "event": {"event_id": "ev-other-1",
        "name": "screen_viewed", "occurred_at": "2026-09-21T12:00:00Z"}});
    assert_eq!(
        answer(&mutate(&s, &m2, "key-k-other", other).await).status,
        200
    );
    let today = s.kpis(None, day_of(NOW), day_of(NOW)).await.unwrap();
    assert_eq!(today.totals.pushes_opened, 1);

    // Erased: one member fewer, and their grants with them.
    s.erase(m1.clone(), NOW, "support-1".into()).await.unwrap();
    let after = report(end).await;
    assert_eq!(after.members, 1);
    assert_eq!(rate(&after), Some((1, Some(1.0))));
    // Folded, the same figures.
    while s.fold_kpis(2).await.unwrap() > 0 {}
    assert_eq!(report(end).await, after);
}
