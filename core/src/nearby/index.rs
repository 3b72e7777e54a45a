//! The catalog cache indexed in memory: the stores in a packed tree on the unit sphere, each offer as
//! a compact rule (interned tiers, segments, categories, tags), the offers that target each store,
//! each store tag, or every store; and the member as the rules see them.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension};

use crate::Result;
use crate::catalog::{Offer, OfferChannel, Store};
use crate::consent::{ConsentGate, Feature};
use crate::db::StorageError;
use crate::eligibility::{Holder, Terms, in_spans, local_time, minutes};
use crate::geo::{PointIndex, Position};

pub(super) fn st(e: rusqlite::Error) -> StorageError {
    StorageError::from(e)
}

pub(super) fn corrupt(_: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt
}

/// A store as the index holds it: its id and name are in `OfferIndex::store_ids` and `names`
/// (one string each for all stores); its opening hours and tags are sets shared by every store
/// that has the same (a chain's shops mostly do).
#[derive(Debug)]
pub(super) struct StoreEntry {
    pub(super) position: Position,
    pub(super) radius_m: u32,
    pub(super) tz: u16,
    /// Into `OfferIndex::hour_sets`.
    pub(super) hours: u32,
    /// Into `OfferIndex::tag_sets`.
    pub(super) tags: u32,
}

const _: () = assert!(std::mem::size_of::<OfferRule>() == 40);

/// An offer's rules, 40 bytes: its id is in `OfferIndex::offer_ids`, its tiers, segments and
/// categories in `OfferIndex::labels`.
#[derive(Debug)]
pub(super) struct OfferRule {
    pub(super) from_ms: i64,
    pub(super) to_ms: i64,
    pub(super) per_member_limit: Option<u32>,
    /// Where its labels start in `OfferIndex::labels`: tiers, then segments, then categories.
    pub(super) label_start: u32,
    pub(super) hours: Option<(u16, u16)>,
    /// Bit d set: valid on weekday d (1 = Monday); 0: every day.
    pub(super) days: u8,
    pub(super) in_store: bool,
    pub(super) reward: bool,
    pub(super) n_tiers: u8,
    pub(super) n_segments: u8,
    pub(super) n_categories: u8,
}

/// Strings end to end in one allocation, found by position (and, when pushed in order, by
/// binary search): 4 bytes of overhead each instead of a boxed string's 16.
#[derive(Debug, Default)]
pub(super) struct Arena {
    text: String,
    end: Vec<u32>,
}

impl Arena {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.end.push(self.text.len() as u32);
    }

    pub(super) fn get(&self, i: u32) -> &str {
        let end = self.end[i as usize] as usize;
        let start = match i {
            0 => 0,
            i => self.end[i as usize - 1] as usize,
        };
        &self.text[start..end]
    }

    /// Where `s` is, if the strings were pushed in order.
    fn find(&self, s: &str) -> Option<u32> {
        let (mut lo, mut hi) = (0u32, self.end.len() as u32);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.end.shrink_to_fit();
    }
}

/// The catalog cache, indexed.
#[derive(Debug, Default)]
pub struct OfferIndex {
    /// Sorted by id: found by binary search, no second copy of the ids.
    pub(super) stores: Vec<StoreEntry>,
    pub(super) points: PointIndex,
    /// Sorted by id.
    pub(super) offers: Vec<OfferRule>,
    /// The offers naming each store: `store_offers[store_start[s]..store_start[s + 1]]`.
    pub(super) store_start: Vec<u32>,
    pub(super) store_offers: Vec<u32>,
    pub(super) by_tag: HashMap<u32, Vec<u32>>,
    pub(super) everywhere: Vec<u32>,
    /// Every offer, ending soonest first (then by id): the offers screen's order.
    pub(super) by_expiry: Vec<u32>,
    pub(super) strings: crate::intern::Interner,
    pub(super) zones: Vec<jiff::tz::TimeZone>,
    /// The stores' ids and names, in the stores' (id) order.
    pub(super) store_ids: Arena,
    pub(super) names: Arena,
    /// The offers' ids, in their (id) order.
    pub(super) offer_ids: Arena,
    /// Every offer's tiers, segments and categories (interned), end to end.
    pub(super) labels: Vec<u32>,
    /// The distinct opening hours and tag sets of the stores.
    pub(super) hour_sets: Vec<Box<[(u8, u16, u16)]>>,
    pub(super) tag_sets: Vec<Box<[u32]>>,
}

/// Index of `value` in `sets`, added if new (`seen` maps each set to its index).
fn shared<T: Clone + Eq + std::hash::Hash>(
    sets: &mut Vec<Box<[T]>>,
    seen: &mut HashMap<Box<[T]>, u32>,
    value: Box<[T]>,
) -> u32 {
    if let Some(&i) = seen.get(&value) {
        return i;
    }
    sets.push(value.clone());
    let i = (sets.len() - 1) as u32;
    seen.insert(value, i);
    i
}

