//! The rules engine: challenges ("buy 3 different products from the new collection this month",
//! "a purchase every week for 4 weeks") in a declarative, versioned format that the phone and the
//! server evaluate with this same code.
//!
//! Events are applied in time order (then by id); each challenge keeps a small tracker (a count,
//! a set of distinct values, a sum, a streak, or several of those for `all_of`). Calendar windows
//! (week, month) are periods in the member's time zone, so a purchase at 00:30 on the 1st in
//! Paris counts for the new month even though it is still the previous month in UTC. Applying one
//! more (newer) event costs one tracker update per challenge; an event older than the last one
//! applied asks the caller to evaluate again from the history ([`RulesError::OutOfOrder`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_id, parse_instant};
use crate::intern::Interner;

/// The format this build reads.
pub const RULES_VERSION: u32 = 1;
const DAY_MS: i64 = 86_400_000;
/// Events may be this far ahead of the evaluator's clock: the protocol's one rule
/// ([`crate::event::MAX_CLOCK_AHEAD_MS`]), so an event the server accepted is evaluated.
pub const FUTURE_SLACK_MS: i64 = crate::event::MAX_CLOCK_AHEAD_MS;
const MAX_CHALLENGES: usize = 500;
const MAX_DEPTH: u32 = 4;

/// The programme's challenges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Always [`RULES_VERSION`] for this build; a newer set is refused, not misread.
    pub version: u32,
    pub challenges: Vec<Challenge>,
    /// How purchases earn points; without it, the loyalty rules' points per euro.
    #[serde(default)]
    pub earning: Option<EarningRules>,
}

/// How a purchase earns points: per whole euro, more on some products (bonus categories), more
/// on the member's birthday, times the tier's multiplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EarningRules {
    pub points_per_euro: u32,
    /// Extra points on the lines each filter matches (the first matching bonus per line).
    #[serde(default)]
    pub bonuses: Vec<EarningBonus>,
    /// On the member's birthday (in their time zone), earning is multiplied by this (percent:
    /// 200 doubles it).
    #[serde(default)]
    pub birthday_multiplier_percent: Option<u32>,
}

/// "Double points on tea": `extra_percent` 100 on the lines `filter` matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EarningBonus {
    pub filter: Filter,
    pub extra_percent: u32,
}

impl EarningRules {
    /// Plain points per euro: what the loyalty rules alone say.
    pub fn per_euro(points_per_euro: u32) -> EarningRules {
        EarningRules {
            points_per_euro,
            bonuses: Vec::new(),
            birthday_multiplier_percent: None,
        }
    }

    fn validate(&self) -> Result<(), CatalogError> {
        if self.points_per_euro > 10_000 {
            return Err(CatalogError::new(
                "earning.points_per_euro",
                "at most 10,000",
            ));
        }
        if self.bonuses.len() > 50 {
            return Err(CatalogError::new("earning.bonuses", "at most 50"));
        }
        for b in &self.bonuses {
            b.filter.validate()?;
            if b.extra_percent == 0 || b.extra_percent > 10_000 {
                return Err(CatalogError::new(
                    "earning.bonuses.extra_percent",
                    "1 to 10,000",
                ));
            }
        }
        if self
            .birthday_multiplier_percent
            .is_some_and(|m| !(100..=1000).contains(&m))
        {
            return Err(CatalogError::new(
                "earning.birthday_multiplier_percent",
                "100 to 1,000",
            ));
        }
        Ok(())
    }

    /// The sum over `purchase`'s lines of their cents times their percent (100 plus the first
    /// matching bonus).
    fn weighted_lines(&self, purchase: &RuleEvent) -> u128 {
        if purchase.lines.is_empty() {
            return 0;
        }
        let mut ids = Interner::default();
        let mut events = Events::default();
        let index = events.push(
            purchase,
            Local::at(purchase.at_ms, 0),
            &mut ids,
            Needs::all(),
        );
        let event = events.list[index];
        let bonuses: Vec<(CFilter, u32)> = self
            .bonuses
            .iter()
            .map(|b| (CFilter::new(&b.filter, &mut ids), b.extra_percent))
            .collect();
        events
            .lines_of(&event)
            .iter()
            .map(|l| {
                let extra = bonuses
                    .iter()
                    .find(|(f, _)| f.matches(&event, std::slice::from_ref(l)))
                    .map_or(0, |(_, e)| *e);
                u128::from(l.amount_cents) * (100 + u128::from(extra))
            })
            .sum()
    }

