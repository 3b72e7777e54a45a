//! The offers screen: offers valid now that the programme's rules let the member use (dates,
//! tier, segment, per-member limit: the domain's [`crate::eligibility`]), within the member's
//! interests, ending soonest first; with personalisation consent, what the member does first
//! (favourite shops, visits, interests). Answered from the offer index: only the offers shown
//! are read from SQLite (issue #15: it parsed every cached offer).

use std::collections::HashMap;

use rusqlite::Connection;

use super::*;
use crate::privacy::OfferList;

/// Score of an offer at a favourite shop, per shop.
const FAVOURITE: i64 = 10;
/// Score of an offer of the member's interests.
const INTEREST: i64 = 5;

/// The offers screen at `now_ms`, at most `limit` offers.
pub(crate) fn offers_screen(
    conn: &Connection,
    idx: &OfferIndex,
    member: &MemberView,
    limit: usize,
    now_ms: i64,
) -> Result<OfferList, StorageError> {
    let shown = |o: u32| -> bool {
        if !idx.within_interests(o, member) {
            return false;
        }
        let terms = idx.terms(o);
        crate::eligibility::check_dates(&terms, now_ms).is_ok()
            && crate::eligibility::check_member(&terms, &member.holder(o)).is_ok()
    };
    // The offers still running, ending soonest first.
    let running = idx
        .by_expiry()
        .partition_point(|&o| idx.offers()[o as usize].to_ms < now_ms);
    let by_expiry = &idx.by_expiry()[running..];
    let picked: Vec<u32> = if !member.personalised {
        by_expiry
            .iter()
            .copied()
            .filter(|&o| shown(o))
            .take(limit)
            .collect()
    } else {
        // Score: FAVOURITE per favourite shop of the offer, plus the member's visits to its
        // shops, plus INTEREST for an offer of the member's interests. Only offers naming a
        // favourite or visited shop have a shop score: they are few, and scored one by one;
        // the others rank by INTEREST alone, so the first `limit` shown of each kind, in the
        // screen's order, are enough.
        let mut by_shop: HashMap<u32, i64> = HashMap::new();
        let mut shops = visits(conn, idx)?;
        for &s in &member.favourites {
            *shops.entry(s).or_insert(0) += FAVOURITE;
        }
        for (&s, &points) in &shops {
            let (a, b) = (
                idx.store_start()[s as usize] as usize,
                idx.store_start()[s as usize + 1] as usize,
            );
            for &o in &idx.store_offers()[a..b] {
                *by_shop.entry(o).or_insert(0) += points;
            }
        }
        let interest = |o: u32| idx.of_interest(o, member);
        let score =
            |o: u32| by_shop.get(&o).copied().unwrap_or(0) + i64::from(interest(o)) * INTEREST;
        let mut candidates: Vec<u32> = by_shop
            .keys()
            .copied()
            .filter(|&o| idx.offers()[o as usize].to_ms >= now_ms && shown(o))
            .collect();
        for of_interest in [true, false] {
            candidates.extend(
                by_expiry
                    .iter()
                    .copied()
                    .filter(|o| !by_shop.contains_key(o) && interest(*o) == of_interest)
                    .filter(|&o| shown(o))
                    .take(limit),
            );
        }
        candidates.sort_by(|&a, &b| {
            let (ra, rb) = (&idx.offers()[a as usize], &idx.offers()[b as usize]);
            score(b)
                .cmp(&score(a))
                .then(ra.to_ms.cmp(&rb.to_ms))
                .then(a.cmp(&b)) // offers are indexed in id order
        });
        candidates.truncate(limit);
        candidates
    };
    let mut offers = Vec::with_capacity(picked.len());
    for o in picked {
        // An offer removed since the index in use was built is left out (a newer one is on
        // its way).
        if let Some(full) = read_offer(conn, idx.offer_id(o))? {
            offers.push(full);
        }
    }
    Ok(OfferList {
        offers,
        personalised: member.personalised,
    })
}

