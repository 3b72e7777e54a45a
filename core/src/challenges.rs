//! Challenges on the phone: the rule set from the catalog feed, the member's history as the
//! server last sent it, and the actions still in the outbox, evaluated by the same engine the
//! server runs. With nothing unsent, the answer is the server's; with unsent events it is an
//! estimate that moves offline and that the server's state replaces after sync.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::api::{MemberState, Mutation};
use crate::catalog::check_id;
use crate::clock::now_ms;
use crate::db::StorageError;
use crate::rules::{Badge, ChallengeProgress, RuleEvent, RuleSet, RulesError, evaluate};
use crate::{Error, Result, invalid};

/// What the challenges screen shows, in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ChallengesView {
    pub challenges: Vec<ChallengeProgress>,
    /// Earned badges, oldest first (with `estimated`, some may come from unsent events).
    pub badges: Vec<Badge>,
    /// Unsent events or joins count in it: the server's answer may still differ.
    pub estimated: bool,
}

/// Join an opt-in challenge: queued for the server, counted at once on this device.
pub(crate) fn join(tx: &Transaction<'_>, challenge_id: &str) -> Result<()> {
    crate::activity::require_session(tx)?;
    check_id("challenge_id", challenge_id).map_err(invalid)?;
    let rules = rule_set(tx)?;
    if !rules
        .as_ref()
        .is_some_and(|r| r.challenges.iter().any(|c| c.id == challenge_id))
    {
        return Err(Error::InvalidInput {
            field: "challenge_id",
            reason: format!("the programme has no challenge {challenge_id}"),
        });
    }
    crate::activity::queue(
        tx,
        &Mutation::JoinChallenge {
            challenge_id: challenge_id.to_owned(),
            joined_at: crate::rfc3339_ms(now_ms()),
        },
        "join_challenge",
        now_ms(),
    )
}

/// The cached rule set, if the feed sent one.
pub(crate) fn rule_set(conn: &Connection) -> Result<Option<RuleSet>> {
    let data: Option<String> = conn
        .query_row("SELECT data FROM rule_set WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(StorageError::from)?;
    data.map(|d| serde_json::from_str(&d).map_err(|_| Error::Storage(StorageError::Corrupt)))
        .transpose()
}

/// Evaluate the challenges at `now_ms`, the device's clock (or the latest event's time when the
/// server's events are ahead of a slow device clock). `state` is the cached member state (its
/// joins and badges); the rule history is read from its own column.
pub(crate) fn view(
    conn: &Connection,
    state: Option<&MemberState>,
    time_zone: &str,
    now_ms: i64,
) -> Result<ChallengesView> {
    let Some(rules) = rule_set(conn)? else {
        return Ok(ChallengesView {
            challenges: Vec::new(),
            badges: Vec::new(),
            estimated: false,
        });
    };
    let mut events: Vec<RuleEvent> = crate::sync::local::rule_events(conn)?;
    let mut joined: BTreeMap<String, i64> = state
        .into_iter()
        .flat_map(|s| &s.joined_challenges)
        .map(|j| (j.challenge_id.clone(), j.joined_at_ms))
        .collect();
    // Unsent events by id (their completions are estimates), and whether anything is unsent.
    let mut unsent = rustc_hash::FxHashSet::default();
    let mut pending = false;
    let mut stmt = conn
        .prepare_cached(
            "SELECT body FROM outbox
             WHERE kind IN ('record_event', 'join_challenge') ORDER BY seq",
        )
        .map_err(StorageError::from)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(StorageError::from)?;
    for row in rows {
        let body = row.map_err(StorageError::from)?;
        match serde_json::from_str::<Mutation>(&body) {
            Ok(Mutation::RecordEvent { event }) => {
                if let Some(e) = RuleEvent::of_activity(&event) {
                    unsent.insert(e.event_id.clone());
                    events.push(e);
                    pending = true;
                }
            }
            Ok(Mutation::JoinChallenge {
                challenge_id,
                joined_at,
            }) => {
                if let Ok(at) = crate::catalog::parse_instant("joined_at", &joined_at) {
                    joined.entry(challenge_id).or_insert(at.as_millisecond());
                }
                pending = true;
            }
            // Written by this build's own queue: anything else is not the rules' business.
            _ => {}
        }
    }
    let now = events
        .iter()
        .map(|e| e.at_ms)
        .max()
        .map_or(now_ms, |m| m.max(now_ms));
    let evaluation = evaluate(&rules, time_zone, joined, &events, now).map_err(rules_error)?;
    let mut badges: Vec<Badge> = state.map(|s| s.badges.clone()).unwrap_or_default();
    let titles: BTreeMap<&str, &str> = rules
        .challenges
        .iter()
        .map(|c| (c.id.as_str(), c.title.as_str()))
        .collect();
    // Badges the unsent events earn (the server's list has the others).
    for c in &evaluation.completions {
        if unsent.contains(&c.event_id)
            && let Some(b) = c.badge(titles.get(c.challenge_id.as_str()).unwrap_or(&""))
        {
            badges.push(b);
        }
    }
    Ok(ChallengesView {
        challenges: evaluation.progress,
        badges,
        estimated: pending,
    })
}

fn rules_error(e: RulesError) -> Error {
    Error::InvalidInput {
        field: "rules",
        reason: e.to_string(),
    }
}

/// The challenges service: progress and badges (offline, estimated while events wait to be
/// sent), and joining an opt-in challenge.
#[derive(Debug)]
pub struct Challenges {
    db: std::sync::Arc<crate::db::Db>,
}

impl Challenges {
    pub(crate) fn new(db: std::sync::Arc<crate::db::Db>) -> Self {
        Challenges { db }
    }

    /// The programme's challenges with the member's progress (done/target, what is left,
    /// deadline, reward, badge art) and the badges earned, in one call. Offline: events not
    /// yet sent count at once (`estimated`); after sync the server's history replaces them.
    pub fn view(&self) -> Result<ChallengesView> {
        // Evaluation reads the whole history: the long lane.
        self.db.read_background(|c| {
            let state = crate::activity::cached_state(c)?.map(|m| m.state);
            let tz = crate::privacy::preferences(c)?.timezone;
            view(c, state.as_ref(), &tz, now_ms())
        })
    }

    /// Join an opt-in challenge: events from now on count towards it. Works offline.
    pub fn join(&self, challenge_id: &str) -> Result<()> {
        self.db.write(|tx| join(tx, challenge_id))
    }
}
