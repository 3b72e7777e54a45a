//! The analytics on a fixture small enough to compute by hand, and on a generated programme.

use tessera_analytics::{History, Sale, analyse, auc, month_of, month_text, synthetic};
use tessera_domain::api::{AnalyticsSettings, RfmClass};

fn day(y: i16, m: i8, d: i8) -> i64 {
    i64::from((jiff::civil::date(y, m, d) - jiff::civil::date(1970, 1, 1)).get_days())
}

fn sale(y: i16, m: i8, d: i8, net_cents: i64) -> Sale {
    Sale {
        day: day(y, m, d),
        net_cents,
        points: net_cents / 100,
    }
}

fn fixture() -> Vec<History> {
    vec![
        History {
            member_id: "a".into(),
            enrolled_day: day(2026, 1, 10),
            sales: vec![
                sale(2026, 2, 1, 5000),
                sale(2026, 4, 15, 12_000),
                sale(2026, 5, 20, 15_000),
                sale(2026, 6, 10, 20_000),
                sale(2026, 6, 25, 10_000),
            ],
        },
        History {
            member_id: "b".into(),
            enrolled_day: day(2025, 9, 5),
            sales: vec![sale(2025, 10, 1, 3000), sale(2026, 3, 3, 4000)],
        },
        History {
            member_id: "c".into(),
            enrolled_day: day(2026, 6, 15),
            sales: vec![],
        },
        History {
            member_id: "d".into(),
            enrolled_day: day(2026, 5, 2),
            // Returned in full (nothing paid): not a purchase. After the day: not counted.
            sales: vec![
                sale(2026, 6, 1, 0),
                sale(2026, 6, 30, 2500),
                sale(2026, 7, 1, 9900),
            ],
        },
    ]
}

#[test]
fn months() {
    assert_eq!(month_text(month_of(day(2026, 7, 1))), "2026-07");
    assert_eq!(month_text(month_of(day(2026, 6, 30))), "2026-06");
    assert_eq!(month_text(month_of(day(1969, 12, 31))), "1969-12");
}

