//! The programme's analytics (admin API, issue #19): the published report, a member's scores,
//! the settings, and runs asked for now (a run is also queued every day).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_domain::api::{
    AnalyticsReport, AnalyticsRun, AnalyticsSettings, MemberScore, Problem, codes,
};

use crate::auth::Admin;
use crate::problem::{ApiError, ApiJson, ApiPath};
use crate::service::Services;
use crate::service::analytics::{ANALYTICS_JOB, AnalyticsServices};
use crate::{AppState, now_ms};

#[utoipa::path(get, path = "/admin/v1/analytics", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The latest analysis: RFM classes, named segments, active members, monthly retention, CLV, cohorts, the churn model's AUC against recency alone", body = AnalyticsReport),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No analysis has ended yet (ask for one: POST /admin/v1/analytics/runs)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn report(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<AnalyticsReport>, ApiError> {
    state
        .storage
        .analytics_report()
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no analysis has ended yet"))
}

#[utoipa::path(post, path = "/admin/v1/analytics/runs", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 202, description = "Queued: follow it at the Location", body = AnalyticsRun),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_run(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let run = format!("now-{}", now_ms());
    state
        .storage
        .schedule_job(ANALYTICS_JOB.to_owned(), run.clone(), now_ms())
        .await?;
    state.jobs_waiting.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/admin/v1/analytics/runs/{run}"))],
        axum::Json(AnalyticsRun {
            run,
            state: "queued".into(),
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/admin/v1/analytics/runs/{run}", tag = "admin",
    security(("admin" = [])),
    params(("run" = String, Path, description = "The run's name: `now-<ms>` as POST answered, or a day (`YYYY-MM-DD`) for the daily run")),
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
    let found = state
        .storage
        .job_state(ANALYTICS_JOB.to_owned(), run.clone())
        .await?;
    found
        .map(|state| axum::Json(AnalyticsRun { run, state }))
        .ok_or_else(|| ApiError::not_found("no such run"))
}

#[utoipa::path(get, path = "/admin/v1/analytics/members/{member_id}", tag = "admin",
    security(("admin" = [])),
    params(("member_id" = String, Path, description = "The member's id")),
    responses(
        (status = 200, description = "The member's scores in the latest analysis: RFM, segments, churn risk", body = MemberScore),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member in the latest analysis (enrolled since, or erased)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn member_score(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(member_id): ApiPath<String>,
) -> Result<axum::Json<MemberScore>, ApiError> {
    state
        .storage
        .member_score(member_id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such member in the latest analysis"))
}

#[utoipa::path(get, path = "/admin/v1/analytics/settings", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The settings in force (the defaults until set)", body = AnalyticsSettings),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_settings(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<AnalyticsSettings>, ApiError> {
    Ok(axum::Json(state.storage.analytics_settings().await?))
}

/// The settings checked, as a problem the operator can act on.
pub fn check_settings(settings: &AnalyticsSettings) -> Result<(), ApiError> {
    settings.validate().map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::ANALYTICS_SETTINGS_REFUSED,
            "The analytics settings are refused",
            Some(e.to_string()),
        )
    })
}

#[utoipa::path(put, path = "/admin/v1/analytics/settings", tag = "admin",
    security(("admin" = [])),
    request_body = AnalyticsSettings,
    responses(
        (status = 200, description = "Set: the next run uses them", body = AnalyticsSettings),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Settings the server will not use (`analytics_settings_refused`: a segment without a condition, a name twice, a horizon out of range…)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_settings(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(settings): ApiJson<AnalyticsSettings>,
) -> Result<axum::Json<AnalyticsSettings>, ApiError> {
    check_settings(&settings)?;
    state
        .storage
        .put_analytics_settings(settings.clone(), now_ms())
        .await?;
    Ok(axum::Json(settings))
}