    /// The points `purchase` earns at a tier whose multiplier is `tier_percent`, `birthday` if
    /// it is the member's birthday. Line amounts weighted by their bonus are scaled to what
    /// was paid (discounts spread over the lines), counted in whole euros, then multiplied.
    pub fn points(&self, purchase: &RuleEvent, tier_percent: u32, birthday: bool) -> u64 {
        let paid = u128::from(purchase.amount_cents);
        let lines: u128 = purchase
            .lines
            .iter()
            .map(|l| u128::from(l.amount_cents))
            .sum();
        // Each line's cents times its percent (100 without a bonus), scaled to what was paid;
        // without lines (or lines worth nothing) the total at 100 %.
        let weighted = self
            .weighted_lines(purchase)
            .saturating_mul(paid)
            .checked_div(lines)
            .unwrap_or(paid * 100);
        let euros = weighted / 10_000;
        let birthday = if birthday {
            self.birthday_multiplier_percent.unwrap_or(100)
        } else {
            100
        };
        let points = euros
            * u128::from(self.points_per_euro)
            * u128::from(tier_percent)
            * u128::from(birthday)
            / 10_000;
        u64::try_from(points).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The badge's art reference (the app's asset name), when completing it earns a badge.
    #[serde(default)]
    pub badge: Option<String>,
    pub window: Window,
    pub goal: Goal,
    pub reward: RuleReward,
    /// Only events after the member joined count.
    #[serde(default)]
    pub opt_in: bool,
    #[serde(default)]
    pub repeat: Repeat,
}

/// When events count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    /// The calendar week (Monday to Sunday) in the member's time zone.
    CalendarWeek,
    /// The calendar month in the member's time zone.
    CalendarMonth,
    /// The last `days` days.
    RollingDays { days: u32 },
    /// From `from` to `to` (RFC 3339).
    Fixed { from: String, to: String },
}

/// A calendar period in the member's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

/// What must happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    /// `target` matching events.
    Count { filter: Filter, target: u32 },
    /// `target` different products, shops or categories among matching events.
    Distinct {
        filter: Filter,
        of: DistinctOf,
        target: u32,
    },
    /// Matching amounts (cents) or quantities adding up to `target`.
    Sum {
        filter: Filter,
        of: SumOf,
        target: u64,
    },
    /// A matching event in each of `target` consecutive periods.
    Streak {
        filter: Filter,
        period: Period,
        target: u32,
    },
    /// Every one of these.
    AllOf {
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        goals: Vec<Goal>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DistinctOf {
    Sku,
    Store,
    Category,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SumOf {
    AmountCents,
    Quantity,
}

/// Which events (and, for purchases, which lines) count. Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub kinds: Vec<RuleEventKind>,
    #[serde(default)]
    pub skus: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub collections: Vec<String>,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub channel: Option<RuleChannel>,
    /// The event's amount at least this (purchases, orders).
    #[serde(default)]
    pub min_amount_cents: Option<u64>,
}

/// What completing a challenge pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleReward {
    Points {
        points: u64,
    },
    /// The challenge's badge alone.
    Badge,
    /// A coupon for this offer (through the redemption path).
    Coupon {
        offer_id: String,
    },
    /// Points that count towards tiers.
    TierBonus {
        points: u64,
    },
}

/// Once, or again in each new window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Repeat {
    #[default]
    Once,
    /// Once per window (per week, per month…); with a rolling window, again after each
    /// completion, counting afresh from the next event. At most `max_total` times in all if set.
    PerWindow {
        #[serde(default)]
        max_total: Option<u32>,
    },
}

/// What a member did, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleEventKind {
    Purchase,
    StoreVisit,
    OnlineOrder,
    ReviewPosted,
    NewsletterSubscribed,
    ProfileCompleted,
    SocialShare,
    ReferralConverted,
    /// Goodwill for a late delivery.
    LateDelivery,
    AppOpened,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleChannel {
    InStore,
    Online,
}

/// One event for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleEvent {
    /// Unique per member: the same id twice counts once.
    pub event_id: String,
    pub kind: RuleEventKind,
    pub at_ms: i64,
    pub store_id: Option<String>,
    pub channel: Option<RuleChannel>,
    pub amount_cents: u64,
    pub lines: Vec<RuleLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleLine {
    pub sku: String,
    pub category: Option<String>,
    pub collection: Option<String>,
    pub quantity: u32,
    pub amount_cents: u64,
}

/// When the member joined an opt-in challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeJoin {
    pub challenge_id: String,
    pub joined_at_ms: i64,
}

/// A badge the member earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Badge {
    /// The badge's art reference (the app's asset name).
    pub badge: String,
    pub challenge_id: String,
    /// The challenge's title when it was earned.
    pub title: String,
    /// RFC 3339: when the completing event happened.
    pub earned_at: String,
}

