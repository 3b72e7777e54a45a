//! What each challenge keeps between events: a count, a multiset of distinct values, a sum, a
//! streak, or several of those for `all_of`; and how old entries fall out of a window.

use std::collections::VecDeque;

use super::*;

/// What the counting reads: the distinct filters, which events each matched, the events.
pub(super) struct Ctx<'a> {
    pub(super) filters: &'a [CFilter],
    pub(super) hits: &'a [Hits],
    pub(super) events: &'a Events,
}

impl Ctx<'_> {
    /// The lines of event `index` that filter `f` counts (all of them without a line filter).
    #[inline]
    pub(super) fn lines(&self, f: usize, index: usize) -> impl Iterator<Item = &CLine> + '_ {
        let filter = &self.filters[f];
        self.events
            .lines_of(&self.events.list[index])
            .iter()
            .filter(move |l| filter.line_matches(l))
    }
}

/// Values (interned ids) with how many counted events carry each, and how many distinct ones
/// there are. The first ids (an engine numbers strings from 0 as it meets them) are counted in
/// a plain array, the rare others in a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Multiset {
    pub(super) dense: Vec<u32>,
    pub(super) sparse: rustc_hash::FxHashMap<u32, u32>,
    pub(super) distinct: u64,
}

impl Multiset {
    /// Ids below this are counted in the array (4 KiB at most per tally).
    pub(super) const DENSE: u32 = 1024;

    #[inline]
    pub(super) fn add(&mut self, v: u32) {
        self.add_n(v, 1);
    }

    /// `k` more counted events carry `v`.
    #[inline]
    pub(super) fn add_n(&mut self, v: u32, k: u32) {
        if k == 0 {
            return;
        }
        let n = if v < Self::DENSE {
            let v = v as usize;
            if self.dense.len() <= v {
                self.dense.resize(v + 1, 0);
            }
            &mut self.dense[v]
        } else {
            self.sparse.entry(v).or_insert(0)
        };
        if *n == 0 {
            self.distinct += 1;
        }
        *n += k;
    }

    #[inline]
    pub(super) fn remove(&mut self, v: u32) {
        let n = if v < Self::DENSE {
            self.dense.get_mut(v as usize)
        } else {
            self.sparse.get_mut(&v)
        };
        if let Some(n) = n.filter(|n| **n > 0) {
            *n -= 1;
            if *n == 0 {
                self.distinct -= 1;
                if v >= Self::DENSE {
                    self.sparse.remove(&v);
                }
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.dense.fill(0);
        self.sparse.clear();
        self.distinct = 0;
    }
}

/// What one part of a goal has counted so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tally {
    Count(u64),
    /// Each distinct value and how many counted events carry it (rolling windows take them out).
    Distinct(Multiset),
    Sum(u64),
    /// The last period with a matching event and the run of consecutive periods up to it.
    Streak {
        last: Option<i64>,
        run: u64,
    },
}

impl Tally {
    pub(super) fn new(p: &Part) -> Tally {
        match p {
            Part::Count { .. } => Tally::Count(0),
            Part::Distinct { .. } => Tally::Distinct(Default::default()),
            Part::Sum { .. } => Tally::Sum(0),
            Part::Streak { .. } => Tally::Streak { last: None, run: 0 },
        }
    }

    /// Back to nothing counted, keeping its allocations.
    pub(super) fn reset(&mut self) {
        match self {
            Tally::Count(n) | Tally::Sum(n) => *n = 0,
            Tally::Distinct(values) => values.clear(),
            Tally::Streak { last, run } => {
                *last = None;
                *run = 0;
            }
        }
    }

    /// Count event `index` if its filter matched it (`hit`), or take it back (`remove`: it left
    /// a rolling window). `false` when
    /// taking back cannot be done exactly (a streak): the caller rebuilds from the events still
    /// in the window.
    #[inline(always)]
    pub(super) fn change(
        &mut self,
        p: &Part,
        cx: &Ctx,
        index: usize,
        remove: bool,
        hit: bool,
    ) -> bool {
        if let Tally::Count(n) = self {
            // Without a branch: in an all_of the parts' hits alternate unpredictably.
            let hit = u64::from(hit);
            *n = if remove {
                n.saturating_sub(hit)
            } else {
                *n + hit
            };
            return true;
        }
        if !hit {
            return true;
        }
        match (self, *p) {
            (Tally::Distinct(values), Part::Distinct { filter, of, .. }) => {
                let mut count = |v: u32| {
                    if remove {
                        values.remove(v)
                    } else {
                        values.add(v)
                    }
                };
                match of {
                    DistinctOf::Store => cx.events.list[index].store.into_iter().for_each(count),
                    DistinctOf::Sku => cx.lines(filter, index).for_each(|l| count(l.sku)),
                    DistinctOf::Category => cx
                        .lines(filter, index)
                        .filter_map(|l| l.category)
                        .for_each(count),
                }
            }
            (Tally::Sum(sum), Part::Sum { filter, of, .. }) => {
                let n = match of {
                    SumOf::AmountCents if cx.filters[filter].line_filtered() => {
                        cx.lines(filter, index).map(|l| l.amount_cents).sum()
                    }
                    SumOf::AmountCents => cx.events.list[index].amount_cents,
                    SumOf::Quantity => cx.lines(filter, index).map(|l| u64::from(l.quantity)).sum(),
                };
                *sum = if remove {
                    sum.saturating_sub(n)
                } else {
                    sum.saturating_add(n)
                };
            }
            (Tally::Streak { last, run }, Part::Streak { period, .. }) => {
                if remove {
                    return false;
                }
                let p = cx.events.when[index].1.period(period);
                match *last {
                    Some(l) if l == p => {}
                    Some(l) if l + 1 == p => *run += 1,
                    _ => *run = 1,
                }
                *last = Some(p);
            }
            _ => {}
        }
        true
    }

