//! Wallet passes (issue #18): the member's "Add to Apple Wallet" and "Save to Google Wallet"
//! (documented in the OpenAPI document), and Apple's PassKit web service (Apple's protocol,
//! under `/passkit`, outside it: https://developer.apple.com/documentation/walletpasses).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use tessera_domain::api::{GoogleSaveLink, Problem, codes};
use tessera_domain::geo::Position;

use crate::auth::Member;
use crate::problem::{ApiBytes, ApiError, ApiPath as Path, ApiQuery as Query};
use crate::service::wallet::{NoPass, PassContent, WalletServices};
use crate::storage::repo::PassRow;
use crate::wallet::apple::{PKPASS_MEDIA_TYPE, pkpass};
use crate::wallet::{AppleWallet, GoogleWallet, WalletConfig};
use crate::{AppState, now_ms};

/// Where the member is, so that the pass lists the nearest shops (optional).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Near {
    /// WGS 84 degrees.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl Near {
    fn position(&self) -> Result<Option<Position>, ApiError> {
        match (self.lat, self.lon) {
            (None, None) => Ok(None),
            (Some(latitude), Some(longitude)) => {
                let p = Position {
                    latitude,
                    longitude,
                };
                p.validate().map_err(ApiError::validation)?;
                Ok(Some(p))
            }
            _ => Err(ApiError::validation("lat and lon: both or neither")),
        }
    }
}

/// A signed `.pkpass` file (a zip), as the OpenAPI document describes it: binary.
#[derive(Debug, utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PkPass(pub Vec<u8>);

fn wallet(state: &AppState) -> Result<&WalletConfig, ApiError> {
    state.config.wallet.as_deref().ok_or_else(not_configured)
}

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::WALLET_NOT_CONFIGURED,
        "This server issues no passes for this wallet",
        None,
    )
}

fn apple(state: &AppState) -> Result<(&WalletConfig, &AppleWallet), ApiError> {
    let w = wallet(state)?;
    Ok((w, w.apple.as_ref().ok_or_else(not_configured)?))
}

fn google(state: &AppState) -> Result<(&WalletConfig, &GoogleWallet), ApiError> {
    let w = wallet(state)?;
    Ok((w, w.google.as_ref().ok_or_else(not_configured)?))
}

fn no_pass(e: NoPass) -> ApiError {
    match e {
        NoPass::UnknownMember => ApiError::not_found("no such member"),
        NoPass::UnknownCoupon => ApiError::not_found("no such coupon in the member's wallet"),
    }
}

fn pass_refused(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        codes::PASS_REFUSED,
        "A pass cannot be made of this",
        Some(e.to_string()),
    )
}

/// The signed `.pkpass` of a pass as it is now.
pub(crate) fn apple_pass_bytes(
    w: &WalletConfig,
    apple: &AppleWallet,
    row: &PassRow,
    content: &PassContent,
) -> Result<Vec<u8>, ApiError> {
    let id = tessera_domain::pass::AppleIdentity {
        pass_type_id: apple.pass_type_id.clone(),
        team_id: apple.team_id.clone(),
        web_service_url: Some(apple.web_service_url.clone()),
        authentication_token: row.auth_token.clone(),
    };
    let json = match content {
        PassContent::Card(c) => c.apple(&id, &w.branding),
        PassContent::Coupon(c) => c.apple(&id, &w.branding),
    }
    .map_err(pass_refused)?;
    pkpass(
        &json,
        &apple.images,
        &apple.signer,
        now_ms().div_euclid(1000),
    )
    .map_err(|e| {
        tracing::error!(error = %e, "signing a pass");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "The pass could not be signed",
            None,
        )
    })
}

fn http_date(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .and_then(|t| {
            jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&t)
                .ok()
        })
        .unwrap_or_default()
}

fn pkpass_response(bytes: Vec<u8>, updated_ms: i64) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PKPASS_MEDIA_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&http_date(updated_ms)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    resp
}

