//! Public errors, one enum per area, and the only place core errors are converted.
//!
//! `StorageError` and `BarcodeError` cross the FFI as core defines them (they are already typed
//! and actionable); `CardError` groups what the card calls can answer. Texts carry no personal
//! data: never the card number, never a name.

pub use tessera_core::{BarcodeError, StorageError};
use tessera_core::{Error, Symbology};

/// What the card calls can answer.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CardError {
    /// No card on this device yet: show enrolment.
    #[error("no card is enrolled on this device")]
    NotEnrolled,
    /// The programme must be set before a card.
    #[error("no programme is set up yet")]
    NoProgram,
    /// A field the member or the app typed is invalid; `field` names it (`card.holder_name`…).
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The card number does not fit the programme's symbology; `analyse_card_number` says why and
    /// what would fit.
    #[error("invalid card number: {problem}")]
    InvalidCardNumber { problem: BarcodeError },
    /// The stored card cannot be drawn in the programme's new symbology.
    #[error("the stored card cannot be drawn as {symbology:?}: {problem}")]
    CardIncompatible {
        symbology: Symbology,
        problem: BarcodeError,
    },
    /// The database failed; `Corrupt` and `NotADatabase` are recovered with
    /// `quarantine_database` then `Tessera.open` and a new enrolment.
    #[error("storage: {problem}")]
    Storage { problem: StorageError },
}

impl From<Error> for CardError {
    fn from(e: Error) -> Self {
        match e {
            Error::Storage(problem) => CardError::Storage { problem },
            Error::InvalidInput { field, reason } => CardError::InvalidInput {
                field: field.to_owned(),
                reason,
            },
            Error::CardNumber(problem) => CardError::InvalidCardNumber { problem },
            Error::CardIncompatible { symbology, source } => CardError::CardIncompatible {
                symbology,
                problem: source,
            },
            // Only a failure inside the encoder itself reaches here.
            Error::Barcode(problem) => CardError::InvalidCardNumber { problem },
            Error::NoProgram => CardError::NoProgram,
            Error::NotEnrolled => CardError::NotEnrolled,
        }
    }
}

/// What enrolment and sync can answer. `Offline`, `Timeout` and `Server` are worth retrying later
/// by themselves (schedule the next sync); the rest need the app or the member to act.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SyncError {
    /// No network, DNS failure, connection refused or reset: try again when online.
    #[error("the server cannot be reached")]
    Offline,
    /// The server did not answer in time, after retries.
    #[error("the server did not answer in time")]
    Timeout,
    /// No member on this device: enrol first.
    #[error("no member is enrolled on this device")]
    NotEnrolled,
    /// A member is already enrolled on this device: sign out first.
    #[error("a member is already enrolled on this device")]
    AlreadyEnrolled,
    /// The server refused this device's credentials for good: enrol again. Pending actions are
    /// kept.
    #[error("the server refused this device's credentials")]
    SignedOut,
    /// The server answered an error after retries; `code` is its stable problem code.
    #[error("the server answered {status} {code}")]
    Server { status: u16, code: String },
    /// The server's answer is malformed, truncated, too large or unexpected; nothing was applied.
    #[error("the server's answer is not usable: {reason}")]
    Protocol { reason: String },
    /// The server speaks another protocol version: the app needs an update.
    #[error("the server speaks protocol version {server_version}")]
    Incompatible { server_version: String },
    /// An argument is invalid; `field` names it.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The sync was cancelled (its coroutine or task was): what it did is kept.
    #[error("the sync was cancelled")]
    Cancelled,
    /// The app has not given an HTTP client yet: call `set_http_client` first.
    #[error("no HTTP client: call set_http_client first")]
    NoHttpClient,
    /// The session's tokens are in the app's secret store: call `set_secret_store` first.
    #[error("the tokens are in the app's secret store: give it first")]
    NoSecretStore,
    /// The app's secret store failed (locked, unavailable); nothing was changed.
    #[error("the secret store failed: {reason}")]
    SecretStoreFailed { reason: String },
    /// `count` actions wait to be sent: sync first, or sign out discarding them.
    #[error("{count} actions are waiting to be sent")]
    PendingActions { count: u64 },
    /// The database failed (see `StorageError`).
    #[error("storage: {problem}")]
    Storage { problem: StorageError },
}

