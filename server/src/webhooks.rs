//! The webhook dispatcher (issue #19, docs/adr/0027): a loop in each server process that claims
//! due deliveries from the database under a lease, signs each as the Standard Webhooks
//! specification says, sends it, and records what came of it: delivered on a 2xx answer; else
//! tried again after a growing, jittered delay (or the receiver's `Retry-After`), and after the
//! last attempt left in the dead-letter list for the operator to replay.
//!
//! At least once: a delivery is recorded after its answer, so a process dying in between sends
//! it again (same `webhook-id`) when its lease runs out. In order per member and endpoint: a
//! delivery is claimable only when the member's earlier deliveries to the endpoint are
//! delivered or dead.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::AppState;
use crate::service::webhooks::{WebhookServices, delivered_event};
use crate::storage::repo::{ClaimedDelivery, DeliveryOutcome};

/// How deliveries are sent.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// How often an idle dispatcher looks for due deliveries.
    pub poll: Duration,
    /// How long a claimed delivery stays this process's: longer than `timeout`, so that a
    /// delivery in flight is never claimed by another.
    pub lease: Duration,
    /// A receiver that has not answered in this is failed (`timeout`).
    pub timeout: Duration,
    /// Deliveries in flight at once, per process.
    pub concurrency: usize,
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// The delay after the first failure; each next one is three times longer, up to `max_delay`
    /// (each varied by ±20 % so that failed deliveries do not come back together).
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Delivered deliveries are forgotten after this; dead ones after `dead_retention`.
    pub retention: Duration,
    pub dead_retention: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            poll: Duration::from_millis(200),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            concurrency: 32,
            max_attempts: 12,
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(6 * 3600),
            retention: Duration::from_secs(7 * 86_400),
            dead_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

impl WebhookConfig {
    /// The delay before attempt `attempts + 1`, with `jitter` in [0, 1) (0.5: none), and at
    /// least what the receiver asked for.
    pub fn delay(&self, attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let base = self
            .first_delay
            .saturating_mul(3u32.saturating_pow(attempts.saturating_sub(1)))
            .min(self.max_delay);
        let varied = base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0));
        varied.max(retry_after.unwrap_or_default().min(self.max_delay))
    }
}

