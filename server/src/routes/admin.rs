//! The admin API (operator token): the programme, stores, offers, whole catalogs, audits.

use crate::service::Services;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tessera_domain::Program;
use tessera_domain::api::{Campaign, CampaignReport, ErasureReceipt, MemberExport, Problem};
use tessera_domain::catalog::{Catalog, Offer, Store};
use tessera_domain::consent::{Channel, ConsentRecord, ConsentSource, Decision, Purpose};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Admin;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::storage::{CatalogCounts, ImportError};

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
    ApiJson(mut store): ApiJson<Store>,
) -> Result<StatusCode, ApiError> {
    same_id(&id, &store.id)?;
    store.clean().map_err(ApiError::validation)?;
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
    ApiJson(mut offer): ApiJson<Offer>,
) -> Result<StatusCode, ApiError> {
    same_id(&id, &offer.id)?;
    offer.clean().map_err(ApiError::validation)?;
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
        (status = 200, description = "The catalog replaces the old one; what it lacks is deleted. Read as a stream, one entity at a time, in one transaction", body = CatalogCounts),
        (status = 400, description = "Malformed: not JSON, or not shaped as a catalog", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the server's catalog limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An entity breaks a rule, or an id is given twice: nothing is changed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn load_catalog(
    State(state): State<AppState>,
    _: Admin,
    request: axum::extract::Request,
) -> Result<axum::Json<CatalogCounts>, ApiError> {
    crate::problem::require_json(request.headers())?;
    // Spooled to a temporary file as it arrives (memory: one chunk), then read one entity at a
    // time inside the import's transaction: the writer is held for the import, not the upload.
    let file = spool(request.into_body(), state.config.max_catalog_body).await?;
    match state.storage.import_catalog(file).await? {
        Ok(counts) => Ok(axum::Json(counts)),
        Err(ImportError::Syntax(detail)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            tessera_domain::api::codes::INVALID_BODY,
            "The body is not a catalog",
            Some(detail),
        )),
        Err(ImportError::Invalid(e)) => Err(ApiError::validation(e)),
    }
}

/// The body written to an anonymous temporary file, refused beyond `max` bytes.
async fn spool(body: axum::body::Body, max: usize) -> Result<std::fs::File, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let unavailable = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot spool a catalog");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            tessera_domain::api::codes::UNAVAILABLE,
            "Cannot take a catalog now",
            None,
        )
        .with_retry_after(5)
    };
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(unavailable)?;
    let mut out = tokio::fs::File::from_std(file);
    let mut body = body;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                tessera_domain::api::codes::INVALID_BODY,
                "The body could not be read",
                Some(e.to_string()),
            )
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        total += chunk.len();
        if total > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                tessera_domain::api::codes::PAYLOAD_TOO_LARGE,
                "The body is too large",
                Some(format!("a catalog is at most {max} bytes")),
            ));
        }
        out.write_all(&chunk).await.map_err(unavailable)?;
    }
    out.flush().await.map_err(unavailable)?;
    out.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(unavailable)?;
    Ok(out.into_std().await)
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

/// A consent decision taken outside the app: at a store counter or with the call centre (staff
/// record it on the member's behalf and name themselves), or on the website.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffConsent {
    pub purpose: Purpose,
    pub channel: Channel,
    pub decision: Decision,
    pub text_version: String,
    /// SHA-256 of the wording shown or read out, 64 lowercase hex digits.
    pub text_sha256: String,
    pub source: ConsentSource,
    /// The staff member's id; required for `in_store` and `call_centre`.
    #[serde(default)]
    pub recorded_by: Option<String>,
    /// RFC 3339, when the member decided (a paper form signed earlier); default now.
    #[serde(default)]
    pub decided_at: Option<String>,
}

