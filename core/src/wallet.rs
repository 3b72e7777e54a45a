//! The wallet and points on the phone: clip an offer or buy a reward (offline, sent at the next
//! sync), and the coupons, points, tier and rewards as of the last sync.

use std::sync::Arc;

use crate::Result;
use crate::activity::{self, Reward, cached_state};
use crate::api::{PointsView, WalletCoupon};
use crate::clock::now_ms;
use crate::db::Db;
use crate::loyalty::TierProgress;

/// The wallet service: coupons, points, tier and rewards.
#[derive(Debug)]
pub struct Wallet {
    db: Arc<Db>,
}

impl Wallet {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Wallet { db }
    }

    /// Clip an offer: the server issues a coupon into the wallet at the next sync. Works offline.
    pub fn clip_offer(&self, offer_id: &str) -> Result<()> {
        self.db
            .write(|tx| activity::clip_offer(tx, offer_id, false))
    }

    /// Spend points on a reward: the server takes the points and issues its coupon at the next
    /// sync, or refuses it (a rejected action, `insufficient_points`) if the balance is short by
    /// then. Works offline.
    pub fn buy_reward(&self, offer_id: &str) -> Result<()> {
        self.db.write(|tx| activity::clip_offer(tx, offer_id, true))
    }

    /// Rewards members can buy with points, cheapest first, from the cached catalog, with
    /// whether the cached balance covers each. Offline.
    pub fn rewards(&self) -> Result<Vec<Reward>> {
        self.db.read(|c| {
            let balance = cached_state(c)?.map_or(0, |m| m.state.points.balance);
            activity::rewards(c, balance, now_ms())
        })
    }

    /// Points: balance, next expiry and the latest ledger lines, as of the last sync. Offline.
    pub fn points(&self) -> Result<PointsView> {
        Ok(self.cached(|s| Some(s.points))?.unwrap_or_default())
    }

    /// The member's tier and what the next one needs, as of the last sync. Offline.
    pub fn tier_progress(&self) -> Result<Option<TierProgress>> {
        self.cached(|s| s.tier_progress)
    }

    /// The member's coupons as the server last sent them (render `code` as a QR code).
    pub fn coupons(&self) -> Result<Vec<WalletCoupon>> {
        Ok(self.cached(|s| Some(s.wallet))?.unwrap_or_default())
    }

    fn cached<T>(&self, f: impl FnOnce(crate::api::MemberState) -> Option<T>) -> Result<Option<T>> {
        Ok(self.db.read(cached_state)?.and_then(|m| f(m.state)))
    }
}