impl RuleEventKind {
    /// The rules' kind of a member's activity event.
    pub fn of_activity(k: crate::event::EventKind) -> RuleEventKind {
        use crate::event::EventKind as K;
        match k {
            K::AppOpened => RuleEventKind::AppOpened,
            K::StoreVisit => RuleEventKind::StoreVisit,
            K::OnlineOrder => RuleEventKind::OnlineOrder,
            K::ReviewPosted => RuleEventKind::ReviewPosted,
            K::NewsletterSubscribed => RuleEventKind::NewsletterSubscribed,
            K::ProfileCompleted => RuleEventKind::ProfileCompleted,
            K::SocialShare => RuleEventKind::SocialShare,
            K::ReferralConverted => RuleEventKind::ReferralConverted,
        }
    }
}

/// The attribute of an activity event that carries an amount (an online order's total).
pub const AMOUNT_ATTRIBUTE: &str = "amount_cents";

impl RuleEvent {
    /// The rules' view of a member's activity event: its amount from the `amount_cents`
    /// attribute (0 when absent or not a number); `None` when its time is not RFC 3339.
    pub fn of_activity(e: &crate::event::ActivityEvent) -> Option<RuleEvent> {
        let at = parse_instant("occurred_at", &e.occurred_at).ok()?;
        let kind = RuleEventKind::of_activity(e.kind);
        Some(RuleEvent {
            event_id: e.event_id.clone(),
            kind,
            at_ms: at.as_millisecond(),
            store_id: e.store_id.clone(),
            channel: match kind {
                RuleEventKind::StoreVisit => Some(RuleChannel::InStore),
                RuleEventKind::OnlineOrder => Some(RuleChannel::Online),
                _ => None,
            },
            amount_cents: e
                .attributes
                .get(AMOUNT_ATTRIBUTE)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0),
            lines: Vec::new(),
        })
    }

    /// A purchase recorded by a till of `store_id` (the shop `web` is the website: online).
    pub fn of_purchase(
        purchase_id: &str,
        store_id: &str,
        lines: &[crate::event::PurchaseLine],
        total_cents: u64,
        at_ms: i64,
    ) -> RuleEvent {
        RuleEvent {
            event_id: purchase_id.to_owned(),
            kind: RuleEventKind::Purchase,
            at_ms,
            store_id: Some(store_id.to_owned()),
            channel: Some(if store_id == crate::catalog::WEB_STORE {
                RuleChannel::Online
            } else {
                RuleChannel::InStore
            }),
            amount_cents: total_cents,
            lines: lines
                .iter()
                .map(|l| RuleLine {
                    sku: l.sku.clone(),
                    category: l.category.clone(),
                    collection: l.collection.clone(),
                    quantity: l.quantity,
                    amount_cents: l.amount_cents,
                })
                .collect(),
        }
    }

    /// The shop visit a till's scan of the member's card is: one per shop and day in the
    /// member's time zone (several purchases that day are one visit, by its id); none for the
    /// website.
    pub fn visit_at_till(store_id: &str, at_ms: i64, tz: &jiff::tz::TimeZone) -> Option<RuleEvent> {
        if store_id == crate::catalog::WEB_STORE {
            return None;
        }
        let day = jiff::Timestamp::from_millisecond(at_ms)
            .ok()?
            .to_zoned_datetime(tz.clone())
            .date();
        Some(RuleEvent {
            event_id: format!("visit-{store_id}-{day}"),
            kind: RuleEventKind::StoreVisit,
            at_ms,
            store_id: Some(store_id.to_owned()),
            channel: Some(RuleChannel::InStore),
            amount_cents: 0,
            lines: Vec::new(),
        })
    }

    /// Rules every event obeys wherever it comes from (ids, a time the calendar knows, at most
    /// 500 lines). Its time against a clock is the evaluator's check (`EventInFuture`).
    pub fn validate(&self) -> Result<(), RulesError> {
        let check = |field, id: &str| check_id(field, id).map_err(invalid);
        check("event.event_id", &self.event_id)?;
        check_time(self, i64::MAX)?;
        if let Some(s) = &self.store_id {
            check("event.store_id", s)?;
        }
        if self.lines.len() > crate::event::MAX_PURCHASE_LINES {
            return Err(RulesError::Invalid {
                field: "event.lines".into(),
                reason: "at most 500 lines".into(),
            });
        }
        let money = |field, cents| crate::catalog::check_cents(field, cents).map_err(invalid);
        money("event.amount_cents", self.amount_cents)?;
        for l in &self.lines {
            money("line.amount_cents", l.amount_cents)?;
            check("line.sku", &l.sku)?;
            for c in [&l.category, &l.collection].into_iter().flatten() {
                check("line.category", c)?;
            }
        }
        Ok(())
    }
}

impl Completion {
    /// The badge it earned, if the challenge has one.
    pub fn badge(&self, title: &str) -> Option<Badge> {
        self.badge.as_ref().map(|b| Badge {
            badge: b.clone(),
            challenge_id: self.challenge_id.clone(),
            title: title.to_owned(),
            earned_at: crate::rfc3339_ms(self.at_ms),
        })
    }
}

