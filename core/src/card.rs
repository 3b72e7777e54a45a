//! The programme and the member's digital card: validated input, stored locally, read back with
//! no network as everything the card screen shows.

use crate::clock::now_ms;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::Error;
use crate::barcode::{BarcodeError, BarcodeMatrix, Symbology, encoded_value};

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

pub use tessera_domain::card::{
    CardInputError, MAX_HOLDER_NAME, MAX_PROGRAM_ID, MAX_PROGRAM_NAME, MAX_TIER_LABEL, MemberCard,
    Program, display_number,
};

impl From<CardInputError> for Error {
    fn from(e: CardInputError) -> Self {
        match e {
            CardInputError::Invalid(e) => crate::invalid(e),
            CardInputError::CardNumber(e) => Error::CardNumber(e),
        }
    }
}

/// The card service: the programme and the member's card, stored locally, read back with no
/// network as everything the card screen shows.
#[derive(Debug)]
pub struct Cards {
    db: std::sync::Arc<crate::db::Db>,
}

impl Cards {
    pub(crate) fn new(db: std::sync::Arc<crate::db::Db>) -> Self {
        Cards { db }
    }

    pub fn program(&self) -> Result<Option<Program>, Error> {
        self.db.read(read_program)
    }

    /// Store the programme. If a card is stored, what its barcode carries is re-encoded for the
    /// new symbology in the same transaction; refused with [`Error::CardIncompatible`] if the
    /// card cannot be drawn in it.
    pub fn set_program(&self, program: &Program) -> Result<Program, Error> {
        let program = program.validated()?;
        self.db.write(|tx| write_program(tx, &program))?;
        Ok(program)
    }

    /// Store the member's card (the programme must be set: it decides the symbology) and return
    /// the card screen.
    pub fn set_card(&self, card: &MemberCard) -> Result<CardView, Error> {
        self.db.write(|tx| {
            let program = read_program(tx)?.ok_or(Error::NoProgram)?;
            let (card, encoded) = card.validated(program.symbology)?;
            write_card(tx, &card, &encoded)
        })?;
        self.card()
    }

    /// Everything the card screen shows, from the local database only.
    pub fn card(&self) -> Result<CardView, Error> {
        self.db.read(read_card_view)
    }

    /// Forget the card on this device (sign-out).
    pub fn remove_card(&self) -> Result<(), Error> {
        self.db.write(|tx| {
            tx.execute("DELETE FROM member_card WHERE true", [])
                .map_err(crate::StorageError::from)?;
            Ok(())
        })
    }
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

/// The card screen of the phone database at `path` through one read-only connection: no
/// migration, no other connection, nothing created or written. `None` unless the file is a
/// phone database of this schema version holding a card; the caller then opens it the ordinary
/// way (`Tessera::open`), which upgrades it or says what is wrong. For the first card of
/// a process (the JNI fast path, `bindings/src/fastpath.rs`).
pub fn peek(path: &std::path::Path) -> Option<CardView> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    let pragma = |name: &str| -> Option<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .ok()
    };
    if pragma("application_id")? != i64::from(crate::db::PHONE_FILE.application_id)
        || pragma("user_version")? != i64::from(crate::db::SCHEMA_VERSION)
    {
        return None;
    }
    read_card_view(&conn).ok()
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
