//! One request to the server, with everything around it: timeouts, retries with exponential
//! backoff and full jitter, `Retry-After`, a cap on answer size, the protocol-version check and
//! the server-clock reading. Answers with a final status (2xx, 304, 4xx) go back to the caller.

use crate::clock::now_ms;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use reqwest::{Method, StatusCode, header};

use super::SyncConfig;
use super::error::SyncError;
use crate::api::{API_VERSION, API_VERSION_HEADER, Problem, SERVER_TIME_HEADER};

/// A request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub bearer: Option<String>,
    pub idempotency_key: Option<String>,
    pub if_none_match: Option<String>,
    pub json_body: Option<Vec<u8>>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Request {
            method: Method::GET,
            path: path.into(),
            bearer: None,
            idempotency_key: None,
            if_none_match: None,
            json_body: None,
        }
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Request {
            method: Method::DELETE,
            ..Request::get(path)
        }
    }

    pub fn post(path: impl Into<String>, body: Vec<u8>) -> Self {
        Request {
            method: Method::POST,
            json_body: Some(body),
            ..Request::get(path)
        }
    }
}

/// A final answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub replayed: bool,
    /// `tessera-member-version`, on catalog answers.
    pub member_version: Option<i64>,
    /// Server clock minus device clock, from this exchange.
    pub clock_offset_ms: Option<i64>,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, SyncError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| SyncError::protocol(format!("malformed answer: {e}")))
    }

    /// The problem document of an error answer (or a stand-in when there is none).
    pub fn problem(&self) -> Problem {
        serde_json::from_slice::<Problem>(&self.body).unwrap_or_else(|_| {
            Problem::new(self.status.as_u16(), "unknown", "Unexpected answer", None)
        })
    }
}

/// Counts of what went over the network during one sync.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub requests: u64,
    pub retries: u64,
    pub bytes_received: u64,
}

enum Failure {
    /// Try again after the backoff (or at least `after`).
    Transient {
        error: SyncError,
        after: Option<Duration>,
    },
    Permanent(SyncError),
}

pub struct Http {
    client: reqwest::Client,
    base: String,
    config: SyncConfig,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("base", &self.base).finish()
    }
}

fn map_reqwest(e: &reqwest::Error) -> SyncError {
    if e.is_timeout() {
        SyncError::Timeout
    } else if e.is_connect() {
        SyncError::Offline
    } else if e.is_body() || e.is_decode() {
        SyncError::protocol("the answer was cut short or garbled")
    } else {
        // Connection reset mid-request, closed before an answer…: the network's fault.
        SyncError::Offline
    }
}

/// Checks a server base URL: http(s), a host, no query or fragment.
pub fn check_server_url(url: &str) -> Result<String, SyncError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| SyncError::InvalidInput {
        field: "server_url",
        reason: "is not a URL".into(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(SyncError::InvalidInput {
            field: "server_url",
            reason: "must be an http(s) URL with a host and no query".into(),
        });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Http {
    pub fn new(base: &str, config: SyncConfig) -> Result<Self, SyncError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("tessera-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::protocol(format!("HTTP client: {e}")))?;
        Ok(Http {
            client,
            base: check_server_url(base)?,
            config,
        })
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// Send `req`, retrying what is worth retrying, and return the final answer.
    pub async fn send(&self, req: &Request, traffic: &mut Traffic) -> Result<Answer, SyncError> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.config.base_delay)
            .with_max_delay(self.config.max_delay)
            .with_max_times(self.config.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        loop {
            traffic.requests += 1;
            let failure = match self.attempt(req, traffic).await {
                Ok(answer) => return Ok(answer),
                Err(f) => f,
            };
            let (error, after) = match failure {
                Failure::Permanent(e) => return Err(e),
                Failure::Transient { error, after } => (error, after),
            };
            let Some(backoff) = delays.next() else {
                return Err(error);
            };
            let wait = match after {
                // A server asking for more than we would wait in one call: give up now and let
                // the app schedule the next sync.
                Some(a) if a > self.config.max_retry_after => return Err(error),
                Some(a) => a.max(backoff),
                None => backoff,
            };
            tracing::debug!(error = %error, wait_ms = wait.as_millis() as u64, "retrying");
            traffic.retries += 1;
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, req: &Request, traffic: &mut Traffic) -> Result<Answer, Failure> {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = self
            .client
            .request(req.method.clone(), &url)
            .header(header::ACCEPT, "application/json, application/problem+json");
        if let Some(token) = &req.bearer {
            builder = builder.bearer_auth(token);
        }
        if let Some(key) = &req.idempotency_key {
            builder = builder.header(crate::api::IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(tag) = &req.if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, tag);
        }
        if let Some(body) = &req.json_body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let sent_at = now_ms();
        let started = Instant::now();
        let mut resp = builder.send().await.map_err(|e| Failure::Transient {
            error: map_reqwest(&e),
            after: None,
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        // Not a Tessera server (a captive portal, a proxy's error page) or another version.
        match headers
            .get(API_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(v) if v == API_VERSION.to_string() => {}
            Some(v) => {
                return Err(Failure::Permanent(SyncError::Incompatible {
                    server_version: v.chars().take(20).collect(),
                }));
            }
            None if status.is_server_error() || status == StatusCode::BAD_GATEWAY => {
                return Err(Failure::Transient {
                    error: SyncError::Server {
                        status: status.as_u16(),
                        code: "gateway".into(),
                    },
                    after: retry_after(&headers),
                });
            }
            None => {
                return Err(Failure::Permanent(SyncError::protocol(
                    "the answer does not come from a Tessera server",
                )));
            }
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.config.max_answer_bytes {
                        return Err(Failure::Permanent(SyncError::protocol(format!(
                            "the answer is larger than {} bytes",
                            self.config.max_answer_bytes
                        ))));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Transient {
                        error: map_reqwest(&e),
                        after: None,
                    });
                }
            }
        }
        traffic.bytes_received += body.len() as u64;
        let received_at = sent_at + started.elapsed().as_millis() as i64;
        let clock_offset_ms = headers
            .get(SERVER_TIME_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .map(|server| server - (sent_at + received_at) / 2);
        let answer = Answer {
            status,
            replayed: headers.contains_key("idempotent-replayed"),
            member_version: headers
                .get(crate::api::MEMBER_VERSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            body,
            clock_offset_ms,
        };
        // A 409 is worth retrying only when the same key is still in flight; other conflicts
        // (a coupon redeemed already) are answers.
        let in_flight = status == StatusCode::CONFLICT
            && answer.problem().code == crate::api::codes::REQUEST_IN_FLIGHT;
        let retryable = in_flight
            || matches!(
                status,
                StatusCode::REQUEST_TIMEOUT
                    | StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::INTERNAL_SERVER_ERROR
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            );
        if retryable {
            let problem = answer.problem();
            let error = if problem.code == crate::api::codes::TIMEOUT {
                SyncError::Timeout
            } else {
                SyncError::Server {
                    status: status.as_u16(),
                    code: problem.code,
                }
            };
            return Err(Failure::Transient {
                error,
                after: retry_after(&headers),
            });
        }
        Ok(answer)
    }
}

fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
