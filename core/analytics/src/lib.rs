//! The programme's analytics, computed from members' purchase histories with no I/O (issue #19):
//! RFM scores and classes, named segments, monthly retention, CLV (and its margin-aware
//! variant), cohorts by month of enrolment, and a churn-risk score per member from a logistic
//! regression (linfa) trained on the programme's own history and measured on a later period it
//! did not see, next to ranking by recency alone. The server runs it in a job and keeps its
//! answer (docs/analytics.md, docs/adr/0029); the phone library does not carry it.
//!
//! Days are days since the Unix epoch (UTC), as the KPIs count them.

use std::time::Instant;

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use tessera_domain::api::{
    AnalyticsReport, AnalyticsSettings, ChurnReport, Clv, CohortRow, FeatureWeight, MemberScore,
    RetentionPeriod, RfmClass, RfmClassCount, SegmentCount, SegmentFacts, day_text,
};

/// A purchase as the analysis counts it: its day, what was paid net of returns, the points it
/// earned. Voided purchases are not sales; a purchase returned in full (nothing paid) is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sale {
    pub day: i64,
    pub net_cents: i64,
    pub points: i64,
}

/// A member and their purchases, by day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub member_id: String,
    pub enrolled_day: i64,
    pub sales: Vec<Sale>,
}

/// The report and each member's scores.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub report: AnalyticsReport,
    pub scores: Vec<MemberScore>,
}

/// The churn model's features, each computed as of a day from the purchases before it.
pub const FEATURES: [&str; 8] = [
    "log_recency_days",
    "log_purchases_30_days",
    "log_purchases_90_days",
    "log_purchases_365_days",
    "log_spend_365_days",
    "log_tenure_days",
    "log_overdue",
    "trend_90_days_vs_year",
];

/// The fewest members of each outcome (churned, stayed) to train or test on.
pub const MIN_PER_CLASS: usize = 20;
/// The longest relationship CLV assumes, in years (a retention near 1 would make it endless).
pub const MAX_LIFESPAN_YEARS: f64 = 10.0;

/// A member's sales before `as_of` that count, sorted by day.
fn counted(h: &History, as_of: i64) -> Vec<Sale> {
    let mut sales: Vec<Sale> = h
        .sales
        .iter()
        .copied()
        .filter(|s| s.day < as_of && s.net_cents > 0)
        .collect();
    if !sales.is_sorted_by_key(|s| s.day) {
        sales.sort_by_key(|s| s.day);
    }
    sales
}

/// Purchases and spend on days `from..to` of sales sorted by day.
fn window(sales: &[Sale], from: i64, to: i64) -> (u32, i64) {
    let a = sales.partition_point(|s| s.day < from);
    let b = sales.partition_point(|s| s.day < to);
    let w = &sales[a..b];
    (w.len() as u32, w.iter().map(|s| s.net_cents).sum())
}

/// The calendar month of a day, as months since year 0 (`year * 12 + month - 1`).
pub fn month_of(day: i64) -> i64 {
    let date = jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(day))
        .unwrap_or(jiff::civil::date(1970, 1, 1));
    i64::from(date.year()) * 12 + i64::from(date.month()) - 1
}

