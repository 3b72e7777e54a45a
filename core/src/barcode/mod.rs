//! Barcodes: which symbology, what it may carry, and the modules to draw.

mod render;
mod symbology;

pub use render::{BarcodeMatrix, MAX_MATRIX_SIDE, MAX_PNG_PIXELS, MAX_PNG_SCALE, MAX_QUIET_ZONE};
pub use symbology::{
    CardNumberAnalysis, MAX_2D_BYTES, MAX_CODE128_CHARS, Symbology, SymbologySuggestion,
    analyse_card_number, encoded_value, gtin_check_digit,
};

/// Why a value cannot be drawn as a barcode. Positions count characters from 1. The texts never
/// repeat the value itself (it is a card number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum BarcodeError {
    #[error("the value is empty")]
    Empty,
    #[error("unknown symbology")]
    UnknownSymbology,
    #[error("{symbology} takes {expected} digits, or {} with the check digit; got {actual}", expected + 1)]
    InvalidLength {
        symbology: Symbology,
        expected: u32,
        actual: u32,
    },
    #[error("{symbology} takes digits only; character {position} is not a digit")]
    NotDigits { symbology: Symbology, position: u32 },
    #[error("{symbology} check digit should be {expected}, found {found}")]
    InvalidCheckDigit {
        symbology: Symbology,
        expected: u8,
        found: u8,
    },
    #[error("{symbology} cannot carry character {position}")]
    UnsupportedCharacter { symbology: Symbology, position: u32 },
    #[error("{symbology} carries at most {max} characters (bytes for 2D codes); got {actual}")]
    TooLong {
        symbology: Symbology,
        max: u32,
        actual: u32,
    },
    #[error("scale must be between 1 and {max} pixels per module; got {actual}")]
    InvalidScale { max: u32, actual: u32 },
    #[error("the image would exceed {max_pixels} pixels")]
    ImageTooLarge { max_pixels: u64 },
    #[error("invalid barcode matrix: {reason}")]
    InvalidMatrix { reason: String },
    #[error("barcode encoder failed: {reason}")]
    Encoder { reason: String },
}