/// Why rules or events are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum RulesError {
    /// A rule breaks the format (`field` names it).
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A rule no history can complete.
    #[error("challenge {challenge_id} cannot be completed: {reason}")]
    Unsatisfiable {
        challenge_id: String,
        reason: String,
    },
    #[error("rules version {found} is newer than this build's {supported}")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("unknown time zone {name}")]
    UnknownTimeZone { name: String },
    /// Later than the evaluator's clock allows.
    #[error("event {event_id} is in the future")]
    EventInFuture { event_id: String },
    /// Older than an event already applied: evaluate again from the history.
    #[error("event {event_id} is older than the last one applied")]
    OutOfOrder { event_id: String },
}

fn invalid(e: CatalogError) -> RulesError {
    RulesError::Invalid {
        field: e.field.to_owned(),
        reason: e.reason,
    }
}

impl Filter {
    fn validate(&self) -> Result<(), CatalogError> {
        for (field, ids) in [
            ("filter.skus", &self.skus),
            ("filter.categories", &self.categories),
            ("filter.collections", &self.collections),
            ("filter.stores", &self.stores),
        ] {
            for id in ids {
                check_id(field, id)?;
            }
        }
        if let Some(min) = self.min_amount_cents {
            crate::catalog::check_cents("filter.min_amount_cents", min)?;
        }
        Ok(())
    }
}

/// A filter with its strings as ids. Equal filters of different challenges are one filter,
/// matched once per event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CFilter {
    kinds: u32,
    skus: Vec<u32>,
    categories: Vec<u32>,
    collections: Vec<u32>,
    stores: Vec<u32>,
    channel: Option<RuleChannel>,
    min_amount_cents: Option<u64>,
}

/// An applied event with its strings as ids and its lines as a range of [`Events::lines`].
#[derive(Debug, Clone, Copy)]
struct CEvent {
    kind: RuleEventKind,
    store: Option<u32>,
    channel: Option<RuleChannel>,
    amount_cents: u64,
    lines: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct CLine {
    sku: u32,
    category: Option<u32>,
    collection: Option<u32>,
    quantity: u32,
    amount_cents: u64,
}

/// The applied events, their lines in one list (no allocation per event), and apart from
/// them when each happened: what every step reads, packed for the cache.
#[derive(Debug, Clone, Default)]
struct Events {
    list: Vec<CEvent>,
    /// Per event: the instant and where it falls in the member's calendar.
    when: Vec<(i64, Local)>,
    lines: Vec<CLine>,
}

/// The event fields some rule looks at (a filter lists values or a goal counts distinct ones);
/// the others are not interned.
#[derive(Debug, Clone, Copy, Default)]
struct Needs {
    sku: bool,
    category: bool,
    collection: bool,
    store: bool,
}

/// The id of a SKU no rule looks at.
const UNUSED: u32 = u32::MAX;

impl Needs {
    fn all() -> Needs {
        Needs {
            sku: true,
            category: true,
            collection: true,
            store: true,
        }
    }

