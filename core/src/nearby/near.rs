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
    let mut out = Vec::with_capacity(ranked.len());
    for (offer, (_, store, d)) in ranked {
        let Some(full) = read_offer(conn, &idx.offers[offer as usize].id)? else {
            continue;
        };
        let s = &idx.stores[store as usize];
        out.push(NearbyOffer {
            offer: full,
            store_id: s.id.to_string(),
            store_name: s.name.to_string(),
            distance_m: d,
            active_now: idx.open_at(store, now_ms)
                && idx.eligible(offer, store, member, now_ms, true),
        });
    }
    Ok(out)
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
