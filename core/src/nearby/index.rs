//! The catalog cache indexed: the stores in a packed tree on the unit sphere, each offer as a
//! compact rule (interned tiers, segments, categories, tags), the offers that target each store,
//! each store tag, or every store; and the member as the rules see them.
//!
//! The index is built in the heap, then written as flat sections of plain data to an unnamed
//! file next to the database and mapped: what a query touches is paged in by the OS, and the OS
//! can drop those pages again under memory pressure, which it cannot do with the heap
//! (docs/adr/0016). Where no file can be made, the same sections stay in one heap buffer.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use rusqlite::{Connection, OptionalExtension};

use crate::Result;
use crate::catalog::{Offer, OfferChannel, Store};
use crate::consent::{ConsentGate, Feature};
use crate::db::StorageError;
use crate::eligibility::{Holder, Terms, in_spans, local_time, minutes};
use crate::geo::{Bounds, PointEntry, PointIndex, PointsView, Position};

pub(super) fn st(e: rusqlite::Error) -> StorageError {
    StorageError::from(e)
}

pub(super) fn corrupt(_: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt
}

/// A store as the index holds it, 32 bytes: its id and name are in the id and name sections (one
/// string each for all stores); its opening hours and tags are sets shared by every store that
/// has the same (a chain's shops mostly do).
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(super) struct StoreEntry {
    pub(super) position: Position,
    pub(super) radius_m: u32,
    /// Into `OfferIndex::hour_sets`.
    pub(super) hours: u32,
    /// Into `OfferIndex::tag_sets`.
    pub(super) tags: u32,
    pub(super) tz: u16,
    _pad: u16,
}

const _: () = assert!(std::mem::size_of::<OfferRule>() == 40);
const _: () = assert!(std::mem::size_of::<StoreEntry>() == 32);

const HAS_LIMIT: u8 = 1;
const HAS_HOURS: u8 = 2;
const IN_STORE: u8 = 4;
const REWARD: u8 = 8;

/// An offer's rules, 40 bytes of plain data: its id is in the offer id section, its tiers,
/// segments and categories in `labels`.
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(super) struct OfferRule {
    pub(super) from_ms: i64,
    pub(super) to_ms: i64,
    limit: u32,
    /// Where its labels start in `labels`: tiers, then segments, then categories.
    label_start: u32,
    hours_from: u16,
    hours_to: u16,
    /// Bit d set: valid on weekday d (1 = Monday); 0: every day.
    days: u8,
    flags: u8,
    n_tiers: u8,
    n_segments: u8,
    n_categories: u8,
    _pad: [u8; 7],
}

impl OfferRule {
    pub(super) fn per_member_limit(&self) -> Option<u32> {
        (self.flags & HAS_LIMIT != 0).then_some(self.limit)
    }

    pub(super) fn hours(&self) -> Option<(u16, u16)> {
        (self.flags & HAS_HOURS != 0).then_some((self.hours_from, self.hours_to))
    }

    pub(super) fn in_store(&self) -> bool {
        self.flags & IN_STORE != 0
    }

    pub(super) fn reward(&self) -> bool {
        self.flags & REWARD != 0
    }
}

/// Strings end to end in one allocation, found by position (and, when pushed in order, by
/// binary search): 4 bytes of overhead each instead of a boxed string's 16.
#[derive(Debug, Default)]
struct Arena {
    text: String,
    end: Vec<u32>,
}

impl Arena {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.end.push(self.text.len() as u32);
    }
}

/// An [`Arena`]'s two sections, read in place.
#[derive(Debug, Clone, Copy)]
pub(super) struct Strings<'a> {
    text: &'a [u8],
    end: &'a [u32],
}

impl<'a> Strings<'a> {
    pub(super) fn get(&self, i: u32) -> &'a str {
        let end = self.end[i as usize] as usize;
        let start = match i {
            0 => 0,
            i => self.end[i as usize - 1] as usize,
        };
        // Written from `str`s by this process; never anything else.
        std::str::from_utf8(&self.text[start..end]).unwrap_or_default()
    }

    /// Where `s` is (the strings are in order).
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
}

/// The index as built, in the heap, before it is written out.
#[derive(Debug, Default)]
struct Parts {
    /// Sorted by id.
    stores: Vec<StoreEntry>,
    points: PointIndex,
    /// Sorted by id.
    offers: Vec<OfferRule>,
    store_start: Vec<u32>,
    store_offers: Vec<u32>,
    by_tag: HashMap<u32, Vec<u32>>,
    everywhere: Vec<u32>,
    by_expiry: Vec<u32>,
    store_ids: Arena,
    names: Arena,
    offer_ids: Arena,
    labels: Vec<u32>,
}

