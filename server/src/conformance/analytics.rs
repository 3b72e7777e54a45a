//! Analytics read what the tills recorded (voids and full returns left out, returns netted),
//! publish a run's scores as one generation, keep a later run's when an earlier one ends last,
//! and forget an erased member.

use tessera_domain::api::{
    AnalyticsSettings, CampaignAudience, ReturnRequest, RfmClass, SegmentRule, day_of,
};
use tessera_domain::consent::{Decision, Purpose};

use super::money::{purchase, till};
use super::{Backend, DAY, NOW, enrol, seeded};
use crate::service::Services;
use crate::service::analytics::AnalyticsServices;
use crate::storage::{TillOp, read, write};

pub async fn analytics_read_the_tills_and_publish_by_generation(s: Backend) {
    seeded(&s).await;
    let (m1, m2, m3) = (enrol(&s, 1).await, enrol(&s, 2).await, enrol(&s, 3).await);
    let t = till(&s, "st-a", 1).await;
    let op = |key: &str, op: TillOp| {
        let (s, t, key) = (s.clone(), t.clone(), key.to_owned());
        async move {
            super::money::till_op(&s, &t, &key, op).await;
        }
    };
    let at = |receipt: &str, card: &str, cents: u64, days_ago: i64| {
        let mut p = purchase(receipt, card, cents);
        if let TillOp::Purchase { occurred_ms, .. } = &mut p {
            *occurred_ms = NOW - days_ago * DAY;
        }
        p
    };
    op("key-an-0001", at("R-1", "CARD-1", 4_000, 10)).await;
    op("key-an-0002", at("R-2", "CARD-1", 6_000, 5)).await;
    op("key-an-0003", at("R-3", "CARD-1", 3_000, 0)).await;
    op("key-an-0004", at("R-4", "CARD-1", 5_000, 0)).await;
    op("key-an-0005", at("R-5", "CARD-2", 1_000, 200)).await;
    op("key-an-0006", at("R-6", "CARD-2", 2_500, 100)).await;
    let refund = |receipt: &str, cents: u64| TillOp::Return {
        request: ReturnRequest {
            receipt: receipt.into(),
            store_id: None,
            refunded_cents: cents,
        },
    };
    op("key-an-0007", refund("R-1", 1_000)).await;
    // Returned in full: nothing was bought.
    op("key-an-0008", refund("R-6", 2_500)).await;
    let void = TillOp::Void {
        receipt: "R-4".into(),
        at_ms: NOW,
    };
    op("key-an-0009", void).await;

    // Members enrol on the server's clock: analyse two days after it.
    let now = jiff::Timestamp::now().as_millisecond() + 2 * DAY;
    // The run counts the day it runs on.
    let as_of = day_of(now) + 1;
    let histories = read(&*s, move |repo| repo.purchase_histories(as_of * DAY))
        .await
        .unwrap();
    let sales = |m: &str| {
        let h = histories.iter().find(|h| h.member_id == m).unwrap();
        h.sales
            .iter()
            .map(|x| (x.day, x.net_cents))
            .collect::<Vec<_>>()
    };
    let d = |days_ago: i64| day_of(NOW - days_ago * DAY);
    assert_eq!(histories.len(), 3);
    assert_eq!(sales(&m1), [(d(10), 3_000), (d(5), 6_000), (d(0), 3_000)]);
    assert_eq!(sales(&m2), [(d(200), 1_000)]);
    assert!(sales(&m3).is_empty());

    let big = SegmentRule {
        name: "big".into(),
        last_purchase_under_days: None,
        no_purchase_for_days: None,
        purchases_over: None,
        spend_over_cents: Some(10_000),
        churn_risk_at_least_percent: None,
        rfm_classes: vec![],
        window_days: 730,
    };
    let settings = AnalyticsSettings {
        segments: vec![big],
        ..AnalyticsSettings::default()
    };
    s.put_analytics_settings(settings.clone(), NOW)
        .await
        .unwrap();
    assert_eq!(s.analytics_settings().await.unwrap(), settings);

    assert_eq!(s.analytics_report().await.unwrap(), None);
    assert!(s.run_analysis(10, now).await.unwrap());
    let report = s.analytics_report().await.unwrap().expect("published");
    assert_eq!((report.members, report.buyers), (3, 2));
    assert_eq!(report.settings, settings);
    let score = |m: &str| {
        let (s, m) = (s.clone(), m.to_owned());
        async move { s.member_score(m).await.unwrap() }
    };
    let s1 = score(&m1).await.expect("scored");
    assert_eq!((s1.purchases, s1.spend_cents), (3, 12_000));
    assert_eq!(s1.recency_days, Some((as_of - d(0)) as u32));
    assert_eq!(s1.segments, ["big"]);
    let s2 = score(&m2).await.expect("scored");
    // Two buyers: the better one's mid-rank percentile is 3/4 (score 4), the other's 1/4 (2).
    assert_eq!((s2.purchases, s2.spend_cents, s2.r, s2.m), (1, 1_000, 2, 2));
    assert_eq!((s1.r, s1.f, s1.m), (4, 4, 4));
    assert_eq!(score(&m3).await.unwrap().rfm_class, RfmClass::NoPurchase);
    let members = |segment: &str| {
        let (s, segment) = (s.clone(), segment.to_owned());
        async move { s.segment_members(segment).await.unwrap() }
    };
    assert_eq!(members("big").await, [m1.as_str()]);
    assert_eq!(members("rfm:no_purchase").await, [m3.as_str()]);

    // A later run replaces the scores; the earlier generation's rows are deleted.
    let wider = AnalyticsSettings {
        segments: vec![SegmentRule {
            spend_over_cents: Some(500),
            ..settings.segments[0].clone()
        }],
        ..settings.clone()
    };
    s.put_analytics_settings(wider, NOW).await.unwrap();
    assert!(s.run_analysis(11, now).await.unwrap());
    assert_eq!(members("big").await, [m1.as_str(), m2.as_str()]);
    let left = write(&*s, |repo| repo.drop_old_scores(1_000))
        .await
        .unwrap();
    assert_eq!(
        left, 0,
        "generation 10's rows were deleted by its successor"
    );
    // An earlier run that ends last does not replace it.
    s.put_analytics_settings(settings.clone(), NOW)
        .await
        .unwrap();
    assert!(!s.run_analysis(9, now).await.unwrap());
    assert_eq!(members("big").await, [m1.as_str(), m2.as_str()]);
    assert_eq!(
        s.analytics_report()
            .await
            .unwrap()
            .unwrap()
            .settings
            .segments[0]
            .spend_over_cents,
        Some(500)
    );

    // Campaign audiences name segments and RFM classes, within consent: member 2 is in "big"
    // but gave none.
    for (n, m) in [(1, &m1), (3, &m3)] {
        let record = super::members::staff_record(
            &format!("c-an-{n}"),
            m,
            Purpose::MarketingOffers,
            Decision::Granted,
        );
        s.staff_consent(record, NOW)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let reach = |segments: &[&str]| {
        let s = s.clone();
        let audience = CampaignAudience {
            analytics_segments: segments.iter().map(|x| (*x).to_owned()).collect(),
            ..CampaignAudience::default()
        };
        async move { s.audience_count(audience).await.unwrap().members }
    };
    assert_eq!(reach(&[]).await, 2);
    assert_eq!(reach(&["big"]).await, 1);
    assert_eq!(reach(&["rfm:no_purchase"]).await, 1);
    assert_eq!(reach(&["big", "rfm:no_purchase"]).await, 2);
    assert_eq!(reach(&["nobody"]).await, 0);

    // Erased: no score, in no segment.
    s.erase(m2.clone(), NOW, "support-1".into()).await.unwrap();
    assert_eq!(score(&m2).await, None);
    assert_eq!(members("big").await, [m1.as_str()]);
}
