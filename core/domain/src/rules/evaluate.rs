//! A whole history at once ([`evaluate`]): events grouped by window instance, for a first
//! evaluation or after an event arrived out of order. The property test holds it equal to the
//! engine applied one event at a time.

use std::collections::BTreeMap;

use super::*;

/// A whole history for one challenge with a calendar window, as [`evaluate`] walks it.
pub(super) struct History<'a> {
    pub(super) cx: &'a Ctx<'a>,
    pub(super) tz: &'a jiff::tz::TimeZone,
    /// The events one of the challenge's filters matched, as bits.
    pub(super) matched: &'a [u64],
    pub(super) ids: &'a [&'a str],
}

/// Evaluate a challenge with a calendar window over a whole history, window by window: the
/// events of one week or month are an index range (events are in time order and calendar
/// periods follow it). A goal that only counts events is the population count of each part's
/// filter bits there, completed at the event where the last part reaches its target; other
/// goals count the window's events one after another until met. The same result as stepping
/// event by event (the property tests compare it with [`Engine::apply`]) without checking the
/// window and the repeat rule at each event.
pub(super) fn by_window(
    c: &Challenge,
    p: &Prepared,
    t: &mut Tracker,
    h: &History,
    mut done: impl FnMut(usize, Completion),
) {
    let History {
        cx,
        tz,
        matched,
        ids,
    } = *h;
    let counting = p.goal.parts.iter().all(|p| matches!(p, Part::Count { .. }));
    let period = match c.window {
        Window::CalendarWeek => Period::Week,
        _ => Period::Month,
    };
    let when = &cx.events.when;
    let mut from = when.partition_point(|(at, _)| *at < p.counts_from);
    while let Some(a) = next_bit(matched, from) {
        let instance = when[a].1.period(period);
        let b = period_start(period, instance + 1, tz)
            .map_or(when.len(), |end| when.partition_point(|(at, _)| *at < end))
            .max(a + 1);
        from = b;
        if t.exhausted(&c.repeat, Some(instance)) {
            continue;
        }
        t.instance = Some(instance);
        t.acc.reset();
        // The event at which the goal is met, if it is in the window.
        let completed_at = if counting {
            t.acc.0.iter().try_fold(a, |at, (part, _)| match *part {
                Part::Count { filter, target } => {
                    cx.hits[filter].nth(a, b, target).map(|k| at.max(k))
                }
                _ => None,
            })
        } else {
            let mut next = a;
            loop {
                let Some(k) = next_bit(matched, next).filter(|&k| k < b) else {
                    break None;
                };
                t.acc.change(cx, k, false);
                if t.acc.met() {
                    break Some(k);
                }
                next = k + 1;
            }
        };
        match completed_at {
            Some(k) => {
                done(k, t.complete(c, instance, ids[k], when[k].0));
                if t.finished(&c.repeat) {
                    return;
                }
            }
            None if counting => {
                for (part, tally) in &mut t.acc.0 {
                    if let (Part::Count { filter, .. }, Tally::Count(n)) = (part, tally) {
                        *n = cx.hits[*filter].count(a, b);
                    }
                }
            }
            None => {}
        }
    }
}

/// What a member's history comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub progress: Vec<ChallengeProgress>,
    /// Every completion, oldest first.
    pub completions: Vec<Completion>,
}

/// Evaluate a whole history (any order; repeated ids count once) at `now_ms`.
pub fn evaluate(
    rules: &RuleSet,
    time_zone: &str,
    joined: BTreeMap<String, i64>,
    events: &[RuleEvent],
    now_ms: i64,
) -> Result<Evaluation, RulesError> {
    let (engine, completions) = replay(rules, time_zone, joined, events, now_ms)?;
    Ok(Evaluation {
        progress: engine.progress(now_ms),
        completions,
    })
}

/// A whole history applied ([`Engine::replay`]): the engine and the completions, oldest first.
pub(super) fn replay<'r>(
    rules: &'r RuleSet,
    time_zone: &str,
    joined: BTreeMap<String, i64>,
    events: &[RuleEvent],
    now_ms: i64,
) -> Result<(Engine<'r>, Vec<Completion>), RulesError> {
    let mut engine = Engine::new(rules, time_zone, joined)?;
    fn key(e: &RuleEvent) -> (i64, &str) {
        (e.at_ms, &e.event_id)
    }
    // Histories usually come in time order already (stored that way): then nothing to sort.
    let mut by_time: Vec<&RuleEvent> = Vec::new();
    if !events.is_sorted_by_key(key) {
        by_time = events.iter().collect();
        by_time.sort_by(|a, b| key(a).cmp(&key(b)));
    }
    let in_order = (0..events.len()).map(|k| by_time.get(k).copied().unwrap_or(&events[k]));
    engine.events.list.reserve(events.len());
    engine.events.when.reserve(events.len());
    // In time order already, and this engine is not applied to afterwards: ids borrowed from
    // the history are enough to count each once.
    let mut seen = rustc_hash::FxHashSet::default();
    seen.reserve(events.len());
    let mut ids = Vec::with_capacity(events.len());
    let mut last = None;
    for e in in_order {
        check_time(e, now_ms)?;
        if seen.insert(e.event_id.as_str()) {
            engine.record(e);
            ids.push(e.event_id.as_str());
            last = Some(e);
        }
    }
    engine.last = last.map(|e| (e.at_ms, e.event_id.clone()));
    // Challenge by challenge over the events one of its filters matched (its tracker stays
    // hot), then the completions in the order `apply` gives them: by event, then by challenge.
    let cx = Ctx {
        filters: &engine.filters,
        hits: &engine.hits,
        events: &engine.events,
    };
    let mut found = Vec::new();
    let mut matched: Vec<u64> = Vec::new();
    for (i, ((c, p), t)) in rules
        .challenges
        .iter()
        .zip(&engine.prepared)
        .zip(&mut engine.trackers)
        .enumerate()
    {
        matched.clear();
        for &f in &p.filters {
            let words = &cx.hits[f].0;
            if matched.len() < words.len() {
                matched.resize(words.len(), 0);
            }
            matched.iter_mut().zip(words).for_each(|(m, w)| *m |= w);
        }
        if matches!(c.window, Window::CalendarWeek | Window::CalendarMonth) {
            let history = History {
                cx: &cx,
                tz: &engine.tz,
                matched: &matched,
                ids: &ids,
            };
            by_window(c, p, t, &history, |k, done| found.push((k, i, done)));
            continue;
        }
        let mut from = 0;
        while let Some(index) = next_bit(&matched, from) {
            from = index + 1;
            if let Some(done) = step(c, p, t, &cx, index, ids[index]) {
                found.push((index, i, done));
                if t.finished(&c.repeat) {
                    break;
                }
            }
        }
    }
    found.sort_by_key(|(index, i, _)| (*index, *i));
    let completions = found.into_iter().map(|(_, _, c)| c).collect();
    Ok((engine, completions))
}
