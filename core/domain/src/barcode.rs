//! Symbologies, what each can carry, and what a typed-in card number most likely is. The
//! encoders and renderers that draw the modules stay with the phone client (`tessera-core`).
//!
//! Tills are picky: many laser scanners read only Code 128 and EAN/UPC, and members (and
//! programme managers) often pick the wrong symbology. Everything here validates before anything
//! is drawn, so a wrong check digit or a letter in an EAN is a typed error, not an unreadable code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest Code 128 value we draw. A phone screen is about 65 mm wide and till scanners want
/// modules of at least ~0.25 mm, so longer codes stop scanning before the encoder's own limit.
pub const MAX_CODE128_CHARS: u32 = 40;
/// Longest payload we put in a 2D code (QR, PDF417, Aztec): a card identifier, never a document.
/// Well below each format's capacity at the error-correction level we use.
pub const MAX_2D_BYTES: u32 = 512;

/// The barcode formats a till may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Symbology {
    Qr,
    Code128,
    Ean13,
    Ean8,
    UpcA,
    Pdf417,
    Aztec,
}

impl Symbology {
    /// Every symbology, in the order suggestions prefer them when nothing else decides.
    pub const ALL: [Symbology; 7] = [
        Symbology::Ean13,
        Symbology::UpcA,
        Symbology::Ean8,
        Symbology::Code128,
        Symbology::Qr,
        Symbology::Aztec,
        Symbology::Pdf417,
    ];

    /// Stable identifier used in storage, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Symbology::Qr => "qr",
            Symbology::Code128 => "code128",
            Symbology::Ean13 => "ean13",
            Symbology::Ean8 => "ean8",
            Symbology::UpcA => "upca",
            Symbology::Pdf417 => "pdf417",
            Symbology::Aztec => "aztec",
        }
    }

    /// One-dimensional (bars) rather than a 2D matrix.
    pub fn is_linear(self) -> bool {
        matches!(
            self,
            Symbology::Code128 | Symbology::Ean13 | Symbology::Ean8 | Symbology::UpcA
        )
    }

    /// Quiet zone each side, in modules, from the symbology's specification.
    pub fn quiet_zone(self) -> u32 {
        match self {
            Symbology::Qr => 4,
            Symbology::Code128 => 10,
            Symbology::Ean13 => 11,
            Symbology::Ean8 => 7,
            Symbology::UpcA => 9,
            Symbology::Pdf417 => 2,
            Symbology::Aztec => 2,
        }
    }

    /// Digits-only GTIN family: (payload length without check digit).
    fn gtin_payload_len(self) -> Option<usize> {
        match self {
            Symbology::Ean13 => Some(12),
            Symbology::UpcA => Some(11),
            Symbology::Ean8 => Some(7),
            _ => None,
        }
    }
}

impl fmt::Display for Symbology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Symbology::Qr => "QR",
            Symbology::Code128 => "Code 128",
            Symbology::Ean13 => "EAN-13",
            Symbology::Ean8 => "EAN-8",
            Symbology::UpcA => "UPC-A",
            Symbology::Pdf417 => "PDF417",
            Symbology::Aztec => "Aztec",
        })
    }
}

impl FromStr for Symbology {
    type Err = BarcodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Ok(match key.as_str() {
            "qr" | "qrcode" => Symbology::Qr,
            "code128" => Symbology::Code128,
            "ean13" => Symbology::Ean13,
            "ean8" => Symbology::Ean8,
            "upca" | "upc" => Symbology::UpcA,
            "pdf417" => Symbology::Pdf417,
            "aztec" => Symbology::Aztec,
            _ => return Err(BarcodeError::UnknownSymbology),
        })
    }
}

/// GS1 check digit (EAN-13, EAN-8, UPC-A) of a digit payload without its check digit.
pub fn gtin_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// The digits of a printed number: spaces and hyphens between groups dropped, nothing else
/// (a line break or a tab is a character the number does not have, and is refused).
fn strip_separators(input: &str) -> String {
    input.chars().filter(|c| !matches!(c, ' ' | '-')).collect()
}

