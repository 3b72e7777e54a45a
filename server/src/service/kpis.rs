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

/// A consent record just stored for `(purpose, channel)`: +1 if the member's decision for the
/// pair became a grant, −1 if it stopped being one (`before`: the gate before the record).
pub(crate) fn count_consent(
    repo: &mut dyn Repo,
    member_id: &str,
    before: tessera_domain::consent::ConsentGate,
    purpose: tessera_domain::consent::Purpose,
    channel: tessera_domain::consent::Channel,
    now_ms: i64,
) -> RepoResult<()> {
    let after = super::privacy::gate(repo, member_id)?;
    let delta =
        i64::from(after.allows(purpose, channel)) - i64::from(before.allows(purpose, channel));
    if delta == 0 {
        return Ok(());
    }
    let name = consent_metric(purpose, channel);
    count(repo, &name, None, now_ms, delta)
}

/// The levels a report reads: members, and consent for every purpose and channel.
fn level_metrics() -> Vec<String> {
    use tessera_domain::consent::{Channel, Purpose};
    let mut out = vec![metric::MEMBERS.to_owned()];
    for p in Purpose::ALL {
        out.extend(Channel::ALL.iter().map(|c| consent_metric(p, *c)));
    }
    out
}

fn consent_metric(
    purpose: tessera_domain::consent::Purpose,
    channel: tessera_domain::consent::Channel,
) -> String {
    format!(
        "{}{}:{}",
        metric::CONSENT_PREFIX,
        purpose.as_str(),
        channel.as_str()
    )
}

/// A member erased: one member fewer, and each of their grants.
pub(crate) fn count_erasure(
    repo: &mut dyn Repo,
    gate: tessera_domain::consent::ConsentGate,
    now_ms: i64,
) -> RepoResult<()> {
    use tessera_domain::consent::{Channel, Purpose};
    let names: Vec<String> = Purpose::ALL
        .iter()
        .flat_map(|p| Channel::ALL.iter().map(move |c| (*p, *c)))
        .filter(|(p, c)| gate.allows(*p, *c))
        .map(|(p, c)| consent_metric(p, c))
        .collect();
    let day = day_of(now_ms);
    let mut increments = vec![(metric::MEMBERS, None, day, -1)];
    increments.extend(names.iter().map(|n| (n.as_str(), None, day, -1)));
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
            let end = to.saturating_add(1);
            let liability = repo.kpi_points_before(metric::ALL_SHOPS, end)?;
            let levels = repo.kpi_levels_before(metric::ALL_SHOPS, end, &level_metrics())?;
            Ok(KpiReport::from_counters(
                from,
                to,
                shop.clone(),
                &rows,
                liability,
                &levels,
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
