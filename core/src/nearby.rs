//! Offers that reach the member where they are: which offers a member may use at a store at a
//! given time, offers near a position, the geofence plan for the OS, and what to do when the OS
//! reports entering, dwelling at or leaving a region.
//!
//! The catalog cache is indexed in memory on first use (and again after a sync changed it): the
//! stores in an R*-tree on the unit sphere, each offer as a compact rule, with the offers that
//! target each store, each store tag, or every store. Full offers are read from SQLite only for
//! what is returned.

use std::collections::{BTreeSet, HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::catalog::{Offer, OfferChannel, Store};
use crate::consent::{ConsentGate, Feature, Purpose};
use crate::db::StorageError;
use crate::geo::{PointIndex, Position, distance_m};
use crate::{Error, Result};

fn st(e: rusqlite::Error) -> StorageError {
    StorageError::from(e)
}

fn corrupt(_: impl std::fmt::Display) -> Error {
    Error::Storage(StorageError::Corrupt)
}

use crate::eligibility::{Holder, Terms, in_spans, local_time, minutes};

#[derive(Debug)]
struct StoreEntry {
    id: Box<str>,
    name: Box<str>,
    position: Position,
    radius_m: u32,
    tz: u16,
    hours: Box<[(u8, u16, u16)]>,
    tags: Box<[u32]>,
}

#[derive(Debug)]
struct OfferRule {
    id: Box<str>,
    from_ms: i64,
    to_ms: i64,
    /// Bit d set: valid on weekday d (1 = Monday); 0: every day.
    days: u8,
    hours: Option<(u16, u16)>,
    in_store: bool,
    /// Tiers, then segments, then categories, in one allocation.
    labels: Box<[u32]>,
    n_tiers: u8,
    n_segments: u8,
    per_member_limit: Option<u32>,
    reward: bool,
}

impl OfferRule {
    fn tiers(&self) -> &[u32] {
        &self.labels[..self.n_tiers as usize]
    }

    fn segments(&self) -> &[u32] {
        &self.labels[self.n_tiers as usize..(self.n_tiers + self.n_segments) as usize]
    }

    fn categories(&self) -> &[u32] {
        &self.labels[(self.n_tiers + self.n_segments) as usize..]
    }
}

/// The catalog cache, indexed.
#[derive(Debug, Default)]
pub struct OfferIndex {
    /// Sorted by id: found by binary search, no second copy of the ids.
    stores: Vec<StoreEntry>,
    points: PointIndex,
    /// Sorted by id.
    offers: Vec<OfferRule>,
    /// The offers naming each store: `store_offers[store_start[s]..store_start[s + 1]]`.
    store_start: Vec<u32>,
    store_offers: Vec<u32>,
    by_tag: HashMap<u32, Vec<u32>>,
    everywhere: Vec<u32>,
    strings: crate::intern::Interner,
    zones: Vec<jiff::tz::TimeZone>,
}

impl OfferIndex {
    /// Read the whole cache and index it.
    pub fn build(conn: &Connection) -> Result<Self> {
        let mut idx = OfferIndex::default();
        let mut zone_ids: HashMap<String, u16> = HashMap::new();
        let mut stmt = conn.prepare("SELECT data FROM store").map_err(st)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(st)?;
        for row in rows {
            let store: Store = serde_json::from_str(&row.map_err(st)?).map_err(corrupt)?;
            let tz = match zone_ids.get(&store.timezone) {
                Some(id) => *id,
                None => {
                    let zone =
                        jiff::tz::TimeZone::get(&store.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
                    idx.zones.push(zone);
                    let id = (idx.zones.len() - 1) as u16;
                    zone_ids.insert(store.timezone.clone(), id);
                    id
                }
            };
            let hours = store
                .opening_hours
                .iter()
                .filter_map(|h| Some((h.day, minutes(&h.opens)?, minutes(&h.closes)?)))
                .collect();
            let tags = idx.strings.ids(&store.tags);
            idx.stores.push(StoreEntry {
                id: store.id.into(),
                name: store.name.into(),
                position: Position {
                    latitude: store.latitude,
                    longitude: store.longitude,
                },
                radius_m: store.radius_m,
                tz,
                hours,
                tags,
            });
        }
        idx.stores.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        idx.points = PointIndex::build(
            idx.stores
                .iter()
                .enumerate()
                .map(|(i, s)| (s.position, i as u32)),
        );
        // Offers sorted by id, then the store → offers lists in one flat array.
        // Read in storage order (one row parsed at a time), then sorted by id with the references
        // renumbered.
        let mut stmt = conn.prepare("SELECT data FROM offer").map_err(st)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(st)?;
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for row in rows {
            let offer: Offer = serde_json::from_str(&row.map_err(st)?).map_err(corrupt)?;
            let ms = |s: &str| s.parse::<jiff::Timestamp>().map(|t| t.as_millisecond());
            let (Ok(from_ms), Ok(to_ms)) = (ms(&offer.valid_from), ms(&offer.valid_to)) else {
                continue;
            };
            let i = idx.offers.len() as u32;
            let hours = match (&offer.hours_from, &offer.hours_to) {
                (Some(a), Some(b)) => minutes(a).zip(minutes(b)),
                _ => None,
            };
            for s in &offer.store_ids {
                if let Some(si) = idx.store(s) {
                    pairs.push((si, i));
                }
            }
            for t in &offer.store_tags {
                let tag = idx.strings.id(t);
                idx.by_tag.entry(tag).or_default().push(i);
            }
            if offer.store_ids.is_empty() && offer.store_tags.is_empty() {
                idx.everywhere.push(i);
            }
            idx.offers.push(OfferRule {
                days: crate::eligibility::day_mask(&offer.days),
                reward: offer.points_cost.is_some(),
                hours,
                in_store: !matches!(offer.channel, OfferChannel::Online),
                n_tiers: offer.tiers.len().min(255) as u8,
                n_segments: offer.segments.len().min(255) as u8,
                labels: offer
                    .tiers
                    .iter()
                    .take(255)
                    .chain(offer.segments.iter().take(255))
                    .chain(&offer.categories)
                    .map(|l| idx.strings.id(l))
                    .collect(),
                per_member_limit: offer.per_member_limit,
                from_ms,
                to_ms,
                id: offer.id.into(),
            });
        }
        let mut order: Vec<u32> = (0..idx.offers.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| idx.offers[a as usize].id.cmp(&idx.offers[b as usize].id));
        let mut renumber = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        let mut unsorted: Vec<Option<OfferRule>> = idx.offers.drain(..).map(Some).collect();
        idx.offers = order
            .iter()
            .filter_map(|&old| unsorted[old as usize].take())
            .collect();
        for (_, o) in pairs.iter_mut() {
            *o = renumber[*o as usize];
        }
        for list in idx.by_tag.values_mut() {
            for o in list.iter_mut() {
                *o = renumber[*o as usize];
            }
        }
        for o in idx.everywhere.iter_mut() {
            *o = renumber[*o as usize];
        }
        pairs.sort_unstable();
        pairs.dedup();
        idx.store_start = Vec::with_capacity(idx.stores.len() + 1);
        let mut next = 0usize;
        for s in 0..idx.stores.len() as u32 {
            idx.store_start.push(next as u32);
            while next < pairs.len() && pairs[next].0 == s {
                next += 1;
            }
        }
        idx.store_start.push(next as u32);
        idx.store_offers = pairs.into_iter().map(|(_, o)| o).collect();
        idx.offers.shrink_to_fit();
        idx.stores.shrink_to_fit();
        for list in idx.by_tag.values_mut() {
            list.shrink_to_fit();
        }
        idx.everywhere.shrink_to_fit();
        Ok(idx)
    }

    pub fn stores(&self) -> usize {
        self.stores.len()
    }

    fn store(&self, id: &str) -> Option<u32> {
        self.stores
            .binary_search_by(|s| (*s.id).cmp(id))
            .ok()
            .map(|i| i as u32)
    }

    fn offer(&self, id: &str) -> Option<u32> {
        self.offers
            .binary_search_by(|o| (*o.id).cmp(id))
            .ok()
            .map(|i| i as u32)
    }

    fn candidates(&self, store: u32) -> impl Iterator<Item = u32> + '_ {
        let s = &self.stores[store as usize];
        let (a, b) = (
            self.store_start[store as usize] as usize,
            self.store_start[store as usize + 1] as usize,
        );
        self.store_offers[a..b]
            .iter()
            .chain(
                s.tags
                    .iter()
                    .flat_map(|t| self.by_tag.get(t).into_iter().flatten()),
            )
            .chain(self.everywhere.iter())
            .copied()
    }

    fn local(&self, store: u32, at_ms: i64) -> (u8, u16) {
        local_time(&self.zones[self.stores[store as usize].tz as usize], at_ms)
    }

    fn open_at(&self, store: u32, at_ms: i64) -> bool {
        let s = &self.stores[store as usize];
        if s.hours.is_empty() {
            return true;
        }
        let (day, t) = self.local(store, at_ms);
        in_spans(&s.hours, day, t)
    }

    /// The offer's rules, over interned labels.
    fn terms(&self, offer: u32) -> Terms<'_, u32> {
        let o = &self.offers[offer as usize];
        Terms {
            from_ms: o.from_ms,
            to_ms: o.to_ms,
            in_store: o.in_store,
            reward: o.reward,
            days: o.days,
            hours: o.hours,
            tiers: o.tiers(),
            segments: o.segments(),
            per_member_limit: o.per_member_limit,
        }
    }

    /// Whether `member` may use `offer` at `store` at `at_ms` (the domain's
    /// [`crate::eligibility::check_use`]: dates, days, hours when `hours`, in store, tier,
    /// segment, limit), and whether it is of the member's interests (a display preference).
    fn eligible(
        &self,
        offer: u32,
        store: u32,
        member: &MemberView,
        at_ms: i64,
        hours: bool,
    ) -> bool {
        let o = &self.offers[offer as usize];
        if member.has_interests
            && !o.categories().is_empty()
            && !o.categories().iter().any(|c| member.interests.contains(c))
        {
            return false;
        }
        crate::eligibility::check_use(
            &self.terms(offer),
            &member.holder(offer),
            at_ms,
            || self.local(store, at_ms),
            hours,
        )
        .is_ok()
    }

    /// Whether `member` may clip (or, for a reward, buy) the offer `id` now, by the same rules as
    /// the server: `None` if the cache has no such offer.
    pub(crate) fn clip_status(
        &self,
        id: &str,
        member: &MemberView,
        at_ms: i64,
    ) -> Option<Result<(), crate::eligibility::Refusal>> {
        let offer = self.offer(id)?;
        let terms = self.terms(offer);
        let holder = member.holder(offer);
        Some(if terms.reward {
            crate::eligibility::check_purchase(&terms, &holder, at_ms)
        } else {
            crate::eligibility::check_clip(&terms, &holder, at_ms)
        })
    }

    fn store_region_id(&self, store: u32) -> String {
        format!("store:{}", self.stores[store as usize].id)
    }
}

