//! Offers where the member is: offers near a position, the geofence plan, region events and
//! push messages. One-line methods over the core.

use tessera_core::api::{Platform, PushProvider, WalletCoupon};
use tessera_core::eligibility::Refusal;
use tessera_core::geo::Position;
use tessera_core::nearby::{GeofencePlan, NearbyOffer, RegionEventKind, RegionOutcome};
use tessera_core::push::PushDecision;

use crate::card::Tessera;
use crate::error::{ActionError, PushError};

#[uniffi::export]
impl Tessera {
    /// Offers the member may use at stores within `radius_m` (1 m to 100 km), each at its
    /// nearest store, nearest first; at most `limit` (1 to 200).
    pub fn offers_near(
        &self,
        position: Position,
        radius_m: f64,
        limit: u32,
    ) -> Result<Vec<NearbyOffer>, ActionError> {
        Ok(self.inner.offers_near(position, radius_m, limit)?)
    }

    /// The regions the OS should monitor from `position`, within `budget`
    /// (`geofence_budget(platform)`), as a change to the `registered` region ids. Empty without
    /// location consent.
    pub fn plan_geofences(
        &self,
        position: Position,
        budget: u32,
        registered: Vec<String>,
    ) -> Result<GeofencePlan, ActionError> {
        Ok(self.inner.plan_geofences(position, budget, &registered)?)
    }

    /// The geofence features' tunables (cooldowns, how old an OS event may be, re-plan bounds):
    /// the defaults suit most programmes.
    pub fn set_offer_settings(&self, settings: tessera_core::nearby::OfferSettings) {
        self.inner.set_offer_settings(settings)
    }

    /// What to do about an OS region event at `at_ms` (milliseconds since the epoch).
    pub fn on_region_event(
        &self,
        region_id: String,
        kind: RegionEventKind,
        at_ms: i64,
    ) -> Result<RegionOutcome, ActionError> {
        Ok(self.inner.on_region_event(&region_id, kind, at_ms)?)
    }

    /// Show, suppress or "sync now" for a push message: the FCM data map or the APNs
    /// `userInfo`, as JSON text.
    pub fn handle_push(
        &self,
        message: String,
        received_at_ms: i64,
    ) -> Result<PushDecision, PushError> {
        Ok(self.inner.handle_push(&message, received_at_ms)?)
    }

    /// Clip an offer (offline too): the server issues a coupon into the wallet at the next sync.
    pub fn clip_offer(&self, offer_id: String) -> Result<(), ActionError> {
        Ok(self.inner.clip_offer(&offer_id)?)
    }

    /// `None` when the member may clip the offer now (a reward: buy it), else the rule that
    /// refuses it: the rules the server enforces, from the cache as of the last sync. Offline.
    pub fn offer_refusal(&self, offer_id: String) -> Result<Option<Refusal>, ActionError> {
        Ok(self.inner.offer_refusal(&offer_id)?)
    }

    /// The member's coupons as last synced; render each `code` as a QR code at the till.
    pub fn wallet(&self) -> Result<Vec<WalletCoupon>, ActionError> {
        Ok(self.inner.wallet()?)
    }

    /// Register the OS's push token; returns whether it changed (sent at the next sync).
    pub fn set_push_token(
        &self,
        provider: PushProvider,
        token: String,
    ) -> Result<bool, ActionError> {
        Ok(self.inner.set_push_token(provider, &token)?)
    }
}

/// The geodesic distance in metres between two points (WGS84).
#[uniffi::export]
pub fn geodesic_distance_m(a: Position, b: Position) -> f64 {
    tessera_core::geo::distance_m(a, b)
}

/// How many regions the platform lets an app monitor: 20 on iOS, 100 on Android.
#[uniffi::export]
pub fn geofence_budget(platform: Platform) -> u32 {
    platform.geofence_budget()
}