/// `YYYY-MM` of [`month_of`].
pub fn month_text(month: i64) -> String {
    format!(
        "{:04}-{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// Scores 1–5 by quintile of the mid-rank percentile, `(worse + ties / 2) / members` (ties:
/// the members with the same value, this one included): `1 + ⌊5 × percentile⌋`. Members tied
/// share a score, and a programme where everyone is tied scores them all 3, not 1.
fn quintile(worse: usize, ties: usize, n: usize) -> u8 {
    (1 + (10 * worse + 5 * ties) / (2 * n.max(1))).min(5) as u8
}

/// How many of `sorted` are below `v` and equal to it.
fn rank<T: Ord>(sorted: &[T], v: &T) -> (usize, usize) {
    let below = sorted.partition_point(|x| x < v);
    let through = sorted.partition_point(|x| x <= v);
    (below, through - below)
}

/// Area under the ROC curve of `scores` (higher: more likely positive) for `positive`: the
/// probability that a positive ranks above a negative, ties counting half (the Mann–Whitney
/// statistic with average ranks). `None` without both outcomes.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n = scores.len().min(positive.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut positives) = (0.0f64, 0usize);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 share their average.
        let rank = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            if positive[k] {
                rank_sum += rank;
                positives += 1;
            }
        }
        i = j + 1;
    }
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// The churn model's features of a member as of `day` (sales sorted by day), or `None` if they
/// bought nothing in the year before it (long gone: not a question for the model).
pub fn features(sales: &[Sale], enrolled_day: i64, day: i64) -> Option<[f64; 8]> {
    let before = &sales[..sales.partition_point(|s| s.day < day)];
    let (n365, spend365) = window(before, day - 365, day);
    if n365 == 0 {
        return None;
    }
    let (n30, _) = window(before, day - 30, day);
    let (n90, _) = window(before, day - 90, day);
    let first = before.first()?.day;
    let last = before.last()?.day;
    let recency = (day - last) as f64;
    let tenure = (day - enrolled_day.min(first)).max(1) as f64;
    let gap = if before.len() >= 2 {
        (last - first) as f64 / (before.len() - 1) as f64
    } else {
        (day - first) as f64
    };
    let overdue = recency / gap.max(1.0);
    let trend = (f64::from(n90) + 1.0) / (f64::from(n365) / 4.0 + 1.0);
    Some([
        recency.ln_1p(),
        f64::from(n30).ln_1p(),
        f64::from(n90).ln_1p(),
        f64::from(n365).ln_1p(),
        (spend365 as f64 / 100.0).ln_1p(),
        tenure.ln_1p(),
        overdue.ln_1p(),
        trend,
    ])
}

/// Whether a member bought nothing on days `day..day + horizon`.
fn churned(sales: &[Sale], day: i64, horizon: i64) -> bool {
    window(sales, day, day + horizon).0 == 0
}

/// Features (and churn outcomes, and days since the last purchase) of every member active in
/// the year before `day`.
struct Sample {
    rows: Vec<[f64; 8]>,
    churned: Vec<bool>,
    recency: Vec<f64>,
}

fn sample(histories: &[(&History, Vec<Sale>)], day: i64, horizon: i64) -> Sample {
    let mut s = Sample {
        rows: vec![],
        churned: vec![],
        recency: vec![],
    };
    for (h, sales) in histories {
        if let Some(f) = features(sales, h.enrolled_day, day) {
            s.rows.push(f);
            s.churned.push(churned(sales, day, horizon));
            let last = sales[..sales.partition_point(|x| x.day < day)]
                .last()
                .map_or(0, |x| x.day);
            s.recency.push((day - last) as f64);
        }
    }
    s
}

/// A fitted churn model: standardisation and the logistic regression.
struct ChurnModel {
    mean: [f64; 8],
    scale: [f64; 8],
    fitted: linfa_logistic::FittedLogisticRegression<f64, bool>,
}

impl ChurnModel {
    fn matrix(&self, rows: &[[f64; 8]]) -> Array2<f64> {
        Array2::from_shape_fn((rows.len(), 8), |(i, j)| {
            (rows[i][j] - self.mean[j]) / self.scale[j]
        })
    }

    /// The probability of churning of each row.
    fn risk(&self, rows: &[[f64; 8]]) -> Vec<f64> {
        let p = self.fitted.predict_probabilities(&self.matrix(rows));
        // The model's probability is of its larger class.
        if self.fitted.labels().pos.class {
            p.to_vec()
        } else {
            p.iter().map(|x| 1.0 - x).collect()
        }
    }

    fn weights(&self) -> Vec<FeatureWeight> {
        let sign = if self.fitted.labels().pos.class {
            1.0
        } else {
            -1.0
        };
        FEATURES
            .iter()
            .zip(self.fitted.params().iter())
            .map(|(f, w)| FeatureWeight {
                feature: (*f).to_owned(),
                weight: sign * w,
            })
            .collect()
    }
}

fn enough(churned: &[bool]) -> bool {
    let yes = churned.iter().filter(|c| **c).count();
    yes >= MIN_PER_CLASS && churned.len() - yes >= MIN_PER_CLASS
}

