//! Bearer tokens. Members get an access token (short-lived) and a refresh token (long-lived) at
//! enrolment, tills a token at registration; the server stores only their SHA-256 (32 random
//! bytes each, so a fast digest is enough). The admin API takes the operators' named
//! credentials ([`crate::guard`]). A member's and a till's requests are rate-limited once their
//! token is known.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tessera_domain::api::codes;

use crate::AppState;
use crate::problem::ApiError;
use crate::storage::{DeviceAuth, TokenHashes, TokenLookup};

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| ApiError::internal())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// A fresh pair of tokens and their hashes, expiring from `now_ms`.
pub fn new_tokens(
    state: &AppState,
    now_ms: i64,
) -> Result<(tessera_domain::api::Tokens, TokenHashes), ApiError> {
    let access = random_token()?;
    let refresh = random_token()?;
    let access_expires_ms = now_ms + state.config.access_ttl.as_millis() as i64;
    let refresh_expires_ms = now_ms + state.config.refresh_ttl.as_millis() as i64;
    let ts = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|_| tessera_domain::rfc3339_ms(ms))
            .map_err(|_| ApiError::internal())
    };
    Ok((
        tessera_domain::api::Tokens {
            access_token: access.clone(),
            access_expires_at: ts(access_expires_ms)?,
            refresh_token: refresh.clone(),
            refresh_expires_at: ts(refresh_expires_ms)?,
        },
        TokenHashes {
            access_hash: hash_token(&access),
            access_expires_ms,
            refresh_hash: hash_token(&refresh),
            refresh_expires_ms,
        },
    ))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

/// The member device behind the request's access token.
#[derive(Debug, Clone)]
pub struct Member(pub DeviceAuth);

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(codes::UNAUTHORIZED, "send Authorization: Bearer <token>")
        })?;
        let now = jiff::Timestamp::now().as_millisecond();
        match state.storage.lookup_access(hash_token(token), now).await? {
            TokenLookup::Valid(auth) => {
                state.limiters.member(&auth.member_id)?;
                Ok(Member(auth))
            }
            TokenLookup::Expired => Err(ApiError::unauthorized(
                codes::TOKEN_EXPIRED,
                "the access token has expired: refresh it",
            )),
            TokenLookup::Unknown => Err(ApiError::unauthorized(
                codes::UNAUTHORIZED,
                "the access token is not valid",
            )),
        }
    }
}

/// An operator, proven by one of the admin credentials: its name.
#[derive(Debug, Clone)]
pub struct Admin(pub String);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(
                codes::UNAUTHORIZED,
                "send Authorization: Bearer <admin token>",
            )
        })?;
        match state.admins.check(token) {
            Some(name) => {
                tracing::info!(operator = %name, method = %parts.method, path = %parts.uri.path(), "admin request");
                Ok(Admin(name))
            }
            None => Err(ApiError::unauthorized(
                codes::UNAUTHORIZED,
                "the admin token is not valid",
            )),
        }
    }
}

/// A till of a shop, proven by its token.
pub use crate::storage::TillAuth as Till;

impl FromRequestParts<AppState> for Till {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(
                codes::UNAUTHORIZED,
                "send Authorization: Bearer <till token>",
            )
        })?;
        match state.storage.till_by_token(hash_token(token)).await? {
            Some((till_id, store_id)) => {
                state.limiters.till(&till_id)?;
                Ok(Till { till_id, store_id })
            }
            None => Err(ApiError::unauthorized(
                codes::UNAUTHORIZED,
                "the till token is not valid",
            )),
        }
    }
}
