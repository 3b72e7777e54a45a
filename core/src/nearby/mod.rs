//! Offers that reach the member where they are: which offers a member may use at a store at a
//! given time, offers near a position, the geofence plan for the OS, and what to do when the OS
//! reports entering, dwelling at or leaving a region.
//!
//! The catalog cache is indexed in memory on first use: the stores in a packed tree on the unit
//! sphere, each offer as a compact rule, with the offers that target each store, each store tag,
//! or every store. Full offers are read from SQLite only for what is returned. When the catalog
//! changes (a sync, an imported page, a pushed offer), the caller (in the background) rebuilds
//! it on the database's long lane and swaps it in when it is ready: readers meanwhile use the
//! index they hold, and the card's reads never queue behind a build (issue #15).

mod geofence;
mod index;
mod near;
mod region;
mod screen;

pub use geofence::*;
pub use index::*;
pub use near::*;
pub use region::*;
pub use screen::offers_screen_brute_force;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::clock::now_ms;
use crate::consent::Feature;
use crate::db::{Db, StorageError};
use crate::eligibility::Refusal;
use crate::geo::{self, Position};
use crate::privacy::Consent;
use crate::{Error, Result, invalid};

/// Searched at most this far from the member (metres).
pub const MAX_RADIUS_M: f64 = 100_000.0;
/// At most this many offers near a position.
pub const MAX_NEARBY: u32 = 200;

/// The offers service: the catalog cache indexed for position queries (built on first use,
/// rebuilt and swapped in when the catalog changes), offers near the member, the geofence plan,
/// region events, and whether an offer may be clipped.
#[derive(Debug)]
pub struct Offers {
    db: Arc<Db>,
    consent: Arc<Consent>,
    /// The index in use; replaced whole when a newer one is ready.
    index: RwLock<Option<Arc<OfferIndex>>>,
    /// The catalog changed since `index` was built.
    stale: AtomicBool,
    /// One build at a time.
    building: Mutex<()>,
    settings: Mutex<OfferSettings>,
    /// The last geofence plan: when, where, and its regions (re-plans are throttled).
    last_plan: Mutex<Option<(i64, Position, Vec<GeofenceRegion>)>>,
}

impl Offers {
    pub(crate) fn new(db: Arc<Db>, consent: Arc<Consent>) -> Self {
        Offers {
            db,
            consent,
            index: RwLock::new(None),
            stale: AtomicBool::new(false),
            building: Mutex::new(()),
            settings: Mutex::new(OfferSettings::default()),
            last_plan: Mutex::new(None),
        }
    }