impl From<tessera_core::SyncError> for SyncError {
    fn from(e: tessera_core::SyncError) -> Self {
        use tessera_core::SyncError as E;
        match e {
            E::Offline => SyncError::Offline,
            E::Timeout => SyncError::Timeout,
            E::NotEnrolled => SyncError::NotEnrolled,
            E::AlreadyEnrolled => SyncError::AlreadyEnrolled,
            E::SignedOut => SyncError::SignedOut,
            E::Server { status, code } => SyncError::Server { status, code },
            E::Protocol { reason } => SyncError::Protocol { reason },
            E::Incompatible { server_version } => SyncError::Incompatible { server_version },
            E::InvalidInput { field, reason } => SyncError::InvalidInput {
                field: field.to_owned(),
                reason,
            },
            E::NoHttpClient => SyncError::NoHttpClient,
            E::Cancelled => SyncError::Cancelled,
            E::NoSecretStore => SyncError::NoSecretStore,
            E::SecretStoreFailed { reason } => SyncError::SecretStoreFailed { reason },
            E::PendingActions { count } => SyncError::PendingActions { count },
            E::Storage(problem) => SyncError::Storage { problem },
        }
    }
}

/// What the member's offline actions can answer.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ActionError {
    #[error("no member is enrolled on this device")]
    NotEnrolled,
    #[error("no programme is set up yet")]
    NoProgram,
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("invalid card number: {problem}")]
    InvalidCardNumber { problem: BarcodeError },
    #[error("the stored card cannot be drawn as {symbology:?}: {problem}")]
    CardIncompatible {
        symbology: Symbology,
        problem: BarcodeError,
    },
    #[error("storage: {problem}")]
    Storage { problem: StorageError },
}

impl From<Error> for ActionError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotEnrolled => ActionError::NotEnrolled,
            Error::NoProgram => ActionError::NoProgram,
            Error::InvalidInput { field, reason } => ActionError::InvalidInput {
                field: field.to_owned(),
                reason,
            },
            Error::CardNumber(problem) | Error::Barcode(problem) => {
                ActionError::InvalidCardNumber { problem }
            }
            Error::CardIncompatible { symbology, source } => ActionError::CardIncompatible {
                symbology,
                problem: source,
            },
            Error::Storage(problem) => ActionError::Storage { problem },
        }
    }
}

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PushError {
    #[error("the message is not a JSON object: {reason}")]
    NotJson { reason: String },
    #[error("the message has no tessera payload")]
    NotTessera,
    /// A newer payload than this build reads: the app needs an update.
    #[error("payload version {version} is not supported")]
    UnsupportedVersion { version: u32 },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the message is {bytes} bytes")]
    TooLarge { bytes: u64 },
    #[error("storage: {problem}")]
    Storage { problem: StorageError },
    /// No member on this device (a message that arrived after a sign-out or an erasure).
    #[error("no member is enrolled on this device")]
    NotEnrolled,
}

impl From<tessera_core::push::PushHandlingError> for PushError {
    fn from(e: tessera_core::push::PushHandlingError) -> Self {
        use tessera_core::push::{PushError as P, PushHandlingError as H};
        match e {
            H::Storage(problem) => PushError::Storage { problem },
            H::NotEnrolled => PushError::NotEnrolled,
            H::Message(P::NotJson { reason }) => PushError::NotJson { reason },
            H::Message(P::NotTessera) => PushError::NotTessera,
            H::Message(P::UnsupportedVersion { version }) => {
                PushError::UnsupportedVersion { version }
            }
            H::Message(P::Invalid { field, reason }) => PushError::Invalid { field, reason },
            H::Message(P::TooLarge { bytes }) => PushError::TooLarge { bytes },
        }
    }
}

pub use tessera_core::coupon::CouponError;

/// What a till's calls can answer.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TillError {
    /// The code is refused: forged, altered, expired, another shop's or member's, below its
    /// minimum basket, or redeemed already (where and when).
    #[error("coupon: {problem}")]
    Coupon { problem: CouponError },
    /// The rotating member code is refused (why: `problem`).
    #[error("member code: {problem}")]
    MemberCode {
        problem: tessera_domain::member_code::MemberCodeError,
    },
    /// The server refused the request; `code` is its stable problem code (`receipt_reused`,
    /// `void_window_closed`, `unknown_card`…).
    #[error("refused: {code}: {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    /// An argument is invalid; `field` names it.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The server cannot be used: never reached for the keys, another protocol, a bad token.
    #[error("network: {problem}")]
    Network { problem: SyncError },
    /// The till's journal (its own SQLite file) failed: a storage failure like any other.
    #[error("journal: {problem}")]
    Storage { problem: StorageError },
}

impl From<tessera_till::TillError> for TillError {
    fn from(e: tessera_till::TillError) -> Self {
        use tessera_till::TillError as E;
        match e {
            E::Coupon(problem) => TillError::Coupon { problem },
            E::MemberCode(problem) => TillError::MemberCode { problem },
            E::Refused {
                status,
                code,
                detail,
            } => TillError::Refused {
                status,
                code,
                detail,
            },
            E::InvalidInput { field, reason } => TillError::InvalidInput { field, reason },
            E::Network(e) => TillError::Network { problem: e.into() },
            E::Journal(problem) => TillError::Storage { problem },
        }
    }
}