/// Train on features as of `day` with the outcomes of the horizon after it.
fn train(s: &Sample) -> Result<ChurnModel, String> {
    let n = s.rows.len() as f64;
    let mut mean = [0.0; 8];
    let mut scale = [1.0; 8];
    for j in 0..8 {
        mean[j] = s.rows.iter().map(|r| r[j]).sum::<f64>() / n;
        let var = s.rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
        if var > 1e-12 {
            scale[j] = var.sqrt();
        }
    }
    let x = Array2::from_shape_fn((s.rows.len(), 8), |(i, j)| {
        (s.rows[i][j] - mean[j]) / scale[j]
    });
    let y = Array1::from_vec(s.churned.clone());
    let fitted = LogisticRegression::default()
        .max_iterations(200)
        .fit(&Dataset::new(x, y))
        .map_err(|e| format!("the churn model did not fit: {e}"))?;
    Ok(ChurnModel {
        mean,
        scale,
        fitted,
    })
}

/// The churn model trained on the period `2 × horizon` before `as_of` and tested on the one
/// `horizon` before it, with its report; or why there is none.
fn churn_model(
    histories: &[(&History, Vec<Sale>)],
    horizon: i64,
    as_of: i64,
) -> Result<(ChurnModel, ChurnReport), String> {
    let trained_on = as_of - 2 * horizon;
    let tested_on = as_of - horizon;
    let train_set = sample(histories, trained_on, horizon);
    let test_set = sample(histories, tested_on, horizon);
    if !enough(&train_set.churned) || !enough(&test_set.churned) {
        return Err(format!(
            "too little history to train on: at least {MIN_PER_CLASS} members who churned and \
             {MIN_PER_CLASS} who stayed are needed on {} and on {}",
            day_text(trained_on),
            day_text(tested_on)
        ));
    }
    let started = Instant::now();
    let model = train(&train_set)?;
    let training_ms = started.elapsed().as_millis() as u64;
    let risk = model.risk(&test_set.rows);
    let churn_rate =
        test_set.churned.iter().filter(|c| **c).count() as f64 / test_set.churned.len() as f64;
    let report = ChurnReport {
        horizon_days: horizon as u32,
        trained_on: day_text(trained_on),
        tested_on: day_text(tested_on),
        training_members: train_set.rows.len() as u64,
        test_members: test_set.rows.len() as u64,
        test_churn_rate: churn_rate,
        auc: auc(&risk, &test_set.churned).unwrap_or(0.5),
        recency_auc: auc(&test_set.recency, &test_set.churned).unwrap_or(0.5),
        training_ms,
        weights: model.weights(),
    };
    Ok((model, report))
}

/// The churn model's report alone: trained on the period `2 × horizon` before `as_of`, tested
/// on the one after (what the benchmark measures).
pub fn churn_report(
    histories: &[History],
    horizon_days: u32,
    as_of: i64,
) -> Result<ChurnReport, String> {
    let members: Vec<(&History, Vec<Sale>)> =
        histories.iter().map(|h| (h, counted(h, as_of))).collect();
    churn_model(&members, i64::from(horizon_days), as_of).map(|(_, report)| report)
}

