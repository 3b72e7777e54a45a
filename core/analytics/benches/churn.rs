//! The churn model on a generated programme of 100,000 members (issue #19's figure): the time to
//! train it (features of two periods and the fit) and the whole analysis the server's job runs,
//! and the model's AUC on the held-out period next to ranking by recency alone, printed.

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_analytics::{analyse, churn_report, synthetic};
use tessera_domain::api::AnalyticsSettings;

const MEMBERS: usize = 100_000;
/// 2026-07-01.
const AS_OF: i64 = 20_635;

fn churn(c: &mut Criterion) {
    let programme = synthetic::programme(MEMBERS, AS_OF, 42);
    let sales: usize = programme.iter().map(|h| h.sales.len()).sum();
    let report = churn_report(&programme, 90, AS_OF).expect("a model");
    eprintln!(
        "churn: {MEMBERS} members, {sales} purchases; trained on {} members in {} ms; \
         held-out {} members ({:.1} % churned): AUC {:.4}, recency alone {:.4}",
        report.training_members,
        report.training_ms,
        report.test_members,
        report.test_churn_rate * 100.0,
        report.auc,
        report.recency_auc
    );
    let mut g = c.benchmark_group("churn");
    g.sample_size(10);
    g.bench_function("train_and_test_100k", |b| {
        b.iter(|| churn_report(&programme, 90, AS_OF).expect("a model"))
    });
    let settings = AnalyticsSettings::default();
    g.bench_function("whole_analysis_100k", |b| {
        b.iter(|| analyse(&programme, &settings, AS_OF, String::new()))
    });
    g.finish();
}

criterion_group!(benches, churn);
criterion_main!(benches);
