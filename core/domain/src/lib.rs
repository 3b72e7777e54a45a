//! # tessera-domain
//!
//! Tessera's business rules, with no I/O: no database, network, clock or file. The phone client
//! (`tessera-core`), the shop's till (`tessera-till`) and the server (`tessera-server`) all decide
//! with these functions, so a rule the phone shows is the rule the server enforces. The time is
//! always an argument.
//!
//! | module | job |
//! |---|---|
//! | [`api`] | the HTTP protocol: wire types, headers, problem codes, limits on times |
//! | [`barcode`] | symbologies, what each carries, check digits, inference of a typed-in number |
//! | [`card`] | the programme and the member's card as entered, and their rules |
//! | [`catalog`] | stores and offers: wire types, validation |
//! | [`catalog_reader`] | a whole catalog read from a stream one entity at a time, in bounded memory |
//! | [`consent`] | purposes and channels, the ledger's derivation into a gate |
//! | [`coupon`] | coupon codes: signing, verification, what a till checks offline |
//! | [`eligibility`] | who may clip, buy and use an offer, where and when |
//! | [`geo`] | geodesy: distances, bounding boxes, the spatial index of shops |
//! | `journeys` | (server only) welcome, birthday, expiring points, tier drop, lapsed: who gets what, when |
//! | [`loyalty`] | points lots, expiry, holds, tiers and their review |
//! | [`member_code`] | the rotating member code: device certificates, codes, offline verification |
//! | [`preferences`] | the preference centre and the notification policy |
//! | [`push`] | the push payload and its parser |
//! | [`rules`] | challenges: format, validation, calendar, evaluation, earning |
//! | [`text`] | the one rule for display text (NFC, trimmed, nothing invisible or overriding) |
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("tessera_domain");

pub mod api;
pub mod barcode;
pub mod card;
pub mod catalog;
pub mod catalog_reader;
pub mod consent;
pub mod coupon;
pub mod eligibility;
pub mod error;
pub mod event;
pub mod geo;
pub mod intern;
#[cfg(feature = "server")]
pub mod journeys;
pub mod loyalty;
pub mod member_code;
pub mod pass;
pub mod preferences;
pub mod push;
pub mod rules;
pub mod text;

pub use api::{DeviceInfo, EventKind, MemberState, Platform};
pub use barcode::{BarcodeError, Symbology};
pub use card::{MemberCard, Program};
pub use catalog::{Offer, Store};

/// An instant in milliseconds since the epoch as RFC 3339 with milliseconds, in UTC (empty if
/// out of any calendar, which checked and stored times never are). The one formatter: every
/// time Tessera writes goes through it.
pub fn rfc3339_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}
