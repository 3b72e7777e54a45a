//! A rule set compiled for evaluation: filters over interned ids, each event reduced once to what
//! the goals need, and the bits saying which goals an event can touch.

use super::*;
use crate::intern::Interner;

/// A filter with its strings as ids. Equal filters of different challenges are one filter,
/// matched once per event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct CFilter {
    pub(super) kinds: u32,
    pub(super) skus: Vec<u32>,
    pub(super) categories: Vec<u32>,
    pub(super) collections: Vec<u32>,
    pub(super) stores: Vec<u32>,
    pub(super) channel: Option<RuleChannel>,
    pub(super) min_amount_cents: Option<u64>,
}

/// An applied event with its strings as ids and its lines as a range of [`Events::lines`].
#[derive(Debug, Clone, Copy)]
pub(super) struct CEvent {
    pub(super) kind: RuleEventKind,
    pub(super) store: Option<u32>,
    pub(super) channel: Option<RuleChannel>,
    pub(super) amount_cents: u64,
    pub(super) lines: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct CLine {
    pub(super) sku: u32,
    pub(super) category: Option<u32>,
    pub(super) collection: Option<u32>,
    pub(super) quantity: u32,
    pub(super) amount_cents: u64,
}

/// The applied events, their lines in one list (no allocation per event), and apart from
/// them when each happened: what every step reads, packed for the cache.
#[derive(Debug, Clone, Default)]
pub(super) struct Events {
    pub(super) list: Vec<CEvent>,
    /// Per event: the instant and where it falls in the member's calendar.
    pub(super) when: Vec<(i64, Local)>,
    pub(super) lines: Vec<CLine>,
}

/// The event fields some rule looks at (a filter lists values or a goal counts distinct ones);
/// the others are not interned.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Needs {
    pub(super) sku: bool,
    pub(super) category: bool,
    pub(super) collection: bool,
    pub(super) store: bool,
}

/// The id of a SKU no rule looks at.
pub(super) const UNUSED: u32 = u32::MAX;

impl Needs {
    pub(super) fn all() -> Needs {
        Needs {
            sku: true,
            category: true,
            collection: true,
            store: true,
        }
    }

    pub(super) fn of(filters: &[CFilter], goals: &[&CGoal]) -> Needs {
        let mut n = Needs::default();
        for f in filters {
            n.sku |= !f.skus.is_empty();
            n.category |= !f.categories.is_empty();
            n.collection |= !f.collections.is_empty();
            n.store |= !f.stores.is_empty();
        }
        for p in goals.iter().flat_map(|g| &g.parts) {
            if let Part::Distinct { of, .. } = p {
                match of {
                    DistinctOf::Sku => n.sku = true,
                    DistinctOf::Category => n.category = true,
                    DistinctOf::Store => n.store = true,
                }
            }
        }
        n
    }
}

impl Events {
    pub(super) fn push(
        &mut self,
        e: &RuleEvent,
        local: Local,
        ids: &mut Interner,
        needs: Needs,
    ) -> usize {
        let start = self.lines.len() as u32;
        let mut id = |need: bool, s: Option<&str>| s.filter(|_| need).map(|s| ids.id(s));
        self.lines.extend(e.lines.iter().map(|l| CLine {
            sku: id(needs.sku, Some(&l.sku)).unwrap_or(UNUSED),
            category: id(needs.category, l.category.as_deref()),
            collection: id(needs.collection, l.collection.as_deref()),
            quantity: l.quantity,
            amount_cents: l.amount_cents,
        }));
        self.list.push(CEvent {
            kind: e.kind,
            store: id(needs.store, e.store_id.as_deref()),
            channel: e.channel,
            amount_cents: e.amount_cents,
            lines: (start, self.lines.len() as u32),
        });
        self.when.push((e.at_ms, local));
        self.list.len() - 1
    }

    #[inline]
    pub(super) fn lines_of(&self, e: &CEvent) -> &[CLine] {
        &self.lines[e.lines.0 as usize..e.lines.1 as usize]
    }
}

/// The events one filter matches, as bits by event index.
#[derive(Debug, Clone, Default)]
pub(super) struct Hits(pub(super) Vec<u64>);

impl Hits {
    #[inline]
    pub(super) fn set(&mut self, index: usize) {
        let word = index / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (index % 64);
    }

    #[inline]
    pub(super) fn get(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// The words covering `[a, b)`, each masked to the range, with their first index.
    #[inline]
    pub(super) fn range(&self, a: usize, b: usize) -> impl Iterator<Item = (usize, u64)> + '_ {
        (a / 64..b.div_ceil(64).min(self.0.len())).map(move |w| {
            let mut word = self.0[w];
            if w == a / 64 {
                word &= u64::MAX << (a % 64);
            }
            if w == b / 64 {
                word &= !(u64::MAX << (b % 64));
            }
            (w * 64, word)
        })
    }

    /// How many events in `[a, b)` it matched.
    #[inline]
    pub(super) fn count(&self, a: usize, b: usize) -> u64 {
        self.range(a, b)
            .map(|(_, w)| u64::from(w.count_ones()))
            .sum()
    }

