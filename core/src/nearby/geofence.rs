//! The geofence plan: the regions the OS should monitor from a position within its budget (iOS
//! 20, Android 100), as a change to what it monitors now.

use std::collections::BTreeSet;

use serde::Serialize;

use super::*;
use crate::geo::{Position, distance_m};

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
        // Stores are indexed in id order.
        a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1))
    };
    let mut found: Vec<(f64, u32)> = Vec::new();
    for (store, lower) in idx.points().nearest(at) {
        if found.len() >= budget && lower > found[budget - 1].0 {
            break;
        }
        if idx
            .candidates(store)
            .any(|o| idx.eligible(o, store, member, now_ms, false))
        {
            let item = (
                distance_m(at, idx.store_entries()[store as usize].position),
                store,
            );
            let pos = found.partition_point(|x| order(x, &item).is_lt());
            found.insert(pos, item);
        }
    }
    let monitored = found.len().min(budget - 1);
    let mut regions: Vec<GeofenceRegion> = found[..monitored]
        .iter()
        .map(|&(_, s)| {
            let store = &idx.store_entries()[s as usize];
            GeofenceRegion {
                id: idx.store_region_id(s),
                latitude: store.position.latitude,
                longitude: store.position.longitude,
                radius_m: f64::from(store.radius_m).max(MIN_REGION_M),
                store_id: Some(idx.store_id(s).to_owned()),
            }
        })
        .collect();
    let replan = match found.get(monitored) {
        Some(&(d, s)) => (d - f64::from(idx.store_entries()[s as usize].radius_m))
            .clamp(MIN_REGION_M, MAX_REPLAN_M),
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

/// The plan from `at` with nothing known about the member (tests and benches).
pub fn anonymous_plan(
    idx: &OfferIndex,
    at: Position,
    budget: usize,
    now_ms: i64,
) -> Vec<GeofenceRegion> {
    plan_regions(idx, &MemberView::default(), at, budget, now_ms)
}