/// The headers of a signed delivery: `webhook-id`, `webhook-timestamp` (Unix seconds) and
/// `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the
/// endpoint's secret).
pub fn signed_headers(
    secret: &str,
    event_id: &str,
    timestamp_s: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], String> {
    let signer = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    let signature = signer
        .sign(event_id, timestamp_s, body)
        .map_err(|e| e.to_string())?;
    Ok([
        (standardwebhooks::HEADER_WEBHOOK_ID, event_id.to_owned()),
        (
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp_s.to_string(),
        ),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
    ])
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// What one attempt came to: an outcome for the database.
pub async fn attempt(
    http: &reqwest::Client,
    config: &WebhookConfig,
    c: &ClaimedDelivery,
    now_ms: i64,
) -> DeliveryOutcome {
    let (status, error, retry_after) = match send(http, c, now_ms).await {
        Ok(()) => (None, None, None),
        Err(Failure {
            status,
            error,
            retry_after,
        }) => (status, Some(error), retry_after),
    };
    let retry_at_ms = error.as_ref().and_then(|_| {
        (c.attempts < config.max_attempts).then(|| {
            let delay = config.delay(c.attempts, jitter(), retry_after);
            now_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
        })
    });
    DeliveryOutcome {
        endpoint_id: c.endpoint_id.clone(),
        event_seq: c.event.seq,
        status: status.or_else(|| error.is_none().then_some(200)),
        error,
        retry_at_ms,
    }
}

struct Failure {
    status: Option<u16>,
    error: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn of(error: String) -> Self {
        Failure {
            status: None,
            error,
            retry_after: None,
        }
    }
}

async fn send(http: &reqwest::Client, c: &ClaimedDelivery, now_ms: i64) -> Result<(), Failure> {
    let event = delivered_event(&c.event).map_err(|e| Failure::of(e.to_string()))?;
    let body = serde_json::to_vec(&event).map_err(|e| Failure::of(e.to_string()))?;
    let headers = signed_headers(&c.secret, &c.event.id, now_ms.div_euclid(1000), &body)
        .map_err(Failure::of)?;
    let mut request = http
        .post(&c.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| {
        Failure::of(if e.is_timeout() {
            "timeout".to_owned()
        } else {
            format!("unreachable: {e}")
        })
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Err(Failure {
        status: Some(status.as_u16()),
        error: crate::push::refusal(response).await,
        retry_after,
    })
}

/// The HTTP client deliveries are sent with: no redirects followed (an endpoint is the URL the
/// operator wrote), the configured timeout.
pub fn client(config: &WebhookConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .user_agent(concat!("Tessera-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// The dispatcher loop: keep up to `concurrency` deliveries in flight, claim more as room
/// frees, record outcomes as they come; until the process drains (what is in flight is
/// finished and recorded).
pub async fn run_dispatcher(state: AppState) {
    if !state.config.jobs.enabled {
        return;
    }
    let config = state.config.webhooks.clone();
    let http = client(&config);
    let owner = format!("{}-webhooks", state.process);
    let lease_ms = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX);
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        let draining = state.draining.load(Ordering::Relaxed);
        if draining && in_flight.is_empty() {
            return;
        }
        let room = config.concurrency.saturating_sub(in_flight.len());
        if !draining && room > 0 {
            let claimed = state
                .storage
                .claim_deliveries(owner.clone(), crate::now_ms(), lease_ms, room as u32)
                .await;
            match claimed {
                Ok(batch) => {
                    for c in batch {
                        let (http, config) = (http.clone(), config.clone());
                        in_flight.spawn(async move {
                            attempt(&http, &config, &c, crate::now_ms()).await
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim webhook deliveries"),
            }
        }
        let mut done = Vec::new();
        tokio::select! {
            Some(Ok(outcome)) = in_flight.join_next(), if !in_flight.is_empty() => {
                done.push(outcome)
            }
            _ = tokio::time::sleep(config.poll) => {}
        }
        while let Some(Ok(outcome)) = in_flight.try_join_next() {
            done.push(outcome);
        }
        if done.is_empty() {
            continue;
        }
        for o in &done {
            match &o.error {
                None => state
                    .metrics
                    .webhooks_delivered
                    .fetch_add(1, Ordering::Relaxed),
                Some(_) if o.retry_at_ms.is_some() => state
                    .metrics
                    .webhooks_failed
                    .fetch_add(1, Ordering::Relaxed),
                Some(why) => {
                    tracing::warn!(endpoint = %o.endpoint_id, sequence = o.event_seq,
                        error = %why, "webhook delivery dead after its last attempt");
                    state.metrics.webhooks_dead.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
        if let Err(e) = state
            .storage
            .record_outcomes(owner.clone(), done, crate::now_ms())
            .await
        {
            // Left to the leases: the deliveries are sent again when they run out.
            tracing::warn!(error = %e, "could not record webhook outcomes");
        }
    }
}

/// Forget deliveries past their retention (the hourly purge).
pub async fn purge(state: &AppState, now_ms: i64) -> Result<u64, crate::storage::StorageError> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let config = &state.config.webhooks;
    state
        .storage
        .purge_webhooks(
            now_ms.saturating_sub(ms(config.retention)),
            now_ms.saturating_sub(ms(config.dead_retention)),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_threefold_up_to_the_cap_and_honour_retry_after() {
        let c = WebhookConfig::default();
        assert_eq!(c.delay(1, 0.5, None), Duration::from_secs(10));
        assert_eq!(c.delay(2, 0.5, None), Duration::from_secs(30));
        assert_eq!(c.delay(3, 0.5, None), Duration::from_secs(90));
        assert_eq!(c.delay(40, 0.5, None), c.max_delay);
        assert_eq!(c.delay(1, 0.0, None), Duration::from_secs(8));
        assert_eq!(c.delay(1, 1.0, None), Duration::from_secs(12));
        assert_eq!(
            c.delay(1, 0.5, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(
            c.delay(1, 0.5, Some(Duration::from_secs(10_000_000))),
            c.max_delay
        );
    }

    #[test]
    fn signatures_verify_with_the_reference_implementation() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"id":"evt_1","type":"member.erased"}"#;
        let now = jiff::Timestamp::now().as_second();
        let headers = signed_headers(secret, "evt_1", now, body).unwrap();
        let mut map = axum::http::HeaderMap::new();
        for (name, value) in &headers {
            map.insert(*name, value.parse().unwrap());
        }
        let verifier = standardwebhooks::Webhook::new(secret).unwrap();
        verifier.verify(body, &map).unwrap();
        assert!(verifier.verify(br#"{"id":"evt_2"}"#, &map).is_err());
        assert!(signed_headers("whsec_not base64!", "evt_1", now, body).is_err());
    }
}
