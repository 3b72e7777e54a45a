//! Webhooks (issue #19): the programme's events written to an outbox in the transaction that
//! made them ([`emit`]), the operator's endpoints, and what the dispatcher
//! (`webhooks.rs` at the crate's root) claims and records. See docs/adr/0027.

use async_trait::async_trait;
use base64::Engine;
use tessera_domain::api::{
    DeliveryState, EventData, EventType, ParsedUrl, WebhookDelivery, WebhookEndpoint,
    WebhookEndpointSpec, WebhookEvent, WebhookSpecError,
};
use tessera_domain::rfc3339_ms as rfc3339;

use super::to_u64;
use crate::storage::repo::{
    ClaimedDelivery, DeliveryOutcome, DeliveryRow, EndpointRow, EventRow, NewEvent, RepoResult,
};
use crate::storage::{Repo, Storage, StorageError, read, write};

/// Tell the endpoints receiving its type that `data` happened to the member: written with the
/// change, so the event exists if and only if the change committed.
pub(crate) fn emit(
    repo: &mut dyn Repo,
    member_id: &str,
    data: EventData,
    now_ms: i64,
) -> RepoResult<()> {
    let json = serde_json::to_string(&data).map_err(StorageError::backend)?;
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    repo.emit_event(&NewEvent {
        id: &id,
        member_id,
        event_type: data.event_type().as_str(),
        data: &json,
        now_ms,
    })?;
    Ok(())
}

/// The event as delivered (the body the receiver verifies).
pub fn delivered_event(e: &EventRow) -> Result<WebhookEvent, StorageError> {
    Ok(WebhookEvent {
        id: e.id.clone(),
        timestamp: rfc3339(e.created_ms),
        sequence: to_u64(e.seq),
        member_id: e.member_id.clone(),
        data: serde_json::from_str(&e.data)
            .map_err(|err| StorageError::Backend(format!("stored event {}: {err}", e.id)))?,
    })
}

/// Check an endpoint as the server will call it.
pub fn check_endpoint(spec: &WebhookEndpointSpec) -> Result<(), WebhookSpecError> {
    let url = reqwest::Url::parse(&spec.url).map_err(|_| WebhookSpecError::NotHttp)?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(WebhookSpecError::NotHttp),
    };
    spec.validate(&ParsedUrl {
        scheme: url.scheme(),
        loopback,
        has_credentials: !url.username().is_empty() || url.password().is_some(),
    })
}

/// A new signing secret: `whsec_` and 32 random bytes in base64 (the Standard Webhooks form).
pub fn new_secret() -> Result<String, StorageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(StorageError::backend)?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn shown(row: EndpointRow, secret: bool) -> WebhookEndpoint {
    WebhookEndpoint {
        events: row
            .events
            .iter()
            .filter_map(|e| EventType::parse(e))
            .collect(),
        secret: secret.then_some(row.secret),
        id: row.id,
        url: row.url,
        description: row.description,
        paused: row.paused,
        pending: row.pending,
        dead: row.dead,
    }
}

fn row_of(id: String, spec: WebhookEndpointSpec, secret: String, now_ms: i64) -> EndpointRow {
    EndpointRow {
        id,
        url: spec.url,
        secret,
        events: spec.events.iter().map(|e| e.as_str().to_owned()).collect(),
        description: spec.description,
        paused: spec.paused,
        created_ms: now_ms,
        pending: 0,
        dead: 0,
    }
}

fn delivery(row: DeliveryRow) -> Result<WebhookDelivery, StorageError> {
    // Waiting behind the member's earlier delivery is pending, as the API says.
    let state = match row.state.as_str() {
        "waiting" => Some(DeliveryState::Pending),
        other => DeliveryState::parse(other),
    }
    .ok_or_else(|| StorageError::Backend(format!("delivery state {}", row.state)))?;
    Ok(WebhookDelivery {
        event: delivered_event(&row.event)?,
        state,
        attempts: row.attempts,
        next_attempt_at: (state == DeliveryState::Pending).then(|| rfc3339(row.due_ms)),
        last_status: row.last_status,
        last_error: row.last_error,
        delivered_at: row.delivered_ms.map(rfc3339),
    })
}