/// What eligibility needs to know about the member, read once per call.
#[derive(Debug, Default)]
pub(crate) struct MemberView {
    tier: Option<u32>,
    segments: Vec<u32>,
    interests: Vec<u32>,
    has_interests: bool,
    personalised: bool,
    favourites: HashSet<u32>,
    used: HashMap<u32, u32>,
    clipped: HashSet<u32>,
}

impl MemberView {
    pub(crate) fn read(conn: &Connection, idx: &OfferIndex, gate: ConsentGate) -> Result<Self> {
        let (tier, segments): (Option<String>, Option<String>) = conn
            .query_row(
                "SELECT json_extract(data, '$.tier'), json_extract(data, '$.segments')
                 FROM member_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(st)?
            .unwrap_or((None, None));
        let segments: Vec<String> = segments
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let prefs = crate::privacy::preferences(conn)?;
        let mut view = MemberView {
            tier: tier.and_then(|t| idx.strings.get(&t)),
            segments: segments.iter().filter_map(|s| idx.strings.get(s)).collect(),
            // An interest no offer has matches nothing, but still means "only these".
            interests: prefs
                .interests
                .iter()
                .filter_map(|c| idx.strings.get(c))
                .collect(),
            has_interests: !prefs.interests.is_empty(),
            personalised: gate.permits(Feature::PersonalisedRanking),
            ..MemberView::default()
        };
        let mut stmt = conn
            .prepare_cached("SELECT store_id FROM favourite_store")
            .map_err(st)?;
        for id in stmt.query_map([], |r| r.get::<_, String>(0)).map_err(st)? {
            if let Some(s) = idx.store(&id.map_err(st)?) {
                view.favourites.insert(s);
            }
        }
        // Clips, and uses (the member's redeemed coupons, counted from the wallet at each sync).
        let mut stmt = conn
            .prepare_cached("SELECT offer_id, clipped_at IS NOT NULL, used_count FROM offer_state")
            .map_err(st)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })
            .map_err(st)?;
        for row in rows {
            let (id, clipped, used) = row.map_err(st)?;
            if let Some(o) = idx.offer(&id) {
                if clipped {
                    view.clipped.insert(o);
                }
                if used > 0 {
                    view.used.insert(o, used);
                }
            }
        }
        Ok(view)
    }

    /// The member as the rules of `offer` see them.
    fn holder(&self, offer: u32) -> Holder<'_, u32> {
        Holder {
            tier: self.tier,
            segments: &self.segments,
            used: self.used.get(&offer).copied().unwrap_or(0),
        }
    }
}

