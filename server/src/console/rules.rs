//! The console's rules (issue #19): the rule set (challenges and earning rules) edited as JSON,
//! checked by the same validation the server enforces, tried on a member's history (a dry run,
//! nothing published or paid), published as a new version by the staff member, and any earlier
//! version restored (published again: history is kept). Everything published is audited.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use tessera_domain::api::StaffAction;
use tessera_domain::rules::{RuleDryRun, RuleSet};

use super::{ConsoleError, CsrfForm, Done, Page, allowed, audit, check_form, pages};
use crate::service::Services;
use crate::service::staff::StaffServices;
use crate::{AppState, now_ms};

/// What the page shows besides the editor.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The text did not parse or validate: why.
    pub error: Option<String>,
    /// It passed the checks.
    pub valid: bool,
    pub dry_run: Option<RuleDryRun>,
    pub done: Option<String>,
}

async fn show(
    state: &AppState,
    s: &crate::service::staff::Session,
    text: &str,
    member: &str,
    outcome: Outcome,
    status: StatusCode,
) -> Page {
    let versions = state.storage.rule_versions(50).await?;
    let page = pages::rules(s, text, member, &versions, &outcome);
    Ok(super::with_script((status, page).into_response()))
}

pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Rules).await?;
    let text = match state.storage.challenge_rules().await? {
        Some(rules) => serde_json::to_string_pretty(&rules).unwrap_or_default(),
        None => "{\n  \"version\": 1,\n  \"challenges\": []\n}".to_owned(),
    };
    let outcome = Outcome {
        done: q.done,
        ..Outcome::default()
    };
    show(&state, &s, &text, "", outcome, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct RulesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rules: String,
    #[serde(default)]
    member: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    action: String,
}

/// Why a text is not a rule set the server would publish.
#[derive(Debug, Serialize)]
pub struct Refusal {
    pub reason: String,
    /// Where the JSON stops making sense (1-based), when it does not parse.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(
                f,
                "Not a rule set: line {line}, column {column}: {}",
                self.reason
            ),
            _ => f.write_str(&self.reason),
        }
    }
}

/// The text as a rule set that passes the server's checks (the domain's `RuleSet::validate`,
/// as `PUT /admin/v1/challenges` runs them), or why not.
fn checked(text: &str) -> Result<RuleSet, Refusal> {
    let rules: RuleSet = serde_json::from_str(text).map_err(|e| Refusal {
        reason: super::json_reason(&e),
        line: Some(e.line()),
        column: Some(e.column()),
    })?;
    rules.validate().map_err(|e| Refusal {
        reason: e.to_string(),
        line: None,
        column: None,
    })?;
    Ok(rules)
}

/// Where the page's script is served: it sends the text to [`check`] as it is typed (a pause
/// of 400 ms) and shows the answer; without it, the **Check** button does the same.
pub const SCRIPT_PATH: &str = "/console/assets/rules-check.js";

/// What [`check`] answers.
#[derive(Debug, Serialize)]
pub struct Checked {
    pub valid: bool,
    #[serde(flatten)]
    pub refusal: Option<Refusal>,
}

/// `POST /console/rules/check`: the text checked as the editor's script sends it, answered as
/// JSON. Nothing is written or audited (the same checks run again when it is published).
pub(super) async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RulesForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Rules).await?;
    check_form(&headers, &s, &form.csrf)?;
    let refusal = checked(&form.rules).err();
    Ok(Json(Checked {
        valid: refusal.is_none(),
        refusal,
    })
    .into_response())
}

pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RulesForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Rules).await?;
    check_form(&headers, &s, &form.csrf)?;
    let member = form.member.trim().to_owned();
    let rules = match checked(&form.rules) {
        Ok(rules) => rules,
        Err(why) => {
            let outcome = Outcome {
                error: Some(why.to_string()),
                ..Outcome::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return show(&state, &s, &form.rules, &member, outcome, status).await;
        }
    };
    match form.action.as_str() {
        "check" => {
            let outcome = Outcome {
                valid: true,
                ..Outcome::default()
            };
            show(&state, &s, &form.rules, &member, outcome, StatusCode::OK).await
        }
        "dry-run" => {
            let found = match member.is_empty() {
                true => None,
                false => state.storage.find_member(member.clone()).await?,
            };
            let Some(id) = found else {
                return Err(ConsoleError::Invalid(
                    "A dry run needs a member: their card number or id.".into(),
                ));
            };
            let run = state
                .storage
                .rule_dry_run(id, rules, now_ms())
                .await?
                .ok_or(ConsoleError::NotFound("member"))?
                .map_err(|e| ConsoleError::Invalid(e.to_string()))?;
            let outcome = Outcome {
                valid: true,
                dry_run: Some(run),
                ..Outcome::default()
            };
            show(&state, &s, &form.rules, &member, outcome, StatusCode::OK).await
        }
        "publish" => {
            let note = form.note.trim().chars().take(200).collect::<String>();
            let version = state
                .storage
                .publish_rule_set(rules, s.email.clone(), note.clone(), now_ms())
                .await?;
            audit(&state, &s, "rules_published", &version.to_string(), &note).await?;
            Ok(Redirect::to("/console/rules?done=published").into_response())
        }
        _ => Err(ConsoleError::Invalid("Check, try or publish.".into())),
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
    let rules = state
        .storage
        .rule_version(version)
        .await?
        .ok_or(ConsoleError::NotFound("version"))?;
    rules
        .validate()
        .map_err(|e| ConsoleError::Invalid(e.to_string()))?;
    let note = format!("restored version {version}");
    let new = state
        .storage
        .publish_rule_set(rules, s.email.clone(), note.clone(), now_ms())
        .await?;
    audit(&state, &s, "rules_restored", &new.to_string(), &note).await?;
    Ok(Redirect::to("/console/rules?done=restored").into_response())
}
