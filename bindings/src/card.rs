//! The `Tessera` object: one member's Tessera on one device.

use std::sync::Arc;

use tessera_core::{CardView, MemberCard, Program};

use crate::error::{CardError, StorageError};

/// One member's Tessera on one device. Thread-safe; call it from a background dispatcher.
#[derive(Debug, uniffi::Object)]
pub struct Tessera {
    pub(crate) inner: tessera_core::Tessera,
}

#[uniffi::export]
impl Tessera {
    /// Open (or create) the database file at `path`.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Self>, StorageError> {
        let inner = tessera_core::Tessera::open(path)?;
        Ok(Arc::new(Tessera { inner }))
    }

    /// Everything the card screen shows, offline, in one call.
    pub fn card(&self) -> Result<CardView, CardError> {
        Ok(self.inner.card()?)
    }

    /// The rotating member code for the card screen now, made offline: a till verifies it with
    /// the programme's public keys and a screenshot cannot replay it. Draw it again at
    /// `changes_at`; on an error, show the static card number.
    pub fn member_code(
        &self,
    ) -> Result<
        tessera_core::card_code::MemberCodeView,
        tessera_core::card_code::MemberCodeUnavailable,
    > {
        self.inner.member_code()
    }

    pub fn program(&self) -> Result<Option<Program>, CardError> {
        Ok(self.inner.program()?)
    }

    /// Store the programme (its symbology decides how the card is drawn); returns it canonical.
    pub fn set_program(&self, program: Program) -> Result<Program, CardError> {
        Ok(self.inner.set_program(&program)?)
    }

    /// Store the member's card and return the card screen.
    pub fn set_card(&self, card: MemberCard) -> Result<CardView, CardError> {
        Ok(self.inner.set_card(&card)?)
    }

    /// Forget the card on this device.
    pub fn remove_card(&self) -> Result<(), CardError> {
        Ok(self.inner.remove_card()?)
    }

    /// Read the whole file looking for damage (slow on big databases; for diagnostics).
    pub fn check_integrity(&self) -> Result<(), StorageError> {
        self.inner.check_integrity()
    }

    /// Close the database now; later calls fail with `Closed`. (Named `shutdown` because Kotlin's
    /// `close()` is `AutoCloseable`'s, which frees the object itself.)
    pub fn shutdown(&self) {
        self.inner.close()
    }
}

/// Move an unusable database (and its WAL files) aside and return where it went; then call
/// `Tessera.open` on the same path for a fresh one. The old file is kept for support.
#[uniffi::export]
pub fn quarantine_database(path: String) -> Result<String, StorageError> {
    tessera_core::db::quarantine(path).map(|p| p.display().to_string())
}