async fn issue(
    state: &AppState,
    member_id: String,
    coupon_id: Option<String>,
    near: &Near,
    google: bool,
) -> Result<(PassRow, PassContent), ApiError> {
    if let Some(id) = &coupon_id {
        tessera_domain::catalog::check_id("coupon_id", id).map_err(ApiError::validation)?;
    }
    let near = near.position()?;
    state
        .storage
        .issue_pass(member_id, coupon_id, near, google, now_ms())
        .await?
        .map_err(no_pass)
}

/// The member's card or coupon pass, issued (or found) and signed as it is now.
async fn apple_pass(
    state: &AppState,
    member_id: String,
    coupon_id: Option<String>,
    near: &Near,
) -> Result<Response, ApiError> {
    let (w, apple) = apple(state)?;
    let (row, content) = issue(state, member_id, coupon_id, near, false).await?;
    let bytes = apple_pass_bytes(w, apple, &row, &content)?;
    Ok(pkpass_response(bytes, row.updated_ms))
}

#[utoipa::path(get, path = "/v1/wallet/apple/card", tag = "member",
    security(("member" = [])),
    params(Near),
    responses(
        (status = 200, description = "The member's store card pass, signed (Add to Apple Wallet); it stays up to date through the PassKit web service", content_type = "application/vnd.apple.pkpass", body = PkPass),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Apple Wallet is not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A position out of range, or a pass Apple's rules refuse", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn apple_card(
    State(state): State<AppState>,
    Member(auth): Member,
    Query(near): Query<Near>,
) -> Result<Response, ApiError> {
    apple_pass(&state, auth.member_id, None, &near).await
}

#[utoipa::path(get, path = "/v1/wallet/apple/coupons/{coupon_id}", tag = "member",
    security(("member" = [])),
    params(("coupon_id" = String, Path, description = "A coupon in the member's wallet"), Near),
    responses(
        (status = 200, description = "The coupon's pass, signed; voided in the wallet once redeemed", content_type = "application/vnd.apple.pkpass", body = PkPass),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such coupon in the member's wallet, or Apple Wallet is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad coupon id or position, or a pass Apple's rules refuse", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn apple_coupon(
    State(state): State<AppState>,
    Member(auth): Member,
    Path(coupon_id): Path<String>,
    Query(near): Query<Near>,
) -> Result<Response, ApiError> {
    apple_pass(&state, auth.member_id, Some(coupon_id), &near).await
}

async fn google_link(
    state: &AppState,
    member_id: String,
    coupon_id: Option<String>,
    near: &Near,
) -> Result<Json<GoogleSaveLink>, ApiError> {
    let (w, google) = google(state)?;
    let (_, content) = issue(state, member_id, coupon_id, near, true).await?;
    let (_, object) = content.google(google).map_err(pass_refused)?;
    let object_id = object["id"].as_str().unwrap_or_default().to_owned();
    let payload = match &content {
        PassContent::Card(_) => serde_json::json!({
            "loyaltyClasses": [tessera_domain::pass::google_loyalty_class(
                &w.branding, &google.issuer_id, &google.class_suffix,
            ).map_err(pass_refused)?],
            "loyaltyObjects": [object],
        }),
        PassContent::Coupon(c) => serde_json::json!({
            "offerClasses": [tessera_domain::pass::google_offer_class(
                &w.branding, &google.issuer_id, &c.offer_id, &c.title,
            ).map_err(pass_refused)?],
            "offerObjects": [object],
        }),
    };
    let save_url = crate::wallet::google::save_link(
        &google.account,
        &google.origins,
        payload,
        now_ms().div_euclid(1000),
    )
    .map_err(|e| {
        tracing::error!(error = %e, "signing a Google Wallet link");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "The link could not be signed",
            None,
        )
    })?;
    Ok(Json(GoogleSaveLink {
        save_url,
        object_id,
    }))
}

