//! Encoding to a module matrix, and drawing that matrix as SVG or PNG.
//!
//! The matrix is the contract with the shells: Android and iOS draw the same modules natively, so
//! both platforms show identical, pixel-aligned codes. SVG and PNG are for the CLI, e-mails and
//! the scanner check.

use std::fmt::Write as _;

use rxing::aztec::AztecWriter;
use rxing::oned::{Code128Writer, EAN8Writer, EAN13Writer, OneDimensionalCodeWriter};
use rxing::pdf417::PDF417Writer;
use rxing::qrcode::QRCodeWriter;
use rxing::{BarcodeFormat, EncodeHints, Writer};
use serde::Serialize;

use super::{BarcodeError, Symbology, encoded_value};

/// Largest PNG we draw, in pixels (about 4096 × 4096).
pub const MAX_PNG_PIXELS: u64 = 16 * 1024 * 1024;
/// Largest scale (pixels per module) for PNG output.
pub const MAX_PNG_SCALE: u32 = 32;
/// Largest matrix side accepted from outside (a QR version 40 is 177; PDF417 rows are 4 tall).
pub const MAX_MATRIX_SIDE: u32 = 4096;
/// Largest quiet zone accepted from outside, in modules.
pub const MAX_QUIET_ZONE: u32 = 64;
/// Top margin of linear codes, in modules.
const LINEAR_TOP: u32 = 4;
/// Room under linear codes for the human-readable line, in modules.
const LINEAR_TEXT_ROOM: u32 = 13;

/// A barcode as modules: what a shell draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct BarcodeMatrix {
    pub symbology: Symbology,
    /// Exactly what a scanner reads.
    pub encoded_value: String,
    /// Text to print under the code (linear codes only): many laser scanners cannot read phone
    /// screens, so the cashier must be able to type the number.
    pub human_readable: Option<String>,
    /// Modules across, without the quiet zone.
    pub width: u32,
    /// Rows of modules, without the quiet zone. Linear codes have one row: draw it as tall bars.
    pub height: u32,
    /// Light modules to leave on every side (left and right only for linear codes).
    pub quiet_zone: u32,
    /// Row-major, `width * height` bytes, 1 = dark, 0 = light.
    pub modules: Vec<u8>,
}

impl BarcodeMatrix {
    /// Validate `printed` for `symbology` and encode it.
    pub fn encode(symbology: Symbology, printed: &str) -> Result<Self, BarcodeError> {
        let value = encoded_value(symbology, printed)?;
        let (width, height, modules) = encode_modules(symbology, &value)?;
        Ok(BarcodeMatrix {
            symbology,
            human_readable: symbology.is_linear().then(|| value.clone()),
            encoded_value: value,
            width,
            height,
            quiet_zone: symbology.quiet_zone(),
            modules,
        })
    }

    pub fn is_linear(&self) -> bool {
        self.symbology.is_linear()
    }

    /// A matrix that came from outside (through the FFI or JSON) must be consistent before it is
    /// drawn: sides within bounds, one byte per module, each 0 or 1.
    pub fn check_shape(&self) -> Result<(), BarcodeError> {
        let bad = |reason: &str| {
            Err(BarcodeError::InvalidMatrix {
                reason: reason.to_owned(),
            })
        };
        if self.width == 0 || self.height == 0 {
            return bad("empty matrix");
        }
        if self.width > MAX_MATRIX_SIDE || self.height > MAX_MATRIX_SIDE {
            return bad("matrix side over 4096 modules");
        }
        if self.quiet_zone > MAX_QUIET_ZONE {
            return bad("quiet zone over 64 modules");
        }
        if self.modules.len() != (self.width as usize) * (self.height as usize) {
            return bad("modules length is not width * height");
        }
        if self.modules.iter().any(|&m| m > 1) {
            return bad("modules must be 0 or 1");
        }
        if self.is_linear() != (self.height == 1) {
            return bad("linear codes have one row, 2D codes more");
        }
        Ok(())
    }

