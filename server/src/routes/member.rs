//! The member API: enrol, refresh, state, catalog feed, mutations.

use crate::service::Services;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_domain::api::{
    API_VERSION, CatalogPage, EnrolRequest, EnrolResponse, ErasureReceipt, MAX_PAGE,
    MEMBER_VERSION_HEADER, MemberExport, MemberState, Mutation, MutationResponse, Problem,
    RefreshRequest, Tokens, codes,
};
use tessera_domain::barcode::{Symbology, gtin_check_digit};
use tessera_domain::{MemberCard, Program};
use utoipa::IntoParams;

use crate::auth::{Member, hash_token, new_tokens};
use crate::problem::{ApiBytes, ApiError, ApiJson, ApiQuery};
use crate::storage::{MutationOutcome, NewEnrolment, StorageError};
use crate::{AppState, now_ms};

fn random_digits(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|_| ApiError::internal())?;
    // 250 = 25 × 10: reject the top bytes so every digit is equally likely.
    let mut out = String::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        if i == bytes.len() {
            getrandom::fill(&mut bytes).map_err(|_| ApiError::internal())?;
            i = 0;
        }
        if bytes[i] < 250 {
            out.push(char::from(b'0' + bytes[i] % 10));
        }
        i += 1;
    }
    Ok(out)
}

/// A new card number that fits the programme's symbology: GS1 "in-store" prefixes (20–29 for
/// EAN-13, 2 for EAN-8, 4 for UPC-A) so a card never collides with a product barcode.
pub fn new_card_number(symbology: Symbology) -> Result<String, ApiError> {
    let body = match symbology {
        Symbology::Ean8 => format!("2{}", random_digits(6)?),
        Symbology::UpcA => format!("4{}", random_digits(10)?),
        _ => format!("29{}", random_digits(10)?),
    };
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    let check = gtin_check_digit(&digits);
    Ok(format!("{body}{check}"))
}

