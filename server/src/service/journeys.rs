//! Journeys (issue #19; docs/journeys.md): the job that finds who enters each journey, and
//! sends each due entry once, after the domain's [`tessera_domain::journeys::decide`] (the
//! member's consent, preferences, quiet hours and caps, the cooldown and the programme's cap).
//! A batch of entries is settled in one transaction before its pushes leave (sent, waiting or
//! given up), so that a process stopping mid-batch sends nothing twice.

use async_trait::async_trait;
use tessera_domain::journeys::{
    EntryFacts, Journey, JourneyCounts, JourneyDecision, JourneyKind, JourneyReport,
    JourneySettings, Reason, Vars, birthdays_on, occurrence, render,
};

use crate::push::OutgoingPush;
use crate::storage::repo::{EntryOutcome, JourneyEntry, JourneyTrigger, RepoResult};
use crate::storage::{Repo, Storage, StorageError, read, write};

/// The job kind (its subject: the hour, or `now-<ms>` for a run asked for).
pub const JOURNEYS_JOB: &str = "journeys";
/// Entries settled per transaction.
pub const JOURNEY_BATCH: u32 = 200;
/// The welcome is for members enrolled in the week before; a lapsed member's entry waits at
/// most a week.
const WEEK_MS: i64 = 7 * DAY_MS;
const DAY_MS: i64 = 86_400_000;

/// One entry's pushes, one per device.
#[derive(Debug, Clone)]
pub struct JourneySend {
    pub entry: JourneyEntry,
    pub pushes: Vec<OutgoingPush>,
}

#[async_trait]
pub trait JourneyServices {
    /// The settings in force (none on until the operator sets them).
    async fn journey_settings(&self) -> Result<JourneySettings, StorageError>;
    async fn put_journey_settings(
        &self,
        settings: JourneySettings,
        now_ms: i64,
    ) -> Result<(), StorageError>;
    /// Entries made since `since_ms`, per journey.
    async fn journey_report(&self, since_ms: i64) -> Result<JourneyReport, StorageError>;
    /// Enter every member each journey on finds at `now_ms` (one transaction per journey).
    async fn enter_journeys(&self, now_ms: i64) -> Result<u64, StorageError>;
    /// Settle up to `limit` due entries for the worker holding job `job_id`: those to send,
    /// with their pushes. `None`: the job is no longer the worker's.
    async fn journey_batch(
        &self,
        job_id: i64,
        owner: String,
        lease_ms: i64,
        limit: u32,
        now_ms: i64,
    ) -> Result<Option<Vec<JourneySend>>, StorageError>;
    /// What the push services answered: refusals per entry, and the pushes delivered.
    async fn record_journey_pushes(
        &self,
        failures: Vec<(JourneyEntry, u32)>,
        delivered: u64,
        now_ms: i64,
    ) -> Result<(), StorageError>;
}

#[async_trait]
impl<S: Storage + ?Sized> JourneyServices for S {
    async fn journey_settings(&self) -> Result<JourneySettings, StorageError> {
        read(self, |repo| {
            Ok(repo.journey_settings()?.unwrap_or_default())
        })
        .await
    }

    async fn put_journey_settings(
        &self,
        settings: JourneySettings,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| {
            repo.put_journey_settings(&settings, now_ms)
        })
        .await
    }

    async fn journey_report(&self, since_ms: i64) -> Result<JourneyReport, StorageError> {
        read(self, move |repo| report(repo, since_ms)).await
    }

    async fn enter_journeys(&self, now_ms: i64) -> Result<u64, StorageError> {
        let (settings, rules) = read(self, |repo| {
            Ok((
                repo.journey_settings()?.unwrap_or_default(),
                repo.loyalty_rules()?,
            ))
        })
        .await?;
        let mut entered = 0;
        for journey in settings.journeys.iter().filter(|j| j.enabled) {
            let Some((trigger, due, expires)) = trigger(journey, &rules, now_ms) else {
                continue;
            };
            let name = journey.kind.as_str();
            let occ = occurrence(journey.kind, now_ms, settings.cooldown_days);
            entered += write(self, move |repo| {
                repo.enter_journey(name, &occ, &trigger, due, expires, now_ms)
            })
            .await?;
        }
        Ok(entered)
    }

    async fn journey_batch(
        &self,
        job_id: i64,
        owner: String,
        lease_ms: i64,
        limit: u32,
        now_ms: i64,
    ) -> Result<Option<Vec<JourneySend>>, StorageError> {
        write(self, move |repo| {
            if !repo.renew_job(job_id, &owner, now_ms, lease_ms)? {
                return Ok(None);
            }
            batch(repo, limit, now_ms).map(Some)
        })
        .await
    }

    async fn record_journey_pushes(
        &self,
        failures: Vec<(JourneyEntry, u32)>,
        delivered: u64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| {
            for (entry, failed) in &failures {
                repo.journey_push_failures(entry, *failed)?;
            }
            super::kpis::count(
                repo,
                tessera_domain::api::metric::PUSHES_SENT,
                None,
                now_ms,
                delivered as i64,
            )
        })
        .await
    }
}

