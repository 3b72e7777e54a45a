//! For the load balancer and the monitoring: liveness, readiness (draining included) and the
//! counters in Prometheus' text format. No credentials: they say nothing about any member.

use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::problem::ApiError;

/// Liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive), `ready` (taking requests) or `draining` (finishing what is in flight).
    pub status: String,
}

#[utoipa::path(get, path = "/health", tag = "ops",
    responses((status = 200, description = "The process answers", body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".to_owned(),
    })
}

#[utoipa::path(get, path = "/ready", tag = "ops",
    responses(
        (status = 200, description = "Taking requests: the storage answers", body = Health),
        (status = 503, description = "Draining before a shutdown, or the storage does not answer", body = Health),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    let (code, status) = if state.draining.load(Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if let Err(e) = state.storage.latest_sequence().await {
        tracing::warn!(error = %e, "not ready: the storage does not answer");
        (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
    } else {
        (StatusCode::OK, "ready")
    };
    (
        code,
        axum::Json(Health {
            status: status.to_owned(),
        }),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Counters of this process, Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let m = &state.metrics;
    let sequence = state.storage.latest_sequence().await?;
    let counter = |name: &str, help: &str, v: u64| {
        format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n")
    };
    let body = [
        counter(
            "tessera_mutations_applied_total",
            "Member actions applied.",
            m.applied.load(Relaxed),
        ),
        counter(
            "tessera_mutations_replayed_total",
            "Answers replayed for a repeated idempotency key.",
            m.replayed.load(Relaxed),
        ),
        counter(
            "tessera_idempotency_key_reused_total",
            "Idempotency keys sent again with another body (422).",
            m.key_reused.load(Relaxed),
        ),
        counter(
            "tessera_webhooks_delivered_total",
            "Webhook deliveries the receiver answered with 2xx.",
            m.webhooks_delivered.load(Relaxed),
        ),
        counter(
            "tessera_webhooks_failed_total",
            "Webhook attempts that failed and will be tried again.",
            m.webhooks_failed.load(Relaxed),
        ),
        counter(
            "tessera_webhooks_dead_total",
            "Webhook deliveries that failed their last attempt (the dead-letter list).",
            m.webhooks_dead.load(Relaxed),
        ),
        format!(
            "# HELP tessera_catalog_sequence The catalog feed's latest sequence.\n\
             # TYPE tessera_catalog_sequence gauge\ntessera_catalog_sequence {sequence}\n"
        ),
        format!(
            "# HELP tessera_draining Whether this process is draining before a shutdown.\n\
             # TYPE tessera_draining gauge\ntessera_draining {}\n",
            u8::from(state.draining.load(Relaxed))
        ),
    ]
    .concat();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}