/// The member's visits per shop (activity events at a shop), for the personalised ranking.
fn visits(conn: &Connection, idx: &OfferIndex) -> Result<HashMap<u32, i64>, StorageError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT store_id, count(*) FROM activity WHERE store_id IS NOT NULL GROUP BY store_id",
        )
        .map_err(st)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(st)?;
    let mut out = HashMap::new();
    for row in rows {
        let (store, n) = row.map_err(st)?;
        if let Some(s) = idx.store(&store) {
            out.insert(s, n);
        }
    }
    Ok(out)
}

/// The offers screen by parsing every cached offer and applying the domain's rules to it: the
/// reference the index-backed screen is held to (tests and benches).
pub fn offers_screen_brute_force(
    conn: &Connection,
    gate: crate::consent::ConsentGate,
    limit: u32,
    now_ms: i64,
) -> Result<OfferList, StorageError> {
    use crate::catalog::Offer;
    use crate::consent::Feature;
    use crate::eligibility::{Holder, OfferTerms, check_dates, check_member};
    use std::collections::BTreeSet;
    let prefs = crate::privacy::preferences(conn)?;
    let (tier, segments) = super::index::member_labels(conn)?;
    let used: HashMap<String, u32> = conn
        .prepare("SELECT offer_id, used_count FROM offer_state")
        .map_err(st)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(st)?
        .collect::<std::result::Result<_, _>>()
        .map_err(st)?;
    let mut stmt = conn.prepare("SELECT data FROM offer").map_err(st)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(st)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st)?;
    let mut offers: Vec<(Offer, i64)> = Vec::new();
    for data in rows {
        let offer: Offer = serde_json::from_str(&data).map_err(corrupt)?;
        let to_ms = {
            let Ok(terms) = OfferTerms::of(&offer) else {
                continue;
            };
            let terms = terms.terms();
            let holder = Holder {
                tier: tier.clone(),
                segments: &segments,
                used: used.get(&offer.id).copied().unwrap_or(0),
            };
            if check_dates(&terms, now_ms).is_err() || check_member(&terms, &holder).is_err() {
                continue;
            }
            terms.to_ms
        };
        if !prefs.interests.is_empty()
            && !offer.categories.is_empty()
            && !offer.categories.iter().any(|c| prefs.interests.contains(c))
        {
            continue;
        }
        offers.push((offer, to_ms));
    }
    let personalised = gate.permits(Feature::PersonalisedRanking);
    if personalised {
        let favourites: BTreeSet<String> = conn
            .prepare("SELECT store_id FROM favourite_store")
            .map_err(st)?
            .query_map([], |r| r.get(0))
            .map_err(st)?
            .collect::<std::result::Result<_, _>>()
            .map_err(st)?;
        let visits: HashMap<String, i64> = conn
            .prepare(
                "SELECT store_id, count(*) FROM activity WHERE store_id IS NOT NULL
                 GROUP BY store_id",
            )
            .map_err(st)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(st)?
            .collect::<std::result::Result<_, _>>()
            .map_err(st)?;
        let score = |o: &Offer| -> i64 {
            o.store_ids
                .iter()
                .map(|s| {
                    i64::from(favourites.contains(s)) * FAVOURITE
                        + visits.get(s).copied().unwrap_or(0)
                })
                .sum::<i64>()
                + i64::from(o.categories.iter().any(|c| prefs.interests.contains(c))) * INTEREST
        };
        offers.sort_by(|(a, ta), (b, tb)| {
            score(b)
                .cmp(&score(a))
                .then(ta.cmp(tb))
                .then(a.id.cmp(&b.id))
        });
    } else {
        offers.sort_by(|(a, ta), (b, tb)| ta.cmp(tb).then(a.id.cmp(&b.id)));
    }
    offers.truncate(limit as usize);
    Ok(OfferList {
        offers: offers.into_iter().map(|(o, _)| o).collect(),
        personalised,
    })
}