/// The exact value the barcode will carry for a printed card number, or why it cannot.
///
/// Digit symbologies accept the number with spaces or hyphens between groups (as printed on
/// plastic cards) and with or without the check digit: a missing one is computed and appended, a
/// wrong one is refused. Every other symbology carries the value exactly as given, spaces
/// included: it is never trimmed, and a character it cannot carry (a line break, a control
/// character) is refused with its position rather than dropped.
pub fn encoded_value(symbology: Symbology, printed: &str) -> Result<String, BarcodeError> {
    if printed.trim().is_empty() {
        return Err(BarcodeError::Empty);
    }
    if let Some(payload_len) = symbology.gtin_payload_len() {
        return gtin_value(symbology, payload_len, printed);
    }
    let value = printed;
    if symbology == Symbology::Code128 {
        if let Some(position) = value.chars().position(|c| !(' '..='~').contains(&c)) {
            return Err(BarcodeError::UnsupportedCharacter {
                symbology,
                position: position as u32 + 1,
            });
        }
        let len = value.len() as u32;
        if len > MAX_CODE128_CHARS {
            return Err(BarcodeError::TooLong {
                symbology,
                max: MAX_CODE128_CHARS,
                actual: len,
            });
        }
    } else {
        if let Some(position) = value.chars().position(char::is_control) {
            return Err(BarcodeError::UnsupportedCharacter {
                symbology,
                position: position as u32 + 1,
            });
        }
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        if len > MAX_2D_BYTES {
            return Err(BarcodeError::TooLong {
                symbology,
                max: MAX_2D_BYTES,
                actual: len,
            });
        }
    }
    Ok(value.to_owned())
}

fn gtin_value(
    symbology: Symbology,
    payload_len: usize,
    printed: &str,
) -> Result<String, BarcodeError> {
    let compact = strip_separators(printed);
    if let Some(position) = compact.chars().position(|c| !c.is_ascii_digit()) {
        return Err(BarcodeError::NotDigits {
            symbology,
            position: position as u32 + 1,
        });
    }
    let digits: Vec<u8> = compact.bytes().map(|b| b - b'0').collect();
    if digits.len() == payload_len {
        let check = gtin_check_digit(&digits);
        return Ok(format!("{compact}{check}"));
    }
    if digits.len() != payload_len + 1 {
        return Err(BarcodeError::InvalidLength {
            symbology,
            expected: payload_len as u32,
            actual: digits.len() as u32,
        });
    }
    let (payload, found) = digits.split_at(payload_len);
    let expected = gtin_check_digit(payload);
    if found[0] != expected {
        return Err(BarcodeError::InvalidCheckDigit {
            symbology,
            expected,
            found: found[0],
        });
    }
    Ok(compact)
}

/// One way a typed-in card number could be drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SymbologySuggestion {
    pub symbology: Symbology,
    /// What a scanner will read.
    pub encoded_value: String,
    /// True when a scanner would read something other than the digits/characters typed in
    /// (for example an EAN-13 check digit the member did not type). Spaces and hyphens between
    /// digit groups do not count.
    pub differs_from_printed: bool,
    /// One sentence for the member or the support agent.
    pub note: String,
}

/// What a typed-in card number most likely is; the first suggestion is the best guess.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CardNumberAnalysis {
    /// The input with surrounding white space removed.
    pub input: String,
    /// Every symbology that can carry the number, best first.
    pub suggestions: Vec<SymbologySuggestion>,
}

impl CardNumberAnalysis {
    pub fn likely(&self) -> Option<Symbology> {
        self.suggestions.first().map(|s| s.symbology)
    }
}