    fn of(filters: &[CFilter], goals: &[&CGoal]) -> Needs {
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
    fn push(&mut self, e: &RuleEvent, local: Local, ids: &mut Interner, needs: Needs) -> usize {
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

    fn lines_of(&self, e: &CEvent) -> &[CLine] {
        &self.lines[e.lines.0 as usize..e.lines.1 as usize]
    }
}

/// The events one filter matches, as bits by event index.
#[derive(Debug, Clone, Default)]
struct Hits(Vec<u64>);

impl Hits {
    fn set(&mut self, index: usize) {
        let word = index / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (index % 64);
    }

    fn get(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// The words covering `[a, b)`, each masked to the range, with their first index.
    fn range(&self, a: usize, b: usize) -> impl Iterator<Item = (usize, u64)> + '_ {
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
    fn count(&self, a: usize, b: usize) -> u64 {
        self.range(a, b)
            .map(|(_, w)| u64::from(w.count_ones()))
            .sum()
    }

    /// The `n`-th (from 1) event in `[a, b)` it matched.
    fn nth(&self, a: usize, b: usize, n: u64) -> Option<usize> {
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
    fn new(f: &Filter, ids: &mut Interner) -> CFilter {
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

    fn line_filtered(&self) -> bool {
        !(self.skus.is_empty() && self.categories.is_empty() && self.collections.is_empty())
    }

    fn line_matches(&self, l: &CLine) -> bool {
        let any =
            |list: &[u32], v: Option<u32>| list.is_empty() || v.is_some_and(|v| list.contains(&v));
        any(&self.skus, Some(l.sku))
            && any(&self.categories, l.category)
            && any(&self.collections, l.collection)
    }

    /// Whether `e` counts (for purchases with a line filter: one of its lines matches).
    fn matches(&self, e: &CEvent, lines: &[CLine]) -> bool {
        self.kinds & kind_bit(e.kind) != 0
            && (self.stores.is_empty() || e.store.is_some_and(|s| self.stores.contains(&s)))
            && (self.channel.is_none() || e.channel == self.channel)
            && self.min_amount_cents.is_none_or(|m| e.amount_cents >= m)
            && (!self.line_filtered() || lines.iter().any(|l| self.line_matches(l)))
    }
}

/// One part of a compiled goal; its filter is an index into the engine's filter list.
#[derive(Debug, Clone, Copy)]
enum Part {
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
struct CGoal {
    parts: Vec<Part>,
}

/// The engine's distinct filters.
#[derive(Debug, Clone, Default)]
struct Filters {
    list: Vec<CFilter>,
    index: rustc_hash::FxHashMap<CFilter, usize>,
}

impl Filters {
    fn add(&mut self, f: &Filter, ids: &mut Interner) -> usize {
        let f = CFilter::new(f, ids);
        let next = self.list.len();
        *self.index.entry(f.clone()).or_insert_with(|| {
            self.list.push(f);
            next
        })
    }
}

impl Part {
    fn filter(&self) -> usize {
        match *self {
            Part::Count { filter, .. }
            | Part::Distinct { filter, .. }
            | Part::Sum { filter, .. }
            | Part::Streak { filter, .. } => filter,
        }
    }
}

impl CGoal {
    fn new(g: &Goal, ids: &mut Interner, filters: &mut Filters) -> CGoal {
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
    fn filters(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.parts.iter().map(Part::filter).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// How many event kinds there are (`RuleEventKind` as an index).
const KINDS: usize = 10;
const _: () = assert!(RuleEventKind::AppOpened as usize + 1 == KINDS);

fn kind_bit(k: RuleEventKind) -> u32 {
    1 << (k as u32)
}

impl Goal {
    fn validate(&self, depth: u32) -> Result<(), CatalogError> {
        if depth > MAX_DEPTH {
            return Err(CatalogError::new("goal", "all_of nested more than 4 deep"));
        }
        let positive = |n: u64| {
            if n == 0 {
                Err(CatalogError::new("goal.target", "must be at least 1"))
            } else {
                Ok(())
            }
        };
        match self {
            Goal::Count { filter, target }
            | Goal::Distinct { filter, target, .. }
            | Goal::Streak { filter, target, .. } => {
                filter.validate()?;
                positive(u64::from(*target))
            }
            Goal::Sum { filter, target, .. } => {
                filter.validate()?;
                positive(*target)
            }
            Goal::AllOf { goals } => {
                if goals.is_empty() || goals.len() > 16 {
                    return Err(CatalogError::new("goal.goals", "1 to 16 goals"));
                }
                goals.iter().try_for_each(|g| g.validate(depth + 1))
            }
        }
    }

    fn streaks(&self) -> Vec<(Period, u32)> {
        match self {
            Goal::Streak { period, target, .. } => vec![(*period, *target)],
            Goal::AllOf { goals } => goals.iter().flat_map(Goal::streaks).collect(),
            _ => Vec::new(),
        }
    }
}

/// The most periods of `p` a window can span (at least partly).
fn periods_in(window: &Window, p: Period) -> Option<u64> {
    let days: u64 = match window {
        Window::CalendarWeek => 7,
        Window::CalendarMonth => 31,
        Window::RollingDays { days } => u64::from(*days),
        Window::Fixed { from, to } => {
            let f = parse_instant("window.from", from).ok()?.as_millisecond();
            let t = parse_instant("window.to", to).ok()?.as_millisecond();
            u64::try_from((t - f).div_euclid(DAY_MS) + 1).ok()?
        }
    };
    Some(match (window, p) {
        (_, Period::Day) => days + 1,
        (Window::CalendarWeek, Period::Week) => 1,
        (Window::CalendarMonth, Period::Week) => 6,
        (Window::CalendarMonth, Period::Month) => 1,
        (Window::CalendarWeek, Period::Month) => 2,
        (_, Period::Week) => days / 7 + 2,
        (_, Period::Month) => days / 28 + 2,
    })
}

impl RuleSet {
    /// Whether some challenge counts events of `kind`: an event no challenge counts cannot
    /// complete anything, and its evaluation can be skipped.
    pub fn counts(&self, kind: RuleEventKind) -> bool {
        fn goal_counts(g: &Goal, kind: RuleEventKind) -> bool {
            match g {
                Goal::Count { filter, .. }
                | Goal::Distinct { filter, .. }
                | Goal::Sum { filter, .. }
                | Goal::Streak { filter, .. } => {
                    filter.kinds.is_empty() || filter.kinds.contains(&kind)
                }
                Goal::AllOf { goals } => goals.iter().any(|g| goal_counts(g, kind)),
            }
        }
        self.challenges.iter().any(|c| goal_counts(&c.goal, kind))
    }

    /// Every rule obeys the format and can be completed.
    pub fn validate(&self) -> Result<(), RulesError> {
        if self.version != RULES_VERSION {
            return Err(RulesError::UnsupportedVersion {
                found: self.version,
                supported: RULES_VERSION,
            });
        }
        if self.challenges.len() > MAX_CHALLENGES {
            return Err(invalid(CatalogError::new(
                "challenges",
                "at most 500 challenges",
            )));
        }
        if let Some(e) = &self.earning {
            e.validate().map_err(invalid)?;
        }
        let mut ids = BTreeSet::new();
        for c in &self.challenges {
            check_id("challenge.id", &c.id).map_err(invalid)?;
            if !ids.insert(&c.id) {
                return Err(invalid(CatalogError::new(
                    "challenge.id",
                    format!("{} appears twice", c.id),
                )));
            }
            if c.title.trim().is_empty() || c.title.chars().count() > 120 {
                return Err(invalid(CatalogError::new(
                    "challenge.title",
                    "1 to 120 characters",
                )));
            }
            c.goal.validate(0).map_err(invalid)?;
            let unsatisfiable = |reason: String| RulesError::Unsatisfiable {
                challenge_id: c.id.clone(),
                reason,
            };
            match &c.window {
                Window::RollingDays { days } if !(1..=3650).contains(days) => {
                    return Err(invalid(CatalogError::new("window.days", "1 to 3650 days")));
                }
                Window::Fixed { from, to } => {
                    let f = parse_instant("window.from", from).map_err(invalid)?;
                    let t = parse_instant("window.to", to).map_err(invalid)?;
                    if t <= f {
                        return Err(unsatisfiable("the window ends before it starts".into()));
                    }
                }
                _ => {}
            }
            for (period, target) in c.goal.streaks() {
                let most = periods_in(&c.window, period).unwrap_or(0);
                if u64::from(target) > most {
                    return Err(unsatisfiable(format!(
                        "a streak of {target} {period:?} periods in a window that spans {most}"
                    )));
                }
            }
            if let RuleReward::Coupon { offer_id } = &c.reward {
                check_id("reward.offer_id", offer_id).map_err(invalid)?;
            }
            if let Repeat::PerWindow { max_total: Some(0) } = c.repeat {
                return Err(unsatisfiable("repeat.max_total is 0".into()));
            }
            if matches!(c.repeat, Repeat::PerWindow { .. })
                && matches!(c.window, Window::Fixed { .. })
            {
                return Err(invalid(CatalogError::new(
                    "repeat",
                    "a fixed window has one period: use once",
                )));
            }
        }
        Ok(())
    }
}

/// Where an instant falls in the member's calendar (32-bit: events are checked to lie between
/// the years -9999 and 9999; an absurd clock is clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Local {
    /// Days since the epoch.
    day: i32,
    /// Monday-based weeks since the epoch.
    week: i32,
    /// Months since year 0.
    month: i32,
}

impl Local {
    fn of(ms: i64, tz: &jiff::tz::TimeZone) -> Local {
        let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        Local::at(ms, i64::from(tz.to_offset(at).seconds()) * 1000)
    }

    /// With the zone's offset at that instant (daylight saving included), then calendar
    /// arithmetic on the local time: cheaper than building a zoned date-time per event.
    fn at(ms: i64, offset_ms: i64) -> Local {
        let local_ms = ms.saturating_add(offset_ms);
        let day = local_ms.div_euclid(DAY_MS);
        let (y, m, _) = civil_from_days(day);
        let narrow = |n: i64| n.clamp(i32::MIN.into(), i32::MAX.into()) as i32;
        Local {
            day: narrow(day),
            // 1970-01-01 was a Thursday: Monday-based weeks start three days later.
            week: narrow((day + 3).div_euclid(7)),
            month: narrow(y.saturating_mul(12).saturating_add(m - 1)),
        }
    }

    fn period(&self, p: Period) -> i64 {
        i64::from(match p {
            Period::Day => self.day,
            Period::Week => self.week,
            Period::Month => self.month,
        })
    }
}

/// The zone's offset over the span between two transitions: events in time order ask the
/// time zone database again only when they cross a daylight-saving change.
#[derive(Debug, Clone, Copy)]
struct OffsetSpan {
    from: i64,
    until: i64,
    offset_ms: i64,
}

impl OffsetSpan {
    const EMPTY: OffsetSpan = OffsetSpan {
        from: 0,
        until: 0,
        offset_ms: 0,
    };

    fn local(&mut self, ms: i64, tz: &jiff::tz::TimeZone) -> Local {
        if !(self.from <= ms && ms < self.until) {
            let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            *self = OffsetSpan {
                from: ms,
                until: tz
                    .following(at)
                    .next()
                    .map_or(i64::MAX, |t| t.timestamp().as_millisecond()),
                offset_ms: i64::from(tz.to_offset(at).seconds()) * 1000,
            };
        }
        Local::at(ms, self.offset_ms)
    }
}

/// The first instant of calendar period `index` of kind `p` in `tz`.
fn period_start(p: Period, index: i64, tz: &jiff::tz::TimeZone) -> Option<i64> {
    let (y, m, d) = match p {
        Period::Month => (index.div_euclid(12), index.rem_euclid(12) + 1, 1),
        Period::Day | Period::Week => {
            let day = if p == Period::Week {
                index * 7 - 3
            } else {
                index
            };
            civil_from_days(day)
        }
    };
    let date = jiff::civil::Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    Some(
        date.to_zoned_datetime(tz.clone())
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// What the counting reads: the distinct filters, which events each matched, the events.
struct Ctx<'a> {
    filters: &'a [CFilter],
    hits: &'a [Hits],
    events: &'a Events,
}

impl Ctx<'_> {
    /// The lines of event `index` that filter `f` counts (all of them without a line filter).
    fn lines(&self, f: usize, index: usize) -> impl Iterator<Item = &CLine> + '_ {
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
struct Multiset {
    dense: Vec<u32>,
    sparse: rustc_hash::FxHashMap<u32, u32>,
    distinct: u64,
}

impl Multiset {
    /// Ids below this are counted in the array (4 KiB at most per tally).
    const DENSE: u32 = 1024;

    fn add(&mut self, v: u32) {
        let n = if v < Self::DENSE {
            let v = v as usize;
            if self.dense.len() <= v {
                self.dense.resize(v + 1, 0);
            }
            &mut self.dense[v]
        } else {
            self.sparse.entry(v).or_insert(0)
        };
        *n += 1;
        if *n == 1 {
            self.distinct += 1;
        }
    }

    fn remove(&mut self, v: u32) {
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

    fn clear(&mut self) {
        self.dense.fill(0);
        self.sparse.clear();
        self.distinct = 0;
    }
}

/// What one part of a goal has counted so far.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tally {
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
    fn new(p: &Part) -> Tally {
        match p {
            Part::Count { .. } => Tally::Count(0),
            Part::Distinct { .. } => Tally::Distinct(Default::default()),
            Part::Sum { .. } => Tally::Sum(0),
            Part::Streak { .. } => Tally::Streak { last: None, run: 0 },
        }
    }

    /// Back to nothing counted, keeping its allocations.
    fn reset(&mut self) {
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
    fn change(&mut self, p: &Part, cx: &Ctx, index: usize, remove: bool, hit: bool) -> bool {
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
    fn progress(&self, p: &Part, now: Local) -> (u64, u64) {
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
    fn met(&self, p: &Part) -> bool {
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
struct Acc(Vec<(Part, Tally)>);

impl Acc {
    fn new(g: &CGoal) -> Acc {
        Acc(g.parts.iter().map(|p| (*p, Tally::new(p))).collect())
    }

    fn reset(&mut self) {
        self.0.iter_mut().for_each(|(_, t)| t.reset());
    }

    /// Count event `index` or take it back; `false` when taking back was not exact. The event
    /// matched one of the goal's filters (only such events are stepped and kept for rolling
    /// windows), so a one-part goal need not look its filter up.
    #[inline(always)]
    fn change(&mut self, cx: &Ctx, index: usize, remove: bool) -> bool {
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
    fn progress(&self, now: Local) -> (u64, u64) {
        self.0
            .iter()
            .map(|(p, t)| t.progress(p, now))
            .fold((0, 0), |(d, t), (d2, t2)| (d + d2, t + t2))
    }

    #[inline(always)]
    fn met(&self) -> bool {
        self.0.iter().all(|(p, t)| t.met(p))
    }
}

/// One challenge's state.
#[derive(Debug, Clone)]
struct Tracker {
    /// The window instance counted (calendar period index; 0 for fixed windows).
    instance: Option<i64>,
    acc: Acc,
    /// Rolling windows: the matching events since the last completion, to drop old ones.
    recent: VecDeque<(i64, usize)>,
    completions: Vec<i64>,
    /// The instance in which it was last completed.
    completed_instance: Option<i64>,
}

impl Tracker {
    /// Completed by event `event_id` at `at` in window `instance`: recorded, counting afresh.
    fn complete(&mut self, c: &Challenge, instance: i64, event_id: &str, at: i64) -> Completion {
        self.completions.push(at);
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
    fn exhausted(&self, repeat: &Repeat, instance: Option<i64>) -> bool {
        match repeat {
            Repeat::Once => !self.completions.is_empty(),
            Repeat::PerWindow { max_total } => {
                (instance.is_some() && self.completed_instance == instance)
                    || max_total.is_some_and(|m| self.completions.len() as u64 >= u64::from(m))
            }
        }
    }

    /// Completed as often as `repeat` allows, in any window.
    fn finished(&self, repeat: &Repeat) -> bool {
        self.exhausted(repeat, None)
    }
}

/// Drop from a rolling window's tracker the events at or before `from`: taken back one by one,
/// or (for streaks) the tracker rebuilt from the events still in the window.
#[inline]
fn forget_before(t: &mut Tracker, cx: &Ctx, from: i64) {
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

/// A challenge completed: its reward is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Completion {
    pub challenge_id: String,
    /// The event that completed it.
    pub event_id: String,
    pub at_ms: i64,
    pub reward: RuleReward,
    pub badge: Option<String>,
}

/// Where a challenge stands, for a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeProgress {
    pub challenge_id: String,
    pub title: String,
    pub description: String,
    pub badge: Option<String>,
    pub done: u64,
    pub target: u64,
    /// `target - done`.
    pub left: u64,
    /// When the current window ends (RFC 3339); `None` for rolling windows.
    pub deadline: Option<String>,
    pub reward: RuleReward,
    pub completions: u32,
    /// Completed and cannot be completed again (now or in this window).
    pub completed: bool,
    /// `false` while an opt-in challenge is not joined: nothing counts.
    pub joined: bool,
}

/// A challenge compiled.
#[derive(Debug, Clone)]
struct Prepared {
    goal: CGoal,
    /// Its goal's filters: only events one of them matches can change it.
    filters: Vec<usize>,
    /// A fixed window's bounds.
    fixed: Option<(i64, i64)>,
    /// Events before this do not count (opt-in challenges: when the member joined; never
    /// while not joined).
    counts_from: i64,
}

/// The window instance an event at `at` counts in (`None`: outside a fixed window).
fn instance_of(window: &Window, fixed: Option<(i64, i64)>, at: i64, local: Local) -> Option<i64> {
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
fn step(
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

/// A whole history for one challenge with a calendar window, as [`evaluate`] walks it.
struct History<'a> {
    cx: &'a Ctx<'a>,
    tz: &'a jiff::tz::TimeZone,
    /// The events one of the challenge's filters matched, as bits.
    matched: &'a [u64],
    ids: &'a [&'a str],
}

/// Evaluate a challenge with a calendar window over a whole history, window by window: the
/// events of one week or month are an index range (events are in time order and calendar
/// periods follow it). A goal that only counts events is the population count of each part's
/// filter bits there, completed at the event where the last part reaches its target; other
/// goals count the window's events one after another until met. The same result as stepping
/// event by event (the property tests compare it with [`Engine::apply`]) without checking the
/// window and the repeat rule at each event.
fn by_window(
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

/// The first set bit at or after `from`.
fn next_bit(words: &[u64], from: usize) -> Option<usize> {
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
fn check_time(e: &RuleEvent, now_ms: i64) -> Result<(), RulesError> {
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
    rules: &'r RuleSet,
    tz: jiff::tz::TimeZone,
    offsets: OffsetSpan,
    trackers: Vec<Tracker>,
    seen: rustc_hash::FxHashSet<String>,
    last: Option<(i64, String)>,
    /// Applied events (rolling windows look back at them).
    events: Events,
    ids: Interner,
    needs: Needs,
    /// The distinct filters of all challenges.
    filters: Vec<CFilter>,
    /// Per filter, the applied events it matches.
    hits: Vec<Hits>,
    /// Per event kind, the filters that can match it.
    filters_of_kind: Vec<Vec<usize>>,
    prepared: Vec<Prepared>,
    /// Per event kind, the challenges it can change, in order.
    by_kind: Vec<Vec<usize>>,
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
                    completions: Vec::new(),
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
    fn ingest(&mut self, e: &RuleEvent, now_ms: i64) -> Result<Option<usize>, RulesError> {
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
    fn record(&mut self, e: &RuleEvent) -> usize {
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
    /// A repeated event id is ignored. Returns the challenges it completed.
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
                    completions: t.completions.len() as u32,
                    completed,
                    joined: p.counts_from != i64::MAX,
                }
            })
            .collect()
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
    for e in in_order {
        check_time(e, now_ms)?;
        if seen.insert(e.event_id.as_str()) {
            engine.record(e);
            ids.push(e.event_id.as_str());
        }
    }
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
    Ok(Evaluation {
        progress: engine.progress(now_ms),
        completions,
    })
}
