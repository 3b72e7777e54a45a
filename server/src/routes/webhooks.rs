//! Webhook endpoints, their deliveries and the dead-letter list (admin API, issue #19).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_domain::api::{
    DeliveryState, Problem, ReplayAnswer, ReplayRequest, WebhookDeliveries, WebhookEndpoint,
    WebhookEndpointSpec, codes,
};
use utoipa::IntoParams;

use crate::auth::Admin;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::service::webhooks::{WebhookServices, check_endpoint};
use crate::{AppState, now_ms};

/// An endpoint id: 1–64 of `A-Z a-z 0-9 - _ .`.
fn check_id(id: &str) -> Result<(), ApiError> {
    if (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Ok(())
    } else {
        Err(ApiError::validation(
            "an endpoint id is 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

fn no_endpoint() -> ApiError {
    ApiError::not_found("no such webhook endpoint")
}

#[utoipa::path(put, path = "/admin/v1/webhooks/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The endpoint's id (1–64 of A-Z a-z 0-9 - _ .)")),
    request_body = WebhookEndpointSpec,
    responses(
        (status = 201, description = "Created: the answer shows its signing secret, once", body = WebhookEndpoint),
        (status = 200, description = "Changed (its secret stays)", body = WebhookEndpoint),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An id or endpoint the server will not deliver to (`webhook_refused`: plain http to another host, credentials in the URL…)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_endpoint(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<WebhookEndpointSpec>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    check_endpoint(&spec).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::WEBHOOK_REFUSED,
            "The server will not deliver to this endpoint",
            Some(e.to_string()),
        )
    })?;
    if let Some(changed) = state
        .storage
        .update_endpoint(id.clone(), spec.clone())
        .await?
    {
        return Ok(axum::Json(changed).into_response());
    }
    match state
        .storage
        .create_endpoint(id.clone(), spec.clone(), now_ms())
        .await?
    {
        Some(created) => Ok((
            StatusCode::CREATED,
            [(header::LOCATION, format!("/admin/v1/webhooks/{id}"))],
            axum::Json(created),
        )
            .into_response()),
        // Created by another request in between: change it as asked.
        None => match state.storage.update_endpoint(id, spec).await? {
            Some(changed) => Ok(axum::Json(changed).into_response()),
            None => Err(no_endpoint()),
        },
    }
}

#[utoipa::path(get, path = "/admin/v1/webhooks", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The endpoints, by id, with their pending and dead counts (no secrets)", body = Vec<WebhookEndpoint>),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<Vec<WebhookEndpoint>>, ApiError> {
    Ok(axum::Json(state.storage.endpoints().await?))
}

#[utoipa::path(get, path = "/admin/v1/webhooks/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint (no secret)", body = WebhookEndpoint),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<WebhookEndpoint>, ApiError> {
    state
        .storage
        .endpoint(id)
        .await?
        .map(axum::Json)
        .ok_or_else(no_endpoint)
}

#[utoipa::path(delete, path = "/admin/v1/webhooks/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted, with its queue"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if state.storage.delete_endpoint(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_endpoint())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries in this state (`pending`, `delivered`, `dead`).
    pub state: Option<DeliveryState>,
    /// Events after this sequence number (the previous page's `next`).
    pub after: Option<u64>,
    /// At most this many (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/v1/webhooks/{id}/deliveries", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeliveryQuery),
    responses(
        (status = 200, description = "The endpoint's deliveries, oldest event first (`state=dead`: the dead-letter list)", body = WebhookDeliveries),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The limit is out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<axum::Json<WebhookDeliveries>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit: 1 to 1000"));
    }
    let deliveries = state
        .storage
        .deliveries(id, q.state, q.after.unwrap_or(0), limit)
        .await?
        .ok_or_else(no_endpoint)?;
    let next = (deliveries.len() == limit as usize)
        .then(|| deliveries.last().map(|d| d.event.sequence))
        .flatten();
    Ok(axum::Json(WebhookDeliveries { deliveries, next }))
}

#[utoipa::path(post, path = "/admin/v1/webhooks/{id}/replay", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = ReplayRequest,
    responses(
        (status = 200, description = "Queued again, due at once, attempts counted afresh (a pending delivery is left as it is)", body = ReplayAnswer),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Too many events named (1000 at most)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<axum::Json<ReplayAnswer>, ApiError> {
    if body.event_ids.as_ref().is_some_and(|ids| ids.len() > 1000) {
        return Err(ApiError::validation("at most 1000 events at once"));
    }
    let replayed = state
        .storage
        .replay(id, body.event_ids, now_ms())
        .await?
        .ok_or_else(no_endpoint)?;
    Ok(axum::Json(ReplayAnswer { replayed }))
}
