//! One request to the server, with everything around it: timeouts, retries with exponential
//! backoff and full jitter, `Retry-After`, a cap on answer size, the protocol-version check and
//! the server-clock reading. Answers with a final status (2xx, 304, 4xx) go back to the caller.

use crate::clock::now_ms;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;

use super::SyncConfig;
use super::error::SyncError;
use super::transport::{HttpClient, HttpHeader, HttpMethod, HttpRequest, TransportError};
use crate::api::{API_VERSION, API_VERSION_HEADER, Problem, SERVER_TIME_HEADER};

/// A request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: HttpMethod,
    pub path: String,
    pub bearer: Option<String>,
    pub idempotency_key: Option<String>,
    pub if_none_match: Option<String>,
    pub json_body: Option<Vec<u8>>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Request {
            method: HttpMethod::Get,
            path: path.into(),
            bearer: None,
            idempotency_key: None,
            if_none_match: None,
            json_body: None,
        }
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Request {
            method: HttpMethod::Delete,
            ..Request::get(path)
        }
    }

    pub fn post(path: impl Into<String>, body: Vec<u8>) -> Self {
        Request {
            method: HttpMethod::Post,
            json_body: Some(body),
            ..Request::get(path)
        }
    }
}

/// A final answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
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
        serde_json::from_slice::<Problem>(&self.body)
            .unwrap_or_else(|_| Problem::new(self.status, "unknown", "Unexpected answer", None))
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
    client: Arc<dyn HttpClient>,
    base: String,
    config: SyncConfig,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("base", &self.base).finish()
    }
}

fn map_transport(e: TransportError) -> Failure {
    match e {
        TransportError::Timeout => Failure::Transient {
            error: SyncError::Timeout,
            after: None,
        },
        // Connection refused, reset mid-request, closed before an answer: the network's fault.
        TransportError::Offline { .. } => Failure::Transient {
            error: SyncError::Offline,
            after: None,
        },
        // Worth another try; if it never comes whole, the answer is what is wrong.
        TransportError::Interrupted { .. } => Failure::Transient {
            error: SyncError::protocol("the answer was cut short or garbled"),
            after: None,
        },
        TransportError::TooLarge => {
            Failure::Permanent(SyncError::protocol("the answer is larger than allowed"))
        }
    }
}

