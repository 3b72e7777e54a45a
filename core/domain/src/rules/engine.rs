//! The engine: one event at a time ([`Engine::apply`]), as the phone and the server do after
//! each action.

use std::collections::{BTreeMap, VecDeque};

use super::*;
use crate::catalog::parse_instant;
use crate::intern::Interner;

/// A challenge compiled.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) goal: CGoal,
    /// Its goal's filters: only events one of them matches can change it.
    pub(super) filters: Vec<usize>,
    /// A fixed window's bounds.
    pub(super) fixed: Option<(i64, i64)>,
    /// Events before this do not count (opt-in challenges: when the member joined; never
    /// while not joined).
    pub(super) counts_from: i64,
}

/// The window instance an event at `at` counts in (`None`: outside a fixed window).
pub(super) fn instance_of(
    window: &Window,
    fixed: Option<(i64, i64)>,
    at: i64,
    local: Local,
) -> Option<i64> {
    match window {
        Window::CalendarWeek => Some(local.period(Period::Week)),
        Window::CalendarMonth => Some(local.period(Period::Month)),
        Window::RollingDays { .. } => Some(0),
        Window::Fixed { .. } => {
            let (from, to) = fixed?;
            (from <= at && at < to).then_some(0)
        }
    }
}

/// Count recorded event `index` (id `event_id`, matched by one of the challenge's filters)
/// for challenge `c` (compiled as `p`, its state `t`); its completion, if it completes it.
#[inline(always)]
pub(super) fn step(
    c: &Challenge,
    p: &Prepared,
    t: &mut Tracker,
    cx: &Ctx,
    index: usize,
    event_id: &str,
) -> Option<Completion> {
    let (at, local) = cx.events.when[index];
    if at < p.counts_from {
        return None;
    }
    let instance = instance_of(&c.window, p.fixed, at, local)?;
    if t.exhausted(&c.repeat, Some(instance)) {
        return None;
    }
    if t.instance != Some(instance) {
        t.instance = Some(instance);
        t.acc.reset();
        t.recent.clear();
    }
    t.acc.change(cx, index, false);
    if let Window::RollingDays { days } = c.window {
        t.recent.push_back((at, index));
        forget_before(t, cx, at.saturating_sub(i64::from(days) * DAY_MS));
    }
    if !t.acc.met() {
        return None;
    }
    Some(t.complete(c, instance, event_id, at))
}

/// The first set bit at or after `from`.
pub(super) fn next_bit(words: &[u64], from: usize) -> Option<usize> {
    let mut w = from / 64;
    let mut bits = words.get(w)? & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
        w += 1;
        bits = *words.get(w)?;
    }
}

/// An event's time is one the calendar knows and not ahead of the evaluator's clock.
pub(super) fn check_time(e: &RuleEvent, now_ms: i64) -> Result<(), RulesError> {
    if jiff::Timestamp::from_millisecond(e.at_ms).is_err() {
        return Err(RulesError::Invalid {
            field: "event.at_ms".into(),
            reason: "is not a time between the years -9999 and 9999".into(),
        });
    }
    if !crate::event::not_too_far_ahead(e.at_ms, now_ms) {
        return Err(RulesError::EventInFuture {
            event_id: e.event_id.clone(),
        });
    }
    Ok(())
}

/// The rules applied to one member's events, in time order.
#[derive(Debug, Clone)]
pub struct Engine<'r> {
    pub(super) rules: &'r RuleSet,
    pub(super) tz: jiff::tz::TimeZone,
    pub(super) offsets: OffsetSpan,
    pub(super) trackers: Vec<Tracker>,
    pub(super) seen: rustc_hash::FxHashSet<String>,
    pub(super) last: Option<(i64, String)>,
    /// Applied events (rolling windows look back at them).
    pub(super) events: Events,
    pub(super) ids: Interner,
    pub(super) needs: Needs,
    /// The distinct filters of all challenges.
    pub(super) filters: Vec<CFilter>,
    /// Per filter, the applied events it matches.
    pub(super) hits: Vec<Hits>,
    /// Per event kind, the filters that can match it.
    pub(super) filters_of_kind: Vec<Vec<usize>>,
    pub(super) prepared: Vec<Prepared>,
    /// Per event kind, the challenges it can change, in order.
    pub(super) by_kind: Vec<Vec<usize>>,
}