#[utoipa::path(post, path = "/admin/v1/members/{id}/consents", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    request_body = StaffConsent,
    responses(
        (status = 201, description = "Recorded", body = ConsentRecord),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid (staff not named, app screen as source, time in the future…)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn record_consent(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<StaffConsent>,
) -> Result<(StatusCode, axum::Json<ConsentRecord>), ApiError> {
    if body.source == ConsentSource::AppScreen {
        return Err(ApiError::validation(
            "consent.source: app_screen records come from the member's device",
        ));
    }
    let now = jiff::Timestamp::now();
    let decided_at = body
        .decided_at
        .unwrap_or_else(|| tessera_domain::rfc3339_ms(now.as_millisecond()));
    crate::routes::member::check_not_future(&decided_at)?;
    let record = ConsentRecord {
        record_id: format!("c-{}", uuid::Uuid::new_v4().simple()),
        member_id: id,
        purpose: body.purpose,
        channel: body.channel,
        decision: body.decision,
        text_version: body.text_version,
        text_sha256: body.text_sha256,
        effective_at: decided_at.clone(),
        decided_at,
        recorded_at: None,
        source: body.source,
        recorded_by: body.recorded_by,
        app_version: None,
    };
    record.validate().map_err(ApiError::validation)?;
    match state
        .storage
        .staff_consent(record, now.as_millisecond())
        .await?
    {
        None => Err(ApiError::not_found("no such member")),
        Some(Ok(stored)) => Ok((StatusCode::CREATED, axum::Json(stored))),
        Some(Err(refused)) => Err(ApiError::from_problem(refused.into())),
    }
}

#[utoipa::path(get, path = "/admin/v1/members/{id}/consents", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    responses(
        (status = 200, description = "The member's consent ledger, oldest first", body = Vec<ConsentRecord>),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn consent_history(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Vec<ConsentRecord>>, ApiError> {
    state
        .storage
        .consent_history(id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such member"))
}

#[utoipa::path(get, path = "/admin/v1/members/{id}/export", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    responses(
        (status = 200, description = "Everything held about the member", body = MemberExport),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_member(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<MemberExport>, ApiError> {
    state
        .storage
        .export(id, jiff::Timestamp::now().as_millisecond())
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such member"))
}

#[utoipa::path(delete, path = "/admin/v1/members/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    responses(
        (status = 200, description = "Erased", body = ErasureReceipt),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn erase_member(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<ErasureReceipt>, ApiError> {
    state
        .storage
        .erase(
            id,
            jiff::Timestamp::now().as_millisecond(),
            "operator".into(),
        )
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such member"))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AudienceQuery {
    pub purpose: Purpose,
    pub channel: Channel,
}

/// The members a campaign may reach.
#[derive(Debug, Serialize, ToSchema)]
pub struct Audience {
    pub purpose: Purpose,
    pub channel: Channel,
    pub members: Vec<String>,
}

#[utoipa::path(get, path = "/admin/v1/audience", tag = "admin",
    security(("admin" = [])),
    params(AudienceQuery),
    responses(
        (status = 200, description = "Members whose latest decision for the purpose on the channel is a grant", body = Audience),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn audience(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<AudienceQuery>,
) -> Result<axum::Json<Audience>, ApiError> {
    let members = state.storage.audience(q.purpose, q.channel).await?;
    Ok(axum::Json(Audience {
        purpose: q.purpose,
        channel: q.channel,
        members,
    }))
}

#[utoipa::path(put, path = "/admin/v1/members/{id}/segments", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    request_body = Vec<String>,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid segment ids", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_segments(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(segments): ApiJson<Vec<String>>,
) -> Result<StatusCode, ApiError> {
    if segments.len() > 50 {
        return Err(ApiError::validation("segments: at most 50"));
    }
    for s in &segments {
        tessera_domain::catalog::check_id("segments", s).map_err(ApiError::validation)?;
    }
    state
        .storage
        .set_segments(id, segments)
        .await?
        .map(|()| StatusCode::NO_CONTENT)
        .ok_or_else(|| ApiError::not_found("no such member"))
}

/// An audience's shops checked (the admin API's campaigns, the console's count): at most 50,
/// each a shop of the catalog; `Err` says why not.
pub async fn check_shops(
    state: &AppState,
    shops: &[String],
) -> Result<Result<(), String>, crate::storage::StorageError> {
    const FIELD: &str = "campaign.audience.shops";
    if shops.len() > 50 {
        return Ok(Err(format!("{FIELD}: at most 50")));
    }
    for shop in shops {
        if let Err(e) = tessera_domain::catalog::check_id(FIELD, shop) {
            return Ok(Err(e.to_string()));
        }
        if state.storage.shop(shop.clone()).await?.is_none() {
            return Ok(Err(format!("{FIELD}: no shop {shop:?} in the catalog")));
        }
    }
    Ok(Ok(()))
}

/// A campaign checked as the admin API and the console take it (its texts cleaned in place):
/// when to send it (milliseconds; now if it says nothing).
pub async fn check_campaign(state: &AppState, campaign: &mut Campaign) -> Result<i64, ApiError> {
    use tessera_domain::text::{Lines, clean};
    tessera_domain::catalog::check_id("campaign.id", &campaign.id).map_err(ApiError::validation)?;
    // What members read, in its clean form (the push payload's checks follow).
    campaign.offer.clean().map_err(ApiError::validation)?;
    if let Some(t) = campaign.title.as_mut() {
        clean("campaign.title", t, 200, true, Lines::One).map_err(ApiError::validation)?;
    }
    if let Some(b) = campaign.body.as_mut() {
        clean("campaign.body", b, 1000, true, Lines::Several).map_err(ApiError::validation)?;
    }
    let expires =
        tessera_domain::catalog::parse_instant("campaign.expires_at", &campaign.expires_at)
            .map_err(ApiError::validation)?;
    if expires <= jiff::Timestamp::now() {
        return Err(ApiError::validation("campaign.expires_at: already past"));
    }
    let named = &campaign.audience.analytics_segments;
    if !named.is_empty() {
        use crate::service::analytics::AnalyticsServices;
        let settings = state.storage.analytics_settings().await?;
        if let Some(unknown) = named.iter().find(|s| !settings.knows_segment(s)) {
            return Err(ApiError::validation(format!(
                "campaign.audience.analytics_segments: no segment {unknown:?} (a named segment \
                 of the analytics settings, or rfm:<class>)"
            )));
        }
    }
    check_shops(state, &campaign.audience.shops)
        .await?
        .map_err(ApiError::validation)?;
    // Checked once with the longest device id a device can have.
    let sample = crate::push::campaign_payload(campaign, &"d".repeat(64));
    sample.validate().map_err(ApiError::validation)?;
    let size = serde_json::to_vec(&sample)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > crate::push::MAX_PAYLOAD_BYTES - 200 {
        return Err(ApiError::validation(format!(
            "campaign: the push payload would be {size} bytes; FCM and APNs carry 4096"
        )));
    }
    let now = jiff::Timestamp::now();
    let send_at = match &campaign.send_at {
        None => now,
        Some(at) => tessera_domain::catalog::parse_instant("campaign.send_at", at)
            .map_err(ApiError::validation)?,
    };
    if send_at >= expires {
        return Err(ApiError::validation(
            "campaign.send_at: after the campaign expires",
        ));
    }
    Ok(send_at.as_millisecond())
}

#[utoipa::path(post, path = "/admin/v1/campaigns", tag = "admin",
    security(("admin" = [])),
    request_body = Campaign,
    responses(
        (status = 202, description = "Queued: sent in batches by the server's job queue to every device of the audience with consent to offers by push; follow it at the Location", body = CampaignReport,
            headers(("Location" = String, description = "`/admin/v1/campaigns/{id}`"))),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A campaign with this id exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, expired, or larger than a push can carry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run_campaign(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(mut campaign): ApiJson<Campaign>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let send_at_ms = check_campaign(&state, &mut campaign).await?;
    let body = serde_json::to_string(&campaign).map_err(|_| ApiError::internal())?;
    let now = jiff::Timestamp::now().as_millisecond();
    if !state
        .storage
        .create_campaign(campaign.id.clone(), body, send_at_ms, now)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            tessera_domain::api::codes::VALIDATION_FAILED,
            "A campaign with this id exists",
            None,
        ));
    }
    state.jobs_waiting.notify_one();
    let report = state
        .storage
        .campaign_report(campaign.id.clone())
        .await?
        .ok_or_else(ApiError::internal)?;
    let location = format!("/admin/v1/campaigns/{}", campaign.id);
    Ok((
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(report),
    )
        .into_response())
}

#[utoipa::path(get, path = "/admin/v1/campaigns/{id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "Where the campaign is: its state and counts so far", body = CampaignReport),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn campaign_status(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<CampaignReport>, ApiError> {
    state
        .storage
        .campaign_report(id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such campaign"))
}

/// Which devices to revoke: one, or all the member's.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeDevices {
    #[serde(default)]
    pub device_id: Option<String>,
}

/// How many certificates were revoked.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevokedDevices {
    pub revoked: u64,
}

#[utoipa::path(post, path = "/admin/v1/members/{id}/devices/revoke", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    request_body = RevokeDevices,
    responses(
        (status = 200, description = "Revoked: tills refuse these devices' member codes once they refresh", body = RevokedDevices),
        (status = 400, description = "Malformed: not JSON, or not this call's shape", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_devices(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RevokeDevices>,
) -> Result<axum::Json<RevokedDevices>, ApiError> {
    state
        .storage
        .revoke_devices(id, req.device_id, jiff::Timestamp::now().as_millisecond())
        .await?
        .map(|revoked| axum::Json(RevokedDevices { revoked }))
        .ok_or_else(|| ApiError::not_found("no such member"))
}
