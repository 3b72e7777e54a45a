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

//! | module | job |
//! |---|---|
//! | `format` | the rule set as written and shown: challenges, goals, filters, rewards, progress |
//! | `input` | activity events and purchases as the engine reads them |
//! | `earning` | the points a purchase earns |
//! | `validate` | the checks a rule set passes before it is used |
//! | `calendar` | windows (day, week, month) in the member's time zone |
//! | `compile` | the set compiled for evaluation: interned filters, per-event needs |
//! | `tracker` | what a challenge keeps between events |
//! | `engine` | one event at a time ([`Engine::apply`]) |
//! | `evaluate` | a whole history at once ([`evaluate`], [`Engine::replay`]) |
//! | `state` | an engine kept between events ([`Engine::save`], [`Engine::restore`]) |
//! | `dry_run` | what another rule set would have given a member, next to the rules in force |

mod calendar;
mod compile;
#[cfg(feature = "server")]
mod dry_run;
mod earning;
mod engine;
mod evaluate;
mod format;
mod input;
mod state;
mod tracker;
mod validate;

#[cfg(test)]
mod tests;

use calendar::*;
use compile::*;
#[cfg(feature = "server")]
pub use dry_run::*;
pub use earning::*;
pub use engine::*;
pub use evaluate::*;
pub use format::*;
pub use input::*;
pub use state::*;
use tracker::*;

/// The format this build reads.
pub const RULES_VERSION: u32 = 1;
pub(super) const DAY_MS: i64 = 86_400_000;
/// Events may be this far ahead of the evaluator's clock: the protocol's one rule
/// ([`crate::event::MAX_CLOCK_AHEAD_MS`]), so an event the server accepted is evaluated.
pub const FUTURE_SLACK_MS: i64 = crate::event::MAX_CLOCK_AHEAD_MS;
pub(super) const MAX_CHALLENGES: usize = 500;
pub(super) const MAX_DEPTH: u32 = 4;