impl<'r> Engine<'r> {
    /// `joined`: when the member joined each opt-in challenge.
    pub fn new(
        rules: &'r RuleSet,
        time_zone: &str,
        joined: BTreeMap<String, i64>,
    ) -> Result<Self, RulesError> {
        rules.validate()?;
        let tz = jiff::tz::TimeZone::get(time_zone).map_err(|_| RulesError::UnknownTimeZone {
            name: time_zone.to_owned(),
        })?;
        let mut ids = Interner::default();
        let mut filters = Filters::default();
        let prepared = rules
            .challenges
            .iter()
            .map(|c| {
                let goal = CGoal::new(&c.goal, &mut ids, &mut filters);
                let used = goal.filters();
                let fixed = match &c.window {
                    Window::Fixed { from, to } => Some((
                        parse_instant("window.from", from)
                            .map_err(invalid)?
                            .as_millisecond(),
                        parse_instant("window.to", to)
                            .map_err(invalid)?
                            .as_millisecond(),
                    )),
                    _ => None,
                };
                let counts_from = match (c.opt_in, joined.get(&c.id)) {
                    (false, _) => i64::MIN,
                    (true, Some(at)) => *at,
                    (true, None) => i64::MAX,
                };
                Ok(Prepared {
                    goal,
                    filters: used,
                    fixed,
                    counts_from,
                })
            })
            .collect::<Result<Vec<_>, RulesError>>()?;
        let filters = filters.list;
        let needs = Needs::of(
            &filters,
            &prepared.iter().map(|p| &p.goal).collect::<Vec<_>>(),
        );
        let of_kind = |mask: &dyn Fn(usize) -> u32, n: usize| -> Vec<Vec<usize>> {
            (0..KINDS)
                .map(|k| (0..n).filter(|&i| mask(i) & (1 << k) != 0).collect())
                .collect()
        };
        let filters_of_kind = of_kind(&|f| filters[f].kinds, filters.len());
        let by_kind = of_kind(
            &|i| {
                prepared[i]
                    .filters
                    .iter()
                    .fold(0, |m, &f| m | filters[f].kinds)
            },
            prepared.len(),
        );
        Ok(Engine {
            rules,
            tz,
            offsets: OffsetSpan::EMPTY,
            trackers: prepared
                .iter()
                .map(|p| Tracker {
                    instance: None,
                    acc: Acc::new(&p.goal),
                    recent: VecDeque::new(),
                    completions: 0,
                    completed_instance: None,
                })
                .collect(),
            seen: rustc_hash::FxHashSet::default(),
            last: None,
            events: Events::default(),
            ids,
            needs,
            hits: vec![Hits::default(); filters.len()],
            filters,
            filters_of_kind,
            prepared,
            by_kind,
        })
    }

    /// Check and record an event (and which filters match it): its index, or `None` for an id
    /// seen already.
    pub(super) fn ingest(
        &mut self,
        e: &RuleEvent,
        now_ms: i64,
    ) -> Result<Option<usize>, RulesError> {
        check_time(e, now_ms)?;
        if self.seen.contains(&e.event_id) {
            return Ok(None);
        }
        if self
            .last
            .as_ref()
            .is_some_and(|(at, id)| (e.at_ms, &e.event_id) < (*at, id))
        {
            return Err(RulesError::OutOfOrder {
                event_id: e.event_id.clone(),
            });
        }
        self.seen.insert(e.event_id.clone());
        match &mut self.last {
            Some((at, id)) => {
                *at = e.at_ms;
                id.clone_from(&e.event_id);
            }
            None => self.last = Some((e.at_ms, e.event_id.clone())),
        }
        Ok(Some(self.record(e)))
    }

