//! Barcode functions that need no database.

use tessera_core::barcode;
use tessera_core::{BarcodeError, BarcodeMatrix, CardNumberAnalysis, Symbology};

/// What a typed-in card number most likely is, best suggestion first.
#[uniffi::export]
pub fn analyse_card_number(input: String) -> Result<CardNumberAnalysis, BarcodeError> {
    barcode::analyse_card_number(&input)
}

/// Validate `value` for `symbology` and return the modules to draw.
#[uniffi::export]
pub fn render_barcode(symbology: Symbology, value: String) -> Result<BarcodeMatrix, BarcodeError> {
    BarcodeMatrix::encode(symbology, &value)
}

/// The matrix as SVG: quiet zone included, the number under linear codes.
#[uniffi::export]
pub fn barcode_svg(matrix: BarcodeMatrix, module_px: u32) -> Result<String, BarcodeError> {
    matrix.svg(module_px)
}

/// The matrix as a grey-scale PNG, `scale` pixels per module.
#[uniffi::export]
pub fn barcode_png(matrix: BarcodeMatrix, scale: u32) -> Result<Vec<u8>, BarcodeError> {
    matrix.png(scale)
}