/// An offer near the member, at the nearest store where it applies.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NearbyOffer {
    pub offer: Offer,
    pub store_id: String,
    pub store_name: String,
    /// Geodesic distance from the member, metres.
    pub distance_m: f64,
    /// Usable right now: the store is open and the offer's hours include now.
    pub active_now: bool,
}

fn read_offer(conn: &Connection, id: &str) -> Result<Offer> {
    let data: String = conn
        .prepare_cached("SELECT data FROM offer WHERE id = ?1")
        .map_err(st)?
        .query_row([id], |r| r.get(0))
        .map_err(st)?;
    serde_json::from_str(&data).map_err(corrupt)
}

/// Eligible offers at stores within `radius_m`, each at its nearest store, nearest first (an offer
/// of the member's interests, or at a favourite store, counts as nearer when personalisation is
/// allowed).
pub(crate) fn offers_near(
    conn: &Connection,
    idx: &OfferIndex,
    member: &MemberView,
    at: Position,
    radius_m: f64,
    limit: usize,
    now_ms: i64,
) -> Result<Vec<NearbyOffer>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Lowest score factor a personalised offer can get: stop once no farther store can beat the
    // current `limit`-th score.
    let min_factor = if member.personalised { 0.4 } else { 1.0 };
    let mut best: HashMap<u32, (f64, u32, f64)> = HashMap::new();
    let mut scratch: Vec<f64> = Vec::new();
    for (store, lower) in idx.points.nearest(at) {
        if lower > radius_m {
            break;
        }
        if best.len() >= limit {
            scratch.clear();
            scratch.extend(best.values().map(|v| v.0));
            let (_, kth, _) = scratch.select_nth_unstable_by(limit - 1, |a, b| a.total_cmp(b));
            if lower * min_factor > *kth {
                break;
            }
        }
        let d = distance_m(at, idx.stores[store as usize].position);
        if d > radius_m {
            continue;
        }
        let favourite = member.personalised && member.favourites.contains(&store);
        for offer in idx.candidates(store) {
            if !idx.eligible(offer, store, member, now_ms, false) {
                continue;
            }
            let mut factor = 1.0;
            if member.personalised {
                let o = &idx.offers[offer as usize];
                if o.categories().iter().any(|c| member.interests.contains(c)) {
                    factor *= 0.5;
                }
                if favourite {
                    factor *= 0.8;
                }
            }
            let score = d * factor;
            let entry = best.entry(offer).or_insert((f64::INFINITY, store, d));
            if score < entry.0 {
                *entry = (score, store, d);
            }
        }
    }
    let mut ranked: Vec<(u32, (f64, u32, f64))> = best.into_iter().collect();
    ranked.sort_by(|(a, (sa, _, _)), (b, (sb, _, _))| {
        sa.total_cmp(sb)
            .then_with(|| idx.offers[*a as usize].id.cmp(&idx.offers[*b as usize].id))
    });
    ranked.truncate(limit);
    ranked
        .into_iter()
        .map(|(offer, (_, store, d))| {
            let s = &idx.stores[store as usize];
            Ok(NearbyOffer {
                offer: read_offer(conn, &idx.offers[offer as usize].id)?,
                store_id: s.id.to_string(),
                store_name: s.name.to_string(),
                distance_m: d,
                active_now: idx.open_at(store, now_ms)
                    && idx.eligible(offer, store, member, now_ms, true),
            })
        })
        .collect()
}

