//! The programme and the member's card as entered: their fields and the rules they follow.

use serde::{Deserialize, Serialize};

use crate::barcode::{BarcodeError, Symbology, encoded_value};
use crate::catalog::CatalogError;

/// The loyalty programme this app belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Program {
    /// Stable identifier: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// Shown on the card: 1–80 characters.
    pub name: String,
    /// `#RRGGBB`.
    pub brand_color: String,
    /// The symbology the programme's tills read.
    pub symbology: Symbology,
}

/// The member's card, as entered at enrolment (later: as sent by the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberCard {
    /// As printed on the card; must fit the programme's symbology.
    pub card_number: String,
    /// 1–100 characters.
    pub holder_name: String,
    /// `YYYY-MM-DD`.
    pub member_since: String,
    /// "Gold", "Silver"…: up to 40 characters; empty means none.
    pub tier_label: Option<String>,
}

pub const MAX_PROGRAM_ID: usize = 64;
pub const MAX_PROGRAM_NAME: usize = 80;
pub const MAX_HOLDER_NAME: usize = 100;
pub const MAX_TIER_LABEL: usize = 40;

/// Why a programme or a card as entered is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardInputError {
    #[error(transparent)]
    Invalid(#[from] CatalogError),
    #[error("invalid card number: {0}")]
    CardNumber(#[source] BarcodeError),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CardInputError {
    CardInputError::Invalid(CatalogError::new(field, reason))
}

/// Trimmed text of 1..=max characters with no control characters.
/// Display text by the one rule ([`crate::text`]): NFC, trimmed, nothing invisible or
/// overriding.
fn text(field: &'static str, value: &str, max: usize) -> Result<String, CardInputError> {
    crate::text::display(field, value, max, true, crate::text::Lines::One)
        .map(|t| t.into_owned())
        .map_err(|e| invalid(field, e.reason))
}

impl Program {
    /// The programme with trimmed, canonical fields, or why it is invalid.
    pub fn validated(&self) -> Result<Program, CardInputError> {
        let id = self.id.trim();
        if id.is_empty() || id.len() > MAX_PROGRAM_ID {
            return Err(invalid(
                "program.id",
                format!("1 to {MAX_PROGRAM_ID} characters"),
            ));
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                "program.id",
                "only A-Z, a-z, 0-9, '.', '_' and '-'",
            ));
        }
        Ok(Program {
            id: id.to_owned(),
            name: text("program.name", &self.name, MAX_PROGRAM_NAME)?,
            brand_color: brand_color(&self.brand_color)?,
            symbology: self.symbology,
        })
    }
}

fn brand_color(value: &str) -> Result<String, CardInputError> {
    let v = value.trim();
    let hex = v.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("program.brand_color", "expected #RRGGBB"));
    }
    Ok(format!("#{}", hex.to_ascii_uppercase()))
}

impl MemberCard {
    /// The card with trimmed, canonical fields plus the value its barcode carries.
    pub fn validated(&self, symbology: Symbology) -> Result<(MemberCard, String), CardInputError> {
        let card_number = self.card_number.trim().to_owned();
        let encoded = encoded_value(symbology, &card_number).map_err(CardInputError::CardNumber)?;
        let member_since = self
            .member_since
            .trim()
            .parse::<jiff::civil::Date>()
            .map_err(|_| invalid("card.member_since", "expected a date as YYYY-MM-DD"))?;
        if !(1900..=2200).contains(&member_since.year()) {
            return Err(invalid("card.member_since", "year out of range"));
        }
        let tier_label = match self.tier_label.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(text("card.tier_label", t, MAX_TIER_LABEL)?),
        };
        let card = MemberCard {
            card_number,
            holder_name: text("card.holder_name", &self.holder_name, MAX_HOLDER_NAME)?,
            member_since: member_since.to_string(),
            tier_label,
        };
        Ok((card, encoded))
    }
}

/// Groups of four for a bare run of 8+ digits; anything else as printed.
pub fn display_number(card_number: &str) -> String {
    if card_number.len() < 8 || !card_number.bytes().all(|b| b.is_ascii_digit()) {
        return card_number.to_owned();
    }
    card_number
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> Program {
        Program {
            id: "maison-dupont".into(),
            name: "Maison Dupont".into(),
            brand_color: "#a1b2c3".into(),
            symbology: Symbology::Ean13,
        }
    }

    #[test]
    fn program_is_canonicalised() {
        let p = Program {
            name: "  Maison Dupont ".into(),
            ..program()
        }
        .validated()
        .unwrap();
        assert_eq!(p.name, "Maison Dupont");
        assert_eq!(p.brand_color, "#A1B2C3");
    }

    #[test]
    fn bad_programs_are_refused_by_field() {
        let field = |p: Program| match p.validated() {
            Err(CardInputError::Invalid(CatalogError { field, .. })) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        assert_eq!(
            field(Program {
                id: "".into(),
                ..program()
            }),
            "program.id"
        );
        assert_eq!(
            field(Program {
                id: "a b".into(),
                ..program()
            }),
            "program.id"
        );
        assert_eq!(
            field(Program {
                name: "\n".into(),
                ..program()
            }),
            "program.name"
        );
        assert_eq!(
            field(Program {
                name: "x".repeat(81),
                ..program()
            }),
            "program.name"
        );
        for bad in ["red", "#12345", "#12345G", "123456", "#1234567"] {
            assert_eq!(
                field(Program {
                    brand_color: bad.into(),
                    ..program()
                }),
                "program.brand_color"
            );
        }
    }

    #[test]
    fn card_validation() {
        let card = MemberCard {
            card_number: " 400638133393 ".into(),
            holder_name: "Ada".into(),
            member_since: "2021-03-04".into(),
            tier_label: Some("  ".into()),
        };
        let (c, encoded) = card.validated(Symbology::Ean13).unwrap();
        assert_eq!(c.card_number, "400638133393");
        assert_eq!(encoded, "4006381333931");
        assert_eq!(c.tier_label, None);

        let bad_date = MemberCard {
            member_since: "04/03/2021".into(),
            ..card.clone()
        };
        assert!(matches!(
            bad_date.validated(Symbology::Ean13),
            Err(CardInputError::Invalid(CatalogError {
                field: "card.member_since",
                ..
            }))
        ));
        let bad_number = MemberCard {
            card_number: "ABC".into(),
            ..card.clone()
        };
        assert!(matches!(
            bad_number.validated(Symbology::Ean13),
            Err(CardInputError::CardNumber(BarcodeError::NotDigits { .. }))
        ));
        let year_0 = MemberCard {
            member_since: "0001-01-01".into(),
            ..card
        };
        assert!(year_0.validated(Symbology::Ean13).is_err());
    }

    #[test]
    fn display_number_groups_bare_digits() {
        assert_eq!(display_number("4006381333931"), "4006 3813 3393 1");
        assert_eq!(display_number("1234"), "1234");
        assert_eq!(display_number("GOLD-1234-5678"), "GOLD-1234-5678");
    }
}
