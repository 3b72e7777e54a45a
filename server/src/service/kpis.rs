//! The KPIs' counters, added to in the transaction of each change (so a report reads a few rows
//! a day, never the ledger), and the report (`tessera_domain::api::KpiReport`). See
//! docs/adr/0028 and docs/console.md.

use async_trait::async_trait;
use tessera_domain::api::{KpiReport, day_of, metric};

use crate::storage::repo::RepoResult;
use crate::storage::{Repo, Storage, StorageError, read};

/// Count `delta` of `metric` on the day of `at_ms`, for all shops and `shop` (a zero writes
/// nothing).
pub(crate) fn count(
    repo: &mut dyn Repo,
    metric: &str,
    shop: Option<&str>,
    at_ms: i64,
    delta: i64,
) -> RepoResult<()> {
    repo.add_kpi(metric, shop, day_of(at_ms), delta)
}

/// A purchase's receipt and revenue (negative `sign` to take it off: a void), on the day of the
/// sale.
pub(crate) fn count_sale(
    repo: &mut dyn Repo,
    shop: &str,
    member: bool,
    sale_ms: i64,
    receipts: i64,
    revenue_cents: i64,
) -> RepoResult<()> {
    let day = day_of(sale_ms);
    let mut increments = vec![
        (metric::RECEIPTS, Some(shop), day, receipts),
        (metric::REVENUE_CENTS, Some(shop), day, revenue_cents),
    ];
    if member {
        increments.push((metric::MEMBER_RECEIPTS, Some(shop), day, receipts));
        increments.push((metric::MEMBER_REVENUE_CENTS, Some(shop), day, revenue_cents));
    }
    // One statement for all of them (a round trip each would be felt on PostgreSQL).
    repo.add_kpis(&increments)
}

/// A coupon's redemption (`sign` −1: its void) on the day of `at_ms`: the offer's funnel, and
/// the channel it crossed — clipped online and redeemed in a shop (web-to-store), or earned by a
/// shop's purchase and redeemed on the website (store-to-web).
pub(crate) fn count_redemption(
    repo: &mut dyn Repo,
    offer_id: &str,
    origin: crate::storage::repo::Origin,
    shop: &str,
    at_ms: i64,
    sign: i64,
) -> RepoResult<()> {
    use crate::storage::repo::Origin;
    use tessera_domain::loyalty::WEB_STORE;
    let funnel = format!("{}{offer_id}", metric::COUPONS_REDEEMED);
    let day = day_of(at_ms);
    let mut increments = vec![(funnel.as_str(), Some(shop), day, sign)];
    match origin {
        Origin::Clip if shop != WEB_STORE => {
            increments.push((metric::WEB_TO_STORE, Some(shop), day, sign));
        }
        Origin::Purchase if shop == WEB_STORE => {
            increments.push((metric::STORE_TO_WEB, Some(shop), day, sign));
        }
        _ => {}
    }
    repo.add_kpis(&increments)
}

#[async_trait]
pub trait KpiServices {
    /// Fold up to `limit` increments into the sums (0: none was left).
    async fn fold_kpis(&self, limit: u32) -> Result<u64, StorageError>;
    /// The KPIs of days `from..=to` (days since the epoch), for one shop or all.
    async fn kpis(
        &self,
        shop: Option<String>,
        from: i64,
        to: i64,
    ) -> Result<KpiReport, StorageError>;
}

#[async_trait]
impl<S: Storage + ?Sized> KpiServices for S {
    async fn fold_kpis(&self, limit: u32) -> Result<u64, StorageError> {
        crate::storage::write(self, move |repo| repo.fold_kpis(limit)).await
    }

    async fn kpis(
        &self,
        shop: Option<String>,
        from: i64,
        to: i64,
    ) -> Result<KpiReport, StorageError> {
        read(self, move |repo| {
            let key = shop.as_deref().unwrap_or(metric::ALL_SHOPS);
            let rows = repo.kpi_rows(key, from, to)?;
            let liability = repo.kpi_points_before(metric::ALL_SHOPS, to.saturating_add(1))?;
            Ok(KpiReport::from_counters(
                from,
                to,
                shop.clone(),
                &rows,
                liability,
            ))
        })
        .await
    }
}

/// Fold the KPIs' increments into their sums every few seconds, until the process drains (in
/// every process that runs jobs: folds of several processes take different increments).
pub async fn run_fold(state: crate::AppState) {
    if !state.config.jobs.enabled {
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    while !state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        loop {
            match state.storage.fold_kpis(10_000).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "KPI increments not folded");
                    break;
                }
            }
        }
    }
}