/// The same answer by scanning every store: the reference for tests and the bench.
pub fn offers_near_brute_force(
    idx: &OfferIndex,
    at: Position,
    radius_m: f64,
    limit: usize,
    now_ms: i64,
) -> Vec<(String, String)> {
    let member = MemberView::default();
    let mut best: HashMap<u32, (f64, u32)> = HashMap::new();
    for (store, s) in idx.stores.iter().enumerate() {
        let d = distance_m(at, s.position);
        if d > radius_m {
            continue;
        }
        for offer in idx.candidates(store as u32) {
            if idx.eligible(offer, store as u32, &member, now_ms, false) {
                let e = best.entry(offer).or_insert((f64::INFINITY, store as u32));
                if d < e.0 {
                    *e = (d, store as u32);
                }
            }
        }
    }
    let mut ranked: Vec<_> = best.into_iter().collect();
    ranked.sort_by(|(a, (da, _)), (b, (db, _))| {
        da.total_cmp(db)
            .then_with(|| idx.offers[*a as usize].id.cmp(&idx.offers[*b as usize].id))
    });
    ranked
        .into_iter()
        .take(limit)
        .map(|(o, (_, s))| {
            (
                idx.offers[o as usize].id.to_string(),
                idx.stores[s as usize].id.to_string(),
            )
        })
        .collect()
}