    fn current(&self) -> Option<Arc<OfferIndex>> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The catalog changed: if an index is in use, build a new one now (on the database's long
    /// lane, in the caller's thread: sync, a catalog import and push handling run in the
    /// background) and swap it in; readers keep the old one until then. The last plan is
    /// dropped.
    pub fn catalog_changed(&self) -> Result<(), StorageError> {
        *self.last_plan.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.stale.store(true, Ordering::SeqCst);
        if self.current().is_none() {
            return Ok(());
        }
        let _one = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if !self.stale.swap(false, Ordering::SeqCst) {
            return Ok(()); // another caller rebuilt it meanwhile
        }
        self.build().map(|_| ())
    }

    /// Drop the index and the last plan (the member was erased: nothing of the catalog is left).
    pub fn forget(&self) {
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.stale.store(false, Ordering::SeqCst);
        *self.last_plan.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The catalog cache indexed: the one in use, even while a newer one is being built (see
    /// [`Offers::catalog_changed`]); built now, on the long lane, on first use or if the last
    /// rebuild failed (the caller waits; the card does not).
    pub fn index(&self) -> Result<Arc<OfferIndex>, StorageError> {
        if let Some(idx) = self.current()
            && !self.stale.load(Ordering::SeqCst)
        {
            return Ok(idx);
        }
        let _one = match self.building.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            // A rebuild is under way: the index in use meanwhile, if there is one.
            Err(std::sync::TryLockError::WouldBlock) => match self.current() {
                Some(idx) => return Ok(idx),
                None => self.building.lock().unwrap_or_else(|p| p.into_inner()),
            },
        };
        if let Some(idx) = self.current()
            && !self.stale.load(Ordering::SeqCst)
        {
            return Ok(idx); // built while this call waited
        }
        self.stale.store(false, Ordering::SeqCst);
        self.build()
    }

    /// Build an index from the cache on the long lane and swap it in (the caller holds
    /// `building` and has cleared `stale`: a change that lands during the build marks it stale
    /// again).
    fn build(&self) -> Result<Arc<OfferIndex>, StorageError> {
        match self.db.read_background(OfferIndex::build) {
            Ok(idx) => {
                let idx = Arc::new(idx);
                *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(idx.clone());
                Ok(idx)
            }
            Err(e) => {
                self.stale.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
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

    /// The offers screen: offers valid now that the member may use, within their interests,
    /// ending soonest first (personalised only with consent), from the index; at most `limit`.
    pub fn screen(&self, limit: u32) -> Result<crate::privacy::OfferList, StorageError> {
        let idx = self.index()?;
        let gate = self.consent.gate();
        let now = now_ms();
        self.db.read(|c| {
            let member = MemberView::read(c, &idx, gate)?;
            screen::offers_screen(c, &idx, &member, limit as usize, now)
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

    /// A shop in Paris with two offers, imported; the index built by a first query.
    fn two_offers() -> (tempfile::TempDir, crate::Tessera) {
        use crate::api::{CatalogChange, CatalogPage};
        let store: crate::catalog::Store = serde_json::from_value(serde_json::json!({
            "id": "st-1", "name": "Paris", "address": "1 rue de la Paix", "postcode": "75001",
            "city": "Paris", "country": "FR", "latitude": 48.86, "longitude": 2.33,
            "radius_m": 150, "timezone": "Europe/Paris", "opening_hours": [], "tags": []}))
        .unwrap();
        let offer = |id: &str| -> crate::catalog::Offer {
            serde_json::from_value(serde_json::json!({"id": id, "title": id,
                "description": "At the till.", "kind": {"type": "gift", "item": "tea"},
                "valid_from": "2020-01-01T00:00:00Z", "valid_to": "2099-12-31T23:59:59Z",
                "channel": "both", "days": [], "store_ids": ["st-1"], "store_tags": [],
                "categories": [], "tiers": [], "segments": [], "min_basket_cents": null,
                "per_member_limit": null, "requires_clip": false}))
            .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let t = crate::Tessera::open(dir.path().join("t.db")).unwrap();
        let changes = vec![
            CatalogChange::Store { store },
            CatalogChange::Offer {
                offer: offer("of-1"),
            },
            CatalogChange::Offer {
                offer: offer("of-2"),
            },
        ];
        t.import_catalog_page(&CatalogPage {
            format: 1,
            changes,
            cursor: "c1.1".into(),
            has_more: false,
        })
        .unwrap();
        (dir, t)
    }

    const PARIS: crate::geo::Position = crate::geo::Position {
        latitude: 48.86,
        longitude: 2.33,
    };

    fn ids(t: &crate::Tessera) -> Vec<String> {
        let near = t.offers_near(PARIS, 1_000.0, 10).unwrap();
        near.into_iter().map(|o| o.offer.id).collect()
    }

    /// Issue #15: while a newer index is being built, queries answer at once from the one in
    /// use (an offer removed meanwhile is left out, not an error), and the new one is swapped
    /// in when ready.
    #[test]
    fn queries_use_the_index_in_use_while_a_newer_one_is_built() {
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        let (_dir, t) = two_offers();
        assert_eq!(ids(&t), ["of-1", "of-2"]);
        let built = t.offers.index().unwrap();
        // A sync removed of-2 and is rebuilding the index (it holds the build).
        t.db.write(|tx| -> crate::Result<()> {
            tx.execute("DELETE FROM offer WHERE id = 'of-2'", [])
                .map_err(crate::StorageError::from)?;
            Ok(())
        })
        .unwrap();
        let building = t.offers.building.lock().unwrap();
        t.offers.stale.store(true, Ordering::SeqCst);
        std::thread::scope(|s| {
            let (send, answer) = std::sync::mpsc::channel();
            let t = &t;
            s.spawn(move || send.send(ids(t)).unwrap());
            let found = answer
                .recv_timeout(Duration::from_secs(2))
                .expect("offers_near waited for the index being built");
            assert_eq!(found, ["of-1"]);
            assert!(std::sync::Arc::ptr_eq(&t.offers.index().unwrap(), &built));
            drop(building);
        });
        // The rebuild (here: the next use, as after a failed one) swaps a new index in.
        t.offers.catalog_changed().unwrap();
        assert!(!std::sync::Arc::ptr_eq(&t.offers.index().unwrap(), &built));
        assert_eq!(t.offers.index().unwrap().offer("of-2"), None);
        assert_eq!(ids(&t), ["of-1"]);
    }

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
