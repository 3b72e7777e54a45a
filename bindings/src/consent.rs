//! Consent, the preference centre, the gated features and the member's rights: one-line methods
//! over the core's `Tessera`.

use std::collections::HashMap;
use std::sync::Arc;

use tessera_core::api::ErasureReceipt;
use tessera_core::consent::{ConsentRecord, ConsentStatus, ConsentText, Feature};
use tessera_core::preferences::{NotificationRequest, NotificationVerdict, Preferences};
use tessera_core::privacy::{ConsentChoice, OfferList};

use crate::card::Tessera;
use crate::error::{ActionError, StorageError, SyncError};

#[uniffi::export]
impl Tessera {
    /// Record the member's decisions on a consent screen that showed `text`; effective at once,
    /// offline, sent at the next sync.
    pub fn record_consent(
        &self,
        choices: Vec<ConsentChoice>,
        text: ConsentText,
    ) -> Result<Vec<ConsentRecord>, ActionError> {
        Ok(self.inner.record_consent(&choices, &text)?)
    }

    /// Withdraw every consent the member granted, in one call.
    pub fn withdraw_all_consents(
        &self,
        text: ConsentText,
    ) -> Result<Vec<ConsentRecord>, ActionError> {
        Ok(self.inner.withdraw_all_consents(&text)?)
    }

    /// The current decision for each purpose on each channel: the consent screen's grid.
    pub fn consent_state(&self) -> Result<Vec<ConsentStatus>, StorageError> {
        self.inner.consent_state()
    }

    /// Every decision, oldest first, from the app, the website, stores and the call centre.
    pub fn consent_history(&self) -> Result<Vec<ConsentRecord>, StorageError> {
        self.inner.consent_history()
    }

    /// Whether `feature` may run now. Fails closed: a storage failure answers false.
    pub fn permits(&self, feature: Feature) -> bool {
        self.inner.permits(feature)
    }

    pub fn preferences(&self) -> Result<Preferences, StorageError> {
        self.inner.preferences()
    }

    /// Store the preference centre; returns what is stored.
    pub fn set_preferences(&self, preferences: Preferences) -> Result<Preferences, ActionError> {
        Ok(self.inner.set_preferences(&preferences)?)
    }

    /// Whether to show a notification now, and if not why; a `Send` counts against the caps.
    pub fn claim_notification(
        &self,
        request: NotificationRequest,
    ) -> Result<NotificationVerdict, ActionError> {
        Ok(self.inner.claim_notification(&request)?)
    }

    /// A usage event, kept only with analytics consent; returns whether it was kept.
    pub fn track(
        &self,
        name: String,
        attributes: HashMap<String, String>,
    ) -> Result<bool, ActionError> {
        Ok(self.inner.track(&name, attributes.into_iter().collect())?)
    }

    /// Offers valid now, within the member's interests, personalised only with consent.
    pub fn offers(&self, limit: u32) -> Result<OfferList, StorageError> {
        self.inner.offers(limit)
    }

    /// Everything this device holds about the member, as JSON (no tokens). Offline.
    pub fn export_device_data(&self) -> Result<String, StorageError> {
        self.inner.export_device_data()
    }

    /// Everything the server and this device hold about the member, as JSON. Needs the network.
    pub fn export_my_data(&self) -> Result<String, SyncError> {
        Ok(self.inner.export_my_data()?)
    }

    /// `export_my_data()` for coroutines and Swift tasks.
    pub async fn export_my_data_async(self: Arc<Self>) -> Result<String, SyncError> {
        let work = move |_: &tessera_core::sync::Cancel| self.inner.export_my_data();
        Ok(crate::background::on_thread("tessera-export", work)
            .await
            .ok_or_else(crate::background::stopped)??)
    }

    /// Erase the member on the server, then wipe this device. Nothing is wiped if the server
    /// cannot be reached.
    pub fn erase_member(&self) -> Result<ErasureReceipt, SyncError> {
        Ok(self.inner.erase_member()?)
    }
}

/// The SHA-256 the ledger keeps of a consent text (64 lowercase hex digits).
#[uniffi::export]
pub fn consent_text_sha256(text: ConsentText) -> String {
    text.sha256()
}