/// A circular region for the OS to monitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GeofenceRegion {
    /// `store:<id>`, or `replan:<lat>,<lon>,<radius>` for the region around the member.
    pub id: String,
    pub latitude: f64,
    pub longitude: f64,
    pub radius_m: f64,
    /// The store monitored; none for the re-plan region.
    pub store_id: Option<String>,
}

/// What the OS should monitor, as a change to what it monitors now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GeofencePlan {
    /// Every region of the plan: the nearest stores with offers, then the re-plan region. Empty
    /// without location consent.
    pub regions: Vec<GeofenceRegion>,
    /// Regions to start monitoring.
    pub add: Vec<GeofenceRegion>,
    /// Region ids to stop monitoring.
    pub remove: Vec<String>,
    /// The last plan was made moments ago nearby: nothing changes.
    pub throttled: bool,
}

/// The smallest region iOS and Android monitor reliably.
pub const MIN_REGION_M: f64 = 100.0;
/// The re-plan region never grows beyond this.
pub const MAX_REPLAN_M: f64 = 50_000.0;

/// The stores to monitor from `at`: the nearest `budget - 1` stores with an offer the member may
/// use today, and a region around the member that ends where the nearest store left out begins.
pub(crate) fn plan_regions(
    idx: &OfferIndex,
    member: &MemberView,
    at: Position,
    budget: usize,
    now_ms: i64,
) -> Vec<GeofenceRegion> {
    // Nearest qualifying stores with exact distances, until `budget` of them are sure.
    // A plan always holds the re-plan region; the stores get what is left of the budget.
    let budget = budget.max(1);
    // Kept sorted by (distance, id): the plan is the same whatever order the tree yields ties.
    let order = |a: &(f64, u32), b: &(f64, u32)| {
        a.0.total_cmp(&b.0).then_with(|| {
            idx.stores[a.1 as usize]
                .id
                .cmp(&idx.stores[b.1 as usize].id)
        })
    };
    let mut found: Vec<(f64, u32)> = Vec::new();
    for (store, lower) in idx.points.nearest(at) {
        if found.len() >= budget && lower > found[budget - 1].0 {
            break;
        }
        if idx
            .candidates(store)
            .any(|o| idx.eligible(o, store, member, now_ms, false))
        {
            let item = (distance_m(at, idx.stores[store as usize].position), store);
            let pos = found.partition_point(|x| order(x, &item).is_lt());
            found.insert(pos, item);
        }
    }
    let monitored = found.len().min(budget - 1);
    let mut regions: Vec<GeofenceRegion> = found[..monitored]
        .iter()
        .map(|&(_, s)| {
            let store = &idx.stores[s as usize];
            GeofenceRegion {
                id: idx.store_region_id(s),
                latitude: store.position.latitude,
                longitude: store.position.longitude,
                radius_m: f64::from(store.radius_m).max(MIN_REGION_M),
                store_id: Some(store.id.to_string()),
            }
        })
        .collect();
    let replan = match found.get(monitored) {
        Some(&(d, s)) => {
            (d - f64::from(idx.stores[s as usize].radius_m)).clamp(MIN_REGION_M, MAX_REPLAN_M)
        }
        None => MAX_REPLAN_M,
    };
    let (lat, lon) = (
        (at.latitude * 1e5).round() / 1e5,
        (at.longitude * 1e5).round() / 1e5,
    );
    regions.push(GeofenceRegion {
        id: format!("replan:{lat:.5},{lon:.5},{replan:.0}"),
        latitude: lat,
        longitude: lon,
        radius_m: replan.round(),
        store_id: None,
    });
    regions
}

