//! Members in the embedded database: enrolment, tokens, the member's state, mutations under
//! their idempotency keys.

use rusqlite::{Connection, OptionalExtension, params};
use tessera_domain::api::{ActivityEvent, MemberState, Mutation, MutationResponse, Problem, codes};
use tessera_domain::rules::RuleEventKind;

use super::{
    DeviceAuth, MutationOutcome, NewEnrolment, StorageError, StoredAnswer, TokenHashes, TokenLookup,
};
use tessera_domain::rfc3339_ms as rfc3339;

use super::*;

impl SqliteStorage {
    pub(super) async fn enrol(&self, e: NewEnrolment) -> Result<(), StorageError> {
        self.write(move |tx| {
            let program: Option<Option<String>> = tx
                .query_row(
                    "SELECT data FROM catalog_entity WHERE kind = 'program'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if program.flatten().is_none() {
                return Err(StorageError::Conflict("no programme is set up".into()));
            }
            let now = jiff::Timestamp::now().as_millisecond();
            tx.execute(
                "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    e.member_id,
                    e.card.card_number,
                    e.card.holder_name,
                    e.card.member_since,
                    e.card.tier_label.clone().unwrap_or_default(),
                    now
                ],
            )?;
            tx.execute(
                "INSERT INTO device (id, member_id, platform, app_version, created_at,
                    access_hash, access_expires, refresh_hash, refresh_expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    e.device_id,
                    e.member_id,
                    e.platform,
                    e.app_version,
                    now,
                    e.tokens.access_hash,
                    e.tokens.access_expires_ms,
                    e.tokens.refresh_hash,
                    e.tokens.refresh_expires_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub(super) async fn lookup_access(
        &self,
        hash: String,
        now_ms: i64,
    ) -> Result<TokenLookup, StorageError> {
        self.read(move |c| {
            let row: Option<(String, String, i64)> = c
                .prepare_cached(
                    "SELECT member_id, id, access_expires FROM device WHERE access_hash = ?1",
                )?
                .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            Ok(match row {
                None => TokenLookup::Unknown,
                Some((_, _, exp)) if exp <= now_ms => TokenLookup::Expired,
                Some((member_id, device_id, _)) => TokenLookup::Valid(DeviceAuth {
                    member_id,
                    device_id,
                }),
            })
        })
        .await
    }

    pub(super) async fn refresh(
        &self,
        refresh_hash: String,
        now_ms: i64,
        new: TokenHashes,
    ) -> Result<Option<DeviceAuth>, StorageError> {
        self.write(move |tx| {
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT member_id, id FROM device
                     WHERE refresh_hash = ?1 AND refresh_expires > ?2",
                    params![refresh_hash, now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((member_id, device_id)) = row else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE device SET access_hash = ?1, access_expires = ?2,
                    refresh_hash = ?3, refresh_expires = ?4 WHERE id = ?5",
                params![
                    new.access_hash,
                    new.access_expires_ms,
                    new.refresh_hash,
                    new.refresh_expires_ms,
                    device_id
                ],
            )?;
            Ok(Some(DeviceAuth {
                member_id,
                device_id,
            }))
        })
        .await
    }

    pub(super) async fn member_state(
        &self,
        member_id: String,
    ) -> Result<MemberState, StorageError> {
        self.read(move |c| {
            let (card_number, holder_name, tier, segments): (String, String, String, String) = c
                .query_row(
                    "SELECT card_number, holder_name, tier, segments FROM member WHERE id = ?1",
                    [&member_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?
                .ok_or(StorageError::NotFound)?;
            let segments: Vec<String> = serde_json::from_str(&segments)
                .map_err(|e| StorageError::Backend(format!("member segments: {e}")))?;
            let favourite_store_ids = c
                .prepare_cached(
                    "SELECT store_id FROM favourite_store WHERE member_id = ?1 ORDER BY store_id",
                )?
                .query_map([&member_id], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            let events_recorded: i64 = c.query_row(
                "SELECT count(*) FROM event WHERE member_id = ?1",
                [&member_id],
                |r| r.get(0),
            )?;
            let consents = crate::storage::sqlite::privacy::consent_records(c, &member_id)?;
            let now = jiff::Timestamp::now().as_millisecond();
            let wallet = crate::storage::sqlite::coupons::wallet(c, &member_id, now)?;
            let (points, tier_progress) =
                crate::storage::sqlite::loyalty::view(c, &member_id, now)?;
            // The tier as reviewed now (a hold may have ended since the last write).
            let tier = tier_progress.as_ref().map_or(tier, |p| p.tier.clone());
            let preferences = crate::storage::sqlite::privacy::preferences(c, &member_id)?;
            let rules =
                crate::storage::sqlite::rules::view(c, &member_id, &preferences.timezone, now)?;
            Ok(MemberState {
                member_id,
                card_number,
                holder_name,
                tier,
                favourite_store_ids,
                events_recorded: events_recorded as u64,
                consents,
                preferences,
                segments,
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
        })
        .await
    }

    pub(super) async fn apply_mutation(
        &self,
        member_id: String,
        key: String,
        body_hash: String,
        mutation: Mutation,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError> {
        self.write(move |tx| {
            once_per_key(tx, &member_id, &key, &body_hash, now_ms, |tx| match apply(
                tx, &member_id, &mutation, now_ms,
            )? {
                Ok(response) => answer(200, &response),
                Err(problem) => answer(problem.status, &problem),
            })
        })
        .await
    }

    pub(super) async fn member_version(&self, member_id: String) -> Result<i64, StorageError> {
        self.read(move |c| {
            c.prepare_cached("SELECT version FROM member WHERE id = ?1")?
                .query_row([member_id], |r| r.get(0))
                .optional()?
                .ok_or(StorageError::NotFound)
        })
        .await
    }

    pub(super) async fn purge_keys(&self, before_ms: i64) -> Result<u64, StorageError> {
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM idempotency_key WHERE created_at < ?1",
                [before_ms],
            )? as u64)
        })
        .await
    }

    pub(super) async fn event_ids(
        &self,
        member_id: String,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT event_id, count(*) FROM event WHERE member_id = ?1
                 GROUP BY event_id ORDER BY event_id",
            )?;
            let rows = stmt
                .query_map([member_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

/// Apply `f` once per `(owner, key)` in the caller's transaction: a key seen before replays its
/// stored answer (or is refused with another body); a new one runs `f` and stores its answer.
pub(super) fn once_per_key(
    tx: &rusqlite::Transaction<'_>,
    owner: &str,
    key: &str,
    body_hash: &str,
    now_ms: i64,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<StoredAnswer, StorageError>,
) -> Result<MutationOutcome, StorageError> {
    // The claim comes first and is the database's: the key's row, written before anything is
    // applied and completed with the answer in the same transaction. A concurrent request with
    // the same key, in this process or another on the same database, waits on that row until
    // the first commits (and replays its answer) or rolls back (and applies it itself); a crash
    // leaves no claim behind.
    let claimed = tx
        .prepare_cached(
            "INSERT INTO idempotency_key (member_id, key, body_hash, status, response, created_at)
             VALUES (?1, ?2, ?3, 0, '', ?4) ON CONFLICT (member_id, key) DO NOTHING",
        )?
        .execute(params![owner, key, body_hash, now_ms])?
        == 1;
    if !claimed {
        let (hash, status, body): (String, u16, String) = tx
            .prepare_cached(
                "SELECT body_hash, status, response FROM idempotency_key
                 WHERE member_id = ?1 AND key = ?2",
            )?
            .query_row(params![owner, key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        return Ok(if hash == body_hash {
            MutationOutcome::Replayed(StoredAnswer { status, body })
        } else {
            MutationOutcome::KeyReused
        });
    }
    let stored = f(tx)?;
    tx.prepare_cached(
        "UPDATE idempotency_key SET status = ?3, response = ?4 WHERE member_id = ?1 AND key = ?2",
    )?
    .execute(params![owner, key, stored.status, stored.body])?;
    Ok(MutationOutcome::Applied(stored))
}

pub(super) fn answer<T: serde::Serialize>(
    status: u16,
    body: &T,
) -> Result<StoredAnswer, StorageError> {
    Ok(StoredAnswer {
        status,
        body: json(body)?,
    })
}

pub(super) fn member_exists(c: &Connection, id: &str) -> Result<bool, StorageError> {
    Ok(c.prepare_cached("SELECT 1 FROM member WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn store_exists(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<bool, StorageError> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM catalog_entity WHERE kind = 'store' AND id = ?1 AND data IS NOT NULL",
        )?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Apply one mutation inside the caller's transaction: the member's answer, or a problem that
/// is stored as the key's answer.
pub(super) fn apply(
    tx: &rusqlite::Transaction<'_>,
    member_id: &str,
    mutation: &Mutation,
    now_ms: i64,
) -> Result<Result<MutationResponse, Problem>, StorageError> {
    let unknown_store = |id: &str| {
        Problem::new(
            422,
            codes::UNKNOWN_STORE,
            "Unknown store",
            Some(format!("there is no store {id}")),
        )
    };
    match mutation {
        Mutation::RecordEvent { event } => {
            let ActivityEvent {
                event_id,
                kind,
                occurred_at,
                store_id,
                attributes,
            } = event;
            if let Some(s) = store_id
                && !store_exists(tx, s)?
            {
                return Ok(Err(unknown_store(s)));
            }
            tx.prepare_cached(
                "INSERT INTO event (member_id, event_id, kind, occurred_at, store_id, attributes,
                    received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                member_id,
                event_id,
                kind.as_str(),
                occurred_at,
                store_id,
                json(attributes)?,
                now_ms
            ])?;
            crate::storage::sqlite::rules::settle(
                tx,
                member_id,
                &[RuleEventKind::of_activity(*kind)],
                now_ms,
            )?;
        }
        Mutation::SetFavouriteStore {
            store_id,
            favourite,
        } => {
            if *favourite {
                if !store_exists(tx, store_id)? {
                    return Ok(Err(unknown_store(store_id)));
                }
                tx.execute(
                    "INSERT OR IGNORE INTO favourite_store (member_id, store_id) VALUES (?1, ?2)",
                    params![member_id, store_id],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM favourite_store WHERE member_id = ?1 AND store_id = ?2",
                    params![member_id, store_id],
                )?;
            }
        }
        Mutation::RecordConsent { record } => {
            if let Err(problem) =
                crate::storage::sqlite::privacy::insert_consent(tx, record, now_ms)?
            {
                return Ok(Err(problem.into()));
            }
        }
        Mutation::SetPreferences { changes } => {
            crate::storage::sqlite::privacy::set_preferences(tx, member_id, changes)?;
        }
        Mutation::TrackEvent { event } => {
            if let Err(problem) =
                crate::storage::sqlite::privacy::track(tx, member_id, event, now_ms)?
            {
                return Ok(Err(problem));
            }
        }
        Mutation::ClipOffer { offer_id } => {
            if let Err(problem) =
                crate::storage::sqlite::coupons::clip(tx, member_id, offer_id, now_ms)?
            {
                return Ok(Err(problem));
            }
        }
        Mutation::BuyReward { offer_id } => {
            if let Err(problem) =
                crate::storage::sqlite::loyalty::buy_reward(tx, member_id, offer_id, now_ms)?
            {
                return Ok(Err(problem));
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
            if let Err(problem) =
                crate::storage::sqlite::rules::join(tx, member_id, challenge_id, at)?
            {
                return Ok(Err(problem));
            }
            crate::storage::sqlite::rules::settle(tx, member_id, &[], now_ms)?;
        }
        Mutation::SetPushToken {
            device_id,
            provider,
            token,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO push_token (device_id, member_id, provider, token, updated_at)
                 SELECT id, member_id, ?3, ?4, ?5 FROM device WHERE id = ?1 AND member_id = ?2",
            )?
            .execute(params![device_id, member_id, provider.as_str(), token, now_ms])?;
        }
    }
    // Analytics do not change what GET /v1/me shows: no new member version for them.
    let changes_state = !matches!(
        mutation,
        Mutation::TrackEvent { .. } | Mutation::SetPushToken { .. }
    );
    let sequence: i64 = tx
        .prepare_cached(
            "UPDATE member SET mutations = mutations + 1, version = version + ?2 WHERE id = ?1
             RETURNING mutations",
        )?
        .query_row(params![member_id, i64::from(changes_state)], |r| r.get(0))
        .optional()?
        .ok_or(StorageError::NotFound)?;
    Ok(Ok(MutationResponse {
        applied_at: rfc3339(now_ms),
        sequence: sequence as u64,
    }))
}
