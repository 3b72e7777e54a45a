//! What is worth money: coupon keys, shops and tills, redemption exactly once (online,
//! concurrent, offline with conflicts), purchases, returns, voids, corrections, rewards, and
//! challenges that pay.

use serde_json::json;
use tessera_domain::api::{PointsAdjustment, PurchaseLine, PurchaseRequest, ReturnRequest};
use tessera_domain::coupon::{CouponClaims, TillShop, verify};
use tessera_domain::loyalty::LoyaltyRules;
use tessera_domain::rules::{RuleEvent, RuleEventKind, RuleSet};

use super::{Backend, NOW, answer, body, enrol, mutate, seeded};
use crate::service::Services;
use crate::storage::{MutationOutcome, TillAuth, TillOp};

/// A till of `store`, registered under the token hash `t-<store>-<n>`.
pub(super) async fn till(s: &Backend, store: &str, n: u32) -> TillAuth {
    let hash = format!("t-{store}-{n}");
    let till_id = s
        .register_till(store.into(), hash.clone(), NOW)
        .await
        .unwrap()
        .expect("the shop exists");
    assert_eq!(
        s.till_by_token(hash).await.unwrap(),
        Some((till_id.clone(), store.to_owned()))
    );
    TillAuth {
        till_id,
        store_id: store.into(),
    }
}

/// Clip `offer` for `member` and return the coupon's claims as a till of `store` verifies them.
pub(super) async fn clip(
    s: &Backend,
    member: &str,
    offer: &str,
    store: &str,
) -> (CouponClaims, TillShop) {
    let clipped = mutate(
        s,
        member,
        &format!("key-clip-{offer}"),
        json!({"type": "clip_offer", "offer_id": offer}),
    )
    .await;
    assert_eq!(answer(&clipped).status, 200, "{:?}", answer(&clipped));
    let state = s.member_state(member.into()).await.unwrap();
    let coupon = state
        .wallet
        .iter()
        .find(|c| c.offer_id == offer)
        .expect("the coupon is in the wallet");
    let keys = s.coupon_keys(NOW).await.unwrap();
    let shop = TillShop::from_facts(&s.shop(store.into()).await.unwrap().unwrap());
    let claims = verify(&coupon.code, &keys, NOW / 1000, &shop, None, 0).expect("a valid code");
    (claims, shop)
}

pub(super) async fn redeem(
    s: &Backend,
    till: &TillAuth,
    key: &str,
    claims: &CouponClaims,
    shop: &TillShop,
    offline_at_ms: Option<i64>,
) -> MutationOutcome {
    s.apply_till_op(
        till.clone(),
        key.into(),
        format!("redeem-{key}"),
        TillOp::Redeem {
            claims: claims.clone(),
            shop: shop.clone(),
            receipt: format!("R-{key}"),
            offline_at_ms,
        },
        NOW,
    )
    .await
    .unwrap()
}

