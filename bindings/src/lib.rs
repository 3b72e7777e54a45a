//! # tessera-ffi
//!
//! The UniFFI surface of Tessera: thin, synchronous, thread-safe objects whose methods are one
//! line over `tessera-core`. No business logic lives here.
//!
//! | module | job |
//! |---|---|
//! | `error` | the public error enums and the one place core errors are converted |
//! | `card` | the `Tessera` object: open, the card screen |
//! | `consent` | consent ledger and gate, preference centre, notifications, offers, export, erasure |
//! | `offers` | offers near, geofence plan, region events, push messages |
//! | `sync` | enrolment, sync and its listener, offline actions, cached reads |
//! | `till` | the `Till` object; points, tiers and rewards on `Tessera` |
//! | `background` | the async exports' worker thread and cancellation |
//! | `barcode` | free functions: analyse a typed-in number, render any value |
//! | `diagnostics` | version, and the panic check a shell's smoke test runs |
//! | `http` | the app's HTTP stack as a foreign trait (the library has none of its own) |
//! | `secrets` | the app's secret store as a foreign trait (the session's tokens live there) |
//! | `logging` | `init_logging` and the foreign logger callback |
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

uniffi::setup_scaffolding!("tessera");

mod background;
mod barcode;
mod card;
mod challenges;
mod consent;
mod diagnostics;
mod error;
mod fastpath;
mod http;
mod logging;
mod offers;
mod secrets;
mod sync;
mod till;

pub use barcode::*;
pub use card::*;
pub use consent::*;
pub use diagnostics::*;
pub use error::*;
pub use http::*;
pub use logging::*;
pub use offers::*;
pub use secrets::*;
pub use sync::*;
pub use till::*;