#[utoipa::path(get, path = "/v1/wallet/google/card", tag = "member",
    security(("member" = [])),
    params(Near),
    responses(
        (status = 200, description = "A Save to Google Wallet link for the member's loyalty card; the object is updated when points, tier or coupons change", body = GoogleSaveLink),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Google Wallet is not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A position out of range, or an object Google's rules refuse", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn google_card(
    State(state): State<AppState>,
    Member(auth): Member,
    Query(near): Query<Near>,
) -> Result<Json<GoogleSaveLink>, ApiError> {
    google_link(&state, auth.member_id, None, &near).await
}

#[utoipa::path(get, path = "/v1/wallet/google/coupons/{coupon_id}", tag = "member",
    security(("member" = [])),
    params(("coupon_id" = String, Path, description = "A coupon in the member's wallet"), Near),
    responses(
        (status = 200, description = "A Save to Google Wallet link for the coupon (an offer object, linked to the card)", body = GoogleSaveLink),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such coupon in the member's wallet, or Google Wallet is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad coupon id or position, or an object Google's rules refuse", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn google_coupon(
    State(state): State<AppState>,
    Member(auth): Member,
    Path(coupon_id): Path<String>,
    Query(near): Query<Near>,
) -> Result<Json<GoogleSaveLink>, ApiError> {
    google_link(&state, auth.member_id, Some(coupon_id), &near).await
}

// --- Apple's PassKit web service ----------------------------------------------------------

/// The largest body the web service reads (a registration is a push token).
pub const MAX_PASSKIT_BODY: usize = 16 * 1024;

fn passkit_unauthorized() -> ApiError {
    ApiError::unauthorized(codes::UNAUTHORIZED, "send Authorization: ApplePass <token>")
}

/// Apple's identifiers: letters, digits and `.`, `-`, `_`, at most 128 characters.
fn check_identifier(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty()
        || value.len() > 128
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_BODY,
            "Not a PassKit identifier",
            Some(format!("{field}: letters, digits, `.`, `-`, `_`; 1 to 128")),
        ));
    }
    Ok(())
}

/// The pass, if the request names this server's pass type and carries the pass's token.
async fn authorised_pass(
    state: &AppState,
    headers: &HeaderMap,
    pass_type: &str,
    serial: &str,
) -> Result<PassRow, ApiError> {
    let (_, apple) = apple(state)?;
    check_identifier("passTypeIdentifier", pass_type)?;
    check_identifier("serialNumber", serial)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("ApplePass "))
        .ok_or_else(passkit_unauthorized)?;
    if pass_type != apple.pass_type_id {
        return Err(passkit_unauthorized());
    }
    let row = state
        .storage
        .wallet_pass(serial.to_owned())
        .await?
        .ok_or_else(passkit_unauthorized)?;
    // Compared as digests: no timing hint of how much of a token was right.
    let same = ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref()
        == ring::digest::digest(&ring::digest::SHA256, row.auth_token.as_bytes()).as_ref();
    if !same {
        return Err(passkit_unauthorized());
    }
    Ok(row)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Registration {
    push_token: String,
}

fn bad_body(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_BODY,
        "Malformed body",
        Some(detail.into()),
    )
}

