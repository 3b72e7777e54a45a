//! The app's HTTP stack, as a foreign trait (docs/adr/0015): the library holds no TLS or HTTP
//! code; `Tessera.setHttpClient` and `Till.open` take the app's. The packages ship one
//! implementation each (`HttpUrlConnectionClient` on Android, `URLSessionHttpClient` on iOS).

use std::sync::Arc;

use tessera_core::sync::{HttpRequest, HttpResponse, TransportError};

/// Why an exchange gave no answer. A client throws one of these; anything else it throws is
/// read as `Interrupted`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum HttpError {
    /// No answer began: no network, DNS, refused, TLS failure, or the connection dropped before
    /// the status line.
    #[error("cannot connect: {reason}")]
    Offline { reason: String },
    /// The request's connect or overall timeout passed.
    #[error("timed out")]
    Timeout,
    /// The answer began but was cut short or garbled (shorter than announced, bad gzip).
    #[error("the exchange broke off: {reason}")]
    Interrupted { reason: String },
    /// The body is larger than the request's `max_body_bytes`.
    #[error("the answer is larger than allowed")]
    TooLarge,
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HttpError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HttpError::Interrupted { reason: e.reason }
    }
}

/// Moves one request and its answer; implemented by the app over its own HTTP stack. Called on
/// the thread running the sync (never the main thread): block until the answer is read whole.
/// Send exactly the request's headers and body, follow no redirect, honour both timeouts, stop
/// reading past `max_body_bytes` (throw `TooLarge`) and hand over the body decompressed.
#[uniffi::export(with_foreign)]
pub trait HttpClient: Send + Sync {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// The app's client, as the core's.
pub(crate) struct Foreign(pub(crate) Arc<dyn HttpClient>);

impl Foreign {
    pub(crate) fn wrap(client: Arc<dyn HttpClient>) -> Arc<dyn tessera_core::sync::HttpClient> {
        Arc::new(Foreign(client))
    }
}

impl tessera_core::sync::HttpClient for Foreign {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.0.send(request).map_err(|e| match e {
            HttpError::Offline { reason } => TransportError::Offline { reason },
            HttpError::Timeout => TransportError::Timeout,
            HttpError::Interrupted { reason } => TransportError::Interrupted { reason },
            HttpError::TooLarge => TransportError::TooLarge,
        })
    }
}
