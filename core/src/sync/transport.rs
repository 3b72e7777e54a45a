//! The one seam between the core and a network stack (docs/adr/0015).
//!
//! The core decides everything about a request (what to send, timeouts, retries, backoff,
//! `Retry-After`, the size cap, the protocol version, the server clock); an [`HttpClient`] only
//! moves one request and its answer. On a phone the app's own stack does it (OkHttp or
//! `HttpURLConnection`, `URLSession`: the OS trust store, proxies, pinning and the platform's
//! background transfers come with it) through the FFI's foreign trait; the CLI, the benches and
//! the Rust tests use [`ReqwestClient`] (feature `reqwest`). The shipped library holds no TLS or
//! HTTP code of its own.

use std::time::Duration;

/// The methods the protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum HttpMethod {
    Get,
    Post,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// One header; names are compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// One request, exactly as it must go out. A client sends these headers and this body, follows
/// no redirect, and honours the two timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HttpRequest {
    pub method: HttpMethod,
    /// Absolute `http(s)` URL.
    pub url: String,
    pub headers: Vec<HttpHeader>,
    pub body: Option<Vec<u8>>,
    /// Opening the connection (DNS, TCP, TLS).
    pub connect_timeout_ms: u64,
    /// The whole exchange, from sending to the last byte of the answer.
    pub timeout_ms: u64,
    /// A client stops reading past this many bytes of (decompressed) body and answers
    /// `TooLarge`; the core checks it again.
    pub max_body_bytes: u64,
}

impl HttpRequest {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The answer, whatever its status. The body is decompressed: a client that asks for gzip
/// inflates it before handing it over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<HttpHeader>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// Why no answer came back. Every one is the network's fault and worth retrying, except
/// `TooLarge`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No answer began: no network, DNS, refused, TLS failure, or the connection dropped before
    /// the status line.
    #[error("cannot connect: {reason}")]
    Offline { reason: String },
    /// One of the request's timeouts passed.
    #[error("timed out")]
    Timeout,
    /// The answer began but was cut short or garbled (a body shorter than announced, bad gzip).
    #[error("the exchange broke off: {reason}")]
    Interrupted { reason: String },
    /// The body is larger than the request's `max_body_bytes`.
    #[error("the answer is larger than allowed")]
    TooLarge,
}

/// Moves one request and its answer. Called on the thread running the sync or the till's call
/// (never the main thread): an implementation blocks until the answer is read whole.
pub trait HttpClient: Send + Sync {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

#[cfg(feature = "reqwest")]
pub use self::reqwest_client::ReqwestClient;

#[cfg(feature = "reqwest")]
mod reqwest_client {
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    use super::{HttpClient, HttpHeader, HttpMethod, HttpRequest, HttpResponse, TransportError};

    /// An [`HttpClient`] over reqwest's blocking client, rustls and gzip: for the CLI, desktop
    /// tools, the benches and the Rust tests. Not in the FFI library. Keeps its connections
    /// between requests; a request with another connect timeout gets a new connection pool.
    /// Like the core's other network calls, use it from a plain thread: reqwest's blocking
    /// client panics when used or dropped inside an async runtime.
    #[derive(Debug, Default)]
    pub struct ReqwestClient {
        pool: Mutex<Option<(u64, reqwest::blocking::Client)>>,
    }

    impl ReqwestClient {
        pub fn new() -> Self {
            ReqwestClient::default()
        }

        /// A new client, ready to be shared.
        pub fn shared() -> Arc<dyn HttpClient> {
            Arc::new(ReqwestClient::new())
        }

        fn client(
            &self,
            connect_timeout_ms: u64,
        ) -> Result<reqwest::blocking::Client, TransportError> {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((ms, client)) = pool.as_ref()
                && *ms == connect_timeout_ms
            {
                return Ok(client.clone());
            }
            let client = reqwest::blocking::Client::builder()
                .connect_timeout(std::time::Duration::from_millis(connect_timeout_ms))
                .timeout(None)
                .pool_idle_timeout(std::time::Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("tessera-core/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| TransportError::Offline {
                    reason: format!("HTTP client: {e}"),
                })?;
            *pool = Some((connect_timeout_ms, client.clone()));
            Ok(client)
        }
    }

    fn failure(e: &reqwest::Error) -> TransportError {
        if e.is_timeout() {
            TransportError::Timeout
        } else if e.is_body() || e.is_decode() {
            TransportError::Interrupted {
                reason: e.to_string(),
            }
        } else {
            // Refused, reset or closed before an answer began.
            TransportError::Offline {
                reason: e.to_string(),
            }
        }
    }

    /// A body read fails with reqwest's error inside an `io::Error`.
    fn read_failure(e: &std::io::Error) -> TransportError {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
        {
            Some(inner) if inner.is_timeout() => TransportError::Timeout,
            _ if e.kind() == std::io::ErrorKind::TimedOut => TransportError::Timeout,
            _ => TransportError::Interrupted {
                reason: e.to_string(),
            },
        }
    }

    impl HttpClient for ReqwestClient {
        fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
            let client = self.client(request.connect_timeout_ms)?;
            let method = match request.method {
                HttpMethod::Get => reqwest::Method::GET,
                HttpMethod::Post => reqwest::Method::POST,
                HttpMethod::Delete => reqwest::Method::DELETE,
            };
            let mut builder = client
                .request(method, &request.url)
                .timeout(request.timeout());
            for h in &request.headers {
                builder = builder.header(&h.name, &h.value);
            }
            if let Some(body) = request.body {
                builder = builder.body(body);
            }
            let resp = builder.send().map_err(|e| failure(&e))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    Some(HttpHeader {
                        name: name.as_str().to_owned(),
                        value: value.to_str().ok()?.to_owned(),
                    })
                })
                .collect();
            let mut body = Vec::new();
            resp.take(request.max_body_bytes.saturating_add(1))
                .read_to_end(&mut body)
                .map_err(|e| read_failure(&e))?;
            if body.len() as u64 > request.max_body_bytes {
                return Err(TransportError::TooLarge);
            }
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        }
    }
}
