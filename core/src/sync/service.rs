//! The sync service: the app's HTTP client, one sync at a time, and what a sync changes for the
//! other services (the consent gate is derived again, the offer index rebuilt).

use std::sync::{Arc, Mutex};

use super::local::Session;
use super::secrets::{SecretStore, Vault};
use super::{Http, HttpClient, SyncConfig, SyncError, SyncObserver, SyncReport, SyncStatus, local};
use crate::api::{self, DeviceInfo};
use crate::card::{CardView, MAX_HOLDER_NAME};
use crate::db::Db;
use crate::nearby::Offers;
use crate::privacy::Consent;

/// The sync service: enrolment, sync, sign-out, and the calls that need the server (export,
/// erasure).
pub struct SyncService {
    db: Arc<Db>,
    consent: Arc<Consent>,
    offers: Arc<Offers>,
    /// The app's HTTP stack (none until the app gives one).
    client: Mutex<Option<Arc<dyn HttpClient>>>,
    /// The request layer over it for one server, made again when the client, the settings or
    /// the server change.
    http: Mutex<Option<(String, Arc<Http>)>>,
    config: Mutex<SyncConfig>,
    /// Where the session's tokens are kept (the app's SecretStore, or the file).
    vault: Mutex<Vault>,
    observer: Mutex<Option<Arc<dyn SyncObserver>>>,
    /// One sync at a time; a second caller waits for the first to finish.
    lock: Mutex<()>,
}

impl std::fmt::Debug for SyncService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncService")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, SyncError>;

impl SyncService {
    pub(crate) fn new(db: Arc<Db>, consent: Arc<Consent>, offers: Arc<Offers>) -> Self {
        SyncService {
            db,
            consent,
            offers,
            client: Mutex::new(None),
            http: Mutex::new(None),
            config: Mutex::new(SyncConfig::default()),
            vault: Mutex::new(Vault::default()),
            observer: Mutex::new(None),
            lock: Mutex::new(()),
        }
    }