#[utoipa::path(post, path = "/v1/enrol", tag = "member",
    request_body = EnrolRequest,
    responses(
        (status = 201, description = "Enrolled", body = EnrolResponse),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No programme yet", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn enrol(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> Result<Response, ApiError> {
    if req.device.app_version.is_empty()
        || req.device.app_version.len() > 40
        || req.device.app_version.chars().any(char::is_control)
    {
        return Err(ApiError::validation(
            "device.app_version must be 1 to 40 printable characters",
        ));
    }
    let program: Program = state.storage.program().await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            codes::VALIDATION_FAILED,
            "No programme is set up yet",
            None,
        )
    })?;
    let member_since = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let now = now_ms();
    for _ in 0..8 {
        let card = MemberCard {
            card_number: new_card_number(program.symbology)?,
            holder_name: req.holder_name.trim().to_owned(),
            member_since: member_since.clone(),
            tier_label: Some("Member".to_owned()),
        };
        // The phone will validate the card the same way: refuse here what it would refuse.
        card.validated(program.symbology)
            .map_err(ApiError::validation)?;
        let (tokens, hashes) = new_tokens(&state, now)?;
        let member_id = format!("m_{}", uuid::Uuid::new_v4().simple());
        let device_id = format!("d_{}", uuid::Uuid::new_v4().simple());
        let enrolment = NewEnrolment {
            member_id: member_id.clone(),
            device_id: device_id.clone(),
            card: card.clone(),
            platform: req.device.platform.as_str().to_owned(),
            app_version: req.device.app_version.clone(),
            tokens: hashes,
        };
        match state.storage.enrol(enrolment).await {
            Ok(()) => {
                let body = EnrolResponse {
                    member_id,
                    device_id,
                    program: program.clone(),
                    card,
                    tokens,
                };
                return Ok((StatusCode::CREATED, axum::Json(body)).into_response());
            }
            // A card number already taken: draw another.
            Err(StorageError::Duplicate(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal())
}

#[utoipa::path(post, path = "/v1/token", tag = "member",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the old refresh token is spent", body = Tokens),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown or expired refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<axum::Json<Tokens>, ApiError> {
    let now = now_ms();
    let (tokens, hashes) = new_tokens(&state, now)?;
    match state
        .storage
        .refresh(hash_token(&req.refresh_token), now, hashes)
        .await?
    {
        Some(_) => Ok(axum::Json(tokens)),
        None => Err(ApiError::unauthorized(
            codes::INVALID_REFRESH_TOKEN,
            "the refresh token is unknown, spent or expired: enrol again",
        )),
    }
}

#[utoipa::path(get, path = "/v1/me", tag = "member",
    security(("member" = [])),
    responses(
        (status = 200, description = "The member's state", body = MemberState),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(
    State(state): State<AppState>,
    Member(auth): Member,
) -> Result<axum::Json<MemberState>, ApiError> {
    Ok(axum::Json(
        state.storage.member_state(auth.member_id).await?,
    ))
}

/// Refuse an instant later than the server's clock plus the allowed skew: the device's clock is
/// far off.
pub(crate) fn check_not_future(at: &str) -> Result<(), ApiError> {
    let at: jiff::Timestamp = at.parse().map_err(ApiError::validation)?;
    if !tessera_domain::api::not_too_far_ahead(at.as_millisecond(), now_ms()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::CLOCK_SKEW,
            "The time is in the future",
            Some("the device's clock is ahead of the server's by more than allowed".to_owned()),
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/me/export", tag = "member",
    security(("member" = [])),
    responses(
        (status = 200, description = "Everything the server holds about the member", body = MemberExport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_me(
    State(state): State<AppState>,
    Member(auth): Member,
) -> Result<axum::Json<MemberExport>, ApiError> {
    state
        .storage
        .export(auth.member_id, now_ms())
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such member"))
}

#[utoipa::path(delete, path = "/v1/me", tag = "member",
    security(("member" = [])),
    responses(
        (status = 200, description = "Erased: the member and their data are deleted, consent records detached", body = ErasureReceipt),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn erase_me(
    State(state): State<AppState>,
    Member(auth): Member,
) -> Result<axum::Json<ErasureReceipt>, ApiError> {
    state
        .storage
        .erase(auth.member_id, now_ms(), "member".into())
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such member"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CatalogQuery {
    /// The `cursor` of the last page applied; absent for everything.
    #[param(pattern = r"^c1\.[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Most changes in the page (1–5000, default 1000).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<u32>,
}

const CURSOR_PREFIX: &str = "c1.";

pub fn parse_cursor(cursor: Option<&str>) -> Result<i64, ApiError> {
    let Some(c) = cursor else { return Ok(0) };
    c.strip_prefix(CURSOR_PREFIX)
        .filter(|n| (1..=18).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_CURSOR,
                "Unknown cursor",
                Some("send back a cursor this server gave, or none".to_owned()),
            )
        })
}

fn cursor(seq: i64) -> String {
    format!("{CURSOR_PREFIX}{seq}")
}

#[utoipa::path(get, path = "/v1/catalog", tag = "member",
    security(("member" = [])),
    params(CatalogQuery),
    responses(
        (status = 200, description = "Changes after the cursor", body = CatalogPage),
        (status = 304, description = "Nothing changed since the cursor (If-None-Match)"),
        (status = 400, description = "Bad cursor or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor is ahead of this server (restored from a backup): start again without one", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn catalog(
    State(state): State<AppState>,
    Member(auth): Member,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CatalogQuery>,
) -> Result<Response, ApiError> {
    let after = parse_cursor(q.cursor.as_deref())?;
    let member_version = HeaderValue::from(state.storage.member_version(auth.member_id).await?);
    let limit = match q.limit {
        None => state.config.page_size.clamp(1, MAX_PAGE),
        Some(n @ 1..=MAX_PAGE) => n,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_QUERY,
                "limit must be 1 to 5000",
                None,
            ));
        }
    };
    let latest = state.storage.latest_sequence().await?;
    if after > latest {
        return Err(ApiError::new(
            StatusCode::GONE,
            "cursor_ahead",
            "The cursor is ahead of this server",
            Some("start again without a cursor".to_owned()),
        ));
    }
    let etag = format!("\"{}\"", cursor(latest));
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::internal())?;
    if after == latest
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag_value),
                (
                    header::HeaderName::from_static(MEMBER_VERSION_HEADER),
                    member_version,
                ),
            ],
        )
            .into_response());
    }
    let (items, latest) = state.storage.feed(after, limit).await?;
    let last = items.last().map_or(after, |i| i.seq);
    // The entities are stored as JSON: write the page around them instead of parsing each.
    let mut body = String::with_capacity(
        items
            .iter()
            .map(|i| i.data.as_ref().map_or(40, String::len) + 40)
            .sum::<usize>()
            + 64,
    );
    body.push_str(&format!("{{\"format\":{API_VERSION},\"changes\":["));
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        let kind = item.kind.as_str();
        match &item.data {
            Some(data) => {
                body.push_str(&format!("{{\"type\":\"{kind}\",\"{kind}\":"));
                body.push_str(data);
                body.push('}');
            }
            None => {
                let id = serde_json::to_string(&item.id).map_err(|_| ApiError::internal())?;
                body.push_str(&format!("{{\"type\":\"{kind}_deleted\",\"id\":{id}}}"));
            }
        }
    }
    body.push_str(&format!(
        "],\"cursor\":\"{}\",\"has_more\":{}}}",
        cursor(last),
        last < latest
    ));
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_value),
            (
                header::HeaderName::from_static(MEMBER_VERSION_HEADER),
                member_version,
            ),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/mutations", tag = "member",
    security(("member" = [])),
    params(("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9._-]{8,128}$", description = "8–128 of A-Z a-z 0-9 - _ . ; the same key replays the first answer")),
    request_body = Mutation,
    responses(
        (status = 200, description = "Applied (or replayed: header Idempotent-Replayed)", body = MutationResponse),
        (status = 400, description = "Malformed, or the key is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A consent record for another member, or a push token for another device", body = Problem, content_type = "application/problem+json"),
                (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, unknown store, or the key was used with another body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mutate(
    State(state): State<AppState>,
    Member(auth): Member,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let key = crate::problem::idempotency_key(&headers)?;
    crate::problem::require_json(&headers)?;
    let bad_body = |detail: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_BODY,
            "The body is not a valid mutation",
            Some(detail),
        )
    };
    // A member given twice (`{"type": "clip_offer", "type": "buy_reward", …}`) is refused, as in
    // every JSON body: the last one must not silently win.
    crate::problem::unique_members(&body).map_err(bad_body)?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad_body(e.to_string()))?;
    if !crate::problem::tags_are_strings(&value) {
        return Err(bad_body("`type` and `field` tags must be strings".into()));
    }
    let mutation: Mutation = serde_json::from_value(value).map_err(|e| bad_body(e.to_string()))?;
    mutation.validate().map_err(ApiError::validation)?;
    if let Mutation::SetPushToken { device_id, .. } = &mutation
        && *device_id != auth.device_id
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::WRONG_DEVICE,
            "The push token is for another device",
            None,
        ));
    }
    if let Mutation::RecordConsent { record } = &mutation {
        if record.member_id != auth.member_id {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::WRONG_MEMBER,
                "The record is for another member",
                Some("a device records consent for its own member only".to_owned()),
            ));
        }
        check_not_future(&record.effective_at)?;
    }
    if let Mutation::RecordEvent { event } = &mutation {
        let at: jiff::Timestamp = event.occurred_at.parse().map_err(ApiError::validation)?;
        if !tessera_domain::api::not_too_far_ahead(at.as_millisecond(), now_ms()) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::EVENT_IN_FUTURE,
                "The event is in the future",
                Some("occurred_at is later than the server's clock allows".to_owned()),
            ));
        }
    }
    let body_hash = crate::problem::body_hash(&body);
    let outcome = state
        .storage
        .apply_mutation(auth.member_id, key, body_hash, mutation, now_ms())
        .await?;
    let (stored, replayed) = match outcome {
        MutationOutcome::Applied(a) => {
            state.metrics.applied.fetch_add(1, Relaxed);
            (a, false)
        }
        MutationOutcome::Replayed(a) => {
            state.metrics.replayed.fetch_add(1, Relaxed);
            (a, true)
        }
        MutationOutcome::KeyReused => {
            state.metrics.key_reused.fetch_add(1, Relaxed);
            return Err(crate::problem::key_reused());
        }
    };
    crate::problem::stored_answer(stored, replayed)
}

#[utoipa::path(post, path = "/v1/card/certificate", tag = "member",
    security(("member" = [])),
    request_body = tessera_domain::api::DeviceKeyRequest,
    responses(
        (status = 200, description = "The programme's certificate for this device's key: the rotating member code carries it", body = tessera_domain::api::DeviceCertificateAnswer),
        (status = 400, description = "Malformed: not JSON, or not this call's shape", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an Ed25519 public key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn certify_device(
    State(state): State<AppState>,
    Member(auth): Member,
    ApiJson(req): ApiJson<tessera_domain::api::DeviceKeyRequest>,
) -> Result<axum::Json<tessera_domain::api::DeviceCertificateAnswer>, ApiError> {
    let key = req.key().map_err(ApiError::validation)?;
    state
        .storage
        .certify_device(auth.member_id, auth.device_id, key, now_ms())
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such member"))
}
