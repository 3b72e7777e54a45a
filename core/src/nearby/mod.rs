//! Offers that reach the member where they are: which offers a member may use at a store at a
//! given time, offers near a position, the geofence plan for the OS, and what to do when the OS
//! reports entering, dwelling at or leaving a region.
//!
//! The catalog cache is indexed in memory on first use (and again after a sync changed it): the
//! stores in an R*-tree on the unit sphere, each offer as a compact rule, with the offers that
//! target each store, each store tag, or every store. Full offers are read from SQLite only for
//! what is returned.

mod geofence;
mod index;
mod near;
mod region;

pub use geofence::*;
pub use index::*;
pub use near::*;
pub use region::*;

use std::sync::{Arc, Mutex};

use crate::clock::now_ms;
use crate::consent::Feature;
use crate::db::Db;
use crate::eligibility::Refusal;
use crate::geo::{self, Position};
use crate::privacy::Consent;
use crate::{Error, Result, invalid};

/// Searched at most this far from the member (metres).
pub const MAX_RADIUS_M: f64 = 100_000.0;
/// At most this many offers near a position.
pub const MAX_NEARBY: u32 = 200;

/// The offers service: the catalog cache indexed for position queries (built on first use,
/// dropped when the catalog changes), offers near the member, the geofence plan, region events,
/// and whether an offer may be clipped.
#[derive(Debug)]
pub struct Offers {
    db: Arc<Db>,
    consent: Arc<Consent>,
    index: Mutex<Option<Arc<OfferIndex>>>,
    settings: Mutex<OfferSettings>,
    /// The last geofence plan: when, where, and its regions (re-plans are throttled).
    last_plan: Mutex<Option<(i64, Position, Vec<GeofenceRegion>)>>,
}

impl Offers {
    pub(crate) fn new(db: Arc<Db>, consent: Arc<Consent>) -> Self {
        Offers {
            db,
            consent,
            index: Mutex::new(None),
            settings: Mutex::new(OfferSettings::default()),
            last_plan: Mutex::new(None),
        }
    }

    /// Drop the index and the last plan: the catalog (or the member) changed.
    pub fn forget(&self) {
        *self.index.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.last_plan.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The catalog cache indexed (built now if the catalog changed since the last call).
    pub fn index(&self) -> Result<Arc<OfferIndex>> {
        let mut slot = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(idx) = slot.as_ref() {
            return Ok(idx.clone());
        }
        let idx = Arc::new(self.db.read(OfferIndex::build)?);
        *slot = Some(idx.clone());
        Ok(idx)
    }

    /// Cooldowns, event age and re-plan throttling.
    pub fn set_settings(&self, settings: OfferSettings) {
        *self.settings.lock().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    fn settings(&self) -> OfferSettings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Offers the member may use at stores within `radius_m` of `position`, each at its nearest
    /// store, nearest (and, with personalisation, most relevant) first.
    pub fn near(&self, position: Position, radius_m: f64, limit: u32) -> Result<Vec<NearbyOffer>> {
        position.validate().map_err(invalid)?;
        if !(1.0..=MAX_RADIUS_M).contains(&radius_m) {
            return Err(Error::InvalidInput {
                field: "radius_m",
                reason: "must be 1 m to 100 km".into(),
            });
        }
        if !(1..=MAX_NEARBY).contains(&limit) {
            return Err(Error::InvalidInput {
                field: "limit",
                reason: format!("must be 1 to {MAX_NEARBY}"),
            });
        }
        let idx = self.index()?;
        let gate = self.consent.gate();
        let now = now_ms();
        self.db.read(|c| {
            let member = MemberView::read(c, &idx, gate)?;
            offers_near(c, &idx, &member, position, radius_m, limit as usize, now)
        })
    }

    /// The regions the OS should monitor from `position` within `budget` (the platform's,
    /// [`crate::api::Platform::geofence_budget`]), as a change to `registered` (the region ids it
    /// monitors now). Empty without location consent; the same plan, unchanged, when asked
    /// again within a minute and 100 m.
    pub fn plan_geofences(
        &self,
        position: Position,
        budget: u32,
        registered: &[String],
    ) -> Result<GeofencePlan> {
        use crate::api::{MAX_GEOFENCE_BUDGET, MIN_GEOFENCE_BUDGET};
        position.validate().map_err(invalid)?;
        if !(MIN_GEOFENCE_BUDGET..=MAX_GEOFENCE_BUDGET).contains(&budget) {
            return Err(Error::InvalidInput {
                field: "budget",
                reason: format!("must be {MIN_GEOFENCE_BUDGET} to {MAX_GEOFENCE_BUDGET} regions"),
            });
        }
        if !self.consent.permits(Feature::GeofenceMonitoring) {
            *self.last_plan.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(diff(Vec::new(), registered, false));
        }
        let now = now_ms();
        let settings = self.settings();
        let mut last = self.last_plan.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, from, regions)) = last.as_ref() {
            let same: std::collections::BTreeSet<&str> =
                regions.iter().map(|r| r.id.as_str()).collect();
            let registered_same = registered.len() == same.len()
                && registered.iter().all(|r| same.contains(r.as_str()));
            if now - at < settings.replan_min_interval_ms
                && geo::distance_m(*from, position) < settings.replan_min_move_m
                && registered_same
                && regions.len() <= budget as usize
            {
                return Ok(diff(regions.clone(), registered, true));
            }
        }
        let idx = self.index()?;
        let gate = self.consent.gate();
        let regions = self.db.read(|c| {
            let member = MemberView::read(c, &idx, gate)?;
            Ok::<_, Error>(plan_regions(&idx, &member, position, budget as usize, now))
        })?;
        *last = Some((now, position, regions.clone()));
        Ok(diff(regions, registered, false))
    }