    /// Timeouts, retries and page size for the next network calls; refused with
    /// [`SyncError::InvalidInput`] when out of range.
    pub fn set_config(&self, config: SyncConfig) -> Result<()> {
        config.validate()?;
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
        *self.http.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// The HTTP stack every network call goes through (docs/adr/0015). Until one is given,
    /// network calls answer [`SyncError::NoHttpClient`]; the card and every cached read work
    /// without one.
    pub fn set_http_client(&self, client: Arc<dyn HttpClient>) {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
        *self.http.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The app's SecretStore (Android Keystore, iOS Keychain) for the session's tokens: tokens
    /// still in the file move there at once and leave no copy in the file or its WAL; every
    /// later session writes them there only (docs/adr/0017). Give it right after opening, before
    /// any network call; a store failing is [`SyncError::SecretStoreFailed`] and moves nothing.
    pub fn set_secret_store(&self, store: Arc<dyn SecretStore>) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let vault = Vault(Some(store));
        if vault.adopt(&self.db)? {
            tracing::info!("the session's tokens moved to the app's secret store");
        }
        *self.vault.lock().unwrap_or_else(|p| p.into_inner()) = vault;
        Ok(())
    }

    fn vault(&self) -> Vault {
        self.vault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Told of every sync's progress (none to stop).
    pub fn set_observer(&self, observer: Option<Arc<dyn SyncObserver>>) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = observer;
    }

    fn http(&self, server_url: &str) -> Result<Arc<Http>> {
        let mut slot = self.http.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((url, http)) = slot.as_ref()
            && url == server_url
        {
            return Ok(http.clone());
        }
        let client = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(SyncError::NoHttpClient)?;
        let config = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let http = Arc::new(Http::new(client, server_url, config)?);
        *slot = Some((server_url.to_owned(), http.clone()));
        Ok(http)
    }

    /// The request layer for the enrolled member's server, the session with its tokens, and the
    /// sync lock held.
    #[allow(clippy::type_complexity)]
    fn session(&self) -> Result<(Arc<Http>, Session, std::sync::MutexGuard<'_, ()>)> {
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let session = self.vault().load(&self.db)?.ok_or(SyncError::NotEnrolled)?;
        let http = self.http(&session.server_url)?;
        Ok((http, session, guard))
    }

    /// Enrol a new member with this device at `server_url`: stores the programme, the card and
    /// the credentials, and returns the card screen. Needs the network.
    pub fn enrol(
        &self,
        server_url: &str,
        holder_name: &str,
        device: DeviceInfo,
    ) -> Result<CardView> {
        let server_url = super::check_server_url(server_url)?;
        let holder_name = holder_name.trim();
        if holder_name.is_empty() || holder_name.chars().count() > MAX_HOLDER_NAME {
            return Err(SyncError::InvalidInput {
                field: "holder_name",
                reason: format!("must be 1 to {MAX_HOLDER_NAME} characters"),
            });
        }
        let http = self.http(&server_url)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let request = api::EnrolRequest {
            holder_name: holder_name.to_owned(),
            device,
        };
        super::enrol(&self.db, &http, &self.vault(), &server_url, &request)?;
        self.consent.invalidate();
        // The rotating member code's certificate: a failure here leaves the static card, and the
        // next sync tries again.
        self.certify_device(&http);
        Ok(self.db.read(crate::card::read_card_view)?)
    }

    /// Fetch or renew this device's certificate for the rotating member code when it has none
    /// or it ends within a week; a failure is logged, not returned (the card still shows its
    /// static number, and the next sync tries again).
    fn certify_device(&self, http: &Http) {
        let result = self
            .vault()
            .load(&self.db)
            .and_then(|s| s.ok_or(SyncError::NotEnrolled))
            .and_then(|session| super::certify_device(&self.db, http, &self.vault(), session));
        if let Err(e) = result {
            tracing::warn!(error = %e, "no certificate for the rotating member code this time");
        }
    }

    /// The member's card, or one of their coupons, for a wallet (needs the network): Apple's
    /// signed `.pkpass` bytes (hand them to `PKAddPassesViewController`), or Google's "Save to
    /// Google Wallet" link as UTF-8 (open it). The pass stays up to date by itself afterwards.
    pub fn wallet_pass(
        &self,
        kind: super::WalletKind,
        coupon_id: Option<&str>,
        near: Option<crate::geo::Position>,
    ) -> Result<Vec<u8>> {
        let (http, session, _guard) = self.session()?;
        super::wallet_pass(
            &self.db,
            &http,
            &self.vault(),
            session,
            kind,
            coupon_id,
            near,
        )
    }

    /// The rotating member code for `now_ms`, made offline ([`crate::card_code`]).
    pub fn member_code(
        &self,
        now_ms: i64,
    ) -> std::result::Result<
        crate::card_code::MemberCodeView,
        crate::card_code::MemberCodeUnavailable,
    > {
        use crate::card_code::{self as cc, MemberCodeUnavailable as U};
        // The session's namespace only: the tokens are not read (the card screen calls this
        // every period).
        let session = self.db.read(local::session)?.ok_or(U::NotEnrolled)?;
        let row = self.db.read(cc::key_row)?.ok_or(U::NotCertified)?;
        let certificate = row.certificate.ok_or(U::NotCertified)?;
        let pkcs8 = self
            .vault()
            .device_key(session.secrets.as_deref(), &row.pkcs8_in_file)
            .map_err(|e| U::KeyMissing {
                reason: e.to_string(),
            })?
            .ok_or_else(|| U::KeyMissing {
                reason: "not in the secret store".into(),
            })?;
        let pair = cc::key_pair(&pkcs8).map_err(|reason| U::KeyMissing { reason })?;
        cc::view(&certificate, &pair, now_ms)
    }

    /// Push every pending action in order, then pull the catalog and the member's state. Safe to
    /// call at any time, as often as wanted; a crash or a lost answer at any point is repaired by
    /// the next call.
    pub fn sync(&self) -> Result<SyncReport> {
        self.sync_cancellable(&super::Cancel::default())
    }

    /// [`SyncService::sync`] that stops at its next safe point (before its next request) once
    /// `cancel` is cancelled, with [`SyncError::Cancelled`]; nothing is lost or applied twice.
    pub fn sync_cancellable(&self, cancel: &super::Cancel) -> Result<SyncReport> {
        // One announcement of what the whole sync changed, after the offer index is refreshed.
        let _hold = self.db.changes().hold();
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (http, session, _guard) = self.session()?;
        let result = super::sync(
            &self.db,
            &http,
            &self.vault(),
            session,
            observer.as_ref(),
            cancel,
        );
        // The server may have sent consent records made elsewhere (web, store, call centre).
        self.consent.invalidate();
        if result.is_ok() {
            self.certify_device(&http);
        }
        if result.as_ref().map_or(true, |r| r.catalog_changes > 0) {
            self.refresh_offers();
        }
        result
    }

    /// Apply one catalog page obtained out of band (a snapshot bundled with the app, exported
    /// from `GET /v1/catalog`), exactly as sync applies the pages it downloads: checked whole,
    /// applied in one transaction, and the next sync resumes from its cursor. Returns the number
    /// of changes applied.
    pub fn import_catalog_page(&self, page: &api::CatalogPage) -> Result<u64> {
        let applied = super::apply_catalog_page(&self.db, page);
        self.refresh_offers();
        applied
    }

    /// The catalog changed: the offer index is rebuilt here, in the sync's (background) thread,
    /// and swapped in. A failure leaves the index in use and is retried on its next use: it
    /// does not fail the sync, which did its job.
    fn refresh_offers(&self) {
        if let Err(e) = self.offers.catalog_changed() {
            tracing::warn!(error = %e, "offer index not rebuilt after the catalog changed");
        }
    }

    /// Forget the member on this device. Refused with [`SyncError::PendingActions`] while
    /// actions wait to be sent, unless `discard_pending`.
    pub fn sign_out(&self, discard_pending: bool) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let namespace = super::secrets::namespace(&self.db)?;
        let result = self.db.write(|tx| local::sign_out(tx, discard_pending));
        if result.is_ok() {
            self.vault().forget(namespace.as_deref());
        }
        self.consent.invalidate();
        result
    }