    /// (done, target), capped at its target; a streak broken before `now` counts 0.
    pub(super) fn progress(&self, p: &Part, now: Local) -> (u64, u64) {
        match (self, *p) {
            (Tally::Count(n), Part::Count { target, .. }) => ((*n).min(target), target),
            (Tally::Distinct(s), Part::Distinct { target, .. }) => (s.distinct.min(target), target),
            (Tally::Sum(s), Part::Sum { target, .. }) => ((*s).min(target), target),
            (Tally::Streak { last, run }, Part::Streak { period, target, .. }) => {
                let alive = last.is_some_and(|l| l + 1 >= now.period(period));
                let run = if alive { *run } else { 0 };
                (run.min(target), target)
            }
            _ => (0, 1),
        }
    }

    #[inline(always)]
    pub(super) fn met(&self, p: &Part) -> bool {
        match (self, *p) {
            (Tally::Count(n), Part::Count { target, .. }) => *n >= target,
            (Tally::Distinct(s), Part::Distinct { target, .. }) => s.distinct >= target,
            (Tally::Sum(s), Part::Sum { target, .. }) => *s >= target,
            (Tally::Streak { run, .. }, Part::Streak { target, .. }) => *run >= target,
            _ => false,
        }
    }
}

/// What a goal has counted so far: each part next to its tally (one look-up per step).
#[derive(Debug, Clone)]
pub(super) struct Acc(pub(super) Vec<(Part, Tally)>);

impl Acc {
    pub(super) fn new(g: &CGoal) -> Acc {
        Acc(g.parts.iter().map(|p| (*p, Tally::new(p))).collect())
    }

    pub(super) fn reset(&mut self) {
        self.0.iter_mut().for_each(|(_, t)| t.reset());
    }

    /// Count event `index` or take it back; `false` when taking back was not exact. The event
    /// matched one of the goal's filters (only such events are stepped and kept for rolling
    /// windows), so a one-part goal need not look its filter up.
    #[inline(always)]
    pub(super) fn change(&mut self, cx: &Ctx, index: usize, remove: bool) -> bool {
        if let [(p, t)] = &mut self.0[..] {
            return t.change(p, cx, index, remove, true);
        }
        let mut exact = true;
        for (p, t) in &mut self.0 {
            let hit = cx.hits[p.filter()].get(index);
            exact &= t.change(p, cx, index, remove, hit);
        }
        exact
    }

    /// (done, target) added up over the parts.
    pub(super) fn progress(&self, now: Local) -> (u64, u64) {
        self.0
            .iter()
            .map(|(p, t)| t.progress(p, now))
            .fold((0, 0), |(d, t), (d2, t2)| (d + d2, t + t2))
    }

    #[inline(always)]
    pub(super) fn met(&self) -> bool {
        self.0.iter().all(|(p, t)| t.met(p))
    }
}

/// One challenge's state.
#[derive(Debug, Clone)]
pub(super) struct Tracker {
    /// The window instance counted (calendar period index; 0 for fixed windows).
    pub(super) instance: Option<i64>,
    pub(super) acc: Acc,
    /// Rolling windows: the matching events since the last completion, to drop old ones.
    pub(super) recent: VecDeque<(i64, usize)>,
    /// How often it was completed.
    pub(super) completions: u32,
    /// The instance in which it was last completed.
    pub(super) completed_instance: Option<i64>,
}

impl Tracker {
    /// Completed by event `event_id` at `at` in window `instance`: recorded, counting afresh.
    pub(super) fn complete(
        &mut self,
        c: &Challenge,
        instance: i64,
        event_id: &str,
        at: i64,
    ) -> Completion {
        self.completions += 1;
        if !matches!(c.window, Window::RollingDays { .. }) {
            // A rolling window has no next period: a repeatable one starts again at once.
            self.completed_instance = Some(instance);
        }
        self.acc.reset();
        self.recent.clear();
        Completion {
            challenge_id: c.id.clone(),
            event_id: event_id.to_owned(),
            at_ms: at,
            reward: c.reward.clone(),
            badge: c.badge.clone(),
        }
    }

    /// Completed as often as `repeat` allows: ever, or in window `instance`.
    #[inline]
    pub(super) fn exhausted(&self, repeat: &Repeat, instance: Option<i64>) -> bool {
        match repeat {
            Repeat::Once => self.completions > 0,
            Repeat::PerWindow { max_total } => {
                (instance.is_some() && self.completed_instance == instance)
                    || max_total.is_some_and(|m| self.completions >= m)
            }
        }
    }

    /// Completed as often as `repeat` allows, in any window.
    #[inline]
    pub(super) fn finished(&self, repeat: &Repeat) -> bool {
        self.exhausted(repeat, None)
    }
}

/// Drop from a rolling window's tracker the events at or before `from`: taken back one by one,
/// or (for streaks) the tracker rebuilt from the events still in the window.
#[inline]
pub(super) fn forget_before(t: &mut Tracker, cx: &Ctx, from: i64) {
    if t.recent.front().is_none_or(|&(at, _)| at > from) {
        return;
    }
    let mut exact = true;
    while let Some(&(at, k)) = t.recent.front() {
        if at > from {
            break;
        }
        t.recent.pop_front();
        exact &= t.acc.change(cx, k, true);
    }
    if !exact {
        t.acc.reset();
        for &(_, k) in &t.recent {
            t.acc.change(cx, k, false);
        }
    }
}
