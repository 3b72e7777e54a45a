//! Enrolment, sync, the member's offline actions and the cached reads: one-line methods over the
//! core's `Tessera`, in a second `impl` block of the same object.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::changes::{Change, ChangeObserver};
use tessera_core::sync::{SyncConfig, SyncObserver};
use tessera_core::{
    ActivityEntry, CachedMemberState, CardView, CatalogSummary, DeviceInfo, EventKind,
    RejectedAction, Store, SyncProgress, SyncReport, SyncStatus,
};

use crate::card::Tessera;
use crate::error::{ActionError, StorageError, SyncError};

/// Told of every sync's progress, on the thread running the sync. Keep it quick: post to the
/// main thread and return.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// Told what changed after each write (once at the end of a sync), on the thread that wrote:
/// re-read what the screen shows. Keep it quick: post to the main thread and return. The
/// Kotlin `changes()` / Swift `changes()` streams and the per-screen streams are fed from it.
#[uniffi::export(with_foreign)]
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, changes: Vec<Change>);
}

struct Changes(Arc<dyn ChangeListener>);

impl ChangeObserver for Changes {
    fn on_change(&self, changes: Vec<Change>) {
        self.0.on_change(changes)
    }
}

struct Listener(Arc<dyn SyncListener>);

impl SyncObserver for Listener {
    fn on_progress(&self, progress: SyncProgress) {
        self.0.on_progress(progress)
    }
}

/// Network behaviour: timeouts, retries, page size. A field left unset takes the core's default
/// (`SyncConfig::default()`, the one place defaults live); tests shorten them.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct SyncSettings {
    #[uniffi(default = None)]
    pub connect_timeout_ms: Option<u64>,
    /// One request, from sending to the last byte of the answer.
    #[uniffi(default = None)]
    pub request_timeout_ms: Option<u64>,
    /// Attempts per request, the first included (1 to 10).
    #[uniffi(default = None)]
    pub max_attempts: Option<u32>,
    #[uniffi(default = None)]
    pub base_delay_ms: Option<u64>,
    #[uniffi(default = None)]
    pub max_delay_ms: Option<u64>,
    /// Catalog changes per page (1 to 5000).
    #[uniffi(default = None)]
    pub page_size: Option<u32>,
}

impl From<SyncSettings> for SyncConfig {
    fn from(s: SyncSettings) -> Self {
        let d = SyncConfig::default();
        let ms = Duration::from_millis;
        SyncConfig {
            connect_timeout: s.connect_timeout_ms.map_or(d.connect_timeout, ms),
            request_timeout: s.request_timeout_ms.map_or(d.request_timeout, ms),
            max_attempts: s.max_attempts.unwrap_or(d.max_attempts),
            base_delay: s.base_delay_ms.map_or(d.base_delay, ms),
            max_delay: s.max_delay_ms.map_or(d.max_delay, ms),
            page_size: s.page_size.unwrap_or(d.page_size),
            ..d
        }
    }
}

#[uniffi::export]
impl Tessera {
    /// The app's HTTP stack, which every network call goes through (the library has none of
    /// its own). Until one is given, network calls throw `NoHttpClient`; the card and every
    /// cached read work without one.
    pub fn set_http_client(&self, client: Arc<dyn crate::HttpClient>) {
        self.inner
            .set_http_client(crate::http::Foreign::wrap(client))
    }

    /// The app's secret store (Android Keystore, iOS Keychain) for the session's tokens. Give it
    /// right after `open`: tokens still in the database file move there at once and leave no copy
    /// behind; later sessions are written there only. A store that fails throws `SecretStoreFailed` and
    /// moves nothing.
    pub fn set_secret_store(&self, store: Arc<dyn crate::SecretStore>) -> Result<(), SyncError> {
        Ok(self
            .inner
            .set_secret_store(Arc::new(crate::secrets::Foreign(store)))?)
    }

    /// Timeouts, retries and page size for the next network calls; out-of-range values are
    /// refused with `InvalidInput`.
    pub fn set_sync_settings(&self, settings: SyncSettings) -> Result<(), SyncError> {
        Ok(self.inner.set_sync_config(settings.into())?)
    }

    /// Told of every sync's progress; `None` to stop.
    pub fn set_sync_listener(&self, listener: Option<Arc<dyn SyncListener>>) {
        self.inner
            .set_sync_observer(listener.map(|l| Arc::new(Listener(l)) as Arc<dyn SyncObserver>))
    }

    /// Told what changed after each write; `None` to stop. One listener at a time.
    pub fn set_change_listener(&self, listener: Option<Arc<dyn ChangeListener>>) {
        self.inner
            .set_change_observer(listener.map(|l| Arc::new(Changes(l)) as Arc<dyn ChangeObserver>))
    }

    /// Enrol a new member with this device at `server_url` and return the card screen. Blocks
    /// on the network: call it off the main thread.
    pub fn enrol(
        &self,
        server_url: String,
        holder_name: String,
        device: DeviceInfo,
    ) -> Result<CardView, SyncError> {
        Ok(self.inner.enrol(&server_url, &holder_name, device)?)
    }

