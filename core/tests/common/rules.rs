//! Purchases, events, challenges and rule sets for the engine's tests.

use tessera_core::rules::{
    Challenge, DistinctOf, Filter, Goal, Repeat, RuleChannel, RuleEvent, RuleEventKind, RuleLine,
    RuleReward, RuleSet, Window,
};

pub const PARIS: &str = "Europe/Paris";

pub fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

pub fn purchase(id: &str, at: &str, store: &str, lines: &[(&str, &str)]) -> RuleEvent {
    RuleEvent {
        event_id: id.into(),
        kind: RuleEventKind::Purchase,
        at_ms: ms(at),
        store_id: Some(store.into()),
        channel: Some(RuleChannel::InStore),
        amount_cents: 1000 * lines.len() as u64,
        lines: lines
            .iter()
            .map(|(sku, collection)| RuleLine {
                sku: (*sku).into(),
                category: Some("tea".into()),
                collection: Some((*collection).into()),
                quantity: 1,
                amount_cents: 1000,
            })
            .collect(),
    }
}

pub fn event(id: &str, kind: RuleEventKind, at: &str, store: Option<&str>) -> RuleEvent {
    RuleEvent {
        event_id: id.into(),
        kind,
        at_ms: ms(at),
        store_id: store.map(str::to_owned),
        channel: None,
        amount_cents: 0,
        lines: vec![],
    }
}

pub fn challenge(id: &str, window: Window, goal: Goal) -> Challenge {
    Challenge {
        id: id.into(),
        title: format!("Challenge {id}"),
        description: String::new(),
        badge: Some(format!("badge-{id}")),
        window,
        goal,
        reward: RuleReward::Points { points: 100 },
        opt_in: false,
        repeat: Repeat::Once,
    }
}

pub fn kinds(k: RuleEventKind) -> Filter {
    Filter {
        kinds: vec![k],
        ..Filter::default()
    }
}

pub fn set(challenges: Vec<Challenge>) -> RuleSet {
    RuleSet {
        version: 1,
        challenges,
        earning: None,
    }
}

pub fn three_from_the_new_collection() -> Challenge {
    challenge(
        "new-collection",
        Window::CalendarMonth,
        Goal::Distinct {
            filter: Filter {
                kinds: vec![RuleEventKind::Purchase],
                collections: vec!["winter-26".into()],
                ..Filter::default()
            },
            of: DistinctOf::Sku,
            target: 3,
        },
    )
}
