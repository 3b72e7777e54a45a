//! Push messages on the phone: the decision to show or suppress one with the same rules as
//! geofence notifications, and the device's push token. The payload and its parser are the
//! domain's ([`tessera_domain::push`]).

use serde::Serialize;

pub use tessera_domain::push::{
    MAX_PUSH_BYTES, PUSH_VERSION, PushError, PushKind, PushPayload, parse,
};

fn invalid(field: &str, reason: impl Into<String>) -> PushError {
    PushError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// What to do with a push message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum PushDecision {
    Show {
        notification: crate::nearby::OfferNotification,
    },
    Suppress {
        reason: crate::nearby::SuppressReason,
    },
    /// A silent message: run a sync.
    SyncNow,
}

/// Why a push message could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushHandlingError {
    #[error(transparent)]
    Message(#[from] PushError),
    #[error(transparent)]
    Storage(#[from] crate::db::StorageError),
    /// No member on this device (a message that arrived after a sign-out or an erasure).
    #[error("no member is enrolled on this device")]
    NotEnrolled,
}

impl From<crate::Error> for PushHandlingError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        match e {
            E::Storage(s) => PushHandlingError::Storage(s),
            E::InvalidInput { field, reason } => PushHandlingError::Message(invalid(field, reason)),
            E::NotEnrolled => PushHandlingError::NotEnrolled,
            // The card's failures: handling a message never reads or draws the card.
            e @ (E::NoProgram | E::CardNumber(_) | E::CardIncompatible { .. } | E::Barcode(_)) => {
                PushHandlingError::Message(invalid("push", e.to_string()))
            }
        }
    }
}

/// Register this device's push token (queued for the server unless it is the one it has).
pub(crate) fn set_token(
    tx: &rusqlite::Transaction<'_>,
    provider: crate::api::PushProvider,
    token: &str,
) -> crate::Result<bool> {
    let st = |e: rusqlite::Error| crate::Error::Storage(e.into());
    let device_id: String = tx
        .query_row("SELECT device_id FROM session WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => crate::Error::NotEnrolled,
            other => st(other),
        })?;
    let mutation = crate::api::Mutation::SetPushToken {
        device_id,
        provider,
        token: token.to_owned(),
    };
    mutation
        .validate()
        .map_err(|e| crate::Error::InvalidInput {
            field: e.field,
            reason: e.reason,
        })?;
    let stored = format!("{}:{token}", provider.as_str());
    let current: Option<String> = tx
        .query_row("SELECT push_token FROM sync_state WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(st)?;
    if current.as_deref() == Some(stored.as_str()) {
        return Ok(false);
    }
    tx.execute(
        "UPDATE sync_state SET push_token = ?1 WHERE id = 1",
        [&stored],
    )
    .map_err(st)?;
    let body = serde_json::to_string(&mutation).map_err(|e| crate::Error::InvalidInput {
        field: "push_token",
        reason: e.to_string(),
    })?;
    crate::outbox::enqueue(
        tx,
        "set_push_token",
        &body,
        jiff::Timestamp::now().as_millisecond(),
    )?;
    Ok(true)
}

/// Seen ids are kept this long (a push service redelivers within hours, not weeks).
const SEEN_FOR_MS: i64 = 30 * 86_400_000;

