//! The admin API (operator token): the programme, stores, offers, whole catalogs, audits.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tessera_core::Program;
use tessera_core::api::Problem;
use tessera_core::catalog::{Catalog, Offer, Store};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Admin;
use crate::problem::{ApiError, ApiJson, ApiPath};
use crate::storage::CatalogCounts;

fn same_id(path: &str, body: &str) -> Result<(), ApiError> {
    if path == body {
        Ok(())
    } else {
        Err(ApiError::validation(
            "the id in the path and in the body differ",
        ))
    }
}

#[utoipa::path(put, path = "/admin/v1/program", tag = "admin",
    security(("admin" = [])),
    request_body = Program,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_program(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(program): ApiJson<Program>,
) -> Result<StatusCode, ApiError> {
    let program = program.validated().map_err(ApiError::validation)?;
    state.storage.put_program(program).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/admin/v1/stores/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The store's id")),
    request_body = Store,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_store(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(store): ApiJson<Store>,
) -> Result<StatusCode, ApiError> {
    same_id(&id, &store.id)?;
    store.validate().map_err(ApiError::validation)?;
    state.storage.put_store(store).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/admin/v1/stores/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The store's id")),
    responses(
        (status = 204, description = "Deleted (phones learn it from the feed)"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such store", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_store(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.storage.delete_store(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/admin/v1/offers/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The offer's id")),
    request_body = Offer,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_offer(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(offer): ApiJson<Offer>,
) -> Result<StatusCode, ApiError> {
    same_id(&id, &offer.id)?;
    offer.validate().map_err(ApiError::validation)?;
    state.storage.put_offer(offer).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/admin/v1/offers/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The offer's id")),
    responses(
        (status = 204, description = "Deleted (phones learn it from the feed)"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such offer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_offer(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.storage.delete_offer(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/v1/catalog", tag = "admin",
    security(("admin" = [])),
    request_body = Catalog,
    responses(
        (status = 200, description = "The catalog replaces the old one; what it lacks is deleted", body = CatalogCounts),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn load_catalog(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(catalog): ApiJson<Catalog>,
) -> Result<axum::Json<CatalogCounts>, ApiError> {
    catalog.validate().map_err(ApiError::validation)?;
    Ok(axum::Json(state.storage.load_catalog(catalog).await?))
}

/// How often the server applied each of a member's events (every count must be 1).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAudit {
    pub member_id: String,
    pub events: Vec<EventCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventCount {
    pub event_id: String,
    pub applied: u64,
}

#[utoipa::path(get, path = "/admin/v1/members/{id}/events", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    responses(
        (status = 200, description = "Each event id and how many times it was applied", body = EventAudit),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn member_events(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<EventAudit>, ApiError> {
    let events = state
        .storage
        .event_ids(id.clone())
        .await?
        .into_iter()
        .map(|(event_id, applied)| EventCount { event_id, applied })
        .collect();
    Ok(axum::Json(EventAudit {
        member_id: id,
        events,
    }))
}