/// The sections of the index, in file order.
#[derive(Debug, Clone, Copy)]
enum Sec {
    Stores,
    Points,
    Boxes,
    Levels,
    Offers,
    StoreStart,
    StoreOffers,
    TagKeys,
    TagStart,
    TagOffers,
    Everywhere,
    ByExpiry,
    Labels,
    StoreIdText,
    StoreIdEnd,
    NameText,
    NameEnd,
    OfferIdText,
    OfferIdEnd,
}

const SECTIONS: usize = Sec::OfferIdEnd as usize + 1;

/// The sections, read in place: built once when the index is made, so a query reads fields,
/// not offsets.
#[derive(Debug, Clone, Copy, yoke::Yokeable)]
struct View<'a> {
    stores: &'a [StoreEntry],
    offers: &'a [OfferRule],
    points: &'a [PointEntry],
    boxes: &'a [Bounds],
    levels: &'a [u32],
    store_start: &'a [u32],
    store_offers: &'a [u32],
    tag_keys: &'a [u32],
    tag_start: &'a [u32],
    tag_offers: &'a [u32],
    everywhere: &'a [u32],
    by_expiry: &'a [u32],
    labels: &'a [u32],
    store_ids: Strings<'a>,
    names: Strings<'a>,
    offer_ids: Strings<'a>,
}

impl<'a> View<'a> {
    fn of(bytes: &'a [u8], ranges: &[(usize, usize); SECTIONS]) -> Self {
        fn sec<'b, T: bytemuck::Pod>(
            bytes: &'b [u8],
            ranges: &[(usize, usize); SECTIONS],
            s: Sec,
        ) -> &'b [T] {
            let (a, b) = ranges[s as usize];
            bytes
                .get(a..b)
                .and_then(|b| bytemuck::try_cast_slice(b).ok())
                .unwrap_or_default()
        }
        let strings = |text: Sec, end: Sec| Strings {
            text: sec(bytes, ranges, text),
            end: sec(bytes, ranges, end),
        };
        View {
            stores: sec(bytes, ranges, Sec::Stores),
            offers: sec(bytes, ranges, Sec::Offers),
            points: sec(bytes, ranges, Sec::Points),
            boxes: sec(bytes, ranges, Sec::Boxes),
            levels: sec(bytes, ranges, Sec::Levels),
            store_start: sec(bytes, ranges, Sec::StoreStart),
            store_offers: sec(bytes, ranges, Sec::StoreOffers),
            tag_keys: sec(bytes, ranges, Sec::TagKeys),
            tag_start: sec(bytes, ranges, Sec::TagStart),
            tag_offers: sec(bytes, ranges, Sec::TagOffers),
            everywhere: sec(bytes, ranges, Sec::Everywhere),
            by_expiry: sec(bytes, ranges, Sec::ByExpiry),
            labels: sec(bytes, ranges, Sec::Labels),
            store_ids: strings(Sec::StoreIdText, Sec::StoreIdEnd),
            names: strings(Sec::NameText, Sec::NameEnd),
            offer_ids: strings(Sec::OfferIdText, Sec::OfferIdEnd),
        }
    }
}

/// Where the sections are kept.
#[derive(Debug)]
enum Backing {
    /// An unnamed file next to the database, mapped read-only.
    Mapped(memmap2::Mmap),
    /// No file could be made: the same bytes in the heap (8-byte aligned).
    Heap(Vec<u64>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Heap(words) => bytemuck::cast_slice(words),
        }
    }
}

/// The catalog cache, indexed: flat sections in a mapped file, and the few small tables that
/// stay in the heap (interned labels, time zones, the distinct opening hours and tag sets).
pub struct OfferIndex {
    /// The sections (in a mapped file or the heap) and the view over them.
    view: yoke::Yoke<View<'static>, Box<Backing>>,
    pub(super) strings: crate::intern::Interner,
    pub(super) zones: Vec<jiff::tz::TimeZone>,
    /// The distinct opening hours and tag sets of the stores.
    pub(super) hour_sets: Vec<Box<[(u8, u16, u16)]>>,
    pub(super) tag_sets: Vec<Box<[u32]>>,
}