/// Checks a server base URL: http(s), a host, no query or fragment.
pub fn check_server_url(url: &str) -> Result<String, SyncError> {
    let bad = |reason: &str| SyncError::InvalidInput {
        field: "server_url",
        reason: reason.into(),
    };
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| bad("must be an http(s) URL with a host and no query"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once('@') {
        Some(_) => return Err(bad("must not carry credentials")),
        None => authority,
    };
    let (host, port) = match host.strip_prefix('[') {
        // An IPv6 literal: [::1]:8080
        Some(v6) => {
            let (addr, after) = v6.split_once(']').ok_or_else(|| bad("is not a URL"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("is not a URL"))?;
            (addr, after.strip_prefix(':'))
        }
        None => match host.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let path_ok = rest.bytes().all(|b| {
        b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'\\' | b'"' | b'<' | b'>' | b'`')
    });
    if !host_ok || !port_ok || !path_ok {
        return Err(bad("must be an http(s) URL with a host and no query"));
    }
    Ok(trimmed.to_owned())
}

impl Http {
    pub fn new(
        client: Arc<dyn HttpClient>,
        base: &str,
        config: SyncConfig,
    ) -> Result<Self, SyncError> {
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
    pub fn send(&self, req: &Request, traffic: &mut Traffic) -> Result<Answer, SyncError> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.config.base_delay)
            .with_max_delay(self.config.max_delay)
            .with_max_times(self.config.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        loop {
            traffic.requests += 1;
            let failure = match self.attempt(req, traffic) {
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
            std::thread::sleep(wait);
        }
    }

    fn attempt(&self, req: &Request, traffic: &mut Traffic) -> Result<Answer, Failure> {
        let header = |name: &str, value: String| HttpHeader {
            name: name.to_owned(),
            value,
        };
        let mut headers = vec![header(
            "accept",
            "application/json, application/problem+json".into(),
        )];
        if let Some(token) = &req.bearer {
            headers.push(header("authorization", format!("Bearer {token}")));
        }
        if let Some(key) = &req.idempotency_key {
            headers.push(header(crate::api::IDEMPOTENCY_KEY_HEADER, key.clone()));
        }
        if let Some(tag) = &req.if_none_match {
            headers.push(header("if-none-match", tag.clone()));
        }
        if req.json_body.is_some() {
            headers.push(header("content-type", "application/json".into()));
        }
        let request = HttpRequest {
            method: req.method,
            url: format!("{}{}", self.base, req.path),
            headers,
            body: req.json_body.clone(),
            connect_timeout_ms: millis(self.config.connect_timeout),
            timeout_ms: millis(self.config.request_timeout),
            max_body_bytes: self.config.max_answer_bytes as u64,
        };
        let sent_at = now_ms();
        let started = Instant::now();
        let resp = self.client.send(request).map_err(map_transport)?;
        let status = resp.status;
        // Not a Tessera server (a captive portal, a proxy's error page) or another version.
        match resp.header(API_VERSION_HEADER) {
            Some(v) if v == API_VERSION.to_string() => {}
            Some(v) => {
                return Err(Failure::Permanent(SyncError::Incompatible {
                    server_version: v.chars().take(20).collect(),
                }));
            }
            None if status >= 500 => {
                return Err(Failure::Transient {
                    error: SyncError::Server {
                        status,
                        code: "gateway".into(),
                    },
                    after: retry_after(resp.header("retry-after")),
                });
            }
            None => {
                return Err(Failure::Permanent(SyncError::protocol(
                    "the answer does not come from a Tessera server",
                )));
            }
        }
        // The client was asked to stop at the cap; a client is not trusted to.
        if resp.body.len() > self.config.max_answer_bytes {
            return Err(Failure::Permanent(SyncError::protocol(format!(
                "the answer is larger than {} bytes",
                self.config.max_answer_bytes
            ))));
        }
        traffic.bytes_received += resp.body.len() as u64;
        let received_at = sent_at + started.elapsed().as_millis() as i64;
        let clock_offset_ms = resp
            .header(SERVER_TIME_HEADER)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|server| server - (sent_at + received_at) / 2);
        let after = retry_after(resp.header("retry-after"));
        let answer = Answer {
            status,
            replayed: resp.header("idempotent-replayed").is_some(),
            member_version: resp
                .header(crate::api::MEMBER_VERSION_HEADER)
                .and_then(|v| v.trim().parse().ok()),
            body: resp.body,
            clock_offset_ms,
        };
        // A 409 is worth retrying only when the same key is still in flight; other conflicts
        // (a coupon redeemed already) are answers.
        let in_flight =
            status == 409 && answer.problem().code == crate::api::codes::REQUEST_IN_FLIGHT;
        // Request timeout, too many requests, server error, bad gateway, unavailable, gateway
        // timeout.
        let retryable = in_flight || matches!(status, 408 | 429 | 500 | 502 | 503 | 504);
        if retryable {
            let problem = answer.problem();
            let error = if problem.code == crate::api::codes::TIMEOUT {
                SyncError::Timeout
            } else {
                SyncError::Server {
                    status,
                    code: problem.code,
                }
            };
            return Err(Failure::Transient { error, after });
        }
        Ok(answer)
    }
}

fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A duration in whole milliseconds, at least 1 (a client reads 0 as "no timeout").
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::sync::transport::HttpResponse;

    #[test]
    fn server_urls_are_http_with_a_host_and_no_query() {
        for ok in [
            "http://127.0.0.1:8080",
            "https://loyalty.example.com/",
            "https://loyalty.example.com/tenant/a",
            "http://[::1]:3000",
            "http://localhost",
        ] {
            assert!(check_server_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_server_url("https://x.example/api/").unwrap(),
            "https://x.example/api"
        );
        for bad in [
            "",
            "loyalty.example.com",
            "ftp://x.example",
            "https://",
            "https://:8080",
            "https://x.example?a=1",
            "https://x.example/#top",
            "https://user:pw@x.example",
            "https://x.example:0",
            "https://x.example:99999",
            "https://x.example:port",
            "https://[::1",
            "https://x example",
            "https://x.example/a b",
        ] {
            assert!(
                matches!(
                    check_server_url(bad),
                    Err(SyncError::InvalidInput {
                        field: "server_url",
                        ..
                    })
                ),
                "{bad:?} accepted"
            );
        }
    }

    /// Answers from a script and records what it was asked.
    struct Scripted {
        answers: Mutex<Vec<Result<HttpResponse, TransportError>>>,
        seen: Mutex<Vec<HttpRequest>>,
    }

    impl HttpClient for Scripted {
        fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
            self.seen.lock().unwrap().push(request);
            self.answers.lock().unwrap().remove(0)
        }
    }

    fn answer(status: u16, body: &[u8]) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status,
            headers: vec![HttpHeader {
                name: "Tessera-API-Version".into(),
                value: API_VERSION.to_string(),
            }],
            body: body.to_vec(),
        })
    }

    fn http(answers: Vec<Result<HttpResponse, TransportError>>) -> (Arc<Scripted>, Http) {
        let client = Arc::new(Scripted {
            answers: Mutex::new(answers),
            seen: Mutex::new(Vec::new()),
        });
        let config = SyncConfig {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_answer_bytes: 64 * 1024,
            ..SyncConfig::default()
        };
        let http = Http::new(client.clone(), "http://127.0.0.1:9/", config).unwrap();
        (client, http)
    }

    #[test]
    fn the_request_carries_everything_and_the_client_is_not_trusted_with_the_cap() {
        let (client, http) = http(vec![answer(200, &vec![b' '; 64 * 1024 + 1])]);
        let mut req = Request::post("/v1/mutations", b"{}".to_vec());
        req.bearer = Some("tok".into());
        req.idempotency_key = Some("k-1".into());
        let err = http.send(&req, &mut Traffic::default()).unwrap_err();
        assert!(
            matches!(&err, SyncError::Protocol { reason } if reason.contains("larger")),
            "{err:?}"
        );
        let seen = client.seen.lock().unwrap();
        let sent = &seen[0];
        assert_eq!(sent.method, HttpMethod::Post);
        assert_eq!(sent.url, "http://127.0.0.1:9/v1/mutations");
        assert_eq!(sent.body.as_deref(), Some(&b"{}"[..]));
        assert_eq!(sent.max_body_bytes, 64 * 1024);
        assert_eq!(sent.connect_timeout_ms, 10_000);
        assert_eq!(sent.timeout_ms, 30_000);
        let header = |n: &str| {
            sent.headers
                .iter()
                .find(|h| h.name == n)
                .map(|h| h.value.as_str())
        };
        assert_eq!(header("authorization"), Some("Bearer tok"));
        assert_eq!(header(crate::api::IDEMPOTENCY_KEY_HEADER), Some("k-1"));
        assert_eq!(header("content-type"), Some("application/json"));
    }

    #[test]
    fn transport_failures_are_retried_then_typed() {
        type Expect = fn(&SyncError) -> bool;
        let cases: [(TransportError, Expect); 4] = [
            (
                TransportError::Offline {
                    reason: "refused".into(),
                },
                |e| matches!(e, SyncError::Offline),
            ),
            (TransportError::Timeout, |e| matches!(e, SyncError::Timeout)),
            (
                TransportError::Interrupted {
                    reason: "short".into(),
                },
                |e| matches!(e, SyncError::Protocol { .. }),
            ),
            (TransportError::TooLarge, |e| {
                matches!(e, SyncError::Protocol { .. })
            }),
        ];
        for (failure, expected) in cases {
            let permanent = failure == TransportError::TooLarge;
            let (client, http) = http(vec![Err(failure.clone()); 4]);
            let err = http
                .send(&Request::get("/v1/catalog"), &mut Traffic::default())
                .unwrap_err();
            assert!(expected(&err), "{failure:?} became {err:?}");
            let tries = client.seen.lock().unwrap().len();
            assert_eq!(tries, if permanent { 1 } else { 4 }, "{failure:?}");
        }
        // A failure then an answer: the answer, with the retry counted.
        let (_, http) = http(vec![Err(TransportError::Timeout), answer(200, b"{}")]);
        let mut traffic = Traffic::default();
        let ok = http.send(&Request::get("/v1/me"), &mut traffic).unwrap();
        assert_eq!((ok.status, traffic.retries, traffic.requests), (200, 1, 2));
    }
}