    /// What to do when the OS reports `kind` for `region_id` at `at_ms` (milliseconds since the
    /// epoch): a notification or why not; a dwell records a store visit for the next sync.
    pub fn on_region_event(
        &self,
        region_id: &str,
        kind: RegionEventKind,
        at_ms: i64,
    ) -> Result<RegionOutcome> {
        // An instant jiff can hold (years -9999 to 9999): every sum below stays in range.
        let at = crate::clock::checked_instant("at_ms", at_ms)?;
        let outcome = |action| RegionOutcome {
            action,
            visit_recorded: false,
        };
        if region_id.starts_with("replan:") {
            return Ok(outcome(match kind {
                RegionEventKind::Exit => RegionAction::Replan,
                _ => RegionAction::Nothing,
            }));
        }
        let Some(store_id) = region_id.strip_prefix("store:") else {
            return Ok(outcome(RegionAction::Suppress {
                reason: SuppressReason::UnknownRegion,
            }));
        };
        if kind == RegionEventKind::Exit {
            return Ok(outcome(RegionAction::Nothing));
        }
        if !self.consent.permits(Feature::GeofenceMonitoring) {
            return Ok(outcome(RegionAction::Suppress {
                reason: SuppressReason::NoConsent,
            }));
        }
        let idx = self.index()?;
        let Some(store) = store_index(&idx, store_id) else {
            return Ok(outcome(RegionAction::Suppress {
                reason: SuppressReason::UnknownRegion,
            }));
        };
        let event = RegionEvent {
            store,
            store_id,
            kind,
            at,
            at_ms,
            now_ms: now_ms(),
        };
        let (settings, gate) = (self.settings(), self.consent.gate());
        self.db
            .write(|tx| region_event(tx, &idx, gate, &settings, &event))
    }

    /// Whether the member may clip the offer `offer_id` now (a reward: buy it), by the rules the
    /// server enforces ([`crate::eligibility`]), from the cache as of the last sync: `None` when
    /// it is available, else the rule that refuses it. Offline.
    pub fn refusal(&self, offer_id: &str) -> Result<Option<Refusal>> {
        crate::catalog::check_id("offer_id", offer_id).map_err(invalid)?;
        let idx = self.index()?;
        let gate = self.consent.gate();
        let now = now_ms();
        let status = self.db.read(|c| {
            let member = MemberView::read(c, &idx, gate)?;
            Ok::<_, Error>(idx.clip_status(offer_id, &member, now))
        })?;
        match status {
            Some(result) => Ok(result.err()),
            None => Err(Error::InvalidInput {
                field: "offer_id",
                reason: "no such offer in the catalog".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::eligibility::in_spans;

    #[test]
    fn spans_cross_midnight() {
        let late = [(5, 18 * 60, 2 * 60)]; // Friday 18:00 to Saturday 02:00
        assert!(in_spans(&late, 5, 23 * 60));
        assert!(in_spans(&late, 6, 60));
        assert!(!in_spans(&late, 6, 3 * 60));
        assert!(!in_spans(&late, 5, 17 * 60));
        let sunday = [(7, 22 * 60, 60)];
        assert!(in_spans(&sunday, 1, 30), "Monday 00:30 is Sunday's night");
    }
}