/// The diff between a plan and what the OS monitors.
pub(crate) fn diff(
    regions: Vec<GeofenceRegion>,
    registered: &[String],
    throttled: bool,
) -> GeofencePlan {
    let wanted: BTreeSet<&str> = regions.iter().map(|r| r.id.as_str()).collect();
    let have: BTreeSet<&str> = registered.iter().map(String::as_str).collect();
    let add = regions
        .iter()
        .filter(|r| !have.contains(r.id.as_str()))
        .cloned()
        .collect();
    let remove = registered
        .iter()
        .filter(|id| !wanted.contains(id.as_str()))
        .cloned()
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    GeofencePlan {
        regions,
        add,
        remove,
        throttled,
    }
}

/// What the OS reported about a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum RegionEventKind {
    Enter,
    Dwell,
    Exit,
}

/// A notification to show, ready for the platform's notification API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OfferNotification {
    pub title: String,
    pub body: String,
    pub offer_id: String,
    pub store_id: Option<String>,
    /// Opens the offer in the app, offline too (`tessera://offer/<id>?store=<id>`).
    pub deep_link: String,
}

/// Why nothing is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SuppressReason {
    /// The member has not consented (location, or offers by push for that purpose).
    NoConsent,
    /// Not a region of the current plan (an old registration): re-plan.
    UnknownRegion,
    /// The event is older than the configured age, or in the future.
    Stale,
    StoreClosed,
    /// No offer the member may use there now (or only ones already clipped or used).
    NoEligibleOffer,
    /// A notification about this store was shown recently; RFC 3339 end of the cooldown.
    Cooldown {
        until: String,
    },
    QuietHours {
        until: String,
    },
    CapReached {
        per_day: bool,
    },
    NotOfInterest,
    ChannelNotPreferred,
    /// Every offer there was already notified recently (at another shop, or by push).
    AlreadyNotified,
    /// A push message already handled.
    Duplicate,
    /// A push message past its expiry.
    Expired,
}

/// What to do about an OS region event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum RegionAction {
    Notify {
        notification: OfferNotification,
    },
    Suppress {
        reason: SuppressReason,
    },
    /// The member left the re-plan region: call `plan_geofences` again.
    Replan,
    /// Nothing to do (leaving a store).
    Nothing,
}

/// The decision, and whether a store visit was recorded (sent at the next sync).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RegionOutcome {
    pub action: RegionAction,
    pub visit_recorded: bool,
}

/// Tunables of the geofence features.
#[derive(Debug, Clone)]
pub struct OfferSettings {
    /// No second notification about the same store within this.
    pub store_cooldown_ms: i64,
    /// Events older than this (or this far in the future) are not notified.
    pub max_event_age_ms: i64,
    /// A re-plan sooner than this and closer than `replan_min_move_m` returns the last plan.
    pub replan_min_interval_ms: i64,
    pub replan_min_move_m: f64,
    /// The same offer is not notified again within this, wherever the member is.
    pub offer_repeat_ms: i64,
}