    /// Where sync stands, from the local database.
    pub fn status(&self) -> std::result::Result<SyncStatus, crate::StorageError> {
        self.db.read(local::status)
    }

    /// Everything the server and this device hold about the member, as one JSON document.
    /// Needs the network.
    pub fn export_my_data(&self) -> Result<String> {
        let (http, session, _guard) = self.session()?;
        let server = super::export(&self.db, &http, &self.vault(), session)?;
        let device = self.db.read(crate::privacy::export_device)?;
        serde_json::to_string_pretty(&serde_json::json!({ "server": server, "device": device }))
            .map_err(|e| SyncError::Protocol {
                reason: e.to_string(),
            })
    }

    /// Erase the member: the server deletes or anonymises everything it holds, then this device
    /// wipes its database (card, tokens, ledger, caches, unsent actions). Needs the network; if
    /// the server cannot be reached nothing is wiped. Returns the server's receipt.
    pub fn erase_member(&self) -> Result<api::ErasureReceipt> {
        let (http, session, _guard) = self.session()?;
        let namespace = session.secrets.clone();
        let vault = self.vault();
        let receipt = super::erase(&self.db, &http, &vault, session)?;
        self.db.wipe()?;
        vault.forget(namespace.as_deref());
        self.consent.invalidate();
        self.offers.forget();
        Ok(receipt)
    }
}