/// Analyse the programme as of `as_of` (purchases before that day count).
pub fn analyse(
    histories: &[History],
    settings: &AnalyticsSettings,
    as_of: i64,
    computed_at: String,
) -> Analysis {
    let members: Vec<(&History, Vec<Sale>)> =
        histories.iter().map(|h| (h, counted(h, as_of))).collect();
    let horizon = i64::from(settings.churn_horizon_days);
    let rfm_from = as_of - i64::from(settings.rfm_window_days);

    // RFM among the members who bought.
    let mut recency = vec![];
    let mut frequency = vec![];
    let mut monetary = vec![];
    for (_, sales) in &members {
        if let Some(last) = sales.last() {
            let (n, spend) = window(sales, rfm_from, as_of);
            recency.push(as_of - last.day);
            frequency.push(n);
            monetary.push(spend);
        }
    }
    let buyers = recency.len();
    recency.sort_unstable();
    frequency.sort_unstable();
    monetary.sort_unstable();

    // Churn: train, test, then score every member active in the last year.
    let (model, churn, churn_note) = match churn_model(&members, horizon, as_of) {
        Ok((model, report)) => (Some(model), Some(report), None),
        Err(why) => (None, None, Some(why)),
    };
    let mut scored_rows = vec![];
    let mut scored_index = vec![];
    if model.is_some() {
        for (i, (h, sales)) in members.iter().enumerate() {
            if let Some(f) = features(sales, h.enrolled_day, as_of) {
                scored_rows.push(f);
                scored_index.push(i);
            }
        }
    }
    let mut risks: Vec<Option<f64>> = vec![None; members.len()];
    if let Some(model) = &model {
        for (i, r) in scored_index.into_iter().zip(model.risk(&scored_rows)) {
            risks[i] = Some(r);
        }
    }

    let mut scores = Vec::with_capacity(members.len());
    let mut classes: std::collections::BTreeMap<RfmClass, (u64, i64)> =
        RfmClass::ALL.into_iter().map(|c| (c, (0, 0))).collect();
    let mut segment_counts = vec![0u64; settings.segments.len()];
    let (mut active_30, mut active_90) = (0, 0);
    let (mut visits_30, mut visits_90) = (0u64, 0u64);
    for (i, (h, sales)) in members.iter().enumerate() {
        let (purchases, spend_cents) = window(sales, rfm_from, as_of);
        let rec = sales.last().map(|s| as_of - s.day);
        let (r, f, m) = match rec {
            Some(rec) => (
                {
                    // Worse recency is more days.
                    let (below, ties) = rank(&recency, &rec);
                    quintile(buyers - below - ties, ties, buyers)
                },
                {
                    let (below, ties) = rank(&frequency, &purchases);
                    quintile(below, ties, buyers)
                },
                {
                    let (below, ties) = rank(&monetary, &spend_cents);
                    quintile(below, ties, buyers)
                },
            ),
            None => (0, 0, 0),
        };
        let rfm_class = if rec.is_some() {
            RfmClass::of(r, f)
        } else {
            RfmClass::NoPurchase
        };
        active_30 += u64::from(rec.is_some_and(|d| d <= 30));
        active_90 += u64::from(rec.is_some_and(|d| d <= 90));
        visits_30 += u64::from(window(sales, as_of - 30, as_of).0);
        visits_90 += u64::from(window(sales, as_of - 90, as_of).0);
        let c = classes.entry(rfm_class).or_default();
        c.0 += 1;
        c.1 += spend_cents;
        let churn_risk = risks[i];
        let mut segments = vec![];
        for (k, rule) in settings.segments.iter().enumerate() {
            let (n, spend) = window(sales, as_of - i64::from(rule.window_days), as_of);
            let facts = SegmentFacts {
                recency_days: rec.map(|d| d as u32),
                purchases: n,
                spend_cents: spend,
                churn_risk,
                rfm_class,
            };
            if rule.holds(&facts) {
                segments.push(rule.name.clone());
                segment_counts[k] += 1;
            }
        }
        scores.push(MemberScore {
            member_id: h.member_id.clone(),
            recency_days: rec.map(|d| d as u32),
            purchases,
            spend_cents,
            r,
            f,
            m,
            rfm_class,
            segments,
            churn_risk,
        });
    }

    let report = AnalyticsReport {
        as_of: day_text(as_of),
        computed_at,
        settings: settings.clone(),
        members: members.len() as u64,
        buyers: buyers as u64,
        active_30,
        active_90,
        visits_30,
        visits_90,
        rfm: classes
            .into_iter()
            .map(|(class, (members, spend_cents))| RfmClassCount {
                class,
                members,
                spend_cents,
            })
            .collect(),
        segments: settings
            .segments
            .iter()
            .zip(segment_counts)
            .map(|(s, members)| SegmentCount {
                name: s.name.clone(),
                members,
            })
            .collect(),
        retention: retention(&members, as_of),
        clv: clv(&members, settings, as_of),
        cohorts: cohorts(&members, as_of),
        churn,
        churn_note,
    };
    Analysis { report, scores }
}

/// The twelve months before the one of `as_of`: (first, last).
fn months(as_of: i64) -> (i64, i64) {
    let last = month_of(as_of) - 1;
    (last - 11, last)
}

/// Bit `k` set: the member bought in month `first + k` (`first` to `first + 12`).
fn active_months(sales: &[Sale], first: i64) -> u16 {
    let mut bits = 0u16;
    for s in sales {
        let k = month_of(s.day) - first;
        if (0..13).contains(&k) {
            bits |= 1 << k;
        }
    }
    bits
}

