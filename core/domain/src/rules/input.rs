//! Events as the engine reads them: a member's activity event or a purchase, turned into a
//! [`RuleEvent`] (kind, channel, shop, lines, amount).

use super::*;
use crate::catalog::{check_id, parse_instant};

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
