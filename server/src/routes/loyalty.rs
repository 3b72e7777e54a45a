//! The operator's side of points and tiers: the rules, corrections, and the redemption
//! conflicts offline tills left for review.

use crate::service::Services;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_domain::api::{
    PointsAdjustment, Problem, RedemptionConflict, RuleDryRunRequest, RuleVersion,
};
use tessera_domain::loyalty::LoyaltyRules;
use tessera_domain::rules::{RuleDryRun, RuleEvent, RuleSet};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Admin;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::{AppState, now_ms};

#[utoipa::path(get, path = "/admin/v1/loyalty-rules", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Points and tier rules in force", body = LoyaltyRules),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_rules(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<LoyaltyRules>, ApiError> {
    Ok(axum::Json(state.storage.loyalty_rules().await?))
}

#[utoipa::path(put, path = "/admin/v1/loyalty-rules", tag = "admin",
    security(("admin" = [])),
    request_body = LoyaltyRules,
    responses(
        (status = 204, description = "In force from now (tiers are reviewed at each member's next change)"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, or the web coupon's offer does not exist", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_rules(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(rules): ApiJson<LoyaltyRules>,
) -> Result<StatusCode, ApiError> {
    rules.validate().map_err(ApiError::validation)?;
    let by = "operator".to_owned();
    match state
        .storage
        .put_loyalty_rules(rules, by, String::new(), now_ms())
        .await?
    {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(no_web_offer()),
    }
}

fn no_web_offer() -> ApiError {
    ApiError::validation("web_coupon.offer_id: no such offer, or it has ended")
}

#[utoipa::path(get, path = "/admin/v1/loyalty-rules/versions", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The versions of the points and tier rules, newest first (at most 200): every change is kept", body = Vec<RuleVersion>),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn loyalty_versions(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<Vec<RuleVersion>>, ApiError> {
    Ok(axum::Json(state.storage.loyalty_rule_versions(200).await?))
}

