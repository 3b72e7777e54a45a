//! Barcodes: which symbology and what it may carry (the domain's rules, [`tessera_domain::barcode`]),
//! and the modules to draw (here: the encoders and renderers only the phone needs).

mod render;

pub use render::{BarcodeMatrix, MAX_MATRIX_SIDE, MAX_PNG_PIXELS, MAX_PNG_SCALE, MAX_QUIET_ZONE};
pub use tessera_domain::barcode::{
    BarcodeError, CardNumberAnalysis, MAX_2D_BYTES, MAX_CODE128_CHARS, Symbology,
    SymbologySuggestion, analyse_card_number, encoded_value, gtin_check_digit,
};