/// Show or suppress `payload`, received at `received_at_ms`, in the caller's transaction:
/// de-duplication, expiry, the offer cached, then consent, interests, quiet hours and caps.
pub(crate) fn decide(
    tx: &rusqlite::Transaction<'_>,
    gate: crate::consent::ConsentGate,
    payload: &PushPayload,
    received_at_ms: i64,
) -> crate::Result<PushDecision> {
    use crate::nearby::SuppressReason;
    let st = |e: rusqlite::Error| crate::Error::Storage(e.into());
    let fresh = tx
        .prepare_cached("INSERT OR IGNORE INTO push_seen (push_id, received_at) VALUES (?1, ?2)")
        .map_err(st)?
        .execute(rusqlite::params![payload.id, received_at_ms])
        .map_err(st)?;
    tx.execute(
        "DELETE FROM push_seen WHERE received_at < ?1",
        [received_at_ms - SEEN_FOR_MS],
    )
    .map_err(st)?;
    if fresh == 0 {
        return Ok(PushDecision::Suppress {
            reason: SuppressReason::Duplicate,
        });
    }
    let Some(offer) = &payload.offer else {
        return Ok(PushDecision::SyncNow);
    };
    let ms = |s: &str| {
        s.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .ok()
    };
    let expires = payload
        .expires_at
        .as_deref()
        .and_then(ms)
        .unwrap_or(i64::MIN);
    let valid_to = ms(&offer.valid_to).unwrap_or(i64::MIN);
    if received_at_ms > expires || received_at_ms > valid_to {
        return Ok(PushDecision::Suppress {
            reason: SuppressReason::Expired,
        });
    }
    // Cached like a catalog offer: a tap opens it offline.
    let data = serde_json::to_string(offer).map_err(|e| crate::Error::InvalidInput {
        field: "push.offer",
        reason: e.to_string(),
    })?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO offer (id, title, valid_from, valid_to, data)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(st)?
    .execute(rusqlite::params![
        offer.id,
        offer.title,
        offer.valid_from,
        offer.valid_to,
        data
    ])
    .map_err(st)?;
    let request = crate::preferences::NotificationRequest {
        purpose: crate::consent::Purpose::MarketingOffers,
        channel: crate::consent::Channel::Push,
        categories: offer.categories.clone(),
    };
    let at = jiff::Timestamp::from_millisecond(received_at_ms).map_err(|_| {
        crate::Error::InvalidInput {
            field: "received_at_ms",
            reason: "out of range".into(),
        }
    })?;
    let verdict = crate::privacy::claim_at(tx, gate, &request, at, None, Some(&offer.id))?;
    Ok(match crate::nearby::verdict_reason(verdict) {
        Some(reason) => PushDecision::Suppress { reason },
        None => {
            let mut n = crate::nearby::notification(offer, None);
            if let Some(t) = &payload.title {
                n.title = t.clone();
            }
            if let Some(b) = &payload.body {
                n.body = b.clone();
            }
            PushDecision::Show { notification: n }
        }
    })
}

/// The push service: the device's push token, and what to do with a message.
#[derive(Debug)]
pub struct Push {
    db: std::sync::Arc<crate::db::Db>,
    consent: std::sync::Arc<crate::privacy::Consent>,
    offers: std::sync::Arc<crate::nearby::Offers>,
}

impl Push {
    pub(crate) fn new(
        db: std::sync::Arc<crate::db::Db>,
        consent: std::sync::Arc<crate::privacy::Consent>,
        offers: std::sync::Arc<crate::nearby::Offers>,
    ) -> Self {
        Push {
            db,
            consent,
            offers,
        }
    }

    /// Register the token the OS gave for push messages; sent at the next sync when it changed.
    /// Returns whether it changed.
    pub fn set_token(
        &self,
        provider: crate::api::PushProvider,
        token: &str,
    ) -> crate::Result<bool> {
        self.db.write(|tx| set_token(tx, provider, token))
    }

    /// Decide about a push message (an FCM data message or an APNs `userInfo`, as JSON):
    /// show it, suppress it (duplicate, expired, consent, quiet hours, caps), or sync now. An
    /// offer it carries is cached so that a tap opens it offline.
    pub fn handle(
        &self,
        message: &str,
        received_at_ms: i64,
    ) -> Result<PushDecision, PushHandlingError> {
        crate::clock::checked_instant("received_at_ms", received_at_ms)?;
        let payload = parse(message)?;
        let gate = self.consent.gate();
        let decision = self
            .db
            .write(|tx| decide(tx, gate, &payload, received_at_ms))?;
        if payload.offer.is_some()
            && let Err(e) = self.offers.catalog_changed()
        {
            // The decision stands; the index is rebuilt on its next use.
            tracing::warn!(error = %e, "offer index not rebuilt after a pushed offer");
        }
        Ok(decision)
    }
}