pub async fn coupon_keys_shops_and_tills(s: Backend) {
    seeded(&s).await;
    let keys = s.coupon_keys(NOW).await.unwrap();
    assert!(!keys.is_empty());
    assert_eq!(
        s.coupon_keys(NOW).await.unwrap(),
        keys,
        "made once, then kept"
    );
    let shop = s.shop("st-a".into()).await.unwrap().unwrap();
    assert_eq!(
        (shop.tags.as_slice(), shop.timezone.as_str()),
        (["cafe".to_owned()].as_slice(), "Europe/Paris")
    );
    assert_eq!(s.shop("st-nowhere".into()).await.unwrap(), None);
    let a = till(&s, "st-a", 1).await;
    let b = till(&s, "st-a", 2).await;
    assert_ne!(a.till_id, b.till_id);
    assert_eq!(
        s.register_till("st-nowhere".into(), "t-x".into(), NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.till_by_token("t-unknown".into()).await.unwrap(), None);
}

pub async fn a_coupon_is_redeemed_once_by_concurrent_tills(s: Backend) {
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    let (claims, shop) = clip(&s, &m, "of-cafe", "st-a").await;
    let mut tills = Vec::new();
    for n in 0..6 {
        tills.push(till(&s, "st-a", n).await);
    }
    let tasks: Vec<_> = tills
        .iter()
        .enumerate()
        .map(|(n, t)| {
            let (s, t, claims, shop) = (s.clone(), t.clone(), claims.clone(), shop.clone());
            tokio::spawn(async move {
                redeem(&s, &t, &format!("key-till-{n}"), &claims, &shop, None).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let outcome = t.await.unwrap();
        let a = answer(&outcome);
        if a.status != 200 {
            assert_eq!(body(a)["code"], "already_redeemed", "{a:?}");
        }
        statuses.push(a.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5);
    // The winner's retry replays its answer; the wallet shows the coupon used.
    let winner = statuses.iter().position(|s| *s == 200).unwrap();
    let retry = redeem(
        &s,
        &tills[winner],
        &format!("key-till-{winner}"),
        &claims,
        &shop,
        None,
    )
    .await;
    assert!(matches!(&retry, MutationOutcome::Replayed(a) if a.status == 200));
    let redeemed = body(answer(&retry));
    assert_eq!(redeemed["coupon_id"], claims.coupon_id.as_str());
    assert_eq!(redeemed["store_id"], "st-a");
    let state = s.member_state(m).await.unwrap();
    assert_eq!(
        serde_json::to_value(&state.wallet[0].state).unwrap()["state"],
        "redeemed"
    );
}

pub async fn offline_redemptions_at_two_tills_record_a_conflict(s: Backend) {
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    let (claims, shop) = clip(&s, &m, "of-any", "st-a").await;
    let (a, b) = (till(&s, "st-a", 1).await, till(&s, "st-a", 2).await);
    assert!(s.redemption_conflicts(10).await.unwrap().is_empty());
    let first = redeem(&s, &a, "key-offline-a", &claims, &shop, Some(NOW - 120_000)).await;
    assert_eq!(answer(&first).status, 200);
    let second = redeem(&s, &b, "key-offline-b", &claims, &shop, Some(NOW - 60_000)).await;
    assert_eq!(answer(&second).status, 409);
    let conflicts = s.redemption_conflicts(10).await.unwrap();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(
        (
            c.coupon_id.as_str(),
            c.winner_till_id.as_str(),
            c.till_id.as_str()
        ),
        (
            claims.coupon_id.as_str(),
            a.till_id.as_str(),
            b.till_id.as_str()
        )
    );
    // Reported again (a till retrying its journal): the same answer, no second conflict.
    let again = redeem(&s, &b, "key-offline-b", &claims, &shop, Some(NOW - 60_000)).await;
    assert_eq!(answer(&again), answer(&second));
    assert_eq!(s.redemption_conflicts(10).await.unwrap().len(), 1);
    // Staff decide it once (the decision is audited and never changed); the redemption event of
    // the first till is not a conflict to decide.
    use crate::service::staff::StaffServices;
    use tessera_domain::api::ConflictOutcome;
    assert_eq!(c.resolution, None);
    let decide = |id: u64, outcome: ConflictOutcome| {
        let s = s.clone();
        async move {
            s.resolve_conflict(
                id,
                outcome,
                "called the member".into(),
                "ann@shop".into(),
                NOW,
            )
            .await
            .unwrap()
        }
    };
    assert!(decide(c.id, ConflictOutcome::Recovered).await);
    assert!(
        !decide(c.id, ConflictOutcome::Accepted).await,
        "decided once"
    );
    assert!(
        !decide(c.id - 1, ConflictOutcome::Accepted).await,
        "not a conflict"
    );
    let resolved = &s.redemption_conflicts(10).await.unwrap()[0];
    let r = resolved.resolution.as_ref().expect("resolved");
    assert_eq!(
        (r.outcome, r.note.as_str(), r.resolved_by.as_str()),
        (ConflictOutcome::Recovered, "called the member", "ann@shop")
    );
    let log = s.audit_log(i64::MAX, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].action.as_str(), log[0].detail.as_str()),
        ("conflict_resolved", "recovered: called the member")
    );
}

/// Apply `op` at till `t` under `key` (its body hashed as `h-<key>`) and expect a 200: the body.
pub(super) async fn till_op(s: &Backend, t: &TillAuth, key: &str, op: TillOp) -> serde_json::Value {
    let outcome = s
        .apply_till_op(t.clone(), key.to_owned(), format!("h-{key}"), op, NOW)
        .await
        .unwrap();
    let a = answer(&outcome).clone();
    assert_eq!(a.status, 200, "{a:?}");
    body(&a)
}

/// Loyalty rules under which a purchase of 30 € or more in a shop earns a coupon of `of-any` for
/// the website.
pub(super) async fn with_web_coupon(s: &Backend) {
    let rules = LoyaltyRules {
        web_coupon: Some(tessera_domain::loyalty::WebCouponRule {
            min_total_cents: 3_000,
            offer_id: "of-any".into(),
        }),
        ..LoyaltyRules::default()
    };
    assert!(
        s.put_loyalty_rules(rules, "operator".into(), String::new(), NOW)
            .await
            .unwrap()
            .is_some()
    );
}

pub(super) fn purchase(receipt: &str, card: &str, cents: u64) -> TillOp {
    TillOp::Purchase {
        request: PurchaseRequest {
            receipt: receipt.into(),
            card_number: Some(card.into()),
            member_code: None,
            lines: vec![PurchaseLine {
                sku: "sencha".into(),
                category: Some("tea".into()),
                collection: None,
                quantity: 1,
                amount_cents: cents,
            }],
            total_cents: cents,
            occurred_offline_at: None,
        },
        occurred_ms: NOW,
    }
}

pub async fn purchases_returns_voids_and_corrections_keep_the_points(s: Backend) {
    seeded(&s).await;
    let rules = LoyaltyRules::default();
    assert!(s.loyalty_rule_versions(10).await.unwrap().is_empty());
    let first = s
        .put_loyalty_rules(rules.clone(), "operator".into(), String::new(), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.loyalty_rules().await.unwrap(), rules);
    // Every change is kept as a version, and the latest is in force.
    let generous = LoyaltyRules {
        points_per_euro: 3,
        ..rules.clone()
    };
    let second = s
        .put_loyalty_rules(
            generous.clone(),
            "ada@shop.example".into(),
            "x3".into(),
            NOW + 1,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(second > first);
    assert_eq!(s.loyalty_rules().await.unwrap(), generous);
    let versions = s.loyalty_rule_versions(10).await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.published_by.as_str(), v.note.as_str()))
            .collect::<Vec<_>>(),
        [(second, "ada@shop.example", "x3"), (first, "operator", "")]
    );
    assert_eq!(
        s.loyalty_rule_version(first).await.unwrap(),
        Some(rules.clone())
    );
    assert_eq!(s.loyalty_rule_version(second + 1).await.unwrap(), None);
    // A web coupon for an offer that does not exist: refused, nothing written.
    let refused = LoyaltyRules {
        web_coupon: Some(tessera_domain::loyalty::WebCouponRule {
            min_total_cents: 1,
            offer_id: "of-nope".into(),
        }),
        ..rules.clone()
    };
    assert_eq!(
        s.put_loyalty_rules(refused, "operator".into(), String::new(), NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.loyalty_rule_versions(10).await.unwrap().len(), 2);
    s.put_loyalty_rules(rules.clone(), "operator".into(), String::new(), NOW)
        .await
        .unwrap()
        .unwrap();
    let m = enrol(&s, 1).await;
    let t = till(&s, "st-a", 1).await;
    let op = |key: &str, op: TillOp| {
        let (s, t, key) = (s.clone(), t.clone(), key.to_owned());
        async move { till_op(&s, &t, &key, op).await }
    };
    // One point per euro at the first tier.
    let bought = op("key-buy-0001", purchase("R-1", "CARD-1", 4_000)).await;
    assert_eq!(
        (
            bought["points_earned"].as_u64(),
            bought["member_id"].as_str()
        ),
        (Some(40), Some(m.as_str()))
    );
    let second = op("key-buy-0002", purchase("R-2", "CARD-1", 1_000)).await;
    assert_eq!(second["points_balance"], 50);
    // Half of R-1 brought back: half its points taken back.
    let returned = op(
        "key-return-01",
        TillOp::Return {
            request: ReturnRequest {
                receipt: "R-1".into(),
                store_id: None,
                refunded_cents: 2_000,
            },
        },
    )
    .await;
    assert_eq!(returned["points_reversed"], 20);
    assert_eq!(returned["points_balance"], 30);
    // R-2 voided: its purchase and points undone.
    let voided = op(
        "key-void-0001",
        TillOp::Void {
            receipt: "R-2".into(),
            at_ms: NOW,
        },
    )
    .await;
    assert_eq!(
        (
            voided["purchase_voided"].as_bool(),
            voided["points_reversed"].as_u64()
        ),
        (Some(true), Some(10))
    );
    assert_eq!(s.member_state(m.clone()).await.unwrap().points_balance, 20);
    // A correction by an operator; never below zero.
    let adjust = |points: i64| PointsAdjustment {
        points,
        reason: "goodwill".into(),
    };
    assert_eq!(
        s.adjust_points(m.clone(), adjust(15), NOW).await.unwrap(),
        Some(Ok(35))
    );
    assert!(matches!(
        s.adjust_points(m.clone(), adjust(-1_000), NOW)
            .await
            .unwrap(),
        Some(Err(_))
    ));
    assert_eq!(
        s.adjust_points("m-nobody".into(), adjust(1), NOW)
            .await
            .unwrap(),
        None
    );
    // Points buy a reward coupon, once per key.
    let reward = json!({"type": "buy_reward", "offer_id": "of-reward"});
    let bought = mutate(&s, &m, "key-reward-01", reward.clone()).await;
    assert_eq!(answer(&bought).status, 200, "{:?}", answer(&bought));
    assert!(matches!(
        mutate(&s, &m, "key-reward-01", reward).await,
        MutationOutcome::Replayed(_)
    ));
    let state = s.member_state(m.clone()).await.unwrap();
    assert_eq!(state.points_balance, 15);
    assert!(state.wallet.iter().any(|c| c.offer_id == "of-reward"));

    assert!(
        s.set_birthday(m.clone(), Some("05-17".into()))
            .await
            .unwrap()
    );
    assert!(s.set_birthday(m, None).await.unwrap());
    assert!(!s.set_birthday("m-nobody".into(), None).await.unwrap());
}

pub async fn challenges_are_stored_and_reported_events_evaluated(s: Backend) {
    seeded(&s).await;
    assert_eq!(s.challenge_rules().await.unwrap(), None);
    let rules: RuleSet = serde_json::from_value(json!({"version": 1, "challenges": [{
        "id": "two-reviews", "title": "Two reviews this month",
        "window": {"type": "calendar_month"},
        "goal": {"type": "count", "target": 2, "filter": {"kinds": ["review_posted"]}},
        "reward": {"type": "points", "points": 100}}]}))
    .unwrap();
    s.put_challenge_rules(rules.clone()).await.unwrap();
    assert_eq!(s.challenge_rules().await.unwrap(), Some(rules));
    let m = enrol(&s, 1).await;
    let review = |id: &str, at_ms: i64| RuleEvent {
        event_id: id.into(),
        kind: RuleEventKind::ReviewPosted,
        at_ms,
        store_id: None,
        channel: None,
        amount_cents: 0,
        lines: Vec::new(),
    };
    let events = vec![
        review("rv-1", NOW - 7_200_000),
        review("rv-2", NOW - 3_600_000),
    ];
    let first = s
        .ingest_rule_events(m.clone(), events.clone(), NOW)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((first.accepted, first.rewards_paid), (2, 1));
    // Reported again: nothing new, nothing paid twice.
    let again = s
        .ingest_rule_events(m.clone(), events, NOW)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((again.accepted, again.rewards_paid), (0, 0));
    assert_eq!(s.member_state(m).await.unwrap().points_balance, 100);
    assert!(
        s.ingest_rule_events("m-nobody".into(), vec![], NOW)
            .await
            .unwrap()
            .is_none()
    );
}

/// A void undoes everything the shop recorded under the receipt: the coupon redeemed with it is
/// usable again, and the web coupon the purchase earned is revoked.
pub async fn a_void_restores_coupons_and_revokes_the_web_coupon(s: Backend) {
    use tessera_domain::api::CouponState;
    seeded(&s).await;
    with_web_coupon(&s).await;
    let m = enrol(&s, 1).await;
    let t = till(&s, "st-a", 1).await;
    let (claims, shop) = clip(&s, &m, "of-cafe", "st-a").await;
    let redeemed = redeem(&s, &t, "key-r9-0001", &claims, &shop, None).await;
    assert_eq!(answer(&redeemed).status, 200);
    let receipt = "R-key-r9-0001";
    let bought = s
        .apply_till_op(
            t.clone(),
            "key-buy-r9-01".into(),
            "h-buy".into(),
            purchase(receipt, "CARD-1", 5_000),
            NOW,
        )
        .await
        .unwrap();
    assert!(body(answer(&bought))["web_coupon"].is_string());
    let state = |s: Backend, m: String| async move { s.member_state(m).await.unwrap() };
    let web = state(s.clone(), m.clone())
        .await
        .wallet
        .into_iter()
        .find(|c| c.offer_id == "of-any")
        .expect("the web coupon");
    let voided = s
        .apply_till_op(
            t,
            "key-void-r9-1".into(),
            "h-void".into(),
            TillOp::Void {
                receipt: receipt.into(),
                at_ms: NOW,
            },
            NOW,
        )
        .await
        .unwrap();
    let report = body(answer(&voided));
    assert_eq!(report["coupons_restored"], json!([claims.coupon_id]));
    assert_eq!(report["purchase_voided"], true);
    let wallet = state(s, m).await.wallet;
    let of = |id: &str| {
        wallet
            .iter()
            .find(|c| c.coupon_id == id)
            .unwrap()
            .state
            .clone()
    };
    // Usable again (the state is read at the wall clock, long after the suite's NOW: a coupon
    // no longer redeemed shows as expired then, never as redeemed).
    assert!(
        matches!(
            of(&claims.coupon_id),
            CouponState::Available | CouponState::Expired
        ),
        "{:?}",
        of(&claims.coupon_id)
    );
    assert_eq!(of(&web.coupon_id), CouponState::Revoked);
}

/// Points spent and earned for one member by many requests at once: every spend is paid from
/// lots that still hold the points, no update is lost, and the balance stays the sum of the live
/// lots. (A backend that let two transactions read the same lots would spend them twice, or
/// fail with an error instead of a refusal.)
pub async fn concurrent_spends_and_earnings_lose_no_update(s: Backend) {
    seeded(&s).await;
    assert!(
        s.put_loyalty_rules(
            LoyaltyRules::default(),
            "operator".into(),
            String::new(),
            NOW
        )
        .await
        .unwrap()
        .is_some()
    );
    let m = enrol(&s, 1).await;
    let start = PointsAdjustment {
        points: 100,
        reason: "welcome".into(),
    };
    assert_eq!(
        s.adjust_points(m.clone(), start, NOW).await.unwrap(),
        Some(Ok(100))
    );
    const BUYS: usize = 12;
    const PURCHASES: usize = 8;
    let mut tasks = Vec::new();
    for i in 0..BUYS {
        let (s, m) = (s.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = mutate(
                &s,
                &m,
                &format!("key-spend-{i:03}"),
                json!({"type": "buy_reward", "offer_id": "of-reward"}),
            )
            .await;
            let a = answer(&outcome).clone();
            assert!(
                a.status == 200 || a.status == 409 || a.status == 422,
                "a spend is applied or refused, never failed: {a:?}"
            );
            a.status == 200
        }));
    }
    for i in 0..PURCHASES {
        // A till each: purchases from several tills at once.
        let t = till(&s, "st-a", i as u32).await;
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("key-earn-{i:03}");
            let outcome = s
                .apply_till_op(
                    t,
                    key.clone(),
                    format!("h-{key}"),
                    purchase(&format!("R-{i}"), "CARD-1", 1_000),
                    NOW,
                )
                .await
                .unwrap();
            assert_eq!(answer(&outcome).status, 200, "{:?}", answer(&outcome));
            false
        }));
    }
    let mut bought = 0i64;
    for task in tasks {
        bought += i64::from(task.await.expect("a request"));
    }
    assert!(
        bought >= 5,
        "the first 100 points buy at least five rewards"
    );
    let state = s.member_state(m.clone()).await.unwrap();
    let expected = 100 + 10 * PURCHASES as i64 - 20 * bought;
    assert_eq!(state.points_balance as i64, expected, "bought {bought}");
    let rewards = state
        .wallet
        .iter()
        .filter(|c| c.offer_id == "of-reward")
        .count();
    assert_eq!(rewards as i64, bought);
    let member = m.clone();
    let (balance, in_lots, qualifying) = crate::storage::read(&*s, move |repo| {
        let lots = repo.live_lots(&member, NOW, u64::MAX)?;
        Ok((
            repo.balance(&member)?,
            lots.iter().map(|l| l.remaining).sum::<u64>(),
            repo.qualifying_before(&member, NOW + 1)?,
        ))
    })
    .await
    .unwrap();
    assert_eq!(
        (balance as i64, in_lots as i64),
        (expected, expected),
        "the balance is what the live lots hold"
    );
    // The running total of qualifying points counts every purchase once (each entry's total
    // read the one before it: two purchases that read the same one would lose one).
    assert_eq!(qualifying, 10 * PURCHASES as i64);
}