/// `POST /passkit/v1/devices/{device}/registrations/{passType}/{serial}`: 201 registered, 200
/// already registered, 401 not this pass's token.
pub async fn register_device(
    State(state): State<AppState>,
    Path((device, pass_type, serial)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<StatusCode, ApiError> {
    check_identifier("deviceLibraryIdentifier", &device)?;
    let row = authorised_pass(&state, &headers, &pass_type, &serial).await?;
    let reg: Registration = serde_json::from_slice(&body)
        .map_err(|e| bad_body(format!("expected {{\"pushToken\": …}}: {e}")))?;
    if reg.push_token.is_empty()
        || reg.push_token.len() > 256
        || !reg.push_token.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(bad_body("pushToken: 1 to 256 letters and digits"));
    }
    let new = state
        .storage
        .register_pass(device, row.serial, reg.push_token, now_ms())
        .await?;
    Ok(if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

/// `DELETE …/registrations/{passType}/{serial}`: 200.
pub async fn unregister_device(
    State(state): State<AppState>,
    Path((device, pass_type, serial)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    check_identifier("deviceLibraryIdentifier", &device)?;
    let row = authorised_pass(&state, &headers, &pass_type, &serial).await?;
    state.storage.unregister_pass(device, row.serial).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatedSince {
    passes_updated_since: Option<String>,
}

/// What `…/registrations/{passType}` answers: the serials changed since the tag, and the tag
/// to send next time.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SerialNumbers {
    pub serial_numbers: Vec<String>,
    pub last_updated: String,
}

/// `GET /passkit/v1/devices/{device}/registrations/{passType}?passesUpdatedSince=tag`: 200 with
/// the serials, 204 when none changed. The tag is `updated_at` in milliseconds.
pub async fn updated_passes(
    State(state): State<AppState>,
    Path((device, pass_type)): Path<(String, String)>,
    Query(q): Query<UpdatedSince>,
) -> Result<Response, ApiError> {
    let (_, apple) = apple(&state)?;
    check_identifier("deviceLibraryIdentifier", &device)?;
    check_identifier("passTypeIdentifier", &pass_type)?;
    if pass_type != apple.pass_type_id {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let since = match q.passes_updated_since.as_deref() {
        None | Some("") => -1,
        Some(tag) => tag
            .parse::<i64>()
            .map_err(|_| bad_body("passesUpdatedSince: a tag this server gave"))?,
    };
    let passes = state.storage.device_passes(device, since).await?;
    let Some(last) = passes.iter().map(|(_, at)| *at).max() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    Ok(Json(SerialNumbers {
        serial_numbers: passes.into_iter().map(|(s, _)| s).collect(),
        last_updated: last.to_string(),
    })
    .into_response())
}

/// `GET /passkit/v1/passes/{passType}/{serial}`: the pass as it is now (Last-Modified), or 304
/// when it has not changed since If-Modified-Since.
pub async fn latest_pass(
    State(state): State<AppState>,
    Path((pass_type, serial)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = authorised_pass(&state, &headers, &pass_type, &serial).await?;
    let (w, apple) = apple(&state)?;
    let Some((row, content)) = state.storage.current_pass(row.serial, now_ms()).await? else {
        return Err(ApiError::not_found("this pass is no longer issued"));
    };
    if let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
        && row.updated_ms.div_euclid(1000) <= since.timestamp().as_second()
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let bytes = apple_pass_bytes(w, apple, &row, &content)?;
    Ok(pkpass_response(bytes, row.updated_ms))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Logs {
    logs: Vec<String>,
}

/// `POST /passkit/v1/log`: what Wallet reports of problems with the web service, logged.
pub async fn log(
    State(state): State<AppState>,
    ApiBytes(body): ApiBytes,
) -> Result<StatusCode, ApiError> {
    apple(&state)?;
    let logs: Logs = serde_json::from_slice(&body)
        .map_err(|e| bad_body(format!("expected {{\"logs\": […]}}: {e}")))?;
    for line in logs.logs.iter().take(50) {
        tracing::warn!(
            wallet = %line.chars().take(500).collect::<String>(),
            "Apple Wallet reports"
        );
    }
    Ok(StatusCode::OK)
}

/// The PassKit web service's routes (under `/passkit`).
pub fn passkit() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/passkit/v1/devices/{device}/registrations/{pass_type}/{serial}",
            post(register_device).delete(unregister_device),
        )
        .route(
            "/passkit/v1/devices/{device}/registrations/{pass_type}",
            get(updated_passes),
        )
        .route("/passkit/v1/passes/{pass_type}/{serial}", get(latest_pass))
        .route("/passkit/v1/log", post(log))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PASSKIT_BODY))
}