fn retention(members: &[(&History, Vec<Sale>)], as_of: i64) -> Vec<RetentionPeriod> {
    let (m0, m_last) = months(as_of);
    // Bits from the month before m0.
    let base = m0 - 1;
    let rows: Vec<(u16, Option<i64>)> = members
        .iter()
        .map(|(_, s)| (active_months(s, base), s.first().map(|x| month_of(x.day))))
        .collect();
    (m0..=m_last)
        .map(|m| {
            let (k, prev) = (m - base, m - base - 1);
            let at_start = rows.iter().filter(|(b, _)| b & (1 << prev) != 0).count() as u64;
            let at_end = rows.iter().filter(|(b, _)| b & (1 << k) != 0).count() as u64;
            let new = rows
                .iter()
                .filter(|(b, first)| b & (1 << k) != 0 && *first == Some(m))
                .count() as u64;
            RetentionPeriod {
                month: month_text(m),
                at_start,
                at_end,
                new,
                rate: (at_start > 0).then(|| (at_end as f64 - new as f64) / at_start as f64),
            }
        })
        .collect()
}

fn cohorts(members: &[(&History, Vec<Sale>)], as_of: i64) -> Vec<CohortRow> {
    let (m0, m_last) = months(as_of);
    let mut rows: Vec<(u64, Vec<u64>)> = (m0..=m_last)
        .map(|m| (0, vec![0; (m_last - m + 1) as usize]))
        .collect();
    for (h, sales) in members {
        let cohort = month_of(h.enrolled_day);
        if !(m0..=m_last).contains(&cohort) {
            continue;
        }
        let bits = active_months(sales, cohort);
        let row = &mut rows[(cohort - m0) as usize];
        row.0 += 1;
        for (k, n) in row.1.iter_mut().enumerate() {
            *n += u64::from(bits & (1 << k) != 0);
        }
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, (size, active))| CohortRow {
            month: month_text(m0 + i as i64),
            members: size,
            active: active
                .into_iter()
                .map(|n| {
                    if size == 0 {
                        0.0
                    } else {
                        n as f64 / size as f64
                    }
                })
                .collect(),
        })
        .collect()
}

fn clv(members: &[(&History, Vec<Sale>)], settings: &AnalyticsSettings, as_of: i64) -> Clv {
    let (year, prior) = (as_of - 365, as_of - 730);
    let (mut purchases, mut spend, mut points) = (0u64, 0i64, 0i64);
    let (mut buyers, mut buyers_before, mut stayed) = (0u64, 0u64, 0u64);
    for (_, sales) in members {
        let a = sales.partition_point(|s| s.day < year);
        let p = sales.partition_point(|s| s.day < prior);
        let last_year = &sales[a..];
        purchases += last_year.len() as u64;
        spend += last_year.iter().map(|s| s.net_cents).sum::<i64>();
        points += last_year.iter().map(|s| s.points).sum::<i64>();
        buyers += u64::from(!last_year.is_empty());
        if a > p {
            buyers_before += 1;
            stayed += u64::from(!last_year.is_empty());
        }
    }
    let basket = if purchases == 0 {
        0.0
    } else {
        spend as f64 / purchases as f64
    };
    let per_year = if buyers == 0 {
        0.0
    } else {
        purchases as f64 / buyers as f64
    };
    let annual_retention = (buyers_before > 0).then(|| stayed as f64 / buyers_before as f64);
    let lifespan = annual_retention.map_or(1.0, |r| {
        if r >= 1.0 - 1.0 / MAX_LIFESPAN_YEARS {
            MAX_LIFESPAN_YEARS
        } else {
            1.0 / (1.0 - r)
        }
    });
    let reward = if purchases == 0 {
        0.0
    } else {
        points as f64 * f64::from(settings.point_cost_millicents) / 1000.0 / purchases as f64
    };
    let margin = f64::from(settings.margin_percent) / 100.0;
    Clv {
        average_basket_cents: basket,
        purchases_per_year: per_year,
        annual_retention,
        lifespan_years: lifespan,
        clv_cents: basket * per_year * lifespan,
        margin_percent: settings.margin_percent,
        reward_cost_per_purchase_cents: reward,
        margin_clv_cents: (basket * margin - reward) * per_year * lifespan,
    }
}

pub mod synthetic;