    /// The `n`-th (from 1) event in `[a, b)` it matched.
    pub(super) fn nth(&self, a: usize, b: usize, n: u64) -> Option<usize> {
        let mut left = n;
        for (first, mut word) in self.range(a, b) {
            let here = u64::from(word.count_ones());
            if left > here {
                left -= here;
                continue;
            }
            for _ in 1..left {
                word &= word - 1;
            }
            return Some(first + word.trailing_zeros() as usize);
        }
        None
    }
}

impl CFilter {
    pub(super) fn new(f: &Filter, ids: &mut Interner) -> CFilter {
        let mut all = |v: &[String]| {
            let mut ids: Vec<u32> = v.iter().map(|s| ids.id(s)).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        CFilter {
            kinds: if f.kinds.is_empty() {
                u32::MAX
            } else {
                f.kinds.iter().fold(0, |m, k| m | kind_bit(*k))
            },
            skus: all(&f.skus),
            categories: all(&f.categories),
            collections: all(&f.collections),
            stores: all(&f.stores),
            channel: f.channel,
            min_amount_cents: f.min_amount_cents,
        }
    }

    #[inline]
    pub(super) fn line_filtered(&self) -> bool {
        !(self.skus.is_empty() && self.categories.is_empty() && self.collections.is_empty())
    }

    #[inline]
    pub(super) fn line_matches(&self, l: &CLine) -> bool {
        let any =
            |list: &[u32], v: Option<u32>| list.is_empty() || v.is_some_and(|v| list.contains(&v));
        any(&self.skus, Some(l.sku))
            && any(&self.categories, l.category)
            && any(&self.collections, l.collection)
    }

    /// Whether `e` counts (for purchases with a line filter: one of its lines matches).
    #[inline]
    pub(super) fn matches(&self, e: &CEvent, lines: &[CLine]) -> bool {
        self.kinds & kind_bit(e.kind) != 0
            && (self.stores.is_empty() || e.store.is_some_and(|s| self.stores.contains(&s)))
            && (self.channel.is_none() || e.channel == self.channel)
            && self.min_amount_cents.is_none_or(|m| e.amount_cents >= m)
            && (!self.line_filtered() || lines.iter().any(|l| self.line_matches(l)))
    }
}

/// One part of a compiled goal; its filter is an index into the engine's filter list.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part {
    Count {
        filter: usize,
        target: u64,
    },
    Distinct {
        filter: usize,
        of: DistinctOf,
        target: u64,
    },
    Sum {
        filter: usize,
        of: SumOf,
        target: u64,
    },
    Streak {
        filter: usize,
        period: Period,
        target: u64,
    },
}

/// A goal as its parts, `all_of`s flattened (all of all of is all of): met when every part is;
/// its progress is the parts' progress added up.
#[derive(Debug, Clone)]
pub(super) struct CGoal {
    pub(super) parts: Vec<Part>,
}

/// The engine's distinct filters.
#[derive(Debug, Clone, Default)]
pub(super) struct Filters {
    pub(super) list: Vec<CFilter>,
    pub(super) index: rustc_hash::FxHashMap<CFilter, usize>,
}

impl Filters {
    pub(super) fn add(&mut self, f: &Filter, ids: &mut Interner) -> usize {
        let f = CFilter::new(f, ids);
        let next = self.list.len();
        *self.index.entry(f.clone()).or_insert_with(|| {
            self.list.push(f);
            next
        })
    }
}

impl Part {
    #[inline]
    pub(super) fn filter(&self) -> usize {
        match *self {
            Part::Count { filter, .. }
            | Part::Distinct { filter, .. }
            | Part::Sum { filter, .. }
            | Part::Streak { filter, .. } => filter,
        }
    }
}

impl CGoal {
    pub(super) fn new(g: &Goal, ids: &mut Interner, filters: &mut Filters) -> CGoal {
        fn flatten(g: &Goal, ids: &mut Interner, filters: &mut Filters, out: &mut Vec<Part>) {
            out.push(match g {
                Goal::Count { filter, target } => Part::Count {
                    filter: filters.add(filter, ids),
                    target: u64::from(*target),
                },
                Goal::Distinct { filter, of, target } => Part::Distinct {
                    filter: filters.add(filter, ids),
                    of: *of,
                    target: u64::from(*target),
                },
                Goal::Sum { filter, of, target } => Part::Sum {
                    filter: filters.add(filter, ids),
                    of: *of,
                    target: *target,
                },
                Goal::Streak {
                    filter,
                    period,
                    target,
                } => Part::Streak {
                    filter: filters.add(filter, ids),
                    period: *period,
                    target: u64::from(*target),
                },
                Goal::AllOf { goals } => {
                    return goals.iter().for_each(|g| flatten(g, ids, filters, out));
                }
            })
        }
        let mut parts = Vec::new();
        flatten(g, ids, filters, &mut parts);
        CGoal { parts }
    }

    /// The filters of its parts: an event none of them matches cannot change it.
    pub(super) fn filters(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.parts.iter().map(Part::filter).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// How many event kinds there are (`RuleEventKind` as an index).
pub(super) const KINDS: usize = 10;

const _: () = assert!(RuleEventKind::AppOpened as usize + 1 == KINDS);

#[inline]
pub(super) fn kind_bit(k: RuleEventKind) -> u32 {
    1 << (k as u32)
}
