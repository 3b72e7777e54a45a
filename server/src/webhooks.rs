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
    /// How often an idle dispatcher looks for due deliveries (one indexed statement: the floor
    /// of the delivery delay).
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
    /// Failures in a row (no success between) after which an endpoint counts as down, and its
    /// failed deliveries back off.
    pub down_after: u32,
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
            poll: Duration::from_millis(50),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            concurrency: 32,
            max_attempts: 12,
            down_after: 20,
            first_delay: Duration::from_secs(5),
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

/// What one attempt came to, before the retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub endpoint_id: String,
    pub event_seq: i64,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// `None`: delivered (2xx).
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

/// Send one claimed delivery.
pub async fn attempt(http: &reqwest::Client, c: &ClaimedDelivery, now_ms: i64) -> Sent {
    let (status, error, retry_after) = match send(http, c, now_ms).await {
        Ok(status) => (Some(status), None, None),
        Err(Failure {
            status,
            error,
            retry_after,
        }) => (status, Some(error), retry_after),
    };
    Sent {
        endpoint_id: c.endpoint_id.clone(),
        event_seq: c.event.seq,
        attempts: c.attempts,
        status,
        error,
        retry_after,
    }
}

/// Each endpoint's failures in a row, as this process saw them. After
/// [`WebhookConfig::down_after`] of them (no success between) the endpoint is down, and a failed
/// delivery's next attempt waits 5 s × 3ⁿ⁻¹ for its n-th attempt (up to 6 h); while it is up (it
/// fails now and then, its other deliveries succeed), a failed delivery is tried again after the
/// first delay, not after a delay grown by chance that the member's later events would wait
/// behind. The first success after it was down is a recovery: its deliveries parked for later
/// are due at once.
#[derive(Debug, Default)]
pub struct Health {
    streaks: std::collections::HashMap<String, u32>,
}

/// What recording an attempt found out about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Up,
    Down,
    /// It answered 2xx after being down.
    Recovered,
}

impl Health {
    /// The outcome to record for `sent`, at `now_ms`, with `jitter` in [0, 1), and what it
    /// says of the endpoint.
    pub fn outcome(
        &mut self,
        config: &WebhookConfig,
        sent: Sent,
        now_ms: i64,
        jitter: f64,
    ) -> (DeliveryOutcome, Verdict) {
        let streak = self.streaks.entry(sent.endpoint_id.clone()).or_default();
        let was_down = *streak >= config.down_after;
        let (retry_at_ms, verdict) = match &sent.error {
            None => {
                *streak = 0;
                (
                    None,
                    if was_down {
                        Verdict::Recovered
                    } else {
                        Verdict::Up
                    },
                )
            }
            Some(_) => {
                *streak = streak.saturating_add(1);
                let down = *streak >= config.down_after;
                let retry = (sent.attempts < config.max_attempts).then(|| {
                    let n = if down { sent.attempts } else { 1 };
                    let delay = config.delay(n, jitter, sent.retry_after);
                    now_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
                });
                (retry, if down { Verdict::Down } else { Verdict::Up })
            }
        };
        let outcome = DeliveryOutcome {
            endpoint_id: sent.endpoint_id,
            event_seq: sent.event_seq,
            status: sent.status,
            error: sent.error,
            retry_at_ms,
        };
        (outcome, verdict)
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

async fn send(http: &reqwest::Client, c: &ClaimedDelivery, now_ms: i64) -> Result<u16, Failure> {
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
        return Ok(status.as_u16());
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
    let mut health = Health::default();
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
                        let http = http.clone();
                        in_flight.spawn(async move { attempt(&http, &c, crate::now_ms()).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim webhook deliveries"),
            }
        }
        let mut sent = Vec::new();
        tokio::select! {
            Some(Ok(s)) = in_flight.join_next(), if !in_flight.is_empty() => sent.push(s),
            _ = tokio::time::sleep(config.poll) => {}
        }
        while let Some(Ok(s)) = in_flight.try_join_next() {
            sent.push(s);
        }
        if sent.is_empty() {
            continue;
        }
        let now = crate::now_ms();
        let mut recovered = Vec::new();
        let done: Vec<DeliveryOutcome> = sent
            .into_iter()
            .map(|s| {
                let (outcome, verdict) = health.outcome(&config, s, now, jitter());
                if verdict == Verdict::Recovered {
                    recovered.push(outcome.endpoint_id.clone());
                }
                outcome
            })
            .collect();
        for endpoint in recovered {
            tracing::info!(endpoint = %endpoint, "webhook endpoint answers again: its retries are due now");
            if let Err(e) = state.storage.hurry_endpoint(endpoint, now).await {
                tracing::warn!(error = %e, "could not bring retries forward");
            }
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
        assert_eq!(c.delay(1, 0.5, None), Duration::from_secs(5));
        assert_eq!(c.delay(2, 0.5, None), Duration::from_secs(15));
        assert_eq!(c.delay(3, 0.5, None), Duration::from_secs(45));
        assert_eq!(c.delay(40, 0.5, None), c.max_delay);
        assert_eq!(c.delay(1, 0.0, None), Duration::from_secs(4));
        assert_eq!(c.delay(1, 1.0, None), Duration::from_secs(6));
        assert_eq!(
            c.delay(1, 0.5, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(
            c.delay(1, 0.5, Some(Duration::from_secs(10_000_000))),
            c.max_delay
        );
    }

    fn sent(endpoint: &str, attempts: u32, ok: bool) -> Sent {
        Sent {
            endpoint_id: endpoint.into(),
            event_seq: 1,
            attempts,
            status: Some(if ok { 204 } else { 503 }),
            error: (!ok).then(|| "503".into()),
            retry_after: None,
        }
    }

    #[test]
    fn a_flaky_endpoint_is_retried_soon_and_one_that_is_down_backs_off() {
        let c = WebhookConfig::default();
        let mut h = Health::default();
        let at = |h: &mut Health, s: Sent| {
            let (o, v) = h.outcome(&c, s, 1_000_000, 0.5);
            (o.retry_at_ms.map(|t| t - 1_000_000), v)
        };
        // Flaky: failures between successes, however many attempts a delivery had.
        assert_eq!(at(&mut h, sent("a", 1, true)), (None, Verdict::Up));
        for _ in 0..c.down_after - 1 {
            assert_eq!(at(&mut h, sent("a", 5, false)), (Some(5_000), Verdict::Up));
        }
        // Down: every delivery failed; the delays grow with the attempts.
        assert_eq!(
            at(&mut h, sent("a", 3, false)),
            (Some(45_000), Verdict::Down)
        );
        assert_eq!(
            at(&mut h, sent("a", 1, false)),
            (Some(5_000), Verdict::Down)
        );
        assert_eq!(
            at(&mut h, sent("a", 12, false)),
            (None, Verdict::Down),
            "dead"
        );
        // A success after that is a recovery; the streak starts again.
        let (o, v) = h.outcome(&c, sent("a", 4, true), 1_000_000, 0.5);
        assert_eq!(
            (o.status, o.error, o.retry_at_ms, v),
            (Some(204), None, None, Verdict::Recovered)
        );
        assert_eq!(at(&mut h, sent("a", 4, false)), (Some(5_000), Verdict::Up));
        assert_eq!(
            at(&mut h, sent("b", 4, false)),
            (Some(5_000), Verdict::Up),
            "per endpoint"
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