/// Rank every symbology that can carry `input`, best first.
///
/// A number that is exactly a valid EAN-13/UPC-A/EAN-8 (check digit included) is that; other
/// printable ASCII goes to Code 128, which every till reads; what Code 128 cannot carry goes to
/// the 2D codes. Suggestions that would make the scanner read something other than what was
/// typed (an appended check digit) come after those that do not.
pub fn analyse_card_number(input: &str) -> Result<CardNumberAnalysis, BarcodeError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(BarcodeError::Empty);
    }
    let compact = strip_separators(trimmed);
    let mut ranked: Vec<(u8, SymbologySuggestion)> = Vec::new();
    for symbology in Symbology::ALL {
        let Ok(value) = encoded_value(symbology, trimmed) else {
            continue;
        };
        let differs = if symbology.gtin_payload_len().is_some() {
            value != compact
        } else {
            value != trimmed
        };
        let (rank, note) = match (symbology.gtin_payload_len(), differs) {
            (Some(_), false) => (
                0,
                format!(
                    "{} digits with a valid {symbology} check digit",
                    value.len()
                ),
            ),
            (Some(_), true) => (
                3,
                format!(
                    "{symbology} adds check digit {}: a scanner reads {value}",
                    value.chars().last().unwrap_or('0')
                ),
            ),
            (None, _) if symbology == Symbology::Code128 => (
                1,
                "Code 128 carries the number exactly as typed and every till reads it".to_owned(),
            ),
            (None, _) => (
                2,
                format!(
                    "{symbology} carries the number exactly as typed; the till needs a 2D scanner"
                ),
            ),
        };
        ranked.push((
            rank,
            SymbologySuggestion {
                symbology,
                encoded_value: value,
                differs_from_printed: differs,
                note,
            },
        ));
    }
    if ranked.is_empty() {
        // Nothing fits: QR is the most permissive format, so its refusal says why.
        return Err(encoded_value(Symbology::Qr, trimmed)
            .err()
            .unwrap_or(BarcodeError::Empty));
    }
    // Stable sort: equal ranks keep the order of `Symbology::ALL`.
    ranked.sort_by_key(|(rank, _)| *rank);
    Ok(CardNumberAnalysis {
        input: trimmed.to_owned(),
        suggestions: ranked.into_iter().map(|(_, s)| s).collect(),
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_carried_exactly_or_refused_never_trimmed() {
        // Spaces are characters Code 128 and the 2D codes carry: kept.
        for s in [
            Symbology::Code128,
            Symbology::Qr,
            Symbology::Pdf417,
            Symbology::Aztec,
        ] {
            assert_eq!(encoded_value(s, "  MD-42 ").unwrap(), "  MD-42 ", "{s}");
        }
        // A line break is not: refused where it stands, not dropped.
        assert_eq!(
            encoded_value(Symbology::Code128, "MD-42\n"),
            Err(BarcodeError::UnsupportedCharacter {
                symbology: Symbology::Code128,
                position: 6
            })
        );
        assert_eq!(
            encoded_value(Symbology::Qr, "MD-42\n"),
            Err(BarcodeError::UnsupportedCharacter {
                symbology: Symbology::Qr,
                position: 6
            })
        );
        // Digits keep their group separators (spaces, hyphens) and nothing else.
        assert_eq!(
            encoded_value(Symbology::Ean13, "4006 3813 3393 1").unwrap(),
            "4006381333931"
        );
        assert!(matches!(
            encoded_value(Symbology::Ean13, "4006381333931\n"),
            Err(BarcodeError::NotDigits { .. }) | Err(BarcodeError::InvalidLength { .. })
        ));
    }

    #[test]
    fn check_digits_match_published_examples() {
        // GS1's own examples.
        assert_eq!(
            encoded_value(Symbology::Ean13, "400638133393").unwrap(),
            "4006381333931"
        );
        assert_eq!(
            encoded_value(Symbology::UpcA, "03600029145").unwrap(),
            "036000291452"
        );
        assert_eq!(
            encoded_value(Symbology::Ean8, "9638507").unwrap(),
            "96385074"
        );
    }

    #[test]
    fn wrong_check_digit_is_refused_with_the_right_one() {
        assert_eq!(
            encoded_value(Symbology::Ean13, "4006381333932"),
            Err(BarcodeError::InvalidCheckDigit {
                symbology: Symbology::Ean13,
                expected: 1,
                found: 2
            })
        );
    }

    #[test]
    fn separators_are_accepted_in_digit_codes() {
        assert_eq!(
            encoded_value(Symbology::Ean13, " 4 006381 333931 ").unwrap(),
            "4006381333931"
        );
        assert_eq!(
            encoded_value(Symbology::Ean13, "4006-3813-3393-1").unwrap(),
            "4006381333931"
        );
    }

    #[test]
    fn bad_inputs_get_typed_errors() {
        use BarcodeError::*;
        let s = Symbology::Ean13;
        assert_eq!(encoded_value(s, "   "), Err(Empty));
        assert_eq!(
            encoded_value(s, "40063813339A"),
            Err(NotDigits {
                symbology: s,
                position: 12
            })
        );
        assert_eq!(
            encoded_value(s, "12345"),
            Err(InvalidLength {
                symbology: s,
                expected: 12,
                actual: 5
            })
        );
        assert_eq!(
            encoded_value(Symbology::Code128, "café"),
            Err(UnsupportedCharacter {
                symbology: Symbology::Code128,
                position: 4
            })
        );
        assert_eq!(
            encoded_value(Symbology::Code128, &"7".repeat(41)),
            Err(TooLong {
                symbology: Symbology::Code128,
                max: 40,
                actual: 41
            })
        );
        assert_eq!(
            encoded_value(Symbology::Qr, "a\u{0}b"),
            Err(UnsupportedCharacter {
                symbology: Symbology::Qr,
                position: 2
            })
        );
        assert!(matches!(
            encoded_value(Symbology::Aztec, &"x".repeat(513)),
            Err(TooLong { max: 512, .. })
        ));
    }

    #[test]
    fn inference_prefers_a_valid_gtin() {
        let a = analyse_card_number("4006381333931").unwrap();
        assert_eq!(a.likely(), Some(Symbology::Ean13));
        assert!(!a.suggestions[0].differs_from_printed);

        let a = analyse_card_number("036000291452").unwrap();
        assert_eq!(a.likely(), Some(Symbology::UpcA));

        let a = analyse_card_number("96385074").unwrap();
        assert_eq!(a.likely(), Some(Symbology::Ean8));
    }

    #[test]
    fn inference_flags_an_appended_check_digit() {
        // 12 digits that are not a valid UPC-A: Code 128 first, EAN-13 later and flagged.
        let a = analyse_card_number("400638133393").unwrap();
        assert_eq!(a.likely(), Some(Symbology::Code128));
        let ean = a
            .suggestions
            .iter()
            .find(|s| s.symbology == Symbology::Ean13)
            .unwrap();
        assert!(ean.differs_from_printed);
        assert_eq!(ean.encoded_value, "4006381333931");
        assert!(ean.note.contains("check digit 1"));
    }

    #[test]
    fn inference_of_text_and_unicode() {
        assert_eq!(
            analyse_card_number("GOLD-2291-X").unwrap().likely(),
            Some(Symbology::Code128)
        );
        let a = analyse_card_number("Zoë 4411").unwrap();
        assert_eq!(a.likely(), Some(Symbology::Qr));
        assert!(
            a.suggestions
                .iter()
                .all(|s| s.symbology != Symbology::Code128)
        );
        assert_eq!(analyse_card_number(" "), Err(BarcodeError::Empty));
        assert!(matches!(
            analyse_card_number(&"é".repeat(400)),
            Err(BarcodeError::TooLong { .. })
        ));
    }

    #[test]
    fn symbology_names_round_trip() {
        for s in Symbology::ALL {
            assert_eq!(s.as_str().parse::<Symbology>().unwrap(), s);
            assert_eq!(s.to_string().parse::<Symbology>().unwrap(), s);
        }
        assert_eq!("QR-Code".parse::<Symbology>().unwrap(), Symbology::Qr);
        assert_eq!(
            "datamatrix".parse::<Symbology>(),
            Err(BarcodeError::UnknownSymbology)
        );
    }
}
