//! An engine kept between events ([`Engine::save`], [`Engine::restore`]): what each challenge has
//! counted and the few events rolling windows still look back at, so that one more event costs
//! the same after 100 or 100,000 events of history. The server keeps it per member and rebuilds
//! it from the history ([`Engine::replay`]) only when it no longer fits: another rule set, time
//! zone or set of joins, an event older than the last one applied, or a history that lost an
//! event (a voided purchase).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::*;

/// The version of [`EngineState`]'s layout: a state saved by a build with another one is
/// rebuilt from the history, never misread.
pub const ENGINE_STATE_VERSION: u32 = 1;

/// An engine between two events, to keep (as JSON, say) and restore with the same rule set, time
/// zone and joins. Its size depends on the rules and on the events inside rolling windows, not
/// on the length of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineState {
    /// [`ENGINE_STATE_VERSION`] when saved.
    pub version: u32,
    /// The last event applied (time, id): an event before it cannot be applied.
    pub last: Option<(i64, String)>,
    /// The events rolling windows still hold, oldest first, reduced to what the rules read.
    events: Vec<SavedEvent>,
    /// One per challenge, in the rule set's order.
    trackers: Vec<SavedTracker>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedEvent {
    at_ms: i64,
    kind: RuleEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<RuleChannel>,
    #[serde(default)]
    amount_cents: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lines: Vec<SavedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedLine {
    /// `None`: a SKU no rule reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    collection: Option<String>,
    quantity: u32,
    amount_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedTracker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<i64>,
    /// One per part of the goal, in order.
    tallies: Vec<SavedTally>,
    /// Rolling windows: (time, index into `events`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recent: Vec<(i64, u32)>,
    #[serde(default)]
    completions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed_instance: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SavedTally {
    Count(u64),
    /// Each value with how many counted events carry it, by value.
    Distinct(Vec<(String, u32)>),
    Sum(u64),
    Streak {
        last: Option<i64>,
        run: u64,
    },
}

fn unfit(reason: &str) -> RulesError {
    RulesError::Invalid {
        field: "state".into(),
        reason: reason.into(),
    }
}

impl<'r> Engine<'r> {
    /// An engine that applied a whole history (any order; repeated ids count once) at `now_ms`,
    /// and the completions it found, oldest first: [`evaluate`]'s work, the engine kept to apply
    /// newer events to or to [`save`](Engine::save). It remembers the last event's id, not every
    /// id: the caller that keeps the history ignores an event it already has.
    pub fn replay(
        rules: &'r RuleSet,
        time_zone: &str,
        joined: BTreeMap<String, i64>,
        events: &[RuleEvent],
        now_ms: i64,
    ) -> Result<(Engine<'r>, Vec<Completion>), RulesError> {
        replay(rules, time_zone, joined, events, now_ms)
    }

    /// The last event applied: (time, id).
    pub fn last(&self) -> Option<(i64, &str)> {
        self.last.as_ref().map(|(at, id)| (*at, id.as_str()))
    }

    /// How often each challenge was completed, in the rule set's order.
    pub fn completion_counts(&self) -> Vec<u32> {
        self.trackers.iter().map(|t| t.completions).collect()
    }

    /// What to keep to carry on later with [`restore`](Engine::restore): the trackers and the
    /// events still inside a rolling window.
    pub fn save(&self) -> EngineState {
        let mut names: Vec<&str> = vec![""; self.ids.len()];
        for (name, id) in self.ids.iter() {
            names[id as usize] = name;
        }
        let name = |id: u32| names.get(id as usize).map(|s| (*s).to_owned());
        // The events rolling windows hold, renumbered in order.
        let mut kept: Vec<usize> = self
            .trackers
            .iter()
            .flat_map(|t| t.recent.iter().map(|&(_, k)| k))
            .collect();
        kept.sort_unstable();
        kept.dedup();
        let events = kept
            .iter()
            .map(|&k| {
                let e = &self.events.list[k];
                SavedEvent {
                    at_ms: self.events.when[k].0,
                    kind: e.kind,
                    store: e.store.and_then(name),
                    channel: e.channel,
                    amount_cents: e.amount_cents,
                    lines: self
                        .events
                        .lines_of(e)
                        .iter()
                        .map(|l| SavedLine {
                            sku: (l.sku != UNUSED).then(|| name(l.sku)).flatten(),
                            category: l.category.and_then(name),
                            collection: l.collection.and_then(name),
                            quantity: l.quantity,
                            amount_cents: l.amount_cents,
                        })
                        .collect(),
                }
            })
            .collect();
        let renumbered = |k: usize| kept.binary_search(&k).unwrap_or_default() as u32;
        let trackers = self
            .trackers
            .iter()
            .map(|t| SavedTracker {
                instance: t.instance,
                tallies: t
                    .acc
                    .0
                    .iter()
                    .map(|(_, tally)| match tally {
                        Tally::Count(n) => SavedTally::Count(*n),
                        Tally::Sum(n) => SavedTally::Sum(*n),
                        Tally::Streak { last, run } => SavedTally::Streak {
                            last: *last,
                            run: *run,
                        },
                        Tally::Distinct(values) => {
                            let mut list: Vec<(String, u32)> = values
                                .dense
                                .iter()
                                .enumerate()
                                .map(|(v, n)| (v as u32, *n))
                                .chain(values.sparse.iter().map(|(v, n)| (*v, *n)))
                                .filter(|(_, n)| *n > 0)
                                .filter_map(|(v, n)| Some((name(v)?, n)))
                                .collect();
                            list.sort();
                            SavedTally::Distinct(list)
                        }
                    })
                    .collect(),
                recent: t
                    .recent
                    .iter()
                    .map(|&(at, k)| (at, renumbered(k)))
                    .collect(),
                completions: t.completions,
                completed_instance: t.completed_instance,
            })
            .collect();
        EngineState {
            version: ENGINE_STATE_VERSION,
            last: self.last.clone(),
            events,
            trackers,
        }
    }

    /// The engine `state` was saved from, given the same rule set, time zone and joins; ready
    /// for events after its last one. A state that does not fit them (another layout version,
    /// another number of challenges or parts) is refused ([`RulesError::Invalid`], field
    /// `state`): rebuild with [`replay`](Engine::replay).
    pub fn restore(
        rules: &'r RuleSet,
        time_zone: &str,
        joined: BTreeMap<String, i64>,
        state: &EngineState,
    ) -> Result<Engine<'r>, RulesError> {
        if state.version != ENGINE_STATE_VERSION {
            return Err(unfit("saved by another version of the engine"));
        }
        let mut engine = Engine::new(rules, time_zone, joined)?;
        if state.trackers.len() != engine.trackers.len() {
            return Err(unfit("saved for another number of challenges"));
        }
        for e in &state.events {
            check_time_known(e.at_ms)?;
            engine.record(&RuleEvent {
                event_id: String::new(),
                kind: e.kind,
                at_ms: e.at_ms,
                store_id: e.store.clone(),
                channel: e.channel,
                amount_cents: e.amount_cents,
                lines: e
                    .lines
                    .iter()
                    .map(|l| RuleLine {
                        sku: l.sku.clone().unwrap_or_default(),
                        category: l.category.clone(),
                        collection: l.collection.clone(),
                        quantity: l.quantity,
                        amount_cents: l.amount_cents,
                    })
                    .collect(),
            });
        }
        let events = state.events.len();
        for (t, saved) in engine.trackers.iter_mut().zip(&state.trackers) {
            if saved.tallies.len() != t.acc.0.len() {
                return Err(unfit("saved for another goal"));
            }
            for ((_, tally), s) in t.acc.0.iter_mut().zip(&saved.tallies) {
                match (tally, s) {
                    (Tally::Count(n), SavedTally::Count(m))
                    | (Tally::Sum(n), SavedTally::Sum(m)) => *n = *m,
                    (Tally::Streak { last, run }, SavedTally::Streak { last: l, run: r }) => {
                        *last = *l;
                        *run = *r;
                    }
                    (Tally::Distinct(values), SavedTally::Distinct(list)) => {
                        for (name, n) in list {
                            values.add_n(engine.ids.id(name), *n);
                        }
                    }
                    _ => return Err(unfit("saved for another goal")),
                }
            }
            if saved.recent.iter().any(|&(_, k)| k as usize >= events) {
                return Err(unfit("refers to an event it does not hold"));
            }
            t.instance = saved.instance;
            t.recent = saved
                .recent
                .iter()
                .map(|&(at, k)| (at, k as usize))
                .collect::<VecDeque<_>>();
            t.completions = saved.completions;
            t.completed_instance = saved.completed_instance;
        }
        engine.last = state.last.clone();
        Ok(engine)
    }
}

fn check_time_known(at_ms: i64) -> Result<(), RulesError> {
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|_| ())
        .map_err(|_| unfit("holds a time the calendar does not know"))
}
