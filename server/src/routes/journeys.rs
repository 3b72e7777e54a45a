//! Journeys (admin API, issue #19; docs/journeys.md): the settings, what became of the entries,
//! and runs asked for now (a run is also queued every hour).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_domain::api::{AnalyticsRun, Problem, codes};
use tessera_domain::journeys::{JourneyReport, JourneySettings};

use crate::auth::Admin;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::service::Services;
use crate::service::analytics::AnalyticsServices;
use crate::service::journeys::{JOURNEYS_JOB, JourneyServices};
use crate::{AppState, now_ms};

fn refused(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        codes::JOURNEY_SETTINGS_REFUSED,
        "The journey settings are refused",
        Some(detail),
    )
}

/// The settings checked and cleaned: the domain's rules, then what only the server knows (each
/// offer in the catalog and valid, each lapsed journey's segment known to the analytics), and
/// each journey's push within what FCM and APNs carry with a long name filled in.
pub async fn check_settings(
    state: &AppState,
    settings: &mut JourneySettings,
) -> Result<(), ApiError> {
    settings.clean().map_err(|e| refused(e.to_string()))?;
    let analytics = state.storage.analytics_settings().await?;
    for j in &settings.journeys {
        let Some(offer) = state.storage.catalog_offer(j.offer_id.clone()).await? else {
            return Err(refused(format!(
                "journey {}: no offer {:?} in the catalog",
                j.kind.as_str(),
                j.offer_id
            )));
        };
        let ends = offer.valid_to.parse::<jiff::Timestamp>().ok();
        if j.enabled && ends.is_none_or(|t| t <= jiff::Timestamp::now()) {
            return Err(refused(format!(
                "journey {}: the offer {:?} has ended",
                j.kind.as_str(),
                j.offer_id
            )));
        }
        if j.kind == tessera_domain::journeys::JourneyKind::Lapsed
            && !analytics.knows_segment(j.segment())
        {
            return Err(refused(format!(
                "journey lapsed: no segment {:?} (a named segment of the analytics settings, or \
                 rfm:<class>)",
                j.segment()
            )));
        }
        let vars = tessera_domain::journeys::Vars {
            name: "W".repeat(100),
            points: u64::MAX,
            tier: "W".repeat(64),
            expiring_points: u64::MAX,
            expires_on: "2026-12-31".into(),
            points_to_keep: u64::MAX,
            review_on: "2026-12-31".into(),
        };
        let entry = crate::storage::repo::JourneyEntry {
            journey: j.kind.as_str().to_owned(),
            member_id: "m".repeat(64),
            occurrence: "p99999".into(),
            expires_ms: 0,
        };
        let sample = crate::push::journey_payload(
            &entry,
            &offer,
            &tessera_domain::journeys::render(&j.title, &vars),
            &tessera_domain::journeys::render(&j.body, &vars),
            &"d".repeat(64),
        );
        sample.validate().map_err(|e| refused(e.to_string()))?;
        let size = serde_json::to_vec(&sample)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if size > crate::push::MAX_PAYLOAD_BYTES - 200 {
            return Err(refused(format!(
                "journey {}: the push payload could be {size} bytes; FCM and APNs carry 4096",
                j.kind.as_str()
            )));
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/admin/v1/journeys", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The journeys and their limits (none on until set)", body = JourneySettings),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_settings(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<JourneySettings>, ApiError> {
    Ok(axum::Json(state.storage.journey_settings().await?))
}

#[utoipa::path(put, path = "/admin/v1/journeys", tag = "admin",
    security(("admin" = [])),
    request_body = JourneySettings,
    responses(
        (status = 200, description = "Set, as cleaned: the next run uses them", body = JourneySettings),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Settings the server will not use (`journey_settings_refused`: a kind twice, an unknown placeholder, an offer not in the catalog or ended, an unknown segment, a limit out of range…)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_settings(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(mut settings): ApiJson<JourneySettings>,
) -> Result<axum::Json<JourneySettings>, ApiError> {
    check_settings(&state, &mut settings).await?;
    state
        .storage
        .put_journey_settings(settings.clone(), now_ms())
        .await?;
    Ok(axum::Json(settings))
}

/// The report's period.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Entries made in this many days before now (1–366; default 30).
    pub days: Option<u32>,
}

#[utoipa::path(get, path = "/admin/v1/journeys/report", tag = "admin",
    security(("admin" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "Per journey: members who entered it in the period, sent, waiting, given up, with reasons; pushes and refusals", body = JourneyReport),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A period out of 1 to 366 days", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn report(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<axum::Json<JourneyReport>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::validation("days: must be 1 to 366"));
    }
    let since = now_ms() - i64::from(days) * 86_400_000;
    Ok(axum::Json(state.storage.journey_report(since).await?))
}

#[utoipa::path(post, path = "/admin/v1/journeys/runs", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 202, description = "Queued: follow it at the Location", body = AnalyticsRun),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_run(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let run = format!("now-{}", now_ms());
    state
        .storage
        .schedule_job(JOURNEYS_JOB.to_owned(), run.clone(), now_ms())
        .await?;
    state.jobs_waiting.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/admin/v1/journeys/runs/{run}"))],
        axum::Json(AnalyticsRun {
            run,
            state: "queued".into(),
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/admin/v1/journeys/runs/{run}", tag = "admin",
    security(("admin" = [])),
    params(("run" = String, Path, description = "The run's name: `now-<ms>` as POST answered, or an hour (`YYYY-MM-DDTHH`) for the hourly run")),
    responses(
        (status = 200, description = "Where the run is", body = AnalyticsRun),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run_state(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(run): ApiPath<String>,
) -> Result<axum::Json<AnalyticsRun>, ApiError> {
    state
        .storage
        .job_state(JOURNEYS_JOB.to_owned(), run.clone())
        .await?
        .map(|state| axum::Json(AnalyticsRun { run, state }))
        .ok_or_else(|| ApiError::not_found("no such run"))
}
