//! Coupons at the till: the public keys tills verify with, and redemption exactly once.

use crate::service::Services;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_domain::api::{
    OFFLINE_WINDOW_MS, Problem, PurchaseReceipt, PurchaseRequest, RedeemRequest, Redemption,
    ReturnReport, ReturnRequest, TillCredentials, TillRegistration, VoidReport, VoidRequest,
    check_receipt, codes,
};
use tessera_domain::coupon::{CouponKey, TillShop};
use tessera_domain::eligibility::ShopFacts;
use tessera_domain::loyalty::WEB_STORE;

use crate::auth::{Admin, Till, hash_token, random_token};
use crate::problem::{ApiError, ApiJson};
use crate::storage::{MutationOutcome, TillOp};
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

/// The till's shop as the offer rules see it; the website is a shop with no tags, in UTC.
async fn till_shop(state: &AppState, store_id: &str) -> Result<ShopFacts, ApiError> {
    // The website, or a shop removed from the catalog (its tills remain; coupons name it by id
    // only): no tags, UTC.
    let bare = || ShopFacts {
        store_id: store_id.to_owned(),
        tags: Vec::new(),
        timezone: "UTC".to_owned(),
    };
    if store_id == WEB_STORE {
        return Ok(bare());
    }
    Ok(state
        .storage
        .shop(store_id.to_owned())
        .await?
        .unwrap_or_else(bare))
}

#[utoipa::path(get, path = "/v1/till/shop", tag = "till",
    security(("till" = [])),
    responses(
        (status = 200, description = "The till's shop: its tags and time zone, for checking coupons offline", body = ShopFacts),
        (status = 401, description = "Not a till", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn shop(
    State(state): State<AppState>,
    till: Till,
) -> Result<axum::Json<ShopFacts>, ApiError> {
    Ok(axum::Json(till_shop(&state, &till.store_id).await?))
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
    tessera_domain::catalog::check_id("store_id", &body.store_id).map_err(ApiError::validation)?;
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

/// When a till says something happened while it was offline: refused if later than the server's
/// clock allows, or older than the offline window.
fn offline_time(field: &'static str, at: &str) -> Result<i64, ApiError> {
    let at = tessera_domain::catalog::parse_instant(field, at)
        .map_err(ApiError::validation)?
        .as_millisecond();
    let now = now_ms();
    if !tessera_domain::api::not_too_far_ahead(at, now) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::CLOCK_SKEW,
            "Later than the server's clock allows",
            Some(format!("{field}: the till's clock is ahead")),
        ));
    }
    if at < now - OFFLINE_WINDOW_MS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::REPORT_TOO_OLD,
            "Reported too late",
            Some(format!("{field}: older than the offline window of 7 days")),
        ));
    }
    Ok(at)
}

/// Apply `op` once per till idempotency key (bound to `req`'s canonical JSON) and answer with
/// the stored answer.
async fn once<T: serde::Serialize>(
    state: &AppState,
    till: Till,
    headers: &HeaderMap,
    req: &T,
    op: TillOp,
) -> Result<Response, ApiError> {
    let key = crate::problem::idempotency_key(headers)?;
    let canonical = serde_json::to_vec(req).map_err(|_| ApiError::internal())?;
    let outcome = state
        .storage
        .apply_till_op(
            till,
            key,
            crate::problem::body_hash(&canonical),
            op,
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

#[utoipa::path(post, path = "/v1/till/redemptions", tag = "till",
    security(("till" = [])),
    params(("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9._-]{8,128}$", description = "The same key returns the first answer")),
    request_body = RedeemRequest,
    responses(
        (status = 200, description = "Redeemed now (or the replay of this key's answer)", body = Redemption),
        (status = 400, description = "Malformed, or the key is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not a till", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Redeemed already (detail: shop and time); for an offline redemption reported late, a recorded conflict", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Forged, altered, expired, another shop's, below its minimum, revoked, reported too late, or the key reused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redeem(
    State(state): State<AppState>,
    till: Till,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RedeemRequest>,
) -> Result<Response, ApiError> {
    req.validate().map_err(ApiError::validation)?;
    let offline_at_ms = match &req.redeemed_offline_at {
        Some(at) => Some(offline_time("redeemed_offline_at", at)?),
        None => None,
    };
    let keys = state.storage.coupon_keys(now_ms()).await?;
    let shop = TillShop::from_facts(&till_shop(&state, &till.store_id).await?);
    // An offline redemption is checked as of when the till made it.
    let at_s = offline_at_ms.unwrap_or_else(now_ms).div_euclid(1000);
    let claims =
        tessera_domain::coupon::verify(&req.code, &keys, at_s, &shop, None, req.basket_cents)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    codes::COUPON_REFUSED,
                    "The coupon is refused",
                    Some(e.to_string()),
                )
            })?;
    let op = TillOp::Redeem {
        claims,
        shop,
        receipt: req.receipt.clone(),
        offline_at_ms,
    };
    once(&state, till, &headers, &req, op).await
}

