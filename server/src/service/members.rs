//! Members: enrolment, the state `GET /v1/me` shows, and the mutations a phone sends, each
//! applied once per idempotency key.

use tessera_domain::api::{EventData, MemberState, Mutation, MutationResponse};
use tessera_domain::rfc3339_ms as rfc3339;
use tessera_domain::rules::RuleEvent;

use super::{challenges, coupons, ledger, privacy, to_i64};
use crate::problem::answer_of;
use crate::storage::repo::RepoResult;
use crate::storage::{MutationOutcome, NewEnrolment, Refusal, Repo, StorageError, StoredAnswer};

/// A new member and device; a conflict if no programme is set up.
pub(crate) fn enrol(repo: &mut dyn Repo, enrolment: &NewEnrolment, now_ms: i64) -> RepoResult<()> {
    if !repo.program_exists()? {
        return Err(StorageError::Conflict("no programme is set up".into()));
    }
    repo.insert_member(enrolment, now_ms)?;
    let day = tessera_domain::api::day_of(now_ms);
    repo.add_kpis(&[
        (tessera_domain::api::metric::ENROLMENTS, None, day, 1),
        (tessera_domain::api::metric::MEMBERS, None, day, 1),
    ])?;
    super::webhooks::emit(
        repo,
        &enrolment.member_id,
        EventData::MemberEnrolled {
            card_number: enrolment.card.card_number.clone(),
        },
        now_ms,
    )
}

/// What `GET /v1/me` shows at `now_ms`.
pub(crate) fn state(repo: &mut dyn Repo, member_id: &str, now_ms: i64) -> RepoResult<MemberState> {
    let member = repo.member(member_id)?.ok_or(StorageError::NotFound)?;
    let wallet = coupons::wallet(repo, member_id, now_ms)?;
    let (points, tier_progress) = ledger::view(repo, member_id, now_ms)?;
    // The tier as reviewed now (a hold may have ended since the last write).
    let tier = tier_progress
        .as_ref()
        .map_or(member.tier, |p| p.tier.clone());
    let preferences = privacy::preferences(repo, member_id)?;
    let rules = challenges::view(repo, member_id, &preferences.timezone, now_ms)?;
    Ok(MemberState {
        member_id: member_id.to_owned(),
        card_number: member.card_number,
        holder_name: member.holder_name,
        tier,
        favourite_store_ids: repo.favourites(member_id)?,
        events_recorded: repo.activity_count(member_id)?,
        consents: repo.consent_records(member_id)?,
        preferences,
        segments: member.segments,
        wallet,
        points_balance: to_i64(points.balance),
        points,
        tier_progress,
        rule_events: rules.rule_events,
        joined_challenges: rules.joined,
        challenges: rules.challenges,
        challenges_as_of: rules.as_of,
        badges: rules.badges,
    })
}

/// Apply `f` once per `(owner, key)` in the caller's transaction: a key seen before replays its
/// stored answer (or is refused with another body); a new one runs `f` and stores its answer.
pub(crate) fn once_per_key(
    repo: &mut dyn Repo,
    owner: &str,
    key: &str,
    body_hash: &str,
    now_ms: i64,
    f: impl FnOnce(&mut dyn Repo) -> RepoResult<StoredAnswer>,
) -> RepoResult<MutationOutcome> {
    // The claim comes first and is the database's: the key's row, written before anything is
    // applied and completed with the answer in the same transaction. A concurrent request with
    // the same key, in this process or another on the same database, waits on that row until
    // the first commits (and replays its answer) or rolls back (and applies it itself); a crash
    // leaves no claim behind.
    if !repo.claim_key(owner, key, body_hash, now_ms)? {
        let (hash, stored) = repo.stored_key(owner, key)?;
        return Ok(if hash == body_hash {
            MutationOutcome::Replayed(stored)
        } else {
            MutationOutcome::KeyReused
        });
    }
    let stored = f(repo)?;
    repo.complete_key(owner, key, &stored)?;
    Ok(MutationOutcome::Applied(stored))
}

/// A member's mutation under its key.
pub(crate) fn apply_once(
    repo: &mut dyn Repo,
    member_id: &str,
    key: &str,
    body_hash: &str,
    mutation: &Mutation,
    now_ms: i64,
) -> RepoResult<MutationOutcome> {
    once_per_key(repo, member_id, key, body_hash, now_ms, |repo| {
        answer_of(apply(repo, member_id, mutation, now_ms)?)
    })
}

/// Apply one mutation inside the caller's transaction: the member's answer, or why not.
pub(crate) fn apply(
    repo: &mut dyn Repo,
    member_id: &str,
    mutation: &Mutation,
    now_ms: i64,
) -> RepoResult<Result<MutationResponse, Refusal>> {
    let unknown_store = |id: &str| {
        Ok(Err(Refusal::UnknownStore {
            store_id: id.to_owned(),
        }))
    };
    match mutation {
        Mutation::RecordEvent { event } => {
            if let Some(s) = &event.store_id
                && !repo.store_exists(s)?
            {
                return unknown_store(s);
            }
            repo.insert_activity(member_id, event, now_ms)?;
            challenges::settle(
                repo,
                member_id,
                |_| RuleEvent::of_activity(event).into_iter().collect(),
                now_ms,
            )?;
        }
        Mutation::SetFavouriteStore {
            store_id,
            favourite,
        } => {
            if *favourite && !repo.store_exists(store_id)? {
                return unknown_store(store_id);
            }
            repo.set_favourite(member_id, store_id, *favourite)?;
        }
        Mutation::RecordConsent { record } => {
            if let Err(refusal) = privacy::record_consent(repo, record, now_ms)? {
                return Ok(Err(refusal));
            }
        }
        Mutation::SetPreferences { changes } => {
            privacy::set_preferences(repo, member_id, changes)?;
        }
        Mutation::TrackEvent { event } => {
            if let Err(refusal) = privacy::track(repo, member_id, event, now_ms)? {
                return Ok(Err(refusal));
            }
        }
        Mutation::ClipOffer { offer_id } => {
            if let Err(refusal) = coupons::clip(repo, member_id, offer_id, now_ms)? {
                return Ok(Err(refusal));
            }
        }
        Mutation::BuyReward { offer_id } => {
            if let Err(refusal) = ledger::buy_reward(repo, member_id, offer_id, now_ms)? {
                return Ok(Err(refusal));
            }
        }
        Mutation::JoinChallenge {
            challenge_id,
            joined_at,
        } => {
            // The phone's time, back to the offline window at most, never after the server's.
            let at = tessera_domain::catalog::parse_instant("joined_at", joined_at)
                .map_or(now_ms, |t| t.as_millisecond())
                .clamp(now_ms - tessera_domain::api::OFFLINE_WINDOW_MS, now_ms);
            if let Err(refusal) = challenges::join(repo, member_id, challenge_id, at)? {
                return Ok(Err(refusal));
            }
            challenges::settle(repo, member_id, |_| Vec::new(), now_ms)?;
        }
        Mutation::SetPushToken {
            device_id,
            provider,
            token,
        } => repo.set_push_token(member_id, device_id, *provider, token, now_ms)?,
    }
    // Analytics do not change what GET /v1/me shows: no new member version for them.
    let changes_state = !matches!(
        mutation,
        Mutation::TrackEvent { .. } | Mutation::SetPushToken { .. }
    );
    let sequence = repo
        .count_mutation(member_id, changes_state)?
        .ok_or(StorageError::NotFound)?;
    Ok(Ok(MutationResponse {
        applied_at: rfc3339(now_ms),
        sequence,
    }))
}