    /// Send every pending action once, in order, then bring the catalog and the member's state up
    /// to date. Blocks on the network; safe to call at any time (a crash or a lost answer is
    /// repaired by the next call).
    pub fn sync(&self) -> Result<SyncReport, SyncError> {
        Ok(self.inner.sync()?)
    }

    /// `sync()` for coroutines and Swift tasks (Kotlin `suspend`, Swift `async`): runs on a thread
    /// of its own, so no dispatcher is blocked. Cancelling the coroutine or task stops the sync
    /// at its next safe point (before its next request; a catalog page being written is written
    /// whole): the call throws the platform's cancellation at once, and what the sync did is
    /// kept; the next sync does the rest, nothing twice.
    pub async fn sync_async(self: Arc<Self>) -> Result<SyncReport, SyncError> {
        let work = move |cancel: &tessera_core::sync::Cancel| self.inner.sync_cancellable(cancel);
        Ok(crate::background::on_thread("tessera-sync", work)
            .await
            .ok_or_else(crate::background::stopped)??)
    }

    /// The card (or a coupon) for a wallet: a `.pkpass`, or a save link (UTF-8). Blocking.
    pub fn wallet_pass(
        &self,
        kind: tessera_core::sync::WalletKind,
        coupon_id: Option<String>,
        near: Option<tessera_core::geo::Position>,
    ) -> Result<Vec<u8>, SyncError> {
        Ok(self.inner.wallet_pass(kind, coupon_id.as_deref(), near)?)
    }

    /// `enrol()` for coroutines and Swift tasks. Cancelling ends the call at once; an enrolment
    /// already sent completes (the next `enrol` then answers `AlreadyEnrolled`).
    pub async fn enrol_async(
        self: Arc<Self>,
        server_url: String,
        holder_name: String,
        device: DeviceInfo,
    ) -> Result<CardView, SyncError> {
        let work = move |_: &tessera_core::sync::Cancel| {
            self.inner.enrol(&server_url, &holder_name, device)
        };
        Ok(crate::background::on_thread("tessera-enrol", work)
            .await
            .ok_or_else(crate::background::stopped)??)
    }

    /// Forget the member on this device; refused with `PendingActions` while actions wait,
    /// unless `discard_pending`.
    pub fn sign_out(&self, discard_pending: bool) -> Result<(), SyncError> {
        Ok(self.inner.sign_out(discard_pending)?)
    }

    /// Where sync stands, from the local database (no network).
    pub fn sync_status(&self) -> Result<SyncStatus, StorageError> {
        self.inner.sync_status()
    }

    /// Record something the member did, now, offline; returns the event's id.
    pub fn record_event(
        &self,
        kind: EventKind,
        store_id: Option<String>,
        attributes: HashMap<String, String>,
    ) -> Result<String, ActionError> {
        Ok(self
            .inner
            .record_event(kind, store_id, attributes.into_iter().collect())?)
    }

    /// Mark or unmark a favourite store, offline.
    pub fn set_favourite_store(
        &self,
        store_id: String,
        favourite: bool,
    ) -> Result<(), ActionError> {
        Ok(self.inner.set_favourite_store(&store_id, favourite)?)
    }

    /// The member's latest actions on this device, newest first (at most `limit`).
    pub fn activity(&self, limit: u32) -> Result<Vec<ActivityEntry>, StorageError> {
        self.inner.activity(limit)
    }

    /// Actions the server refused for good, with its reasons.
    pub fn rejected_actions(&self) -> Result<Vec<RejectedAction>, StorageError> {
        self.inner.rejected_actions()
    }

    pub fn favourite_stores(&self) -> Result<Vec<String>, StorageError> {
        self.inner.favourite_stores()
    }

    /// The member's state as the server last sent it; none before the first sync.
    pub fn member_state(&self) -> Result<Option<CachedMemberState>, StorageError> {
        self.inner.member_state()
    }

    pub fn catalog_summary(&self) -> Result<CatalogSummary, StorageError> {
        self.inner.catalog_summary()
    }

    /// Cached stores by name, only those in `city` when given, at most `limit`.
    pub fn stores(&self, city: Option<String>, limit: u32) -> Result<Vec<Store>, StorageError> {
        self.inner.stores(city.as_deref(), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_settings_are_the_cores_defaults() {
        let d = SyncConfig::default();
        let c = SyncConfig::from(SyncSettings::default());
        assert_eq!(
            (c.connect_timeout, c.request_timeout, c.max_attempts),
            (d.connect_timeout, d.request_timeout, d.max_attempts)
        );
        assert_eq!(
            (c.base_delay, c.max_delay, c.page_size),
            (d.base_delay, d.max_delay, d.page_size)
        );
        let set = SyncConfig::from(SyncSettings {
            page_size: Some(10),
            ..SyncSettings::default()
        });
        assert_eq!((set.page_size, set.max_attempts), (10, d.max_attempts));
    }
}
