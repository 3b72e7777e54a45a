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

/// Opening returns only storage errors; anything else is reported as a SQLite-level failure.
pub(crate) fn storage(e: Error) -> StorageError {
    match e {
        Error::Storage(s) => s,
        other => StorageError::Sqlite {
            reason: other.to_string(),
        },
    }
}
