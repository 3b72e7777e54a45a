//! The programme's KPIs (admin API, issue #19), read from counters kept with each change.

use axum::extract::State;
use serde::Deserialize;
use tessera_domain::api::{KpiReport, Problem, day_of};
use utoipa::IntoParams;

use crate::auth::Admin;
use crate::problem::{ApiError, ApiQuery};
use crate::service::kpis::KpiServices;
use crate::{AppState, now_ms};

/// The longest period a report covers, in days.
pub const MAX_DAYS: i64 = 732;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// First day, `YYYY-MM-DD` (UTC); default 29 days before `to`.
    pub from: Option<String>,
    /// Last day, included; default today.
    pub to: Option<String>,
    /// One shop's figures (receipts, revenue, coupons redeemed there); default every shop.
    pub shop: Option<String>,
}

/// A day as counted, from `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<i64> {
    let date: jiff::civil::Date = s.parse().ok()?;
    let ts: jiff::Timestamp = format!("{date}T00:00:00Z").parse().ok()?;
    Some(day_of(ts.as_millisecond()))
}

/// The period asked for: (from, to) days, checked.
pub fn period(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), String> {
    let to = match to {
        Some(t) => parse_day(t).ok_or("to: a date, YYYY-MM-DD")?,
        None => day_of(now_ms()),
    };
    let from = match from {
        Some(f) => parse_day(f).ok_or("from: a date, YYYY-MM-DD")?,
        None => to - 29,
    };
    if from > to {
        return Err("from: on or before to".into());
    }
    if to - from >= MAX_DAYS {
        return Err(format!("at most {MAX_DAYS} days at once"));
    }
    Ok((from, to))
}

#[utoipa::path(get, path = "/admin/v1/kpis", tag = "admin",
    security(("admin" = [])),
    params(KpiQuery),
    responses(
        (status = 200, description = "The KPIs of the period: each day, the totals, members' share of revenue, average baskets, points liability and breakage, the coupon funnel by offer", body = KpiReport),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not the operator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Dates that are not dates, a period backwards or longer than 732 days", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn kpis(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<axum::Json<KpiReport>, ApiError> {
    let (from, to) = period(q.from.as_deref(), q.to.as_deref()).map_err(ApiError::validation)?;
    Ok(axum::Json(state.storage.kpis(q.shop, from, to).await?))
}
