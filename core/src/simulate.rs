//! A walk replayed through the geofence features as a phone's OS would drive them: plan, register
//! the regions, report entering, dwelling and leaving, re-plan when asked. For the demo, the tests
//! and support ("why did I not get the coupon?"); the apps use the calls it makes, not this.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Tessera;
use crate::geo::{Position, distance_m};
use crate::nearby::{GeofenceRegion, RegionAction, RegionEventKind};

/// One point of the walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkStep {
    pub at_ms: i64,
    pub position: Position,
}

/// One region event the simulated OS reported, and what Tessera decided.
#[derive(Debug, Clone, Serialize)]
pub struct WalkEvent {
    pub at_ms: i64,
    pub region_id: String,
    pub kind: RegionEventKind,
    pub action: RegionAction,
    pub visit_recorded: bool,
}

/// What happened along the walk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WalkReport {
    pub plans: u32,
    /// The most regions registered at once.
    pub max_registered: usize,
    pub events: Vec<WalkEvent>,
}

impl WalkReport {
    /// Events that showed a notification.
    pub fn notified(&self) -> impl Iterator<Item = &WalkEvent> {
        self.events
            .iter()
            .filter(|e| matches!(e.action, RegionAction::Notify { .. }))
    }

    /// How many store events were suppressed, by reason.
    pub fn suppressed(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in &self.events {
            if let RegionAction::Suppress { reason } = &e.action {
                let name = format!("{reason:?}");
                let name = name.split([' ', '{']).next().unwrap_or("").to_owned();
                *out.entry(name).or_insert(0) += 1;
            }
        }
        out
    }
}

/// A walk across Paris, from Place d'Italie to Gare du Nord by the Luxembourg gardens, Châtelet,
/// the Louvre and the Opéra (about 7 km): the demo's and the tests' route.
pub const PARIS_WALK: [Position; 6] = [
    Position {
        latitude: 48.8310,
        longitude: 2.3555,
    },
    Position {
        latitude: 48.8462,
        longitude: 2.3372,
    },
    Position {
        latitude: 48.8584,
        longitude: 2.3470,
    },
    Position {
        latitude: 48.8606,
        longitude: 2.3376,
    },
    Position {
        latitude: 48.8708,
        longitude: 2.3317,
    },
    Position {
        latitude: 48.8809,
        longitude: 2.3553,
    },
];

/// Straight segments between `waypoints`, a point every `step_m`, `step_ms` apart from `start_ms`.
pub fn path(waypoints: &[Position], step_m: f64, start_ms: i64, step_ms: i64) -> Vec<WalkStep> {
    let mut out = Vec::new();
    let mut t = start_ms;
    for pair in waypoints.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let n = (distance_m(a, b) / step_m).ceil().max(1.0) as usize;
        for i in 0..n {
            let f = i as f64 / n as f64;
            out.push(WalkStep {
                at_ms: t,
                position: Position {
                    latitude: a.latitude + (b.latitude - a.latitude) * f,
                    longitude: a.longitude + (b.longitude - a.longitude) * f,
                },
            });
            t += step_ms;
        }
    }
    if let Some(last) = waypoints.last() {
        out.push(WalkStep {
            at_ms: t,
            position: *last,
        });
    }
    out
}

/// Replay `steps`: the OS holds at most `budget` regions, reports an enter when the walker comes
/// into a region, a dwell after `dwell_ms` inside, an exit when leaving.
pub fn walk(
    t: &Tessera,
    steps: &[WalkStep],
    budget: u32,
    dwell_ms: i64,
) -> crate::Result<WalkReport> {
    let mut report = WalkReport::default();
    let mut registered: BTreeMap<String, GeofenceRegion> = BTreeMap::new();
    // Region id → when the walker entered it, and whether a dwell was reported.
    let mut inside: BTreeMap<String, (i64, bool)> = BTreeMap::new();
    let mut replan = true;
    for step in steps {
        if replan {
            let ids: Vec<String> = registered.keys().cloned().collect();
            let plan = t.plan_geofences(step.position, budget, &ids)?;
            report.plans += 1;
            for id in &plan.remove {
                registered.remove(id);
                inside.remove(id);
            }
            for r in plan.add {
                registered.insert(r.id.clone(), r);
            }
            report.max_registered = report.max_registered.max(registered.len());
            replan = false;
        }
        let mut events = Vec::new();
        for (id, r) in &registered {
            let here = distance_m(
                step.position,
                Position {
                    latitude: r.latitude,
                    longitude: r.longitude,
                },
            ) <= r.radius_m;
            match (here, inside.get(id).copied()) {
                (true, None) => {
                    // The re-plan region is registered around the walker: already inside.
                    if !id.starts_with("replan:") {
                        events.push((id.clone(), RegionEventKind::Enter));
                    }
                    inside.insert(id.clone(), (step.at_ms, false));
                }
                (true, Some((since, false))) if step.at_ms - since >= dwell_ms => {
                    if !id.starts_with("replan:") {
                        events.push((id.clone(), RegionEventKind::Dwell));
                    }
                    inside.insert(id.clone(), (since, true));
                }
                (false, Some(_)) => {
                    events.push((id.clone(), RegionEventKind::Exit));
                    inside.remove(id);
                }
                _ => {}
            }
        }
        for (id, kind) in events {
            let outcome = t.on_region_event(&id, kind, step.at_ms)?;
            if outcome.action == RegionAction::Replan {
                replan = true;
            }
            if kind != RegionEventKind::Exit || outcome.action == RegionAction::Replan {
                report.events.push(WalkEvent {
                    at_ms: step.at_ms,
                    region_id: id,
                    kind,
                    action: outcome.action,
                    visit_recorded: outcome.visit_recorded,
                });
            }
        }
    }
    Ok(report)
}