#[test]
fn by_hand() {
    let a = analyse(
        &fixture(),
        &AnalyticsSettings::default(),
        day(2026, 7, 1),
        "2026-07-01T03:00:00Z".into(),
    );
    let r = &a.report;
    assert_eq!(
        (r.members, r.buyers, r.active_30, r.active_90),
        (4, 3, 2, 2)
    );
    // a: 10 and 25 June (and 15 April, 20 May within 90 days); d: 30 June (1 July is the day
    // itself, not counted).
    assert_eq!((r.visits_30, r.visits_90), (3, 5));

    let s = |id: &str| a.scores.iter().find(|s| s.member_id == id).unwrap();
    // Recency 6, 120, 1 days; frequency 5, 2, 1; spend 620, 70, 25 €: scores are
    // 1 + ⌊5 × (buyers strictly worse + ½) / 3⌋ (no ties).
    let (sa, sb, sd) = (s("a"), s("b"), s("d"));
    assert_eq!(
        (sa.recency_days, sa.purchases, sa.spend_cents),
        (Some(6), 5, 62_000)
    );
    assert_eq!((sa.r, sa.f, sa.m, sa.rfm_class), (3, 5, 5, RfmClass::Loyal));
    assert_eq!((sb.recency_days, sb.r, sb.f, sb.m), (Some(120), 1, 3, 3));
    assert_eq!(sb.rfm_class, RfmClass::AtRisk);
    assert_eq!(
        (sd.recency_days, sd.purchases, sd.spend_cents),
        (Some(1), 1, 2500)
    );
    assert_eq!(
        (sd.r, sd.f, sd.m, sd.rfm_class),
        (5, 1, 1, RfmClass::Promising)
    );
    assert_eq!((s("c").r, s("c").rfm_class), (0, RfmClass::NoPurchase));
    // VIP: under 30 days, over 3 purchases and 500 € in 182 days; lapsed: 90 days or more.
    assert_eq!(sa.segments, ["vip"]);
    assert_eq!(sb.segments, ["lapsed"]);
    assert!(sd.segments.is_empty() && s("c").segments.is_empty());
    let count = |n: &str| r.segments.iter().find(|s| s.name == n).unwrap().members;
    assert_eq!(
        (count("vip"), count("lapsed"), count("likely_to_churn")),
        (1, 1, 0)
    );
    let class = |c: RfmClass| r.rfm.iter().find(|x| x.class == c).unwrap().members;
    assert_eq!(class(RfmClass::AtRisk), 1);
    assert_eq!(class(RfmClass::Loyal), 1);
    assert_eq!(class(RfmClass::NoPurchase), 1);

    // Retention: June: May's 1 (a), June's 2 (a, d), 1 new (d): (2 − 1) / 1.
    let month = |m: &str| r.retention.iter().find(|p| p.month == m).unwrap();
    assert_eq!(r.retention.len(), 12);
    assert_eq!(r.retention[0].month, "2025-07");
    let june = month("2026-06");
    assert_eq!(
        (june.at_start, june.at_end, june.new, june.rate),
        (1, 2, 1, Some(1.0))
    );
    let feb = month("2026-02");
    assert_eq!(
        (feb.at_start, feb.at_end, feb.new, feb.rate),
        (0, 1, 1, None)
    );
    let april = month("2026-04");
    assert_eq!((april.at_start, april.at_end, april.new), (1, 1, 0));
    let july = month("2025-07");
    assert_eq!((july.at_start, july.at_end, july.rate), (0, 0, None));

    // Cohorts by month of enrolment.
    let cohort = |m: &str| r.cohorts.iter().find(|c| c.month == m).unwrap();
    assert_eq!(r.cohorts.len(), 12);
    assert_eq!(cohort("2026-01").active, [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
    assert_eq!(
        cohort("2025-09").active,
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(cohort("2026-05").active, [0.0, 1.0]);
    assert_eq!(
        (cohort("2026-06").members, cohort("2026-06").active.clone()),
        (1, vec![0.0])
    );
    assert_eq!(cohort("2025-08").members, 0);

    // CLV: 8 purchases, 715 € by 3 buyers, no year before: a year's relationship.
    let clv = &r.clv;
    assert_eq!(clv.average_basket_cents, 71_500.0 / 8.0);
    assert_eq!(clv.purchases_per_year, 8.0 / 3.0);
    assert_eq!((clv.annual_retention, clv.lifespan_years), (None, 1.0));
    assert!((clv.clv_cents - 71_500.0 / 3.0).abs() < 1e-9);
    // 715 points at a cent each over 8 purchases; 30 % margin.
    assert_eq!(clv.reward_cost_per_purchase_cents, 715.0 / 8.0);
    let margin = (71_500.0 / 8.0 * 0.3 - 715.0 / 8.0) * 8.0 / 3.0;
    assert!((clv.margin_clv_cents - margin).abs() < 1e-9);

    // Four members are too few for a model: said, and no risk given.
    assert!(r.churn.is_none());
    assert!(
        r.churn_note
            .as_deref()
            .unwrap()
            .contains("too little history")
    );
    assert!(a.scores.iter().all(|s| s.churn_risk.is_none()));
}

#[test]
fn a_year_before_last_gives_the_relationship_length() {
    let as_of = day(2026, 7, 1);
    // Four members bought in the year before last; three of them again last year.
    let h = |id: &str, days: &[i64]| History {
        member_id: id.into(),
        enrolled_day: as_of - 800,
        sales: days
            .iter()
            .map(|d| Sale {
                day: as_of - d,
                net_cents: 1000,
                points: 0,
            })
            .collect(),
    };
    let members = [
        h("a", &[700, 10]),
        h("b", &[600, 20]),
        h("c", &[500, 300]),
        h("d", &[400]),
    ];
    let r = analyse(
        &members,
        &AnalyticsSettings::default(),
        as_of,
        String::new(),
    )
    .report;
    assert_eq!(r.clv.annual_retention, Some(0.75));
    assert_eq!(r.clv.lifespan_years, 4.0);
    assert_eq!(r.clv.clv_cents, 1000.0 * 1.0 * 4.0);
}

#[test]
fn members_tied_share_a_middle_score() {
    let as_of = day(2026, 7, 1);
    let h = |id: &str| History {
        member_id: id.into(),
        enrolled_day: as_of - 10,
        sales: vec![Sale {
            day: as_of - 1,
            net_cents: 1000,
            points: 0,
        }],
    };
    let a = analyse(
        &[h("a"), h("b"), h("c")],
        &AnalyticsSettings::default(),
        as_of,
        String::new(),
    );
    for s in &a.scores {
        assert_eq!(
            (s.r, s.f, s.m, s.rfm_class),
            (3, 3, 3, RfmClass::Loyal),
            "{s:?}"
        );
    }
}

#[test]
fn area_under_the_curve() {
    assert_eq!(
        auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
        Some(0.75)
    );
    // A tie between a positive and a negative counts half.
    assert_eq!(auc(&[1.0, 1.0, 2.0], &[false, true, true]), Some(0.75));
    assert_eq!(auc(&[1.0, 2.0], &[true, true]), None);
}

#[test]
fn the_model_learns_more_than_recency() {
    let as_of = day(2026, 7, 1);
    let programme = synthetic::programme(20_000, as_of, 7);
    let a = analyse(
        &programme,
        &AnalyticsSettings::default(),
        as_of,
        String::new(),
    );
    let churn = a.report.churn.expect("a model");
    assert!(churn.training_members > 5_000, "{churn:?}");
    assert!(churn.auc > 0.75, "{churn:?}");
    assert!(churn.auc > churn.recency_auc, "{churn:?}");
    // Risk is given to those who bought in the last year, and is a probability.
    for s in &a.scores {
        let active = s.recency_days.is_some_and(|d| d <= 365);
        assert_eq!(s.churn_risk.is_some(), active, "{s:?}");
        assert!(s.churn_risk.is_none_or(|r| (0.0..=1.0).contains(&r)));
    }
    // Those long gone are more at risk than those who came yesterday.
    let mean = |f: &dyn Fn(u32) -> bool| {
        let v: Vec<f64> = a
            .scores
            .iter()
            .filter(|s| s.recency_days.is_some_and(f))
            .filter_map(|s| s.churn_risk)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean(&|d| d > 120) > mean(&|d| d <= 7) + 0.3);
}
