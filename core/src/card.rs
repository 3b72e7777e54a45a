//! The programme and the member's digital card: validated input, stored locally, read back with
//! no network as everything the card screen shows.

use crate::now_ms;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::barcode::{BarcodeError, BarcodeMatrix, Symbology, encoded_value};

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

/// Everything the card screen shows, in one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CardView {
    pub program_id: String,
    pub program_name: String,
    pub brand_color: String,
    pub holder_name: String,
    /// As printed on the card.
    pub card_number: String,
    /// The card number grouped for reading aloud or typing at the till ("4006 3813 3393 1").
    pub display_number: String,
    pub member_since: String,
    pub tier_label: Option<String>,
    pub barcode: BarcodeMatrix,
}

pub(crate) const MAX_PROGRAM_ID: usize = 64;
pub(crate) const MAX_PROGRAM_NAME: usize = 80;
pub(crate) const MAX_HOLDER_NAME: usize = 100;
pub(crate) const MAX_TIER_LABEL: usize = 40;

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// Trimmed text of 1..=max characters with no control characters.
/// Display text by the one rule ([`crate::text`]): NFC, trimmed, nothing invisible or
/// overriding.
fn text(field: &'static str, value: &str, max: usize) -> Result<String, Error> {
    crate::text::display(field, value, max, true, crate::text::Lines::One)
        .map(|t| t.into_owned())
        .map_err(|e| invalid(field, e.reason))
}

impl Program {
    /// The programme with trimmed, canonical fields, or why it is invalid.
    pub fn validated(&self) -> Result<Program, Error> {
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

fn brand_color(value: &str) -> Result<String, Error> {
    let v = value.trim();
    let hex = v.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("program.brand_color", "expected #RRGGBB"));
    }
    Ok(format!("#{}", hex.to_ascii_uppercase()))
}

impl MemberCard {
    /// The card with trimmed, canonical fields plus the value its barcode carries.
    pub fn validated(&self, symbology: Symbology) -> Result<(MemberCard, String), Error> {
        let card_number = self.card_number.trim().to_owned();
        let encoded = encoded_value(symbology, &card_number).map_err(Error::CardNumber)?;
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

pub(crate) fn read_program(conn: &rusqlite::Connection) -> Result<Option<Program>, Error> {
    let row = conn
        .query_row(
            "SELECT program_id, name, brand_color, symbology FROM program WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()
        .map_err(crate::StorageError::from)?;
    row.map(|(id, name, brand_color, symbology)| {
        Ok(Program {
            id,
            name,
            brand_color,
            symbology: symbology.parse().map_err(|_| stored_corrupt())?,
        })
    })
    .transpose()
}

/// A stored value this build wrote cannot be read back: the file was tampered with or damaged.
fn stored_corrupt() -> Error {
    Error::Storage(crate::StorageError::Corrupt)
}

pub(crate) fn write_program(tx: &Transaction<'_>, program: &Program) -> Result<(), Error> {
    // The stored card must still be drawable in the new symbology, and what its barcode carries
    // follows the symbology (an EAN-13 check digit does not belong in a Code 128).
    let stored: Option<String> = tx
        .query_row(
            "SELECT card_number FROM member_card WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(crate::StorageError::from)?;
    if let Some(number) = stored {
        let encoded = encoded_value(program.symbology, &number).map_err(|source| {
            Error::CardIncompatible {
                symbology: program.symbology,
                source,
            }
        })?;
        tx.execute(
            "UPDATE member_card SET encoded_value = ?1 WHERE id = 1",
            params![encoded],
        )
        .map_err(crate::StorageError::from)?;
    }
    tx.execute(
        "INSERT INTO program (id, program_id, name, brand_color, symbology, updated_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET program_id = ?1, name = ?2, brand_color = ?3,
             symbology = ?4, updated_at = ?5",
        params![
            program.id,
            program.name,
            program.brand_color,
            program.symbology.as_str(),
            now_ms()
        ],
    )
    .map_err(crate::StorageError::from)?;
    Ok(())
}

pub(crate) fn write_card(
    tx: &Transaction<'_>,
    card: &MemberCard,
    encoded: &str,
) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO member_card
             (id, card_number, encoded_value, holder_name, member_since, tier_label, updated_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET card_number = ?1, encoded_value = ?2, holder_name = ?3,
             member_since = ?4, tier_label = ?5, updated_at = ?6",
        params![
            card.card_number,
            encoded,
            card.holder_name,
            card.member_since,
            card.tier_label,
            now_ms()
        ],
    )
    .map_err(crate::StorageError::from)?;
    Ok(())
}

/// One query for the whole screen, then the barcode.
pub(crate) fn read_card_view(conn: &rusqlite::Connection) -> Result<CardView, Error> {
    let row = conn
        .query_row(
            "SELECT p.program_id, p.name, p.brand_color, p.symbology,
                    c.card_number, c.encoded_value, c.holder_name, c.member_since, c.tier_label
             FROM member_card c, program p WHERE c.id = 1 AND p.id = 1",
            [],
            |r| {
                Ok((
                    [
                        r.get::<_, String>(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ],
                    r.get::<_, Option<String>>(8)?,
                ))
            },
        )
        .optional()
        .map_err(crate::StorageError::from)?;
    let Some((
        [
            program_id,
            program_name,
            brand_color,
            symbology,
            card_number,
            encoded,
            holder_name,
            member_since,
        ],
        tier_label,
    )) = row
    else {
        return Err(Error::NotEnrolled);
    };
    let symbology: Symbology = symbology.parse().map_err(|_| stored_corrupt())?;
    // Encoding re-validates the stored value (under 1 µs for EAN, part of QR's 71 µs): a value
    // that no longer validates means the file was altered, reported as corrupt, never drawn.
    let barcode = BarcodeMatrix::encode(symbology, &encoded).map_err(|e| match e {
        BarcodeError::Encoder { .. } => Error::Barcode(e),
        _ => stored_corrupt(),
    })?;
    Ok(CardView {
        program_id,
        program_name,
        brand_color,
        holder_name,
        display_number: display_number(&card_number),
        card_number,
        member_since,
        tier_label,
        barcode,
    })
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
            Err(Error::InvalidInput { field, .. }) => field,
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
            Err(Error::InvalidInput {
                field: "card.member_since",
                ..
            })
        ));
        let bad_number = MemberCard {
            card_number: "ABC".into(),
            ..card.clone()
        };
        assert!(matches!(
            bad_number.validated(Symbology::Ean13),
            Err(Error::CardNumber(BarcodeError::NotDigits { .. }))
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