impl Default for OfferSettings {
    fn default() -> Self {
        OfferSettings {
            store_cooldown_ms: 6 * 3_600_000,
            max_event_age_ms: 30 * 60_000,
            replan_min_interval_ms: 60_000,
            replan_min_move_m: 100.0,
            offer_repeat_ms: 24 * 3_600_000,
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The notification for `offer` at `store`.
pub(crate) fn notification(offer: &Offer, store: Option<(&str, &str)>) -> OfferNotification {
    let body = match store {
        Some((_, name)) if offer.description.is_empty() => name.to_owned(),
        Some((_, name)) => format!("{name} · {}", offer.description),
        None => offer.description.clone(),
    };
    let deep_link = match store {
        Some((id, _)) => format!("tessera://offer/{}?store={id}", offer.id),
        None => format!("tessera://offer/{}", offer.id),
    };
    OfferNotification {
        title: truncate(&offer.title, 65),
        body: truncate(&body, 178),
        offer_id: offer.id.clone(),
        store_id: store.map(|(id, _)| id.to_owned()),
        deep_link,
    }
}

/// The offers to notify at `store` now, best first: eligible with their hours, not clipped
/// already; the member's interests first (with personalisation), then ending soonest, then id.
pub(crate) fn offers_at(idx: &OfferIndex, member: &MemberView, store: u32, at_ms: i64) -> Vec<u32> {
    let mut offers: Vec<u32> = idx
        .candidates(store)
        .filter(|&o| !member.clipped.contains(&o) && idx.eligible(o, store, member, at_ms, true))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    offers.sort_by(|&a, &b| {
        let (oa, ob) = (&idx.offers[a as usize], &idx.offers[b as usize]);
        let interest = |o: &OfferRule| {
            member.personalised && o.categories().iter().any(|c| member.interests.contains(c))
        };
        interest(ob)
            .cmp(&interest(oa))
            .then(oa.to_ms.cmp(&ob.to_ms))
            .then_with(|| oa.id.cmp(&ob.id))
    });
    offers
}

/// Whether a notification about `offer_id` was shown since `since_ms` (at any store, by push).
pub(crate) fn offer_notified_since(
    conn: &Connection,
    offer_id: &str,
    since_ms: i64,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM notification_log WHERE offer_id = ?1 AND sent_at >= ?2)",
    )
    .map_err(st)?
    .query_row(params![offer_id, since_ms], |r| r.get(0))
    .map_err(st)
    .map_err(Error::from)
}

pub(crate) fn store_index(idx: &OfferIndex, store_id: &str) -> Option<u32> {
    idx.store(store_id)
}

pub(crate) fn store_names(idx: &OfferIndex, store: u32) -> (String, String) {
    let s = &idx.stores[store as usize];
    (s.id.to_string(), s.name.to_string())
}

pub(crate) fn store_open(idx: &OfferIndex, store: u32, at_ms: i64) -> bool {
    idx.open_at(store, at_ms)
}

pub(crate) fn offer_id(idx: &OfferIndex, offer: u32) -> &str {
    &idx.offers[offer as usize].id
}

/// When a notification about `store` was last shown, if within `since_ms`.
pub(crate) fn last_store_notification(
    conn: &Connection,
    store_id: &str,
    since_ms: i64,
) -> Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT max(sent_at) FROM notification_log WHERE store_id = ?1 AND sent_at >= ?2",
    )
    .map_err(st)?
    .query_row(params![store_id, since_ms], |r| r.get(0))
    .map_err(st)
    .map_err(Error::from)
}

pub(crate) fn read_full_offer(conn: &Connection, id: &str) -> Result<Offer> {
    read_offer(conn, id)
}

/// The gate's purpose for a geofence notification.
pub(crate) const GEOFENCE_PURPOSE: Purpose = Purpose::GeolocatedOffers;

/// A member view for tests and benches: nothing known, nothing personalised.
pub fn anonymous_offers_near(
    conn: &Connection,
    idx: &OfferIndex,
    at: Position,
    radius_m: f64,
    limit: usize,
    now_ms: i64,
) -> Result<Vec<NearbyOffer>> {
    offers_near(
        conn,
        idx,
        &MemberView::default(),
        at,
        radius_m,
        limit,
        now_ms,
    )
}

/// The plan from `at` with nothing known about the member (tests and benches).
pub fn anonymous_plan(
    idx: &OfferIndex,
    at: Position,
    budget: usize,
    now_ms: i64,
) -> Vec<GeofenceRegion> {
    plan_regions(idx, &MemberView::default(), at, budget, now_ms)
}

/// Stores with an offer usable today, nearest first by exact distance, by scanning everything
/// (the reference for the plan's property test).
pub fn qualifying_stores_brute_force(
    idx: &OfferIndex,
    at: Position,
    now_ms: i64,
) -> Vec<(f64, String)> {
    let member = MemberView::default();
    let mut v: Vec<(f64, String)> = (0..idx.stores.len() as u32)
        .filter(|&s| {
            idx.candidates(s)
                .any(|o| idx.eligible(o, s, &member, now_ms, false))
        })
        .map(|s| {
            (
                distance_m(at, idx.stores[s as usize].position),
                idx.stores[s as usize].id.to_string(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

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
