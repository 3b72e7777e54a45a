//! Staff accounts of the console (admin API, issue #19): the operator creates them, disables
//! or enables them and sets their passwords.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_domain::api::{Problem, StaffAccount, StaffAccountChange, StaffAccountSpec, codes};

use crate::auth::Admin;
use crate::problem::{ApiError, ApiJson};
use crate::service::staff::{NotCreated, StaffServices};
use crate::{AppState, now_ms};

#[utoipa::path(post, path = "/admin/v1/staff", tag = "admin",
    security(("admin" = [])),
    request_body = StaffAccountSpec,
    responses(
        (status = 201, description = "Created: the account may sign in to /console (its password is kept as an Argon2id hash only)", body = StaffAccount),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An account has this e-mail address (`account_exists`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An e-mail address, name, password (12 to 256 characters) or shop that breaks a rule", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_staff(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(spec): ApiJson<StaffAccountSpec>,
) -> Result<Response, ApiError> {
    let email = spec.validate().map_err(ApiError::validation)?;
    match state.storage.create_staff(email, spec, now_ms()).await? {
        Err(NotCreated::NoShop) => Err(ApiError::validation("there is no such store")),
        Ok(account) => Ok((
            StatusCode::CREATED,
            [(header::LOCATION, "/admin/v1/staff".to_owned())],
            axum::Json(account),
        )
            .into_response()),
        Err(NotCreated::Exists) => Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::ACCOUNT_EXISTS,
            "An account has this e-mail address",
            None,
        )),
    }
}

#[utoipa::path(get, path = "/admin/v1/staff", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The staff accounts, by e-mail address", body = Vec<StaffAccount>),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_staff(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<Vec<StaffAccount>>, ApiError> {
    Ok(axum::Json(state.storage.staff_accounts().await?))
}

#[utoipa::path(patch, path = "/admin/v1/staff/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The account's id")),
    request_body = StaffAccountChange,
    responses(
        (status = 200, description = "Changed (disabled or enabled, a new password, two-factor sign-in off); the account's sessions have ended", body = StaffAccount),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing to change, a password that breaks the rule (12 to 256 characters), or two_factor true (only its owner turns it on)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn change_staff(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<StaffAccountChange>,
) -> Result<axum::Json<StaffAccount>, ApiError> {
    change.validate().map_err(ApiError::validation)?;
    state
        .storage
        .change_staff(id, change, "operator".into(), now_ms())
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such staff account"))
}
