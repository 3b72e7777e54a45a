//! The console's points and tiers (issue #19): the loyalty rules (points per euro, validity,
//! tiers, the void window, the web coupon) edited as JSON, checked by the checks `PUT
//! /admin/v1/loyalty-rules` runs, published as a new version by the staff member, and any earlier
//! version restored (published again: history is kept). Marketers and admins; audited.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tessera_domain::api::StaffAction;
use tessera_domain::loyalty::LoyaltyRules;

use super::{ConsoleError, CsrfForm, Done, Page, allowed, audit, check_form, pages};
use crate::routes::loyalty::{Restore, restore_loyalty};
use crate::service::Services;
use crate::{AppState, now_ms};

async fn show(
    state: &AppState,
    s: &crate::service::staff::Session,
    text: &str,
    error: Option<String>,
    done: Option<String>,
    status: StatusCode,
) -> Page {
    let versions = state.storage.loyalty_rule_versions(50).await?;
    let page = pages::loyalty(s, text, &versions, error.as_deref(), done.as_deref());
    Ok((status, page).into_response())
}

pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Rules).await?;
    let rules = state.storage.loyalty_rules().await?;
    let text = serde_json::to_string_pretty(&rules).unwrap_or_default();
    show(&state, &s, &text, None, q.done, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct LoyaltyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rules: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    action: String,
}

/// The text as loyalty rules that pass the server's checks, or why not (with the line and
/// column where JSON stops making sense).
fn checked(text: &str) -> Result<LoyaltyRules, String> {
    let rules: LoyaltyRules = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let reason = super::json_reason(&e);
        format!("Not loyalty rules: line {line}, column {column}: {reason}")
    })?;
    rules.validate().map_err(|e| e.to_string())?;
    Ok(rules)
}

pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoyaltyForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Rules).await?;
    check_form(&headers, &s, &form.csrf)?;
    let refused = StatusCode::UNPROCESSABLE_ENTITY;
    let rules = match checked(&form.rules) {
        Ok(rules) => rules,
        Err(why) => return show(&state, &s, &form.rules, Some(why), None, refused).await,
    };
    match form.action.as_str() {
        "check" => {
            let done = Some("checked".to_owned());
            show(&state, &s, &form.rules, None, done, StatusCode::OK).await
        }
        "publish" => {
            let note = form.note.trim().chars().take(200).collect::<String>();
            let published = state
                .storage
                .put_loyalty_rules(rules, s.email.clone(), note.clone(), now_ms())
                .await?;
            let Some(version) = published else {
                let why = "web_coupon.offer_id: no such offer, or it has ended".to_owned();
                return show(&state, &s, &form.rules, Some(why), None, refused).await;
            };
            audit(
                &state,
                &s,
                "loyalty_rules_published",
                &version.to_string(),
                &note,
            )
            .await?;
            Ok(Redirect::to("/console/loyalty?done=published").into_response())
        }
        _ => Err(ConsoleError::Invalid("Check or publish.".into())),
    }
}

pub(super) async fn restore(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Rules).await?;
    check_form(&headers, &s, &form.csrf)?;
    match restore_loyalty(&state, version, s.email.clone()).await? {
        Restore::Done(new) => {
            let note = format!("restored version {version}");
            audit(
                &state,
                &s,
                "loyalty_rules_restored",
                &new.to_string(),
                &note,
            )
            .await?;
            Ok(Redirect::to("/console/loyalty?done=restored").into_response())
        }
        Restore::NoSuchVersion => Err(ConsoleError::NotFound("version")),
        Restore::Invalid(why) => Err(ConsoleError::Invalid(why)),
    }
}