#[utoipa::path(get, path = "/admin/v1/loyalty-rules/versions/{version}", tag = "admin",
    security(("admin" = [])),
    params(("version" = i64, Path, description = "The version")),
    responses(
        (status = 200, description = "The points and tier rules of that version", body = LoyaltyRules),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn loyalty_version(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(version): ApiPath<i64>,
) -> Result<axum::Json<LoyaltyRules>, ApiError> {
    state
        .storage
        .loyalty_rule_version(version)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such version"))
}

#[utoipa::path(post, path = "/admin/v1/loyalty-rules/versions/{version}/restore", tag = "admin",
    security(("admin" = [])),
    params(("version" = i64, Path, description = "The version to put in force again")),
    responses(
        (status = 200, description = "In force again, as a new version (history is kept)", body = Restored),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "It no longer passes this server's checks, or its web coupon's offer has ended", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn restore_loyalty_version(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(version): ApiPath<i64>,
) -> Result<axum::Json<Restored>, ApiError> {
    match restore_loyalty(&state, version, "operator".into()).await? {
        Restore::Done(version) => Ok(axum::Json(Restored { version })),
        Restore::NoSuchVersion => Err(ApiError::not_found("no such version")),
        Restore::Invalid(why) => Err(ApiError::validation(why)),
    }
}

/// What a restore of the loyalty rules came to.
pub(crate) enum Restore {
    Done(i64),
    NoSuchVersion,
    /// It no longer passes the checks (this build's, or its web coupon's offer ended): why.
    Invalid(String),
}

/// Put an earlier version of the loyalty rules in force again, checked again by this build, as
/// a new version noting which one it restored (the admin API's and the console's).
pub(crate) async fn restore_loyalty(
    state: &AppState,
    version: i64,
    by: String,
) -> Result<Restore, crate::storage::StorageError> {
    let Some(rules) = state.storage.loyalty_rule_version(version).await? else {
        return Ok(Restore::NoSuchVersion);
    };
    if let Err(e) = rules.validate() {
        return Ok(Restore::Invalid(e.to_string()));
    }
    let note = format!("restored version {version}");
    Ok(
        match state
            .storage
            .put_loyalty_rules(rules, by, note, now_ms())
            .await?
        {
            Some(new) => Restore::Done(new),
            None => Restore::Invalid("web_coupon.offer_id: no such offer, or it has ended".into()),
        },
    )
}

/// The balance after a correction.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointsBalance {
    pub balance: u64,
}

#[utoipa::path(post, path = "/admin/v1/members/{id}/points", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    request_body = PointsAdjustment,
    responses(
        (status = 200, description = "Applied", body = PointsBalance),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, or it would take the balance below zero", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn adjust_points(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(adj): ApiJson<PointsAdjustment>,
) -> Result<axum::Json<PointsBalance>, ApiError> {
    if adj.points == 0 || adj.points.unsigned_abs() > 100_000_000 {
        return Err(ApiError::validation(
            "points: not 0, at most 100,000,000 either way",
        ));
    }
    if adj.reason.trim().is_empty() || adj.reason.chars().count() > 200 {
        return Err(ApiError::validation("reason: 1 to 200 characters"));
    }
    match state.storage.adjust_points(id, adj, now_ms()).await? {
        None => Err(ApiError::not_found("no such member")),
        Some(Ok(balance)) => Ok(axum::Json(PointsBalance { balance })),
        Some(Err(refused)) => Err(ApiError::from_problem(refused.into())),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConflictQuery {
    /// At most this many, newest first (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/v1/redemption-conflicts", tag = "admin",
    security(("admin" = [])),
    params(ConflictQuery),
    responses(
        (status = 200, description = "Offline redemptions that lost to an earlier one, newest first", body = Vec<RedemptionConflict>),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The limit is out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn conflicts(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<ConflictQuery>,
) -> Result<axum::Json<Vec<RedemptionConflict>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit: 1 to 1000"));
    }
    Ok(axum::Json(state.storage.redemption_conflicts(limit).await?))
}

#[utoipa::path(get, path = "/admin/v1/challenges", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The programme's challenges", body = RuleSet),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "None were put", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_challenges(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<RuleSet>, ApiError> {
    match state.storage.challenge_rules().await? {
        Some(rules) => Ok(axum::Json(rules)),
        None => Err(ApiError::not_found("no challenges were put")),
    }
}

#[utoipa::path(put, path = "/admin/v1/challenges", tag = "admin",
    security(("admin" = [])),
    request_body = RuleSet,
    responses(
        (status = 204, description = "In force; sent to phones with the catalog feed. Members' progress follows at their next event; rewards already paid stay paid"),
        (status = 400, description = "Malformed, or an unknown field or kind", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, unsatisfiable, or a newer format version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_challenges(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(rules): ApiJson<RuleSet>,
) -> Result<StatusCode, ApiError> {
    rules
        .validate()
        .map_err(|e| ApiError::validation(e.to_string()))?;
    state.storage.put_challenge_rules(rules).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Events the programme's systems report for one member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleEventBatch {
    /// 1 to 1,000 events; an id the server already holds for the member counts once.
    pub events: Vec<RuleEvent>,
}

/// What an ingestion did.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestReport {
    /// Events new to the server.
    pub accepted: u32,
    /// Challenge rewards the events completed and that were paid now.
    pub rewards_paid: u32,
}

#[utoipa::path(post, path = "/admin/v1/members/{id}/rule-events", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    request_body = RuleEventBatch,
    responses(
        (status = 200, description = "Recorded and evaluated", body = IngestReport),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, or an event later than the server's clock", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ingest_rule_events(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(batch): ApiJson<RuleEventBatch>,
) -> Result<axum::Json<IngestReport>, ApiError> {
    if batch.events.is_empty() || batch.events.len() > 1000 {
        return Err(ApiError::validation("events: 1 to 1000"));
    }
    for e in &batch.events {
        e.validate()
            .map_err(|e| ApiError::validation(e.to_string()))?;
    }
    match state
        .storage
        .ingest_rule_events(id, batch.events, now_ms())
        .await?
    {
        None => Err(ApiError::not_found("no such member")),
        Some(Ok(r)) => Ok(axum::Json(IngestReport {
            accepted: r.accepted,
            rewards_paid: r.rewards_paid,
        })),
        Some(Err(refused)) => Err(ApiError::from_problem(refused.into())),
    }
}

/// A member's birthday, as the programme's CRM knows it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Birthday {
    /// `MM-DD`; `null` clears it.
    pub birthday: Option<String>,
}

#[utoipa::path(put, path = "/admin/v1/members/{id}/birthday", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The member's id")),
    request_body = Birthday,
    responses(
        (status = 204, description = "Stored: purchases that day earn the earning rules' birthday multiplier"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a month and day", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_birthday(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Birthday>,
) -> Result<StatusCode, ApiError> {
    if let Some(b) = &body.birthday
        && tessera_domain::loyalty::month_day(b).is_none()
    {
        return Err(ApiError::validation("birthday: MM-DD, a day that exists"));
    }
    if state.storage.set_birthday(id, body.birthday).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such member"))
    }
}

#[utoipa::path(get, path = "/admin/v1/challenges/versions", tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The rule set's published versions, newest first (at most 200)", body = Vec<RuleVersion>),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rule_versions(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<Vec<RuleVersion>>, ApiError> {
    Ok(axum::Json(state.storage.rule_versions(200).await?))
}

#[utoipa::path(get, path = "/admin/v1/challenges/versions/{version}", tag = "admin",
    security(("admin" = [])),
    params(("version" = i64, Path, description = "The version's number")),
    responses(
        (status = 200, description = "The rule set as published then", body = RuleSet),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rule_version(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(version): ApiPath<i64>,
) -> Result<axum::Json<RuleSet>, ApiError> {
    state
        .storage
        .rule_version(version)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such version"))
}

/// The version published by a restore.
#[derive(Debug, Serialize, ToSchema)]
pub struct Restored {
    pub version: i64,
}

#[utoipa::path(post, path = "/admin/v1/challenges/versions/{version}/restore", tag = "admin",
    security(("admin" = [])),
    params(("version" = i64, Path, description = "The version to publish again")),
    responses(
        (status = 200, description = "Published again as a new version (history is kept)", body = Restored),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The version no longer passes this build's checks", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn restore_rule_version(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(version): ApiPath<i64>,
) -> Result<axum::Json<Restored>, ApiError> {
    let rules = state
        .storage
        .rule_version(version)
        .await?
        .ok_or_else(|| ApiError::not_found("no such version"))?;
    rules
        .validate()
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let version = state
        .storage
        .publish_rule_set(
            rules,
            "operator".into(),
            format!("restored version {version}"),
            now_ms(),
        )
        .await?;
    Ok(axum::Json(Restored { version }))
}

#[utoipa::path(post, path = "/admin/v1/challenges/dry-run", tag = "admin",
    security(("admin" = [])),
    request_body = RuleDryRunRequest,
    responses(
        (status = 200, description = "What the rule set would have given the member over their history, next to the rules in force: each purchase's points, each challenge's completions and rewards. Nothing is published or paid", body = RuleDryRun),
        (status = 400, description = "Malformed, or an unknown field or kind", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The rule set is invalid, unsatisfiable, or a newer format version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rule_dry_run(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(req): ApiJson<RuleDryRunRequest>,
) -> Result<axum::Json<RuleDryRun>, ApiError> {
    req.rules
        .validate()
        .map_err(|e| ApiError::validation(e.to_string()))?;
    match state
        .storage
        .rule_dry_run(req.member_id, req.rules, now_ms())
        .await?
    {
        None => Err(ApiError::not_found("no such member")),
        Some(Err(e)) => Err(ApiError::validation(e.to_string())),
        Some(Ok(run)) => Ok(axum::Json(run)),
    }
}