/// Who `journey` finds at `now_ms`, when their entry is due and when it ends; `None`: no one
/// (a tier journey in a programme of one tier).
fn trigger(
    journey: &Journey,
    rules: &tessera_domain::loyalty::LoyaltyRules,
    now_ms: i64,
) -> Option<(JourneyTrigger, i64, i64)> {
    let ahead = i64::from(journey.days_before) * DAY_MS;
    Some(match journey.kind {
        JourneyKind::Welcome => (
            JourneyTrigger::Enrolled {
                after_ms: now_ms - WEEK_MS,
                delay_ms: i64::from(journey.delay_minutes) * 60_000,
                within_ms: WEEK_MS,
            },
            now_ms,
            now_ms + WEEK_MS,
        ),
        JourneyKind::Birthday => {
            // Until the end of the (UTC) birthday.
            let day_end = (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS + ahead;
            (
                JourneyTrigger::Birthday {
                    days: birthdays_on(now_ms, journey.days_before),
                },
                now_ms,
                day_end,
            )
        }
        JourneyKind::PointsExpiring => (
            JourneyTrigger::Expiring {
                from_ms: now_ms,
                to_ms: now_ms + ahead,
            },
            now_ms,
            now_ms + ahead,
        ),
        JourneyKind::TierDropping => {
            let base = rules.tiers.first()?.name.clone();
            if rules.tiers.len() < 2 {
                return None;
            }
            (
                JourneyTrigger::TierReview {
                    base,
                    hold_ms: i64::from(rules.tier_hold_days) * DAY_MS,
                    from_ms: now_ms,
                    to_ms: now_ms + ahead,
                },
                now_ms,
                now_ms + ahead,
            )
        }
        JourneyKind::Lapsed => (
            JourneyTrigger::Segment(journey.segment().to_owned()),
            now_ms,
            now_ms + WEEK_MS,
        ),
    })
}

fn day(ms: i64) -> String {
    tessera_domain::rfc3339_ms(ms)
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

/// Settle up to `limit` due entries: the pushes of those to send.
fn batch(repo: &mut dyn Repo, limit: u32, now_ms: i64) -> RepoResult<Vec<JourneySend>> {
    let settings = repo.journey_settings()?.unwrap_or_default();
    let look_back = i64::from(settings.cooldown_days.max(7)) * DAY_MS;
    let mut sends = vec![];
    for entry in repo.due_journey_entries(now_ms, limit)? {
        let kind = JourneyKind::parse(&entry.journey);
        let journey = kind.and_then(|k| settings.journey(k)).cloned();
        let Some(member) = repo.member(&entry.member_id)? else {
            continue; // erased: its entries went with it
        };
        let (points, progress) = super::ledger::view(repo, &entry.member_id, now_ms)?;
        let mut vars = Vars {
            name: member.holder_name.clone(),
            points: points.balance,
            tier: member.tier.clone(),
            ..Vars::default()
        };
        let mut still_holds = true;
        if let Some(j) = &journey {
            let ahead = now_ms + i64::from(j.days_before) * DAY_MS;
            match j.kind {
                JourneyKind::PointsExpiring => {
                    vars.expiring_points = repo.expiring(&entry.member_id, now_ms, ahead + 1)?;
                    if let Some(first) = repo.next_expiry(&entry.member_id, now_ms)? {
                        vars.expires_on = day(first);
                    }
                    still_holds = vars.expiring_points > 0;
                }
                JourneyKind::TierDropping => {
                    let review = progress
                        .as_ref()
                        .and_then(|p| p.review_at.parse::<jiff::Timestamp>().ok())
                        .map(|t| t.as_millisecond());
                    let keep = progress.as_ref().map_or(0, |p| p.points_to_keep);
                    vars.points_to_keep = keep;
                    vars.review_on = review.map(day).unwrap_or_default();
                    still_holds = keep > 0 && review.is_some_and(|r| r > now_ms && r <= ahead);
                }
                JourneyKind::Lapsed => {
                    still_holds =
                        repo.member_in_segments(&entry.member_id, &[j.segment().to_owned()])?;
                }
                JourneyKind::Welcome | JourneyKind::Birthday => {}
            }
        }
        let offer = match &journey {
            Some(j) => repo.offer(&j.offer_id)?,
            None => None,
        };
        let offer_valid = offer.as_ref().is_some_and(|o| {
            let at = |s: &str| s.parse::<jiff::Timestamp>().map(|t| t.as_millisecond());
            matches!((at(&o.valid_from), at(&o.valid_to)), (Ok(f), Ok(t)) if f <= now_ms && now_ms < t)
        });
        let sent = repo
            .journey_sends(&entry.member_id, now_ms - look_back)?
            .into_iter()
            .filter_map(|(k, at)| JourneyKind::parse(&k).map(|k| (k, at)))
            .collect();
        let facts = EntryFacts {
            expires_ms: entry.expires_ms,
            still_holds,
            offer_valid,
            categories: offer
                .as_ref()
                .map(|o| o.categories.clone())
                .unwrap_or_default(),
            sent,
        };
        let gate = super::privacy::gate(repo, &entry.member_id)?;
        let prefs = super::privacy::preferences(repo, &entry.member_id)?;
        let decision = tessera_domain::journeys::decide(
            journey.as_ref(),
            &settings,
            &facts,
            gate,
            &prefs,
            now_ms,
        );
        let skip = |repo: &mut dyn Repo, reason: Reason| {
            repo.settle_journey_entry(
                &entry,
                EntryOutcome::Skipped {
                    reason: reason.as_str(),
                },
                now_ms,
            )
        };
        match decision {
            JourneyDecision::Skip { reason } => skip(repo, reason)?,
            JourneyDecision::Defer { until_ms, reason } => repo.settle_journey_entry(
                &entry,
                EntryOutcome::Waiting {
                    until_ms,
                    reason: reason.as_str(),
                },
                now_ms,
            )?,
            JourneyDecision::Send => {
                let (Some(j), Some(offer)) = (&journey, &offer) else {
                    skip(repo, Reason::OfferUnavailable)?;
                    continue;
                };
                let devices = repo.push_tokens(&entry.member_id)?;
                if devices.is_empty() {
                    skip(repo, Reason::NoDevice)?;
                    continue;
                }
                let title = render(&j.title, &vars);
                let body = render(&j.body, &vars);
                let mut pushes = Vec::with_capacity(devices.len());
                for (device_id, provider, token) in devices {
                    let payload =
                        crate::push::journey_payload(&entry, offer, &title, &body, &device_id);
                    if payload.validate().is_err() {
                        continue;
                    }
                    pushes.push(OutgoingPush {
                        provider,
                        device_token: token,
                        expires_at_s: offer
                            .valid_to
                            .parse::<jiff::Timestamp>()
                            .map(|t| t.as_second())
                            .unwrap_or(0),
                        payload,
                    });
                }
                if pushes.is_empty() {
                    skip(repo, Reason::Undeliverable)?;
                    continue;
                }
                repo.settle_journey_entry(
                    &entry,
                    EntryOutcome::Sent {
                        pushes: pushes.len() as u32,
                    },
                    now_ms,
                )?;
                sends.push(JourneySend { entry, pushes });
            }
        }
    }
    Ok(sends)
}

/// Entries made since `since_ms`, per journey (every kind, set or not).
fn report(repo: &mut dyn Repo, since_ms: i64) -> RepoResult<JourneyReport> {
    let settings = repo.journey_settings()?.unwrap_or_default();
    let mut journeys: Vec<JourneyCounts> = JourneyKind::ALL
        .iter()
        .map(|k| JourneyCounts {
            kind: k.as_str().to_owned(),
            enabled: settings.journey(*k).is_some_and(|j| j.enabled),
            ..JourneyCounts::default()
        })
        .collect();
    for row in repo.journey_counts(since_ms)? {
        let Some(c) = journeys.iter_mut().find(|c| c.kind == row.journey) else {
            continue;
        };
        c.entered += row.entries;
        match row.state.as_str() {
            "sent" => c.sent += row.entries,
            "due" => c.waiting += row.entries,
            _ => c.skipped += row.entries,
        }
        if let Some(reason) = row.reason {
            *c.reasons.entry(reason).or_default() += row.entries;
        }
        c.pushes += row.pushes;
        c.failed_pushes += row.failed;
    }
    Ok(JourneyReport {
        since: tessera_domain::rfc3339_ms(since_ms),
        journeys,
    })
}