/// Expired points are taken out of members who do not come back by the lapse job, a page of
/// members at a time, each once.
pub async fn lapses_reach_members_who_do_not_come_back(s: Backend) {
    seeded(&s).await;
    let rules = LoyaltyRules {
        points_validity_days: 30,
        ..LoyaltyRules::default()
    };
    assert!(
        s.put_loyalty_rules(rules, "operator".into(), String::new(), NOW)
            .await
            .unwrap()
            .is_some()
    );
    let (m1, m2) = (enrol(&s, 1).await, enrol(&s, 2).await);
    let t = till(&s, "st-a", 1).await;
    for (n, card, cents) in [(1, "CARD-1", 4_000), (2, "CARD-2", 1_000)] {
        let key = format!("key-lapse-{n}");
        let outcome = s
            .apply_till_op(
                t.clone(),
                key.clone(),
                format!("h-{key}"),
                purchase(&format!("R-{n}"), card, cents),
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(answer(&outcome).status, 200, "{:?}", answer(&outcome));
    }
    const DAY: i64 = 86_400_000;
    assert_eq!(s.lapse_points(NOW + 29 * DAY, 100).await.unwrap(), 0);
    let later = NOW + 31 * DAY;
    assert_eq!(s.lapse_points(later, 1).await.unwrap(), 1, "a page of one");
    assert_eq!(s.lapse_points(later, 1).await.unwrap(), 1);
    assert_eq!(
        s.lapse_points(later, 1).await.unwrap(),
        0,
        "each member once"
    );
    for (m, lapsed) in [(m1, 40), (m2, 10)] {
        let member = m.clone();
        let (balance, entries) = crate::storage::read(&*s, move |repo| {
            Ok((repo.balance(&member)?, repo.entries(&member, 10)?))
        })
        .await
        .unwrap();
        assert_eq!(balance, 0, "{m}");
        assert!(
            entries
                .iter()
                .any(|e| e.points == -lapsed && e.reason == "expired"),
            "{m}: {entries:?}"
        );
    }
}