    /// Record an event newer than every one recorded (and which filters match it): its index.
    pub(super) fn record(&mut self, e: &RuleEvent) -> usize {
        let local = self.offsets.local(e.at_ms, &self.tz);
        let index = self.events.push(e, local, &mut self.ids, self.needs);
        let ce = &self.events.list[index];
        let lines = self.events.lines_of(ce);
        for &f in &self.filters_of_kind[e.kind as usize] {
            if self.filters[f].matches(ce, lines) {
                self.hits[f].set(index);
            }
        }
        index
    }

    /// Apply one event newer than every event applied so far (`now_ms`: the evaluator's clock).
    /// An id this engine applied itself is ignored (after [`Engine::replay`] or
    /// [`Engine::restore`], ignoring the ids from before is the caller's: the server keeps
    /// them). Returns the challenges it completed.
    pub fn apply(&mut self, e: &RuleEvent, now_ms: i64) -> Result<Vec<Completion>, RulesError> {
        let Some(index) = self.ingest(e, now_ms)? else {
            return Ok(Vec::new());
        };
        let cx = Ctx {
            filters: &self.filters,
            hits: &self.hits,
            events: &self.events,
        };
        let mut done = Vec::new();
        for &i in &self.by_kind[e.kind as usize] {
            let p = &self.prepared[i];
            if p.filters.iter().any(|&f| cx.hits[f].get(index)) {
                let c = &self.rules.challenges[i];
                done.extend(step(c, p, &mut self.trackers[i], &cx, index, &e.event_id));
            }
        }
        Ok(done)
    }

    /// Where every challenge stands at `now_ms`.
    pub fn progress(&self, now_ms: i64) -> Vec<ChallengeProgress> {
        let now = Local::of(now_ms, &self.tz);
        let cx = Ctx {
            filters: &self.filters,
            hits: &self.hits,
            events: &self.events,
        };
        self.rules
            .challenges
            .iter()
            .zip(&self.trackers)
            .zip(&self.prepared)
            .map(|((c, t), p)| {
                let goal = &p.goal;
                let instance = instance_of(&c.window, p.fixed, now_ms, now);
                let current = instance.is_some() && t.instance == instance;
                let (mut done, target) = if current {
                    t.acc.progress(now)
                } else {
                    Acc::new(goal).progress(now)
                };
                if let Window::RollingDays { days } = c.window
                    && current
                {
                    // Events that left the window since the last one applied.
                    let mut left = t.clone();
                    forget_before(
                        &mut left,
                        &cx,
                        now_ms.saturating_sub(i64::from(days) * DAY_MS),
                    );
                    done = left.acc.progress(now).0;
                }
                let completed = t.exhausted(&c.repeat, instance);
                let done = if completed { target } else { done };
                let deadline = match &c.window {
                    Window::CalendarWeek => {
                        period_start(Period::Week, now.period(Period::Week) + 1, &self.tz)
                    }
                    Window::CalendarMonth => {
                        period_start(Period::Month, now.period(Period::Month) + 1, &self.tz)
                    }
                    Window::RollingDays { .. } => None,
                    Window::Fixed { .. } => p.fixed.map(|(_, to)| to),
                }
                .map(crate::rfc3339_ms);
                ChallengeProgress {
                    challenge_id: c.id.clone(),
                    title: c.title.clone(),
                    description: c.description.clone(),
                    badge: c.badge.clone(),
                    done,
                    target,
                    left: target - done,
                    deadline,
                    reward: c.reward.clone(),
                    completions: t.completions,
                    completed,
                    joined: p.counts_from != i64::MAX,
                }
            })
            .collect()
    }
}