#[utoipa::path(post, path = "/v1/till/purchases", tag = "till",
    security(("till" = [])),
    params(("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9._-]{8,128}$", description = "The same key returns the first answer")),
    request_body = PurchaseRequest,
    responses(
        (status = 200, description = "Recorded: points earned, and a web coupon when the purchase qualifies", body = PurchaseReceipt),
        (status = 400, description = "Malformed, or the key is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not a till", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another purchase has this receipt in this shop", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, unknown card, reported too late, or the key reused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn purchase(
    State(state): State<AppState>,
    till: Till,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PurchaseRequest>,
) -> Result<Response, ApiError> {
    req.validate().map_err(ApiError::validation)?;
    let occurred_ms = match &req.occurred_offline_at {
        Some(at) => offline_time("occurred_offline_at", at)?,
        None => now_ms(),
    };
    let op = TillOp::Purchase {
        request: req.clone(),
        occurred_ms,
    };
    once(&state, till, &headers, &req, op).await
}

#[utoipa::path(post, path = "/v1/till/voids", tag = "till",
    security(("till" = [])),
    params(("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9._-]{8,128}$", description = "The same key returns the first answer")),
    request_body = VoidRequest,
    responses(
        (status = 200, description = "Voided: the receipt's coupons are usable again, its purchase and points undone", body = VoidReport),
        (status = 400, description = "Malformed, or the key is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not a till", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Nothing under this receipt in this shop", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, the void window has closed, or the key reused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn void(
    State(state): State<AppState>,
    till: Till,
    headers: HeaderMap,
    ApiJson(req): ApiJson<VoidRequest>,
) -> Result<Response, ApiError> {
    check_receipt("receipt", &req.receipt).map_err(ApiError::validation)?;
    let at_ms = match &req.voided_offline_at {
        Some(at) => offline_time("voided_offline_at", at)?,
        None => now_ms(),
    };
    let op = TillOp::Void {
        receipt: req.receipt.clone(),
        at_ms,
    };
    once(&state, till, &headers, &req, op).await
}

#[utoipa::path(post, path = "/v1/till/returns", tag = "till",
    security(("till" = [])),
    params(("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9._-]{8,128}$", description = "The same key returns the first answer")),
    request_body = ReturnRequest,
    responses(
        (status = 200, description = "The points the returned goods earned, taken back", body = ReturnReport),
        (status = 400, description = "Malformed, or the key is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not a till", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No purchase under this receipt", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, more refunded than the purchase is worth, or the key reused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn return_goods(
    State(state): State<AppState>,
    till: Till,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ReturnRequest>,
) -> Result<Response, ApiError> {
    req.validate().map_err(ApiError::validation)?;
    let op = TillOp::Return {
        request: req.clone(),
    };
    once(&state, till, &headers, &req, op).await
}

#[utoipa::path(get, path = "/v1/till/revocations", tag = "till",
    security(("till" = [])),
    responses(
        (status = 200, description = "Device certificates to refuse (revoked, not yet expired): fetched with the keys", body = tessera_domain::api::Revocations),
        (status = 401, description = "Not a till", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revocations(
    State(state): State<AppState>,
    _: Till,
) -> Result<axum::Json<tessera_domain::api::Revocations>, ApiError> {
    let now = now_ms();
    Ok(axum::Json(tessera_domain::api::Revocations {
        revoked: state.storage.revocations(now).await?,
        as_of: tessera_domain::rfc3339_ms(now),
    }))
}
