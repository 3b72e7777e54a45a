//! Consent and preferences on the phone: the local ledger, the preference centre, the gated
//! features (notifications, personalised offers, analytics), and the member's export.
//!
//! Every decision is written with its outbox row in one transaction, offline; the gate the
//! features check is derived from the local ledger, so a withdrawal takes effect before it is
//! synced. [`Consent`] is the service; its SQL is in `ledger`.

mod ledger;

pub use ledger::{ConsentChoice, OfferList};
pub(crate) use ledger::{claim_at, export_device, merge_from_server, preferences};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::consent::{ConsentGate, ConsentRecord, ConsentStatus, ConsentText, Feature};
use crate::db::{Db, StorageError};
use crate::preferences::{NotificationRequest, NotificationVerdict, Preferences};
use crate::{Error, Result};

/// Set in the cached gate's word once it was derived from the ledger.
const GATE_LOADED: u32 = 1 << 31;

/// The consent service: the ledger, the preference centre, and the gate every feature that
/// reaches or profiles the member asks first.
#[derive(Debug)]
pub struct Consent {
    db: Arc<Db>,
    /// The gate's bits, with [`GATE_LOADED`] set once derived from the ledger; cleared whenever
    /// the ledger may have changed.
    gate: AtomicU32,
}

impl Consent {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Consent {
            db,
            gate: AtomicU32::new(0),
        }
    }

    /// The consent gate: loaded from the ledger on first use, then kept in one atomic word.
    /// A storage failure closes it (nothing is allowed), never opens it.
    pub fn gate(&self) -> ConsentGate {
        let bits = self.gate.load(Ordering::Acquire);
        if bits & GATE_LOADED != 0 {
            return ConsentGate::from_bits(bits);
        }
        match self.db.read(ledger::gate) {
            Ok(gate) => {
                self.gate
                    .store(gate.bits() | GATE_LOADED, Ordering::Release);
                gate
            }
            Err(e) => {
                tracing::warn!(error = %e, "consent gate unavailable: everything is refused");
                ConsentGate::CLOSED
            }
        }
    }

    /// Forget the cached gate: the next check reads the ledger again (after a sync brought
    /// records made elsewhere, a sign-out, an erasure).
    pub fn invalidate(&self) {
        self.gate.store(0, Ordering::Release);
    }

    /// Whether `feature` may run now (every consent it needs is granted). Costs one atomic load
    /// once loaded.
    pub fn permits(&self, feature: Feature) -> bool {
        self.gate().permits(feature)
    }

    /// Record the member's decisions on a consent screen that showed `text`. Takes effect at
    /// once, offline; sent at the next sync.
    pub fn record(
        &self,
        choices: &[ConsentChoice],
        text: &ConsentText,
    ) -> Result<Vec<ConsentRecord>> {
        self.write_ledger(|tx| ledger::record_consents(tx, choices, text))
    }

    /// Withdraw every consent the member has granted, in one call.
    pub fn withdraw_all(&self, text: &ConsentText) -> Result<Vec<ConsentRecord>> {
        self.write_ledger(|tx| ledger::withdraw_all(tx, text))
    }

    /// Write to the ledger and re-derive the gate in the same transaction.
    fn write_ledger<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let (out, gate) = self.db.write(|tx| {
            let out = f(tx)?;
            Ok::<_, Error>((out, ledger::gate(tx)?))
        })?;
        self.gate
            .store(gate.bits() | GATE_LOADED, Ordering::Release);
        Ok(out)
    }

    /// The current decision for every purpose on every channel (20 entries).
    pub fn state(&self) -> Result<Vec<ConsentStatus>, StorageError> {
        self.db.read(ledger::consent_state)
    }

    /// The member's consent ledger, oldest first, from every source the server has sent.
    pub fn history(&self) -> Result<Vec<ConsentRecord>, StorageError> {
        self.db.read(ledger::consent_history)
    }

    pub fn preferences(&self) -> Result<Preferences, StorageError> {
        self.db.read(ledger::preferences)
    }

    /// Store the preference centre; only changed fields are sent at the next sync.
    pub fn set_preferences(&self, preferences: &Preferences) -> Result<Preferences> {
        self.db.write(|tx| ledger::set_preferences(tx, preferences))
    }

    /// Whether to show a notification now (consent, preferred channels, interests, quiet hours,
    /// caps); a `Send` is counted against the caps.
    pub fn claim_notification(&self, request: &NotificationRequest) -> Result<NotificationVerdict> {
        let gate = self.gate();
        self.db
            .write(|tx| ledger::claim_notification(tx, gate, request))
    }

    /// A usage event, kept and sent only with analytics consent; returns whether it was kept.
    pub fn track(&self, name: &str, attributes: BTreeMap<String, String>) -> Result<bool> {
        let gate = self.gate();
        self.db
            .write(|tx| ledger::track(tx, gate, name, attributes))
    }

    /// Everything this device holds about the member, as JSON (no tokens). Offline.
    pub fn export_device_data(&self) -> Result<String, StorageError> {
        let value = self.db.read_background(ledger::export_device)?;
        // A JSON value read back from the file always prints; a failure would mean the file's
        // content is not what this build wrote.
        serde_json::to_string_pretty(&value).map_err(|_| StorageError::Corrupt)
    }
}