impl std::fmt::Debug for OfferIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfferIndex")
            .field("stores", &self.stores())
            .field("offers", &self.offers().len())
            .field("mapped", &self.is_mapped())
            .finish_non_exhaustive()
    }
}

/// What stays in the heap.
#[derive(Debug, Default)]
struct Heap {
    strings: crate::intern::Interner,
    zones: Vec<jiff::tz::TimeZone>,
    hour_sets: Vec<Box<[(u8, u16, u16)]>>,
    tag_sets: Vec<Box<[u32]>>,
}

/// Write the sections to an unnamed file in `dir` (gone from the directory at once; freed when
/// the last mapping ends) and map it read-only.
fn write_mapped(
    dir: &std::path::Path,
    sections: &[&[u8]; SECTIONS],
    ranges: &[(usize, usize); SECTIONS],
    total: usize,
) -> std::io::Result<memmap2::Mmap> {
    let file = tempfile::tempfile_in(dir)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
    let mut at = 0usize;
    for (bytes, &(start, _)) in sections.iter().zip(ranges) {
        out.write_all(&vec![0u8; start - at])?;
        out.write_all(bytes)?;
        at = start + bytes.len();
    }
    out.write_all(&vec![0u8; total - at])?;
    out.flush()?;
    drop(out);
    // SAFETY: the file has no name (nobody else can open it), this process wrote it whole above
    // and never writes to it again; the mapping is read-only and lives in the `OfferIndex` that
    // reads it. Mapping is `unsafe` only because another writer could change the bytes under the
    // mapping, and there is none.
    #[allow(unsafe_code)]
    unsafe {
        memmap2::Mmap::map(&file)
    }
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

/// Each section's bytes, in `Sec` order (the tag lists are flattened by `assemble`).
fn section_bytes(parts: &Parts) -> [&[u8]; SECTIONS] {
    let (points, boxes, levels) = parts.points.parts();
    [
        bytemuck::cast_slice(&parts.stores),
        bytemuck::cast_slice(points),
        bytemuck::cast_slice(boxes),
        bytemuck::cast_slice(levels),
        bytemuck::cast_slice(&parts.offers),
        bytemuck::cast_slice(&parts.store_start),
        bytemuck::cast_slice(&parts.store_offers),
        &[],
        &[],
        &[],
        bytemuck::cast_slice(&parts.everywhere),
        bytemuck::cast_slice(&parts.by_expiry),
        bytemuck::cast_slice(&parts.labels),
        parts.store_ids.text.as_bytes(),
        bytemuck::cast_slice(&parts.store_ids.end),
        parts.names.text.as_bytes(),
        bytemuck::cast_slice(&parts.names.end),
        parts.offer_ids.text.as_bytes(),
        bytemuck::cast_slice(&parts.offer_ids.end),
    ]
}

impl OfferIndex {
    /// Write `parts` as sections (to an unnamed file in `dir` and map it, or to one heap buffer)
    /// and keep `heap` alongside.
    fn assemble(
        parts: Parts,
        heap: Heap,
        dir: Option<&std::path::Path>,
    ) -> Result<Self, StorageError> {
        let mut tags: Vec<(&u32, &Vec<u32>)> = parts.by_tag.iter().collect();
        tags.sort_unstable_by_key(|(t, _)| **t);
        let tag_keys: Vec<u32> = tags.iter().map(|(t, _)| **t).collect();
        let mut tag_start = Vec::with_capacity(tags.len() + 1);
        let mut tag_offers = Vec::new();
        for (_, list) in &tags {
            tag_start.push(tag_offers.len() as u32);
            tag_offers.extend_from_slice(list);
        }
        tag_start.push(tag_offers.len() as u32);
        let mut sections = section_bytes(&parts);
        sections[Sec::TagKeys as usize] = bytemuck::cast_slice(&tag_keys);
        sections[Sec::TagStart as usize] = bytemuck::cast_slice(&tag_start);
        sections[Sec::TagOffers as usize] = bytemuck::cast_slice(&tag_offers);
        // Each section starts on an 8-byte boundary (the strictest alignment of its types).
        let mut ranges = [(0usize, 0usize); SECTIONS];
        let mut at = 0usize;
        for (i, bytes) in sections.iter().enumerate() {
            ranges[i] = (at, at + bytes.len());
            at = (at + bytes.len()).div_ceil(8) * 8;
        }
        let total = at;
        let backing = match dir.and_then(|d| write_mapped(d, &sections, &ranges, total).ok()) {
            Some(map) => Backing::Mapped(map),
            None => {
                let mut words = vec![0u64; total / 8];
                let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
                for (i, s) in sections.iter().enumerate() {
                    bytes[ranges[i].0..ranges[i].1].copy_from_slice(s);
                }
                Backing::Heap(words)
            }
        };
        let view = yoke::Yoke::attach_to_cart(Box::new(backing), |b: &Backing| {
            View::of(b.bytes(), &ranges)
        });
        let idx = OfferIndex {
            view,
            strings: heap.strings,
            zones: heap.zones,
            hour_sets: heap.hour_sets,
            tag_sets: heap.tag_sets,
        };
        // What was written is what was meant: every section whole, and the tree's shape.
        let v = idx.v();
        let sizes = [
            (Sec::Stores, std::mem::size_of_val(v.stores)),
            (Sec::Offers, std::mem::size_of_val(v.offers)),
            (Sec::Points, std::mem::size_of_val(v.points)),
            (Sec::Labels, std::mem::size_of_val(v.labels)),
            (Sec::StoreStart, std::mem::size_of_val(v.store_start)),
            (Sec::OfferIdEnd, std::mem::size_of_val(v.offer_ids.end)),
        ];
        let whole = sizes
            .iter()
            .all(|&(s, len)| len == ranges[s as usize].1 - ranges[s as usize].0);
        if idx.bytes().len() < total
            || !whole
            || PointsView::new(v.points, v.boxes, v.levels).is_none()
        {
            return Err(StorageError::Corrupt);
        }
        Ok(idx)
    }

    fn bytes(&self) -> &[u8] {
        self.view.backing_cart().bytes()
    }

    fn v(&self) -> &View<'_> {
        self.view.get()
    }

    /// Whether the sections are in a mapped file (not in the heap).
    pub fn is_mapped(&self) -> bool {
        matches!(**self.view.backing_cart(), Backing::Mapped(_))
    }

    /// The size of the sections (the mapped file, or the heap buffer).
    pub fn sections_len(&self) -> usize {
        self.bytes().len()
    }

    pub(super) fn store_entries(&self) -> &[StoreEntry] {
        self.v().stores
    }

    pub(super) fn offers(&self) -> &[OfferRule] {
        self.v().offers
    }

    pub(super) fn points(&self) -> PointsView<'_> {
        let v = self.v();
        // Checked when the index was made.
        PointsView::new(v.points, v.boxes, v.levels).unwrap_or_default()
    }

    pub(super) fn store_start(&self) -> &[u32] {
        self.v().store_start
    }

    pub(super) fn store_offers(&self) -> &[u32] {
        self.v().store_offers
    }

    pub(super) fn everywhere(&self) -> &[u32] {
        self.v().everywhere
    }

    pub(super) fn by_expiry(&self) -> &[u32] {
        self.v().by_expiry
    }

    /// The offers for the store tag `tag`, in id order.
    pub(super) fn by_tag(&self, tag: u32) -> &[u32] {
        let v = self.v();
        let Ok(i) = v.tag_keys.binary_search(&tag) else {
            return &[];
        };
        &v.tag_offers[v.tag_start[i] as usize..v.tag_start[i + 1] as usize]
    }

    fn labels_sec(&self) -> &[u32] {
        self.v().labels
    }

    fn store_ids(&self) -> Strings<'_> {
        self.v().store_ids
    }

    fn names(&self) -> Strings<'_> {
        self.v().names
    }

    fn offer_ids(&self) -> Strings<'_> {
        self.v().offer_ids
    }

    /// Read the whole cache, index it, and write it out next to the database (see the module).
    pub fn build(conn: &Connection) -> Result<Self, StorageError> {
        let mut idx = Parts::default();
        let mut heap = Heap::default();
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
                    heap.zones.push(zone);
                    let id = (heap.zones.len() - 1) as u16;
                    zone_ids.insert(store.timezone.clone(), id);
                    id
                }
            };
            let hours = store
                .opening_hours
                .iter()
                .filter_map(|h| Some((h.day, minutes(&h.opens)?, minutes(&h.closes)?)))
                .collect();
            let hours = shared(&mut heap.hour_sets, &mut hour_ids, hours);
            let tags = heap.strings.ids(&store.tags);
            let tags = shared(&mut heap.tag_sets, &mut tag_ids, tags);
            let entry = StoreEntry {
                position: Position {
                    latitude: store.latitude,
                    longitude: store.longitude,
                },
                radius_m: store.radius_m,
                tz,
                hours,
                tags,
                _pad: 0,
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
        let store_ids = Strings {
            text: idx.store_ids.text.as_bytes(),
            end: &idx.store_ids.end,
        };
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
                if let Some(si) = store_ids.find(s) {
                    pairs.push((si, i));
                }
            }
            for t in &offer.store_tags {
                let tag = heap.strings.id(t);
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
                .map(|l| heap.strings.id(l))
                .collect();
            let flags = [
                (offer.per_member_limit.is_some(), HAS_LIMIT),
                (hours.is_some(), HAS_HOURS),
                (!matches!(offer.channel, OfferChannel::Online), IN_STORE),
                (offer.points_cost.is_some(), REWARD),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .fold(0u8, |f, (_, bit)| f | bit);
            let (hours_from, hours_to) = hours.unwrap_or((0, 0));
            let rule = OfferRule {
                from_ms,
                to_ms,
                limit: offer.per_member_limit.unwrap_or(0),
                label_start: 0,
                hours_from,
                hours_to,
                days: crate::eligibility::day_mask(&offer.days),
                flags,
                n_tiers: offer.tiers.len().min(255) as u8,
                n_segments: offer.segments.len().min(255) as u8,
                n_categories: offer.categories.len().min(255) as u8,
                _pad: [0; 7],
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
        heap.hour_sets.shrink_to_fit();
        heap.tag_sets.shrink_to_fit();
        let dir = conn
            .path()
            .filter(|p| !p.is_empty())
            .and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_path_buf()));
        OfferIndex::assemble(idx, heap, dir.as_deref())
    }

    pub fn stores(&self) -> usize {
        self.store_entries().len()
    }

    pub(super) fn store(&self, id: &str) -> Option<u32> {
        self.store_ids().find(id)
    }

    pub(super) fn offer(&self, id: &str) -> Option<u32> {
        self.offer_ids().find(id)
    }

    pub(super) fn store_id(&self, store: u32) -> &str {
        self.store_ids().get(store)
    }

    pub(super) fn offer_id(&self, offer: u32) -> &str {
        self.offer_ids().get(offer)
    }

    fn labels(&self, offer: u32) -> (&OfferRule, &[u32]) {
        let o = &self.offers()[offer as usize];
        let start = o.label_start as usize;
        let n = o.n_tiers as usize + o.n_segments as usize + o.n_categories as usize;
        (o, &self.labels_sec()[start..start + n])
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
        self.names().get(store)
    }

    /// The store's tags (interned).
    pub(super) fn store_tags(&self, store: u32) -> &[u32] {
        &self.tag_sets[self.store_entries()[store as usize].tags as usize]
    }

    /// The offers naming `store` by id.
    pub(super) fn own_offers(&self, store: u32) -> &[u32] {
        let start = self.store_start();
        let (a, b) = (
            start[store as usize] as usize,
            start[store as usize + 1] as usize,
        );
        &self.store_offers()[a..b]
    }

    pub(super) fn candidates(&self, store: u32) -> impl Iterator<Item = u32> + '_ {
        self.own_offers(store)
            .iter()
            .chain(self.store_tags(store).iter().flat_map(|t| self.by_tag(*t)))
            .chain(self.everywhere())
            .copied()
    }

    pub(super) fn local(&self, store: u32, at_ms: i64) -> (u8, u16) {
        local_time(
            &self.zones[self.store_entries()[store as usize].tz as usize],
            at_ms,
        )
    }

    pub(super) fn open_at(&self, store: u32, at_ms: i64) -> bool {
        let hours = &self.hour_sets[self.store_entries()[store as usize].hours as usize];
        if hours.is_empty() {
            return true;
        }
        let (day, t) = self.local(store, at_ms);
        in_spans(hours, day, t)
    }

    /// The offer's rules, over interned labels.
    pub(super) fn terms(&self, offer: u32) -> Terms<'_, u32> {
        let o = &self.offers()[offer as usize];
        Terms {
            from_ms: o.from_ms,
            to_ms: o.to_ms,
            in_store: o.in_store(),
            reward: o.reward(),
            days: o.days,
            hours: o.hours(),
            tiers: self.tiers(offer),
            segments: self.segments(offer),
            per_member_limit: o.per_member_limit(),
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
