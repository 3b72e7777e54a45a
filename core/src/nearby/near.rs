//! Offers near a position: the stores within a radius, each offer at its nearest store, nearest
//! (and, with personalisation, most relevant) first; and the brute-force references the tests
//! and benchmarks hold the index to.

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Serialize;

use super::*;
use crate::Result;
use crate::catalog::Offer;
use crate::geo::{Position, distance_m};

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

/// The offer `id` from the cache; `None` if a sync removed it since the index in use was built
/// (a newer index is on its way).
pub(super) fn read_offer(conn: &Connection, id: &str) -> Result<Option<Offer>, StorageError> {
    use rusqlite::OptionalExtension;
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM offer WHERE id = ?1")
        .map_err(st)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(st)?;
    data.map(|d| serde_json::from_str(&d).map_err(corrupt))
        .transpose()
}

/// Eligible offers at stores within `radius_m`, each at its nearest store, nearest first (an offer
/// of the member's interests, or at a favourite store, counts as nearer when personalisation is
/// allowed).
///
/// Offers for every store and offers for a store tag are held once in the index, not once per
/// store: a chain-wide offer is at the best-placed store of each time zone (its days are the
/// store's local days), a tag offer at the best-placed store with the tag in each zone. Such a
/// list is read once per query, in id order, and only its first `limit` eligible offers of each
/// kind (of the member's interests or not) can rank: every other one has the same score and a
/// greater id than `limit` others (issue #15: a chain-wide catalog cost ~120 ms a query).
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
    let interest = |offer: u32| if idx.boosted(offer, member) { 0.5 } else { 1.0 };
    let mut best: HashMap<u32, (f64, u32, f64)> = HashMap::new();
    let offer_at = |best: &mut HashMap<u32, (f64, u32, f64)>, offer: u32, base: f64, store, d| {
        let score = base * interest(offer);
        let entry = best.entry(offer).or_insert((f64::INFINITY, store, d));
        if score < entry.0 {
            *entry = (score, store, d);
        }
    };
    // The shared lists (every store; a tag), per time zone: the best-placed store so far (its
    // score without the offer's own factor) and the offers of the list that may rank.
    let mut shared: HashMap<(Option<u32>, u16), (f64, Vec<u32>)> = HashMap::new();
    let mut scratch: Vec<f64> = Vec::new();
    for (store, lower) in idx.points().nearest(at) {
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
        let s = &idx.store_entries()[store as usize];
        let d = distance_m(at, s.position);
        if d > radius_m {
            continue;
        }
        let base = if member.personalised && member.favourites.contains(&store) {
            d * 0.8
        } else {
            d
        };
        for &offer in idx.own_offers(store) {
            if idx.eligible(offer, store, member, now_ms, false) {
                offer_at(&mut best, offer, base, store, d);
            }
        }
        let lists = std::iter::once(None).chain(idx.store_tags(store).iter().map(|t| Some(*t)));
        for tag in lists {
            let key = (tag, s.tz);
            if shared.get(&key).is_some_and(|(b, _)| *b <= base) {
                continue; // a better-placed store of this zone holds the list already
            }
            let offers = match shared.remove(&key) {
                Some((_, offers)) => offers,
                None => {
                    let list: &[u32] = match tag {
                        None => idx.everywhere(),
                        Some(t) => idx.by_tag(t),
                    };
                    first_eligible(idx, list, store, member, now_ms, limit)
                }
            };
            for &offer in &offers {
                offer_at(&mut best, offer, base, store, d);
            }
            shared.insert(key, (base, offers));
        }
    }
    let mut ranked: Vec<(u32, (f64, u32, f64))> = best.into_iter().collect();
    ranked.sort_by(|(a, (sa, _, _)), (b, (sb, _, _))| {
        sa.total_cmp(sb).then_with(|| a.cmp(b)) // offers are indexed in id order
    });
    ranked.truncate(limit);
    let mut out = Vec::with_capacity(ranked.len());
    for (offer, (_, store, d)) in ranked {
        let Some(full) = read_offer(conn, idx.offer_id(offer))? else {
            continue;
        };
        out.push(NearbyOffer {
            offer: full,
            store_id: idx.store_id(store).to_owned(),
            store_name: idx.store_name(store).to_owned(),
            distance_m: d,
            active_now: idx.open_at(store, now_ms)
                && idx.eligible(offer, store, member, now_ms, true),
        });
    }
    Ok(out)
}

/// The first `limit` offers of `list` (in id order) eligible at `store` of each kind: of the
/// member's interests (personalised ranking) or not.
fn first_eligible(
    idx: &OfferIndex,
    list: &[u32],
    store: u32,
    member: &MemberView,
    now_ms: i64,
    limit: usize,
) -> Vec<u32> {
    let (mut taken, mut out) = ([0usize; 2], Vec::new());
    for &o in list {
        let kind = usize::from(idx.boosted(o, member));
        if taken[kind] < limit && idx.eligible(o, store, member, now_ms, false) {
            taken[kind] += 1;
            out.push(o);
            if taken == [limit, limit] || (!member.personalised && taken[0] == limit) {
                break;
            }
        }
    }
    out
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
    for (store, s) in idx.store_entries().iter().enumerate() {
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
        da.total_cmp(db).then_with(|| a.cmp(b)) // offers are indexed in id order
    });
    ranked
        .into_iter()
        .take(limit)
        .map(|(o, (_, s))| (idx.offer_id(o).to_owned(), idx.store_id(s).to_owned()))
        .collect()
}

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

/// Stores with an offer usable today, nearest first by exact distance, by scanning everything
/// (the reference for the plan's property test).
pub fn qualifying_stores_brute_force(
    idx: &OfferIndex,
    at: Position,
    now_ms: i64,
) -> Vec<(f64, String)> {
    let member = MemberView::default();
    let mut v: Vec<(f64, String)> = (0..idx.store_entries().len() as u32)
        .filter(|&s| {
            idx.candidates(s)
                .any(|o| idx.eligible(o, s, &member, now_ms, false))
        })
        .map(|s| {
            (
                distance_m(at, idx.store_entries()[s as usize].position),
                idx.store_id(s).to_owned(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    v
}