    /// Whether the module at column `x`, row `y` (quiet zone excluded) is dark.
    pub fn is_dark(&self, x: u32, y: u32) -> bool {
        x < self.width
            && y < self.height
            && self
                .modules
                .get((y as usize) * (self.width as usize) + x as usize)
                == Some(&1)
    }

    /// Bar height of a linear code, in modules.
    pub fn bar_height(&self) -> u32 {
        50.max(self.width / 4)
    }

    /// Canvas size in modules, quiet zone and (linear) text room included.
    pub fn canvas(&self) -> (u32, u32) {
        let w = self.width + 2 * self.quiet_zone;
        if self.is_linear() {
            (w, LINEAR_TOP + self.bar_height() + LINEAR_TEXT_ROOM)
        } else {
            (w, self.height + 2 * self.quiet_zone)
        }
    }

    /// Runs of dark modules per row: `(row, start column, length)`.
    fn dark_runs(&self) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        (0..self.height).flat_map(move |y| {
            let mut runs = Vec::new();
            let mut x = 0;
            while x < self.width {
                if self.is_dark(x, y) {
                    let start = x;
                    while x < self.width && self.is_dark(x, y) {
                        x += 1;
                    }
                    runs.push((y, start, x - start));
                } else {
                    x += 1;
                }
            }
            runs
        })
    }

    /// SVG drawing: quiet zone included, the human-readable number under linear codes.
    /// `module_px` sets the nominal size of one module (the drawing scales freely).
    pub fn svg(&self, module_px: u32) -> Result<String, BarcodeError> {
        self.check_shape()?;
        let (w, h) = self.canvas();
        let px = module_px.max(1);
        let mut out = String::with_capacity(256 + self.modules.len() / 2);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{}" height="{}" shape-rendering="crispEdges">"#,
            w * px,
            h * px
        );
        let _ = write!(
            out,
            r##"<rect width="{w}" height="{h}" fill="#fff"/><path fill="#000" d=""##
        );
        let q = self.quiet_zone;
        let (top, row_h) = if self.is_linear() {
            (LINEAR_TOP, self.bar_height())
        } else {
            (q, 1)
        };
        for (y, x, len) in self.dark_runs() {
            let _ = write!(out, "M{} {}h{len}v{row_h}h-{len}z", q + x, top + y * row_h);
        }
        out.push_str(r#""/>"#);
        if let Some(text) = &self.human_readable {
            let _ = write!(
                out,
                r##"<text x="{}" y="{}" font-family="monospace" font-size="9" text-anchor="middle" fill="#000">{}</text>"##,
                w / 2,
                LINEAR_TOP + row_h + 10,
                xml_escape(text)
            );
        }
        out.push_str("</svg>");
        Ok(out)
    }

    /// Grey-scale PNG, `scale` pixels per module, quiet zone included (no text).
    pub fn png(&self, scale: u32) -> Result<Vec<u8>, BarcodeError> {
        self.check_shape()?;
        if scale == 0 || scale > MAX_PNG_SCALE {
            return Err(BarcodeError::InvalidScale {
                max: MAX_PNG_SCALE,
                actual: scale,
            });
        }
        let (cw, ch) = self.canvas();
        let (w, h) = (
            u64::from(cw) * u64::from(scale),
            u64::from(ch) * u64::from(scale),
        );
        if w * h > MAX_PNG_PIXELS {
            return Err(BarcodeError::ImageTooLarge {
                max_pixels: MAX_PNG_PIXELS,
            });
        }
        let (w, h) = (w as usize, h as usize);
        let mut pixels = vec![255u8; w * h];
        let s = scale as usize;
        let q = self.quiet_zone as usize;
        let (top, row_h) = if self.is_linear() {
            (LINEAR_TOP as usize, self.bar_height() as usize)
        } else {
            (q, 1)
        };
        for (y, x, len) in self.dark_runs() {
            let (x0, x1) = ((q + x as usize) * s, (q + (x + len) as usize) * s);
            let y0 = (top + y as usize * row_h) * s;
            for py in y0..y0 + row_h * s {
                pixels[py * w + x0..py * w + x1].fill(0);
            }
        }
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, w as u32, h as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let png_err = |e: png::EncodingError| BarcodeError::Encoder {
            reason: e.to_string(),
        };
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&pixels).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
        Ok(bytes)
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Encode a validated value: `(width, height, modules)`, no quiet zone.
fn encode_modules(symbology: Symbology, value: &str) -> Result<(u32, u32, Vec<u8>), BarcodeError> {
    let enc = |e: rxing::Exceptions| BarcodeError::Encoder {
        reason: e.to_string(),
    };
    let bars = match symbology {
        Symbology::Code128 => Some(Code128Writer.encode_oned(value).map_err(enc)?),
        Symbology::Ean13 => Some(EAN13Writer.encode_oned(value).map_err(enc)?),
        Symbology::Ean8 => Some(EAN8Writer.encode_oned(value).map_err(enc)?),
        // UPC-A is EAN-13 with a leading zero: the bars are identical.
        Symbology::UpcA => Some(EAN13Writer.encode_oned(&format!("0{value}")).map_err(enc)?),
        _ => None,
    };
    if let Some(bars) = bars {
        let modules: Vec<u8> = bars.iter().map(|&b| u8::from(b)).collect();
        return Ok((modules.len() as u32, 1, modules));
    }
    let mut hints = EncodeHints {
        Margin: Some("0".to_owned()),
        ..EncodeHints::default()
    };
    if !value.is_ascii() {
        hints.CharacterSet = Some("UTF-8".to_owned());
    }
    let matrix = match symbology {
        Symbology::Qr => {
            // M: 15 % of the code may be scratched or glared and it still reads.
            hints.ErrorCorrection = Some("M".to_owned());
            QRCodeWriter.encode_with_hints(value, &BarcodeFormat::QR_CODE, 0, 0, &hints)
        }
        Symbology::Aztec => {
            hints.ErrorCorrection = Some("33".to_owned());
            AztecWriter.encode_with_hints(value, &BarcodeFormat::AZTEC, 0, 0, &hints)
        }
        _ => PDF417Writer.encode_with_hints(value, &BarcodeFormat::PDF_417, 0, 0, &hints),
    }
    .map_err(enc)?;
    let (w, h) = (matrix.getWidth(), matrix.getHeight());
    let mut modules = Vec::with_capacity((w as usize) * (h as usize));
    for y in 0..h {
        for x in 0..w {
            modules.push(u8::from(matrix.get(x, y)));
        }
    }
    Ok((w, h, modules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_drawn_exactly_as_given() {
        // Spaces are characters the 2D codes carry: kept, never trimmed.
        let m = BarcodeMatrix::encode(Symbology::Qr, " x ").unwrap();
        assert_eq!(m.encoded_value, " x ");
    }

    #[test]
    fn every_symbology_encodes_a_sample() {
        let samples = [
            (Symbology::Qr, "TESSERA-0001"),
            (Symbology::Code128, "TESSERA-0001"),
            (Symbology::Ean13, "4006381333931"),
            (Symbology::Ean8, "96385074"),
            (Symbology::UpcA, "036000291452"),
            (Symbology::Pdf417, "TESSERA-0001"),
            (Symbology::Aztec, "TESSERA-0001"),
        ];
        for (s, v) in samples {
            let m = BarcodeMatrix::encode(s, v).unwrap();
            assert_eq!(m.modules.len(), (m.width * m.height) as usize, "{s}");
            assert!(m.modules.contains(&1), "{s} has dark modules");
            assert!(m.modules.iter().all(|&b| b <= 1));
            assert_eq!(m.is_linear(), m.height == 1, "{s}");
            assert_eq!(m.encoded_value, v);
        }
    }

    #[test]
    fn gtin_widths_follow_the_specification() {
        // EAN-13 and UPC-A: 95 modules; EAN-8: 67 modules.
        assert_eq!(
            BarcodeMatrix::encode(Symbology::Ean13, "4006381333931")
                .unwrap()
                .width,
            95
        );
        assert_eq!(
            BarcodeMatrix::encode(Symbology::UpcA, "036000291452")
                .unwrap()
                .width,
            95
        );
        assert_eq!(
            BarcodeMatrix::encode(Symbology::Ean8, "96385074")
                .unwrap()
                .width,
            67
        );
        // Linear codes start and end with a bar.
        let m = BarcodeMatrix::encode(Symbology::Code128, "ABC").unwrap();
        assert_eq!(m.modules.first(), Some(&1));
        assert_eq!(m.modules.last(), Some(&1));
    }

    #[test]
    fn qr_is_square_with_finder_patterns() {
        let m = BarcodeMatrix::encode(Symbology::Qr, "1234").unwrap();
        assert_eq!(m.width, m.height);
        assert_eq!(m.width, 21, "version 1");
        // Top-left finder: a 7-module dark ring.
        for i in 0..7 {
            assert!(m.is_dark(i, 0) && m.is_dark(0, i) && m.is_dark(6, i) && m.is_dark(i, 6));
        }
        assert!(!m.is_dark(1, 1));
    }

    #[test]
    fn svg_has_quiet_zone_and_text_for_linear_codes() {
        let m = BarcodeMatrix::encode(Symbology::Code128, "A<&>B").unwrap();
        let svg = m.svg(2).unwrap();
        let (w, _) = m.canvas();
        assert_eq!(w, m.width + 20);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("A&lt;&amp;&gt;B"));
        // First bar starts after the 10-module quiet zone.
        assert!(svg.contains(r#"d="M10 4h"#), "{svg}");
        let qr = BarcodeMatrix::encode(Symbology::Qr, "x")
            .unwrap()
            .svg(1)
            .unwrap();
        assert!(!qr.contains("<text"));
        assert!(
            qr.contains(r#"d="M4 4h7v1h-7z"#),
            "finder row after 4-module quiet zone"
        );
    }

    #[test]
    fn foreign_matrices_are_checked_before_drawing() {
        let good = BarcodeMatrix::encode(Symbology::Qr, "x").unwrap();
        let cases = [
            BarcodeMatrix {
                modules: vec![],
                ..good.clone()
            },
            BarcodeMatrix {
                width: u32::MAX,
                height: u32::MAX,
                ..good.clone()
            },
            BarcodeMatrix {
                quiet_zone: u32::MAX,
                ..good.clone()
            },
            BarcodeMatrix {
                modules: vec![2; good.modules.len()],
                ..good.clone()
            },
            BarcodeMatrix {
                symbology: Symbology::Code128,
                ..good.clone()
            },
        ];
        for bad in cases {
            assert!(matches!(
                bad.svg(1),
                Err(BarcodeError::InvalidMatrix { .. })
            ));
            assert!(matches!(
                bad.png(1),
                Err(BarcodeError::InvalidMatrix { .. })
            ));
        }
    }

    #[test]
    fn png_rejects_bad_scales() {
        let m = BarcodeMatrix::encode(Symbology::Qr, "x").unwrap();
        assert_eq!(
            m.png(0),
            Err(BarcodeError::InvalidScale {
                max: MAX_PNG_SCALE,
                actual: 0
            })
        );
        let png = m.png(4).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let big = BarcodeMatrix::encode(Symbology::Code128, &"x".repeat(40)).unwrap();
        assert!(matches!(
            big.png(32),
            Err(BarcodeError::ImageTooLarge { .. })
        ));
    }
}