impl OfferIndex {
    /// Read the whole cache and index it.
    pub fn build(conn: &Connection) -> Result<Self, StorageError> {
        let mut idx = OfferIndex::default();
        let mut zone_ids: HashMap<String, u16> = HashMap::new();
        let (mut hour_ids, mut tag_ids) = (HashMap::new(), HashMap::new());
        let mut stores: Vec<(String, String, StoreEntry)> = Vec::new();
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
            let hours = shared(&mut idx.hour_sets, &mut hour_ids, hours);
            let tags = idx.strings.ids(&store.tags);
            let tags = shared(&mut idx.tag_sets, &mut tag_ids, tags);
            let entry = StoreEntry {
                position: Position {
                    latitude: store.latitude,
                    longitude: store.longitude,
                },
                radius_m: store.radius_m,
                tz,
                hours,
                tags,
            };
            stores.push((store.id, store.name, entry));
        }
        stores.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        idx.stores = Vec::with_capacity(stores.len());
        for (id, name, entry) in stores {
            idx.store_ids.push(&id);
            idx.names.push(&name);
            idx.stores.push(entry);
        }
        idx.store_ids.shrink_to_fit();
        idx.names.shrink_to_fit();
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
        let mut read: Vec<(String, OfferRule, Vec<u32>)> = Vec::new();
        for row in rows {
            let offer: Offer = serde_json::from_str(&row.map_err(st)?).map_err(corrupt)?;
            let ms = |s: &str| s.parse::<jiff::Timestamp>().map(|t| t.as_millisecond());
            let (Ok(from_ms), Ok(to_ms)) = (ms(&offer.valid_from), ms(&offer.valid_to)) else {
                continue;
            };
            let i = read.len() as u32;
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
            let labels: Vec<u32> = offer
                .tiers
                .iter()
                .take(255)
                .chain(offer.segments.iter().take(255))
                .chain(offer.categories.iter().take(255))
                .map(|l| idx.strings.id(l))
                .collect();
            let rule = OfferRule {
                days: crate::eligibility::day_mask(&offer.days),
                reward: offer.points_cost.is_some(),
                hours,
                in_store: !matches!(offer.channel, OfferChannel::Online),
                n_tiers: offer.tiers.len().min(255) as u8,
                n_segments: offer.segments.len().min(255) as u8,
                n_categories: offer.categories.len().min(255) as u8,
                label_start: 0,
                per_member_limit: offer.per_member_limit,
                from_ms,
                to_ms,
            };
            read.push((offer.id, rule, labels));
        }
        let mut order: Vec<u32> = (0..read.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| read[a as usize].0.cmp(&read[b as usize].0));
        let mut renumber = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        let mut unsorted: Vec<Option<(String, OfferRule, Vec<u32>)>> =
            read.into_iter().map(Some).collect();
        idx.offers = Vec::with_capacity(order.len());
        for &old in &order {
            if let Some((id, mut rule, labels)) = unsorted[old as usize].take() {
                rule.label_start = idx.labels.len() as u32;
                idx.labels.extend(labels);
                idx.offer_ids.push(&id);
                idx.offers.push(rule);
            }
        }
        idx.offer_ids.shrink_to_fit();
        idx.labels.shrink_to_fit();
        for (_, o) in pairs.iter_mut() {
            *o = renumber[*o as usize];
        }
        // In id order, as the offers are: a query takes the first eligible ones of a list.
        for list in idx.by_tag.values_mut() {
            for o in list.iter_mut() {
                *o = renumber[*o as usize];
            }
            list.sort_unstable();
        }
        for o in idx.everywhere.iter_mut() {
            *o = renumber[*o as usize];
        }
        idx.everywhere.sort_unstable();
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
        idx.by_expiry = (0..idx.offers.len() as u32).collect();
        // Stable: offers are in id order already.
        idx.by_expiry.sort_by_key(|&o| idx.offers[o as usize].to_ms);
        idx.offers.shrink_to_fit();
        idx.stores.shrink_to_fit();
        idx.hour_sets.shrink_to_fit();
        idx.tag_sets.shrink_to_fit();
        for list in idx.by_tag.values_mut() {
            list.shrink_to_fit();
        }
        idx.everywhere.shrink_to_fit();
        Ok(idx)
    }

    pub fn stores(&self) -> usize {
        self.stores.len()
    }

    pub(super) fn store(&self, id: &str) -> Option<u32> {
        self.store_ids.find(id)
    }

    pub(super) fn offer(&self, id: &str) -> Option<u32> {
        self.offer_ids.find(id)
    }

    pub(super) fn store_id(&self, store: u32) -> &str {
        self.store_ids.get(store)
    }

    pub(super) fn offer_id(&self, offer: u32) -> &str {
        self.offer_ids.get(offer)
    }

    fn labels(&self, offer: u32) -> (&OfferRule, &[u32]) {
        let o = &self.offers[offer as usize];
        let start = o.label_start as usize;
        let n = o.n_tiers as usize + o.n_segments as usize + o.n_categories as usize;
        (o, &self.labels[start..start + n])
    }

    pub(super) fn tiers(&self, offer: u32) -> &[u32] {
        let (o, l) = self.labels(offer);
        &l[..o.n_tiers as usize]
    }

    pub(super) fn segments(&self, offer: u32) -> &[u32] {
        let (o, l) = self.labels(offer);
        &l[o.n_tiers as usize..(o.n_tiers + o.n_segments) as usize]
    }

    pub(super) fn categories(&self, offer: u32) -> &[u32] {
        let (o, l) = self.labels(offer);
        &l[o.n_tiers as usize + o.n_segments as usize..]
    }

    /// The store's name.
    pub(super) fn store_name(&self, store: u32) -> &str {
        self.names.get(store)
    }

    /// The store's tags (interned).
    pub(super) fn store_tags(&self, store: u32) -> &[u32] {
        &self.tag_sets[self.stores[store as usize].tags as usize]
    }

    /// The offers naming `store` by id.
    pub(super) fn own_offers(&self, store: u32) -> &[u32] {
        let (a, b) = (
            self.store_start[store as usize] as usize,
            self.store_start[store as usize + 1] as usize,
        );
        &self.store_offers[a..b]
    }

    pub(super) fn candidates(&self, store: u32) -> impl Iterator<Item = u32> + '_ {
        self.own_offers(store)
            .iter()
            .chain(
                self.store_tags(store)
                    .iter()
                    .flat_map(|t| self.by_tag.get(t).into_iter().flatten()),
            )
            .chain(self.everywhere.iter())
            .copied()
    }

    pub(super) fn local(&self, store: u32, at_ms: i64) -> (u8, u16) {
        local_time(&self.zones[self.stores[store as usize].tz as usize], at_ms)
    }

    pub(super) fn open_at(&self, store: u32, at_ms: i64) -> bool {
        let hours = &self.hour_sets[self.stores[store as usize].hours as usize];
        if hours.is_empty() {
            return true;
        }
        let (day, t) = self.local(store, at_ms);
        in_spans(hours, day, t)
    }

    /// The offer's rules, over interned labels.
    pub(super) fn terms(&self, offer: u32) -> Terms<'_, u32> {
        let o = &self.offers[offer as usize];
        Terms {
            from_ms: o.from_ms,
            to_ms: o.to_ms,
            in_store: o.in_store,
            reward: o.reward,
            days: o.days,
            hours: o.hours,
            tiers: self.tiers(offer),
            segments: self.segments(offer),
            per_member_limit: o.per_member_limit,
        }
    }

    /// Whether the offer is of one of the member's interests.
    pub(super) fn of_interest(&self, offer: u32, member: &MemberView) -> bool {
        self.categories(offer)
            .iter()
            .any(|c| member.interests.contains(c))
    }

    /// Whether the offer may be shown to the member: the member chose no interests, the offer
    /// has no category, or it is of one of them (a display preference, not a rule).
    pub(super) fn within_interests(&self, offer: u32, member: &MemberView) -> bool {
        !member.has_interests
            || self.categories(offer).is_empty()
            || self.of_interest(offer, member)
    }

    /// Whether the offer ranks higher for its interest: personalised ranking, and of interest.
    pub(super) fn boosted(&self, offer: u32, member: &MemberView) -> bool {
        member.personalised && self.of_interest(offer, member)
    }

    /// Whether `member` may use `offer` at `store` at `at_ms` (the domain's
    /// [`crate::eligibility::check_use`]: dates, days, hours when `hours`, in store, tier,
    /// segment, limit), and whether it is of the member's interests (a display preference).
    pub(super) fn eligible(
        &self,
        offer: u32,
        store: u32,
        member: &MemberView,
        at_ms: i64,
        hours: bool,
    ) -> bool {
        if !self.within_interests(offer, member) {
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

    pub(super) fn store_region_id(&self, store: u32) -> String {
        format!("store:{}", self.store_id(store))
    }
}

/// What eligibility needs to know about the member, read once per call.
#[derive(Debug, Default)]
pub(crate) struct MemberView {
    pub(super) tier: Option<u32>,
    pub(super) segments: Vec<u32>,
    pub(super) interests: Vec<u32>,
    pub(super) has_interests: bool,
    pub(super) personalised: bool,
    pub(super) favourites: HashSet<u32>,
    pub(super) used: HashMap<u32, u32>,
    pub(super) clipped: HashSet<u32>,
}

/// The member's tier and segments, as the server last sent them (none before a first sync).
pub(super) fn member_labels(
    conn: &Connection,
) -> Result<(Option<String>, Vec<String>), StorageError> {
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
    let segments = segments
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    Ok((tier, segments))
}

impl MemberView {
    pub(crate) fn read(
        conn: &Connection,
        idx: &OfferIndex,
        gate: ConsentGate,
    ) -> Result<Self, StorageError> {
        let (tier, segments) = member_labels(conn)?;
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
    pub(super) fn holder(&self, offer: u32) -> Holder<'_, u32> {
        Holder {
            tier: self.tier,
            segments: &self.segments,
            used: self.used.get(&offer).copied().unwrap_or(0),
        }
    }
}
