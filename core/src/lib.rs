//! # tessera-core
//!
//! The loyalty logic behind Tessera's Android and iOS apps, its server and its CLI. No FFI types
//! here: the `uniffi` feature only adds derives to records that cross the boundary unchanged.
//!
//! | module | job |
//! |---|---|
//! | [`barcode`] | symbologies, validation and inference of card numbers, module matrix, SVG, PNG |
//! | [`card`] | the programme and the member's card, and the card screen ([`CardView`]) |
//! | [`db`] | SQLite: connections, pragmas, migrations, the one write path, quarantine |
//! | [`diagnostics`] | checks a shell's build can run on itself |
//! | [`Tessera`] (this file) | the facade the bindings, the CLI and the tests use |
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("tessera_core");

pub mod api;
pub mod barcode;
pub mod card;
pub mod catalog;
pub mod db;
pub mod diagnostics;

use std::path::{Path, PathBuf};

pub use barcode::{
    BarcodeError, BarcodeMatrix, CardNumberAnalysis, Symbology, SymbologySuggestion,
};
pub use card::{CardView, MemberCard, Program};
pub use db::{Db, StorageError};

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

/// One member's Tessera on one device. `Send + Sync`: call it from any thread.
#[derive(Debug)]
pub struct Tessera {
    db: Db,
}

impl Tessera {
    /// Open (or create) the database at `path`. A file that cannot be used is a typed
    /// [`StorageError`]; see [`Tessera::recover`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Tessera {
            db: Db::open(path)?,
        })
    }

    /// Move an unusable database aside (kept, never deleted) and start a fresh one at `path`.
    /// Returns the new instance and where the old file went. The card comes back by enrolling
    /// again (later: from the server).
    pub fn recover(path: impl AsRef<Path>) -> Result<(Self, PathBuf)> {
        let path = path.as_ref();
        let moved = db::quarantine(path)?;
        Ok((Self::open(path)?, moved))
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    pub fn program(&self) -> Result<Option<Program>> {
        self.db.read(card::read_program)
    }

    /// Store the programme. If a card is stored, what its barcode carries is re-encoded for the
    /// new symbology in the same transaction; refused with [`Error::CardIncompatible`] if the
    /// card cannot be drawn in it.
    pub fn set_program(&self, program: &Program) -> Result<Program> {
        let program = program.validated()?;
        self.db.write(|tx| card::write_program(tx, &program))?;
        Ok(program)
    }

    /// Store the member's card (the programme must be set: it decides the symbology) and return
    /// the card screen.
    pub fn set_card(&self, card: &MemberCard) -> Result<CardView> {
        self.db.write(|tx| {
            let program = card::read_program(tx)?.ok_or(Error::NoProgram)?;
            let (card, encoded) = card.validated(program.symbology)?;
            card::write_card(tx, &card, &encoded)
        })?;
        self.card()
    }

    /// Everything the card screen shows, from the local database only.
    pub fn card(&self) -> Result<CardView> {
        self.db.read(card::read_card_view)
    }

    /// Forget the card on this device (sign-out).
    pub fn remove_card(&self) -> Result<()> {
        self.db.write(|tx| {
            tx.execute("DELETE FROM member_card", [])
                .map_err(StorageError::from)?;
            Ok(())
        })
    }

    /// Full read of the file looking for damage.
    pub fn check_integrity(&self) -> Result<()> {
        Ok(self.db.check_integrity()?)
    }

    /// Close the database; every later call returns [`StorageError::Closed`].
    pub fn close(&self) {
        self.db.close();
    }
}
