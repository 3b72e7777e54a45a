//! The `Till` object (a shop's till or the web checkout) and the member's points, tiers and
//! rewards: one-line methods over `tessera-core`.
//!
//! A till's calls answer `null`/`None` when the server could not be reached (or its answer was
//! lost): the till handled it and journaled it; `sync` reports it later.

use std::sync::Arc;

use tessera_core::activity::Reward;
use tessera_core::api::{
    PointsView, PurchaseReceipt, PurchaseRequest, Redemption, ReturnReport, ReturnRequest,
    VoidReport,
};
use tessera_core::coupon::CouponClaims;
use tessera_core::loyalty::TierProgress;
use tessera_till::{Done, ScannedMember, TillOutcome, TillSyncReport};

use crate::card::Tessera;
use crate::error::{ActionError, TillError};

/// One till of one shop (`web` for the web checkout), with its journal file. Thread-safe.
#[derive(Debug, uniffi::Object)]
pub struct Till {
    inner: tessera_till::Till,
}

fn online<T>(d: Done<T>) -> Option<T> {
    match d {
        Done::Online(t) => Some(t),
        Done::Offline => None,
    }
}

#[uniffi::export]
impl Till {
    /// A till of `store_id` with its token, talking through `http_client` (the till app's HTTP
    /// stack) and journaling in the file at `journal_path`. Fetches the programme's keys;
    /// offline, uses the journal's (`Network` if it never had any).
    #[uniffi::constructor]
    pub fn open(
        journal_path: String,
        server_url: String,
        token: String,
        store_id: String,
        http_client: Arc<dyn crate::HttpClient>,
    ) -> Result<Arc<Self>, TillError> {
        let inner = tessera_till::Till::open(
            journal_path,
            &server_url,
            &token,
            &store_id,
            crate::http::Foreign::wrap(http_client),
        )?;
        Ok(Arc::new(Till { inner }))
    }

    /// Check a scanned code offline (signature, dates, shop, member if a card was scanned,
    /// basket, this till's journal); its claims.
    pub fn verify(
        &self,
        code: String,
        member_id: Option<String>,
        basket_cents: u64,
    ) -> Result<CouponClaims, TillError> {
        Ok(self
            .inner
            .verify(&code, member_id.as_deref(), basket_cents)?)
    }

    /// Check a scanned rotating member code (`TM1:…`) offline: certificate, revocations,
    /// device signature, time step.
    pub fn scan_member(&self, code: String) -> Result<ScannedMember, TillError> {
        Ok(self.inner.scan_member(&code)?)
    }

    /// Member code steps accepted either side of the clock (default 1, at most 10).
    pub fn set_member_code_skew(&self, steps: u32) -> Result<(), TillError> {
        Ok(self.inner.set_member_code_skew(steps)?)
    }

    /// Redeem exactly once; `None`: honoured offline and journaled.
    pub fn redeem(
        &self,
        code: String,
        basket_cents: u64,
        receipt: String,
    ) -> Result<Option<Redemption>, TillError> {
        Ok(online(self.inner.redeem(&code, basket_cents, &receipt)?))
    }

    /// `redeem()` for coroutines and Swift tasks (it waits on the server up to the timeouts).
    /// Cancelling stops the wait, not the redemption: it completes on its own thread, online or
    /// journaled, exactly once; `outcomes()` and `pending()` tell what became of it.
    pub async fn redeem_async(
        self: Arc<Self>,
        code: String,
        basket_cents: u64,
        receipt: String,
    ) -> Result<Option<Redemption>, TillError> {
        let work =
            move |_: &tessera_core::sync::Cancel| self.inner.redeem(&code, basket_cents, &receipt);
        match crate::background::on_thread("tessera-till-redeem", work).await {
            Some(done) => Ok(online(done?)),
            None => Err(TillError::Network {
                problem: crate::background::stopped(),
            }),
        }
    }

    /// Record a purchase (points, maybe a web coupon); `None`: journaled.
    pub fn record_purchase(
        &self,
        purchase: PurchaseRequest,
    ) -> Result<Option<PurchaseReceipt>, TillError> {
        Ok(online(self.inner.record_purchase(&purchase)?))
    }

    /// Void what was recorded under `receipt` here within the window; `None`: voided offline.
    pub fn void_receipt(&self, receipt: String) -> Result<Option<VoidReport>, TillError> {
        Ok(online(self.inner.void(&receipt)?))
    }

    /// Goods brought back: points taken back in proportion; `None`: journaled.
    pub fn return_goods(&self, request: ReturnRequest) -> Result<Option<ReturnReport>, TillError> {
        Ok(online(self.inner.return_goods(&request)?))
    }

    /// Report the journal; conflicts and refusals come back in the report.
    pub fn sync(&self) -> Result<TillSyncReport, TillError> {
        Ok(self.inner.sync()?)
    }

    /// `sync()` for coroutines and Swift tasks: the journal reported from a thread of its own.
    pub async fn sync_async(self: Arc<Self>) -> Result<TillSyncReport, TillError> {
        let work = move |_: &tessera_core::sync::Cancel| self.inner.sync();
        match crate::background::on_thread("tessera-till-sync", work).await {
            Some(report) => Ok(report?),
            None => Err(TillError::Network {
                problem: crate::background::stopped(),
            }),
        }
    }

    /// Journaled requests not reported yet.
    pub fn pending(&self) -> Result<u32, TillError> {
        Ok(self.inner.pending()?)
    }

    /// The server's answers to journaled reports, newest first.
    pub fn outcomes(&self, limit: u32) -> Result<Vec<TillOutcome>, TillError> {
        Ok(self.inner.outcomes(limit)?)
    }

    /// Fetch the programme's keys again; how many.
    pub fn refresh_keys(&self) -> Result<u32, TillError> {
        Ok(self.inner.refresh_keys()? as u32)
    }
}

#[uniffi::export]
impl Tessera {
    /// Balance, next expiry and the latest ledger lines, as of the last sync. Offline.
    pub fn points(&self) -> Result<PointsView, ActionError> {
        Ok(self.inner.points()?)
    }

    /// The member's tier and what the next one needs, as of the last sync. Offline.
    pub fn tier_progress(&self) -> Result<Option<TierProgress>, ActionError> {
        Ok(self.inner.tier_progress()?)
    }

    /// Rewards bought with points, cheapest first, with whether the balance covers each.
    pub fn rewards(&self) -> Result<Vec<Reward>, ActionError> {
        Ok(self.inner.rewards()?)
    }

    /// Spend points on a reward (offline too): its coupon arrives at the next sync, or the
    /// action is rejected with `insufficient_points`.
    pub fn buy_reward(&self, offer_id: String) -> Result<(), ActionError> {
        Ok(self.inner.buy_reward(&offer_id)?)
    }
}
