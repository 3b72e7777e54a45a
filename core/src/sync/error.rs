//! What can go wrong talking to the server.

use crate::db::StorageError;

/// Failures of enrolment and sync. The local database is never left half-updated by one: every
/// page and every acknowledged mutation is its own transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The server cannot be reached (no network, DNS, connection refused or reset).
    #[error("the server cannot be reached")]
    Offline,
    /// The server did not answer in time (after retries).
    #[error("the server did not answer in time")]
    Timeout,
    /// No member is enrolled on this device.
    #[error("no member is enrolled on this device")]
    NotEnrolled,
    /// A member is already enrolled on this device.
    #[error("a member is already enrolled on this device")]
    AlreadyEnrolled,
    /// The server refused the device's credentials for good: enrol again. Pending actions are
    /// kept.
    #[error("the server refused this device's credentials: enrol again")]
    SignedOut,
    /// The server answered with an error after retries (`code` is its stable problem code).
    #[error("the server answered {status} {code}")]
    Server { status: u16, code: String },
    /// The server's answer is malformed, truncated, too large or unexpected.
    #[error("the server's answer is not usable: {reason}")]
    Protocol { reason: String },
    /// The server speaks another protocol version.
    #[error("the server speaks protocol version {server_version}; this build speaks 1")]
    Incompatible { server_version: String },
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    /// The app has not given the core an HTTP client yet (`set_http_client`).
    #[error("no HTTP client: the app must give one before any network call")]
    NoHttpClient,
    /// The session's tokens are in the app's SecretStore, and none was given
    /// (`set_secret_store`).
    #[error("the tokens are in the app's secret store: give it first")]
    NoSecretStore,
    /// The app's SecretStore failed (locked, unavailable); nothing was changed.
    #[error("the secret store failed: {reason}")]
    SecretStoreFailed { reason: String },
    /// The sync was cancelled (its coroutine or task was): what it did is kept, the next sync
    /// does the rest.
    #[error("the sync was cancelled")]
    Cancelled,
    /// Actions are waiting to be sent: sync them (or discard them explicitly) first.
    #[error("{count} actions are waiting to be sent")]
    PendingActions { count: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl SyncError {
    pub fn protocol(reason: impl Into<String>) -> Self {
        SyncError::Protocol {
            reason: reason.into(),
        }
    }

    /// Worth trying again later (the network or the server, not this device's data).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SyncError::Offline | SyncError::Timeout | SyncError::Server { .. }
        )
    }
}

impl From<crate::Error> for SyncError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Storage(s) => SyncError::Storage(s),
            crate::Error::InvalidInput { field, reason } => {
                SyncError::InvalidInput { field, reason }
            }
            crate::Error::NotEnrolled => SyncError::NotEnrolled,
            other => SyncError::protocol(other.to_string()),
        }
    }
}
