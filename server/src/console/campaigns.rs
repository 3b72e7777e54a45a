//! The console's campaigns (issue #19): an audience built from the latest analysis' segments and
//! RFM classes, tiers and interests, counted within consent before anything is sent; a push
//! campaign sent now or at a set time through the job queue; the latest campaigns and their
//! results. Forms repeat fields (one `segment` per box ticked), so they are parsed as pairs.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use tessera_domain::api::{Campaign, CampaignAudience, RfmClass, StaffAction};

use super::{ConsoleError, Page, allowed, audit, check_form, pages};
use crate::service::Services;
use crate::service::analytics::AnalyticsServices;
use crate::{AppState, now_ms};

/// A form's fields, in order (a field may repeat).
pub(super) fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn one<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.trim())
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The audience a form describes.
pub(super) fn audience(form: &[(String, String)]) -> CampaignAudience {
    CampaignAudience {
        tiers: list(one(form, "tiers")),
        segments: vec![],
        categories: list(one(form, "interests")),
        analytics_segments: form
            .iter()
            .filter(|(k, _)| k == "segment")
            .map(|(_, v)| v.clone())
            .collect(),
        shops: list(one(form, "shops")),
    }
}

/// How many the audience reaches now.
pub type Reach = crate::storage::AudienceCount;

/// Where the page's script is served: it asks [`count`] again each time the audience changes
/// (a pause of 400 ms after typing); without it, the **Count the audience** button does.
pub const SCRIPT_PATH: &str = "/console/assets/audience-count.js";

/// How many `wanted` reaches now, or why it cannot be counted (its shops, checked as the admin
/// API checks a campaign's).
async fn reach(
    state: &AppState,
    wanted: &CampaignAudience,
) -> Result<Result<Reach, String>, ConsoleError> {
    if let Err(why) = crate::routes::admin::check_shops(state, &wanted.shops).await? {
        return Ok(Err(why));
    }
    Ok(Ok(state.storage.audience_count(wanted.clone()).await?))
}

/// `GET /console/campaigns/count?…`: the audience the builder's fields describe, counted within
/// consent, as JSON (422 with the reason for a shop not in the catalog). Reads only.
pub(super) async fn count(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Page {
    allowed(&state, &headers, StaffAction::Campaigns).await?;
    let form = pairs(query.unwrap_or_default().as_bytes());
    Ok(match reach(&state, &audience(&form)).await? {
        Ok(counted) => Json(counted).into_response(),
        Err(why) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": why })),
        )
            .into_response(),
    })
}

pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Campaigns).await?;
    let form = pairs(query.unwrap_or_default().as_bytes());
    let wanted = audience(&form);
    let reach = if form.iter().any(|(k, _)| k == "count") {
        Some(reach(&state, &wanted).await?)
    } else {
        None
    };
    let settings = state.storage.analytics_settings().await?;
    let mut choices: Vec<String> = settings.segments.iter().map(|x| x.name.clone()).collect();
    choices.extend(RfmClass::ALL.iter().map(|c| format!("rfm:{}", c.as_str())));
    let campaigns = state.storage.recent_campaigns(50).await?;
    let done = one(&form, "done").to_owned();
    let page = pages::campaigns(&s, &choices, &wanted, reach, &campaigns, &done);
    Ok(super::with_script(page.into_response()))
}

/// `YYYY-MM-DD` as the end of that day (UTC), or `YYYY-MM-DDTHH:MM` as that minute (UTC).
fn instant(field: &str, text: &str, end_of_day: bool) -> Result<String, ConsoleError> {
    let bad = || ConsoleError::Invalid(format!("{field}: a date (and time), in UTC"));
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let time = if end_of_day { "23:59:59" } else { "00:00:00" };
        return Ok(format!("{date}T{time}Z"));
    }
    let at: jiff::civil::DateTime = text.parse().map_err(|_| bad())?;
    Ok(format!("{}Z", at.strftime("%Y-%m-%dT%H:%M:%S")))
}

pub(super) async fn send(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Page {
    let s = allowed(&state, &headers, StaffAction::Campaigns).await?;
    let form = pairs(&body);
    check_form(&headers, &s, one(&form, "csrf"))?;
    let offer_id = one(&form, "offer");
    let offer = state
        .storage
        .catalog_offer(offer_id.to_owned())
        .await?
        .ok_or_else(|| ConsoleError::Invalid(format!("No offer {offer_id:?} in the catalog.")))?;
    let text = |name: &str| Some(one(&form, name).to_owned()).filter(|t| !t.is_empty());
    let mut campaign = Campaign {
        id: one(&form, "id").to_owned(),
        offer,
        title: text("title"),
        body: text("body"),
        expires_at: instant("Expires", one(&form, "expires"), true)?,
        send_at: match text("send_at") {
            Some(at) => Some(instant("Send at", &at, false)?),
            None => None,
        },
        collapse_key: None,
        audience: audience(&form),
    };
    let send_at_ms = crate::routes::admin::check_campaign(&state, &mut campaign)
        .await
        .map_err(|e| {
            ConsoleError::Invalid(e.problem.detail.clone().unwrap_or(e.problem.title.clone()))
        })?;
    let json = serde_json::to_string(&campaign).map_err(crate::storage::StorageError::backend)?;
    if !state
        .storage
        .create_campaign(campaign.id.clone(), json, send_at_ms, now_ms())
        .await?
    {
        return Err(ConsoleError::Invalid(format!(
            "A campaign with the id {:?} exists.",
            campaign.id
        )));
    }
    state.jobs_waiting.notify_one();
    let detail = serde_json::to_string(&campaign.audience).unwrap_or_default();
    audit(&state, &s, "campaign_created", &campaign.id, &detail).await?;
    Ok(Redirect::to("/console/campaigns?done=queued").into_response())
}
