//! Coupons at the till: the public keys tills verify with, and redemption exactly once.

use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};
use tessera_core::api::{
    Problem, RedeemRequest, Redemption, TillCredentials, TillRegistration, codes,
};
use tessera_core::coupon::CouponKey;

use crate::auth::{Admin, Till, hash_token, random_token};
use crate::problem::{ApiError, ApiJson};
use crate::storage::MutationOutcome;
use crate::{AppState, now_ms};

#[utoipa::path(get, path = "/v1/coupon-keys", tag = "till",
    responses(
        (status = 200, description = "The Ed25519 public keys coupons are signed with", body = Vec<CouponKey>),
    ))]
pub async fn coupon_keys(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<CouponKey>>, ApiError> {
    Ok(axum::Json(state.storage.coupon_keys(now_ms()).await?))
}

#[utoipa::path(post, path = "/admin/v1/tills", tag = "admin",
    security(("admin" = [])),
    request_body = TillRegistration,
    responses(
        (status = 201, description = "Registered; the token is shown once", body = TillCredentials),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shop", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register_till(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(body): ApiJson<TillRegistration>,
) -> Result<(StatusCode, axum::Json<TillCredentials>), ApiError> {
    tessera_core::catalog::check_id("store_id", &body.store_id).map_err(ApiError::validation)?;
    let token = random_token()?;
    let till_id = state
        .storage
        .register_till(body.store_id.clone(), hash_token(&token), now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("no such shop"))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TillCredentials {
            till_id,
            store_id: body.store_id,
            token,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/till/redemptions", tag = "till",
    security(("till" = [])),
    params(("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9._-]{8,128}$", description = "The same key returns the first answer")),
    request_body = RedeemRequest,
    responses(
        (status = 200, description = "Redeemed now (or the replay of this key's answer)", body = Redemption),
        (status = 400, description = "Malformed, or the key is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not a till", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Redeemed already (detail: shop and time), or this key is in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Forged, altered, expired, another shop's, below its minimum, or the key reused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redeem(
    State(state): State<AppState>,
    till: Till,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RedeemRequest>,
) -> Result<Response, ApiError> {
    let key = crate::problem::idempotency_key(&headers)?;
    if req.receipt.is_empty() || req.receipt.len() > 64 || req.receipt.chars().any(char::is_control)
    {
        return Err(ApiError::validation(
            "receipt: 1 to 64 printable characters",
        ));
    }
    let keys = state.storage.coupon_keys(now_ms()).await?;
    let now_s = jiff::Timestamp::now().as_second();
    let claims = tessera_core::coupon::verify(
        &req.code,
        &keys,
        now_s,
        &till.store_id,
        None,
        req.basket_cents,
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::COUPON_REFUSED,
            "The coupon is refused",
            Some(e.to_string()),
        )
    })?;
    let body_hash = {
        let canonical = serde_json::to_vec(&req).map_err(|_| ApiError::internal())?;
        Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let owner = format!("till:{}", till.till_id);
    let _guard = state.in_flight.try_claim(&owner, &key).ok_or_else(|| {
        state.metrics.in_flight_conflicts.fetch_add(1, Relaxed);
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            codes::REQUEST_IN_FLIGHT,
            "A request with this key is in flight",
            None,
        );
        e.retry_after = Some(1);
        e
    })?;
    let outcome = state
        .storage
        .apply_redemption(
            till.till_id,
            till.store_id,
            key,
            body_hash,
            claims,
            req.receipt,
            now_ms(),
        )
        .await?;
    let (stored, replayed) = match outcome {
        MutationOutcome::Applied(a) => (a, false),
        MutationOutcome::Replayed(a) => (a, true),
        MutationOutcome::KeyReused => return Err(crate::problem::key_reused()),
    };
    crate::problem::stored_answer(stored, replayed)
}
