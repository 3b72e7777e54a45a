//! The phone client's error: one enum every service returns. The bindings turn it into a few
//! public enums in one place (`bindings/src/error.rs`), variant by variant.

use crate::barcode::{BarcodeError, Symbology};
use crate::catalog::CatalogError;
use crate::db::StorageError;

/// Everything that can go wrong in the core. The bindings turn it into a few public enums in one
/// place (`bindings/src/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("invalid card number: {0}")]
    CardNumber(#[source] BarcodeError),
    #[error("the stored card cannot be drawn as {symbology}: {source}")]
    CardIncompatible {
        symbology: Symbology,
        #[source]
        source: BarcodeError,
    },
    #[error(transparent)]
    Barcode(#[from] BarcodeError),
    #[error("no programme is set up yet")]
    NoProgram,
    #[error("no card is enrolled on this device")]
    NotEnrolled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A rule a value broke, as the typed error the API answers.
pub(crate) fn invalid(e: CatalogError) -> Error {
    Error::InvalidInput {
        field: e.field,
        reason: e.reason,
    }
}
