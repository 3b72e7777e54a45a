//! The console's journeys (issue #19): what became of each journey's entries in the last 30
//! days, the settings edited as JSON and checked by the admin API's own checks, and a run asked
//! for now (one runs every hour). Saving and running are audited; marketers and admins only.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tessera_domain::api::StaffAction;
use tessera_domain::journeys::JourneySettings;

use super::{CsrfForm, Done, Page, allowed, audit, check_form, pages};
use crate::service::Services;
use crate::service::journeys::{JOURNEYS_JOB, JourneyServices};
use crate::{AppState, now_ms};

async fn show(
    state: &AppState,
    s: &crate::service::staff::Session,
    text: &str,
    error: Option<String>,
    done: Option<String>,
    status: StatusCode,
) -> Page {
    let report = state
        .storage
        .journey_report(now_ms() - 30 * 86_400_000)
        .await?;
    Ok((
        status,
        pages::journeys(s, text, &report, error.as_deref(), done.as_deref()),
    )
        .into_response())
}

pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Campaigns).await?;
    let settings = state.storage.journey_settings().await?;
    let text = serde_json::to_string_pretty(&settings).unwrap_or_default();
    show(&state, &s, &text, None, q.done, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct JourneysForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    settings: String,
}

pub(super) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<JourneysForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Campaigns).await?;
    check_form(&headers, &s, &form.csrf)?;
    let refused = |why: String| (why, StatusCode::UNPROCESSABLE_ENTITY);
    let checked = match serde_json::from_str::<JourneySettings>(&form.settings) {
        Err(e) => Err(refused(format!("Not journey settings: {e}"))),
        Ok(mut settings) => crate::routes::journeys::check_settings(&state, &mut settings)
            .await
            .map(|()| settings)
            .map_err(|e| refused(e.problem.detail.clone().unwrap_or(e.problem.title.clone()))),
    };
    let settings = match checked {
        Ok(settings) => settings,
        Err((why, status)) => {
            return show(&state, &s, &form.settings, Some(why), None, status).await;
        }
    };
    let on: Vec<&str> = settings
        .journeys
        .iter()
        .filter(|j| j.enabled)
        .map(|j| j.kind.as_str())
        .collect();
    state
        .storage
        .put_journey_settings(settings.clone(), now_ms())
        .await?;
    audit(&state, &s, "journeys_saved", "journeys", &on.join(",")).await?;
    Ok(Redirect::to("/console/journeys?done=saved").into_response())
}

pub(super) async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Campaigns).await?;
    check_form(&headers, &s, &form.csrf)?;
    let run = format!("now-{}", now_ms());
    state
        .storage
        .schedule_job(JOURNEYS_JOB.to_owned(), run.clone(), now_ms())
        .await?;
    state.jobs_waiting.notify_one();
    audit(&state, &s, "journeys_run", &run, "").await?;
    Ok(Redirect::to("/console/journeys?done=run").into_response())
}