/// The operations on webhooks, on any [`Storage`].
#[async_trait]
pub trait WebhookServices {
    /// A new endpoint with a new secret (shown in the answer, and never again); `None` if the id
    /// is taken.
    async fn create_endpoint(
        &self,
        id: String,
        spec: WebhookEndpointSpec,
        now_ms: i64,
    ) -> Result<Option<WebhookEndpoint>, StorageError>;
    /// Change an endpoint (its secret stays); `None` if there is no such endpoint.
    async fn update_endpoint(
        &self,
        id: String,
        spec: WebhookEndpointSpec,
    ) -> Result<Option<WebhookEndpoint>, StorageError>;
    /// Delete an endpoint and its queue: false if there was none.
    async fn delete_endpoint(&self, id: String) -> Result<bool, StorageError>;
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StorageError>;
    async fn endpoint(&self, id: String) -> Result<Option<WebhookEndpoint>, StorageError>;
    /// A page of the endpoint's deliveries; `None` if there is no such endpoint.
    async fn deliveries(
        &self,
        endpoint_id: String,
        state: Option<DeliveryState>,
        after: u64,
        limit: u32,
    ) -> Result<Option<Vec<WebhookDelivery>>, StorageError>;
    /// Queue deliveries again (these events, or every dead one); `None` if there is no such
    /// endpoint.
    async fn replay(
        &self,
        endpoint_id: String,
        event_ids: Option<Vec<String>>,
        now_ms: i64,
    ) -> Result<Option<u64>, StorageError>;
    /// Claim due deliveries for a dispatcher.
    async fn claim_deliveries(
        &self,
        owner: String,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StorageError>;
    /// Record a dispatcher's attempts.
    async fn record_outcomes(
        &self,
        owner: String,
        outcomes: Vec<DeliveryOutcome>,
        now_ms: i64,
    ) -> Result<u64, StorageError>;
    /// The endpoint answers again: its retries are due now.
    async fn hurry_endpoint(&self, endpoint_id: String, now_ms: i64) -> Result<u64, StorageError>;
    /// Forget old deliveries and the events left with none.
    async fn purge_webhooks(
        &self,
        delivered_before_ms: i64,
        dead_before_ms: i64,
    ) -> Result<u64, StorageError>;
}

#[async_trait]
impl<S: Storage + ?Sized> WebhookServices for S {
    async fn create_endpoint(
        &self,
        id: String,
        spec: WebhookEndpointSpec,
        now_ms: i64,
    ) -> Result<Option<WebhookEndpoint>, StorageError> {
        let row = row_of(id, spec, new_secret()?, now_ms);
        write(self, move |repo| {
            Ok(repo
                .insert_endpoint(&row)?
                .then(|| shown(row.clone(), true)))
        })
        .await
    }

    async fn update_endpoint(
        &self,
        id: String,
        spec: WebhookEndpointSpec,
    ) -> Result<Option<WebhookEndpoint>, StorageError> {
        let row = row_of(id, spec, String::new(), 0);
        write(self, move |repo| {
            if !repo.update_endpoint(&row)? {
                return Ok(None);
            }
            Ok(repo.endpoint(&row.id)?.map(|e| shown(e, false)))
        })
        .await
    }

    async fn delete_endpoint(&self, id: String) -> Result<bool, StorageError> {
        write(self, move |repo| repo.delete_endpoint(&id)).await
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StorageError> {
        read(self, |repo| {
            Ok(repo
                .endpoints()?
                .into_iter()
                .map(|e| shown(e, false))
                .collect())
        })
        .await
    }

    async fn endpoint(&self, id: String) -> Result<Option<WebhookEndpoint>, StorageError> {
        read(self, move |repo| {
            Ok(repo.endpoint(&id)?.map(|e| shown(e, false)))
        })
        .await
    }

    async fn deliveries(
        &self,
        endpoint_id: String,
        state: Option<DeliveryState>,
        after: u64,
        limit: u32,
    ) -> Result<Option<Vec<WebhookDelivery>>, StorageError> {
        read(self, move |repo| {
            if repo.endpoint(&endpoint_id)?.is_none() {
                return Ok(None);
            }
            let rows = repo.deliveries(
                &endpoint_id,
                state.map(DeliveryState::as_str),
                super::to_i64(after),
                limit,
            )?;
            rows.into_iter()
                .map(delivery)
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })
        .await
    }

    async fn replay(
        &self,
        endpoint_id: String,
        event_ids: Option<Vec<String>>,
        now_ms: i64,
    ) -> Result<Option<u64>, StorageError> {
        write(self, move |repo| {
            if repo.endpoint(&endpoint_id)?.is_none() {
                return Ok(None);
            }
            repo.replay_deliveries(&endpoint_id, event_ids.as_deref(), now_ms)
                .map(Some)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        owner: String,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StorageError> {
        write(self, move |repo| {
            repo.claim_deliveries(&owner, now_ms, lease_ms, limit)
        })
        .await
    }

    async fn record_outcomes(
        &self,
        owner: String,
        outcomes: Vec<DeliveryOutcome>,
        now_ms: i64,
    ) -> Result<u64, StorageError> {
        write(self, move |repo| {
            repo.record_outcomes(&owner, &outcomes, now_ms)
        })
        .await
    }

    async fn hurry_endpoint(&self, endpoint_id: String, now_ms: i64) -> Result<u64, StorageError> {
        write(self, move |repo| {
            repo.hurry_deliveries(&endpoint_id, now_ms)
        })
        .await
    }

    async fn purge_webhooks(
        &self,
        delivered_before_ms: i64,
        dead_before_ms: i64,
    ) -> Result<u64, StorageError> {
        write(self, move |repo| {
            repo.purge_webhooks(delivered_before_ms, dead_before_ms)
        })
        .await
    }
}
