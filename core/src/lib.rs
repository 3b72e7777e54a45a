//! # tessera-core
//!
//! The loyalty logic behind Tessera's Android and iOS apps, its server and its CLI. No FFI types
//! here: the `uniffi` feature only adds derives to records that cross the boundary unchanged.
//!
//! | module | job |
//! |---|---|
//! | [`activity`] | member actions (local effect + outbox row) and cached reads |
//! | [`api`] | the HTTP protocol with the server: wire types, headers, problem codes |
//! | [`barcode`] | symbologies, validation and inference of card numbers, module matrix, SVG, PNG |
//! | [`card`] | the programme and the member's card, and the card screen ([`CardView`]) |
//! | [`catalog`] | stores and offers: wire types, validation |
//! | [`catalog_reader`] | a whole catalog read from a stream one entity at a time, in bounded memory |
//! | [`db`] | SQLite: connections, pragmas, migrations, the one write path, quarantine |
//! | [`diagnostics`] | checks a shell's build can run on itself |
//! | [`eligibility`] | who may clip, buy and use an offer, where and when: one function for phone and server |
//! | [`text`] | the one rule for display text (NFC, trimmed, nothing invisible or overriding) |
//! | [`sync`] | enrolment and the sync engine (outbox push, catalog pull, member state) |
//! | [`Tessera`] (this file) | the facade the bindings, the CLI and the tests use |
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("tessera_core");

pub mod activity;
pub mod barcode;
pub mod card;
pub mod challenges;
mod clock;
pub mod db;
pub mod diagnostics;
pub mod nearby;
mod outbox;
pub mod privacy;
pub mod push;
pub mod simulate;
pub mod sync;

// The domain's rules, under the names the phone client has always used for them.
pub use tessera_domain::{
    api, catalog, catalog_reader, consent, coupon, eligibility, geo, intern, loyalty, preferences,
    rfc3339_ms, rules, text,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use clock::now_ms;

pub use activity::{ActivityEntry, CachedMemberState, CatalogSummary, RejectedAction};
pub use api::{DeviceInfo, EventKind, MemberState, Platform};
pub use barcode::{
    BarcodeError, BarcodeMatrix, CardNumberAnalysis, Symbology, SymbologySuggestion,
};
pub use card::{CardView, MemberCard, Program};
pub use catalog::{Offer, Store};
pub use db::{Db, StorageError};
pub use sync::{
    SyncConfig, SyncError, SyncObserver, SyncPhase, SyncProgress, SyncReport, SyncStatus,
};

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

/// One member's Tessera on one device. `Send + Sync`: call it from any thread (not from inside
/// an async runtime: network calls block the calling thread on the core's own runtime).
pub struct Tessera {
    db: Arc<Db>,
    net: OnceLock<Net>,
    config: Mutex<SyncConfig>,
    observer: Mutex<Option<Arc<dyn SyncObserver>>>,
    /// One sync at a time; a second caller waits for the first to finish.
    sync_lock: Mutex<()>,
    /// The consent gate's bits, with [`GATE_LOADED`] set once derived from the ledger; cleared
    /// whenever the ledger may have changed.
    gate: AtomicU32,
    /// The catalog cache indexed for position queries; built on first use, dropped when the
    /// catalog changes.
    offer_index: Mutex<Option<Arc<nearby::OfferIndex>>>,
    offer_settings: Mutex<nearby::OfferSettings>,
    /// The last geofence plan: when, where, and its regions (re-plans are throttled).
    last_plan: Mutex<Option<(i64, geo::Position, Vec<nearby::GeofenceRegion>)>>,
}

const GATE_LOADED: u32 = 1 << 31;

/// A rule a value broke, as the typed error the API answers.
pub(crate) fn invalid(e: catalog::CatalogError) -> Error {
    Error::InvalidInput {
        field: e.field,
        reason: e.reason,
    }
}

/// An instant given as milliseconds since the epoch, refused when it is outside what a calendar
/// holds (so that later arithmetic on it cannot overflow).
fn checked_instant(field: &'static str, ms: i64) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms).map_err(|_| Error::InvalidInput {
        field,
        reason: "is not a time between the years -9999 and 9999".into(),
    })
}

/// Why a notification verdict is not `Send`, as a suppression reason.
pub(crate) fn verdict_reason(
    v: preferences::NotificationVerdict,
) -> Option<nearby::SuppressReason> {
    use nearby::SuppressReason as S;
    use preferences::NotificationVerdict as V;
    match v {
        V::Send => None,
        V::NoConsent { .. } | V::Unsupported => Some(S::NoConsent),
        V::ChannelNotPreferred => Some(S::ChannelNotPreferred),
        V::NotOfInterest => Some(S::NotOfInterest),
        V::QuietHours { until } => Some(S::QuietHours { until }),
        V::CapReached { per_day } => Some(S::CapReached { per_day }),
    }
}

impl std::fmt::Debug for Tessera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tessera")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// The network side, made on first use so that showing the card never pays for it.
struct Net {
    runtime: tokio::runtime::Runtime,
    client: Mutex<Option<(String, Arc<sync::Http>)>>,
}

impl Tessera {
    /// Open (or create) the database at `path`. A file that cannot be used is a typed
    /// [`StorageError`]; see [`Tessera::recover`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Tessera {
            db: Arc::new(Db::open(path)?),
            net: OnceLock::new(),
            config: Mutex::new(SyncConfig::default()),
            observer: Mutex::new(None),
            sync_lock: Mutex::new(()),
            gate: AtomicU32::new(0),
            offer_index: Mutex::new(None),
            offer_settings: Mutex::new(nearby::OfferSettings::default()),
            last_plan: Mutex::new(None),
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

    // ----- network -----

    /// Timeouts, retries and page size for the next network calls; refused with
    /// [`SyncError::InvalidInput`] when out of range.
    pub fn set_sync_config(&self, config: SyncConfig) -> std::result::Result<(), SyncError> {
        config.validate()?;
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
        if let Some(net) = self.net.get() {
            *net.client.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        Ok(())
    }

    /// Told of every sync's progress (none to stop).
    pub fn set_sync_observer(&self, observer: Option<Arc<dyn SyncObserver>>) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = observer;
    }

    fn net(&self) -> std::result::Result<&Net, SyncError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SyncError::InvalidInput {
                field: "thread",
                reason: "network calls block: make them from a plain thread, not an async task"
                    .into(),
            });
        }
        if let Some(net) = self.net.get() {
            return Ok(net);
        }
        // Current-thread: network calls run on the caller's thread inside `block_on` (one at a
        // time, under the sync lock); catalog pages are applied on tokio's blocking pool.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("tessera-net")
            .enable_all()
            .build()
            .map_err(|e| SyncError::protocol(format!("cannot start the network runtime: {e}")))?;
        let _ = self.net.set(Net {
            runtime,
            client: Mutex::new(None),
        });
        self.net
            .get()
            .ok_or_else(|| SyncError::protocol("network runtime missing"))
    }

    fn http(&self, net: &Net, server_url: &str) -> std::result::Result<Arc<sync::Http>, SyncError> {
        let mut slot = net.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((url, http)) = slot.as_ref()
            && url == server_url
        {
            return Ok(http.clone());
        }
        let config = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let http = Arc::new(sync::Http::new(server_url, config)?);
        *slot = Some((server_url.to_owned(), http.clone()));
        Ok(http)
    }

    /// Enrol a new member with this device at `server_url`: stores the programme, the card and
    /// the credentials, and returns the card screen. Needs the network.
    pub fn enrol(
        &self,
        server_url: &str,
        holder_name: &str,
        device: DeviceInfo,
    ) -> std::result::Result<CardView, SyncError> {
        let server_url = sync::check_server_url(server_url)?;
        let holder_name = holder_name.trim();
        if holder_name.is_empty() || holder_name.chars().count() > card::MAX_HOLDER_NAME {
            return Err(SyncError::InvalidInput {
                field: "holder_name",
                reason: "must be 1 to 100 characters".into(),
            });
        }
        let net = self.net()?;
        let http = self.http(net, &server_url)?;
        let _guard = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let request = api::EnrolRequest {
            holder_name: holder_name.to_owned(),
            device,
        };
        net.runtime
            .block_on(sync::enrol(&self.db, &http, &server_url, &request))?;
        self.gate.store(0, Ordering::Release);
        Ok(self.card()?)
    }

    /// Push every pending action in order, then pull the catalog and the member's state. Safe to
    /// call at any time, as often as wanted; a crash or a lost answer at any point is repaired by
    /// the next call.
    pub fn sync(&self) -> std::result::Result<SyncReport, SyncError> {
        let session = self
            .db
            .read(sync::local::session)?
            .ok_or(SyncError::NotEnrolled)?;
        let net = self.net()?;
        let http = self.http(net, &session.server_url)?;
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let _guard = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = net
            .runtime
            .block_on(sync::sync(&self.db, &http, observer.as_ref()));
        // The server may have sent consent records made elsewhere (web, store, call centre).
        self.gate.store(0, Ordering::Release);
        if result.as_ref().map_or(true, |r| r.catalog_changes > 0) {
            self.forget_offer_index();
        }
        result
    }

    /// Apply one catalog page obtained out of band (a snapshot bundled with the app, exported
    /// from `GET /v1/catalog`), exactly as sync applies the pages it downloads: checked whole,
    /// applied in one transaction, and the next sync resumes from its cursor. Returns the number
    /// of changes applied.
    pub fn import_catalog_page(
        &self,
        page: &api::CatalogPage,
    ) -> std::result::Result<u64, SyncError> {
        let applied = sync::apply_catalog_page(&self.db, page);
        self.forget_offer_index();
        applied
    }

    /// Forget the member on this device. Refused with [`SyncError::PendingActions`] while
    /// actions wait to be sent, unless `discard_pending`.
    pub fn sign_out(&self, discard_pending: bool) -> std::result::Result<(), SyncError> {
        let _guard = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = self
            .db
            .write(|tx| sync::local::sign_out(tx, discard_pending));
        self.gate.store(0, Ordering::Release);
        result
    }

    /// Where sync stands, from the local database.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        self.db.read(|conn| {
            let session = sync::local::session(conn)?;
            let mut status = conn
                .query_row(
                    "SELECT last_attempt_at, last_success_at, last_error, catalog_as_of,
                            clock_offset_ms FROM sync_state WHERE id = 1",
                    [],
                    |r| {
                        Ok(SyncStatus {
                            enrolled: false,
                            member_id: None,
                            server_url: None,
                            pending: 0,
                            rejected: 0,
                            last_attempt_at: r.get::<_, Option<i64>>(0)?.map(clock::to_time),
                            last_success_at: r.get::<_, Option<i64>>(1)?.map(clock::to_time),
                            last_error: r.get(2)?,
                            catalog_as_of: r.get::<_, Option<i64>>(3)?.map(clock::to_time),
                            clock_offset_ms: r.get(4)?,
                        })
                    },
                )
                .map_err(StorageError::from)?;
            status.enrolled = session.is_some();
            status.member_id = session.as_ref().map(|s| s.member_id.clone());
            status.server_url = session.map(|s| s.server_url);
            status.pending = outbox::pending_count(conn)?;
            status.rejected = outbox::rejected_count(conn)?;
            Ok(status)
        })
    }

    // ----- member actions (offline) -----

    /// Record something the member did, now. Works offline; sent at the next sync. Returns the
    /// event's id.
    pub fn record_event(
        &self,
        kind: EventKind,
        store_id: Option<String>,
        attributes: BTreeMap<String, String>,
    ) -> Result<String> {
        self.db
            .write(|tx| activity::record_event(tx, kind, store_id, attributes))
    }

    /// Mark or unmark a favourite store. Works offline; sent at the next sync.
    pub fn set_favourite_store(&self, store_id: &str, favourite: bool) -> Result<()> {
        self.db
            .write(|tx| activity::set_favourite_store(tx, store_id, favourite))
    }

    /// The member's latest actions on this device, newest first.
    pub fn activity(&self, limit: u32) -> Result<Vec<ActivityEntry>> {
        self.db.read(|c| activity::activity(c, limit))
    }

    /// Actions the server refused for good, with its reasons.
    pub fn rejected_actions(&self) -> Result<Vec<RejectedAction>> {
        self.db.read(activity::rejected)
    }

    pub fn favourite_stores(&self) -> Result<Vec<String>> {
        self.db.read(activity::favourite_stores)
    }

    // ----- consent and preferences -----

    /// The consent gate: loaded from the ledger on first use, then kept in one atomic word.
    /// A storage failure closes it (nothing is allowed), never opens it.
    pub fn consent_gate(&self) -> consent::ConsentGate {
        let bits = self.gate.load(Ordering::Acquire);
        if bits & GATE_LOADED != 0 {
            return consent::ConsentGate::from_bits(bits);
        }
        match self.db.read(privacy::gate) {
            Ok(gate) => {
                self.gate
                    .store(gate.bits() | GATE_LOADED, Ordering::Release);
                gate
            }
            Err(e) => {
                tracing::warn!(error = %e, "consent gate unavailable: everything is refused");
                consent::ConsentGate::CLOSED
            }
        }
    }

    /// Forget the cached gate: the next check reads the ledger again.
    pub fn invalidate_consent_gate(&self) {
        self.gate.store(0, Ordering::Release);
    }

    /// Whether `feature` may run now (every consent it needs is granted). The check every gated
    /// feature makes first; costs one atomic load once loaded.
    pub fn permits(&self, feature: consent::Feature) -> bool {
        self.consent_gate().permits(feature)
    }

    /// Record the member's decisions on a consent screen that showed `text`. Takes effect at
    /// once, offline; sent at the next sync.
    pub fn record_consent(
        &self,
        choices: &[privacy::ConsentChoice],
        text: &consent::ConsentText,
    ) -> Result<Vec<consent::ConsentRecord>> {
        self.write_ledger(|tx| privacy::record_consents(tx, choices, text))
    }

    /// Withdraw every consent the member has granted, in one call.
    pub fn withdraw_all_consents(
        &self,
        text: &consent::ConsentText,
    ) -> Result<Vec<consent::ConsentRecord>> {
        self.write_ledger(|tx| privacy::withdraw_all(tx, text))
    }

    fn write_ledger<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let (out, gate) = self.db.write(|tx| {
            let out = f(tx)?;
            Ok::<_, Error>((out, privacy::gate(tx)?))
        })?;
        self.gate
            .store(gate.bits() | GATE_LOADED, Ordering::Release);
        Ok(out)
    }

    /// The current decision for every purpose on every channel (20 entries).
    pub fn consent_state(&self) -> Result<Vec<consent::ConsentStatus>> {
        self.db.read(privacy::consent_state)
    }

    /// The member's consent ledger, oldest first, from every source the server has sent.
    pub fn consent_history(&self) -> Result<Vec<consent::ConsentRecord>> {
        self.db.read(privacy::consent_history)
    }

    pub fn preferences(&self) -> Result<preferences::Preferences> {
        self.db.read(privacy::preferences)
    }

    /// Store the preference centre; only changed fields are sent at the next sync.
    pub fn set_preferences(
        &self,
        preferences: &preferences::Preferences,
    ) -> Result<preferences::Preferences> {
        self.db
            .write(|tx| privacy::set_preferences(tx, preferences))
    }

    /// Whether to show a notification now (consent, preferred channels, interests, quiet hours,
    /// caps); a `Send` is counted against the caps.
    pub fn claim_notification(
        &self,
        request: &preferences::NotificationRequest,
    ) -> Result<preferences::NotificationVerdict> {
        let gate = self.consent_gate();
        self.db
            .write(|tx| privacy::claim_notification(tx, gate, request))
    }

    /// A usage event, kept and sent only with analytics consent; returns whether it was kept.
    pub fn track(&self, name: &str, attributes: BTreeMap<String, String>) -> Result<bool> {
        let gate = self.consent_gate();
        self.db
            .write(|tx| privacy::track(tx, gate, name, attributes))
    }

    /// Offers valid now, within the member's interests; ranked from what the member does only
    /// with personalisation consent.
    pub fn offers(&self, limit: u32) -> Result<privacy::OfferList> {
        let gate = self.consent_gate();
        self.db.read(|c| privacy::offers(c, gate, limit))
    }

    /// Everything this device holds about the member, as JSON (no tokens). Offline.
    pub fn export_device_data(&self) -> Result<String> {
        let value = self.db.read(privacy::export_device)?;
        serde_json::to_string_pretty(&value).map_err(|e| Error::InvalidInput {
            field: "export",
            reason: e.to_string(),
        })
    }

    /// Everything the server and this device hold about the member, as one JSON document.
    /// Needs the network.
    pub fn export_my_data(&self) -> std::result::Result<String, SyncError> {
        let session = self
            .db
            .read(sync::local::session)?
            .ok_or(SyncError::NotEnrolled)?;
        let net = self.net()?;
        let http = self.http(net, &session.server_url)?;
        let _guard = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let server = net.runtime.block_on(sync::export(&self.db, &http))?;
        let device = self.db.read(privacy::export_device)?;
        serde_json::to_string_pretty(&serde_json::json!({ "server": server, "device": device }))
            .map_err(|e| SyncError::Protocol {
                reason: e.to_string(),
            })
    }

    /// Erase the member: the server deletes or anonymises everything it holds, then this device
    /// wipes its database (card, tokens, ledger, caches, unsent actions). Needs the network; if
    /// the server cannot be reached nothing is wiped. Returns the server's receipt.
    pub fn erase_member(&self) -> std::result::Result<api::ErasureReceipt, SyncError> {
        let session = self
            .db
            .read(sync::local::session)?
            .ok_or(SyncError::NotEnrolled)?;
        let net = self.net()?;
        let http = self.http(net, &session.server_url)?;
        let _guard = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let receipt = net.runtime.block_on(sync::erase(&self.db, &http))?;
        self.db.wipe()?;
        self.gate.store(0, Ordering::Release);
        self.forget_offer_index();
        Ok(receipt)
    }

    // ----- offers where the member is -----

    fn forget_offer_index(&self) {
        *self.offer_index.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.last_plan.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The catalog cache indexed (built now if the catalog changed since the last call).
    pub fn offer_index(&self) -> Result<Arc<nearby::OfferIndex>> {
        let mut slot = self.offer_index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(idx) = slot.as_ref() {
            return Ok(idx.clone());
        }
        let idx = Arc::new(self.db.read(nearby::OfferIndex::build)?);
        *slot = Some(idx.clone());
        Ok(idx)
    }

    /// Cooldowns, event age and re-plan throttling.
    pub fn set_offer_settings(&self, settings: nearby::OfferSettings) {
        *self
            .offer_settings
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = settings;
    }

    fn settings(&self) -> nearby::OfferSettings {
        self.offer_settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Offers the member may use at stores within `radius_m` of `position`, each at its nearest
    /// store, nearest (and, with personalisation, most relevant) first.
    pub fn offers_near(
        &self,
        position: geo::Position,
        radius_m: f64,
        limit: u32,
    ) -> Result<Vec<nearby::NearbyOffer>> {
        position.validate().map_err(invalid)?;
        if !(1.0..=100_000.0).contains(&radius_m) {
            return Err(Error::InvalidInput {
                field: "radius_m",
                reason: "must be 1 m to 100 km".into(),
            });
        }
        if !(1..=200).contains(&limit) {
            return Err(Error::InvalidInput {
                field: "limit",
                reason: "must be 1 to 200".into(),
            });
        }
        let idx = self.offer_index()?;
        let gate = self.consent_gate();
        let now = jiff::Timestamp::now().as_millisecond();
        self.db.read(|c| {
            let member = nearby::MemberView::read(c, &idx, gate)?;
            nearby::offers_near(c, &idx, &member, position, radius_m, limit as usize, now)
        })
    }

    /// The regions the OS should monitor from `position` within `budget` (iOS 20, Android 100),
    /// as a change to `registered` (the region ids it monitors now). Empty without location
    /// consent; the same plan, unchanged, when asked again within a minute and 100 m.
    pub fn plan_geofences(
        &self,
        position: geo::Position,
        budget: u32,
        registered: &[String],
    ) -> Result<nearby::GeofencePlan> {
        position.validate().map_err(invalid)?;
        if !(2..=1000).contains(&budget) {
            return Err(Error::InvalidInput {
                field: "budget",
                reason: "must be 2 to 1000 regions".into(),
            });
        }
        if !self.permits(consent::Feature::GeofenceMonitoring) {
            *self.last_plan.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(nearby::diff(Vec::new(), registered, false));
        }
        let now = jiff::Timestamp::now().as_millisecond();
        let settings = self.settings();
        let mut last = self.last_plan.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, from, regions)) = last.as_ref() {
            let same: std::collections::BTreeSet<&str> =
                regions.iter().map(|r| r.id.as_str()).collect();
            let registered_same = registered.len() == same.len()
                && registered.iter().all(|r| same.contains(r.as_str()));
            if now - at < settings.replan_min_interval_ms
                && geo::distance_m(*from, position) < settings.replan_min_move_m
                && registered_same
                && regions.len() <= budget as usize
            {
                return Ok(nearby::diff(regions.clone(), registered, true));
            }
        }
        let idx = self.offer_index()?;
        let gate = self.consent_gate();
        let regions = self.db.read(|c| {
            let member = nearby::MemberView::read(c, &idx, gate)?;
            Ok::<_, Error>(nearby::plan_regions(
                &idx,
                &member,
                position,
                budget as usize,
                now,
            ))
        })?;
        *last = Some((now, position, regions.clone()));
        Ok(nearby::diff(regions, registered, false))
    }

    /// What to do when the OS reports `kind` for `region_id` at `at_ms` (milliseconds since the
    /// epoch): a notification or why not; a dwell records a store visit for the next sync.
    pub fn on_region_event(
        &self,
        region_id: &str,
        kind: nearby::RegionEventKind,
        at_ms: i64,
    ) -> Result<nearby::RegionOutcome> {
        use nearby::{RegionAction, RegionEventKind, RegionOutcome, SuppressReason};
        // An instant jiff can hold (years -9999 to 9999): every sum below stays in range.
        let at = checked_instant("at_ms", at_ms)?;
        let outcome = |action| RegionOutcome {
            action,
            visit_recorded: false,
        };
        if region_id.starts_with("replan:") {
            return Ok(outcome(match kind {
                RegionEventKind::Exit => RegionAction::Replan,
                _ => RegionAction::Nothing,
            }));
        }
        let Some(store_id) = region_id.strip_prefix("store:") else {
            return Ok(outcome(RegionAction::Suppress {
                reason: SuppressReason::UnknownRegion,
            }));
        };
        if kind == RegionEventKind::Exit {
            return Ok(outcome(RegionAction::Nothing));
        }
        if !self.permits(consent::Feature::GeofenceMonitoring) {
            return Ok(outcome(RegionAction::Suppress {
                reason: SuppressReason::NoConsent,
            }));
        }
        let idx = self.offer_index()?;
        let Some(store) = nearby::store_index(&idx, store_id) else {
            return Ok(outcome(RegionAction::Suppress {
                reason: SuppressReason::UnknownRegion,
            }));
        };
        let settings = self.settings();
        let gate = self.consent_gate();
        let now = jiff::Timestamp::now().as_millisecond();
        self.db.write(|tx| {
            let mut visit_recorded = false;
            if kind == RegionEventKind::Dwell {
                let attributes = [("source".to_owned(), "geofence".to_owned())].into();
                activity::record_event_at(
                    tx,
                    api::EventKind::StoreVisit,
                    Some(store_id.to_owned()),
                    attributes,
                    at_ms.min(now),
                )?;
                visit_recorded = true;
            }
            let suppress = |reason| {
                Ok(RegionOutcome {
                    action: RegionAction::Suppress { reason },
                    visit_recorded,
                })
            };
            if (now - at_ms).abs() > settings.max_event_age_ms {
                return suppress(SuppressReason::Stale);
            }
            if !gate.permits(consent::Feature::GeolocatedNotifications) {
                return suppress(SuppressReason::NoConsent);
            }
            if !nearby::store_open(&idx, store, at_ms) {
                return suppress(SuppressReason::StoreClosed);
            }
            if let Some(last) =
                nearby::last_store_notification(tx, store_id, at_ms - settings.store_cooldown_ms)?
            {
                let until = jiff::Timestamp::from_millisecond(last + settings.store_cooldown_ms)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                return suppress(SuppressReason::Cooldown { until });
            }
            let member = nearby::MemberView::read(tx, &idx, gate)?;
            let candidates = nearby::offers_at(&idx, &member, store, at_ms);
            if candidates.is_empty() {
                return suppress(SuppressReason::NoEligibleOffer);
            }
            let mut fresh = None;
            for o in candidates {
                let id = nearby::offer_id(&idx, o);
                if !nearby::offer_notified_since(tx, id, at_ms - settings.offer_repeat_ms)? {
                    fresh = Some(o);
                    break;
                }
            }
            let Some(offer) = fresh else {
                return suppress(SuppressReason::AlreadyNotified);
            };
            let offer = nearby::read_full_offer(tx, nearby::offer_id(&idx, offer))?;
            let request = preferences::NotificationRequest {
                purpose: nearby::GEOFENCE_PURPOSE,
                channel: consent::Channel::Push,
                categories: offer.categories.clone(),
            };
            let verdict =
                privacy::claim_at(tx, gate, &request, at, Some(store_id), Some(&offer.id))?;
            let (sid, name) = nearby::store_names(&idx, store);
            Ok(RegionOutcome {
                action: match verdict_reason(verdict) {
                    None => RegionAction::Notify {
                        notification: nearby::notification(&offer, Some((&sid, &name))),
                    },
                    Some(reason) => RegionAction::Suppress { reason },
                },
                visit_recorded,
            })
        })
    }

    /// Whether the member may clip the offer `offer_id` now (a reward: buy it), by the rules the
    /// server enforces ([`eligibility`]), from the cache as of the last sync: `None` when it is
    /// available, else the rule that refuses it. Offline.
    pub fn offer_refusal(&self, offer_id: &str) -> Result<Option<eligibility::Refusal>> {
        catalog::check_id("offer_id", offer_id).map_err(invalid)?;
        let idx = self.offer_index()?;
        let gate = self.consent_gate();
        let now = now_ms();
        let status = self.db.read(|c| {
            let member = nearby::MemberView::read(c, &idx, gate)?;
            Ok::<_, Error>(idx.clip_status(offer_id, &member, now))
        })?;
        match status {
            Some(result) => Ok(result.err()),
            None => Err(Error::InvalidInput {
                field: "offer_id",
                reason: "no such offer in the catalog".into(),
            }),
        }
    }

    /// Clip an offer: the server issues a coupon into the wallet at the next sync. Works offline.
    pub fn clip_offer(&self, offer_id: &str) -> Result<()> {
        self.db
            .write(|tx| activity::clip_offer(tx, offer_id, false))
    }

    /// Spend points on a reward: the server takes the points and issues its coupon at the next
    /// sync, or refuses it (a rejected action, `insufficient_points`) if the balance is short by
    /// then. Works offline.
    pub fn buy_reward(&self, offer_id: &str) -> Result<()> {
        self.db.write(|tx| activity::clip_offer(tx, offer_id, true))
    }

    /// Rewards members can buy with points, cheapest first, from the cached catalog, with
    /// whether the cached balance covers each. Offline.
    pub fn rewards(&self) -> Result<Vec<activity::Reward>> {
        let balance = self.member_state()?.map_or(0, |m| m.state.points.balance);
        self.db.read(|c| activity::rewards(c, balance, now_ms()))
    }

    /// Points: balance, next expiry and the latest ledger lines, as of the last sync. Offline.
    pub fn points(&self) -> Result<api::PointsView> {
        Ok(self
            .member_state()?
            .map(|m| m.state.points)
            .unwrap_or_default())
    }

    /// The programme's challenges with the member's progress (done/target, what is left,
    /// deadline, reward, badge art) and the badges earned, in one call. Offline: events not
    /// yet sent count at once (`estimated`); after sync the server's history replaces them.
    pub fn challenges(&self) -> Result<challenges::ChallengesView> {
        let state = self.member_state()?.map(|m| m.state);
        let tz = self.preferences()?.timezone;
        self.db
            .read(|c| challenges::view(c, state.as_ref(), &tz, now_ms()))
    }

    /// Join an opt-in challenge: events from now on count towards it. Works offline.
    pub fn join_challenge(&self, challenge_id: &str) -> Result<()> {
        self.db.write(|tx| challenges::join(tx, challenge_id))
    }

    /// The member's tier and what the next one needs, as of the last sync. Offline.
    pub fn tier_progress(&self) -> Result<Option<loyalty::TierProgress>> {
        Ok(self.member_state()?.and_then(|m| m.state.tier_progress))
    }

    /// The member's coupons as the server last sent them (render `code` as a QR code).
    pub fn wallet(&self) -> Result<Vec<api::WalletCoupon>> {
        Ok(self
            .member_state()?
            .map(|m| m.state.wallet)
            .unwrap_or_default())
    }

    /// Register the token the OS gave for push messages; sent at the next sync when it changed.
    /// Returns whether it changed.
    pub fn set_push_token(&self, provider: api::PushProvider, token: &str) -> Result<bool> {
        self.db.write(|tx| push::set_token(tx, provider, token))
    }

    /// Decide about a push message (an FCM data message or an APNs `userInfo`, as JSON):
    /// show it, suppress it (duplicate, expired, consent, quiet hours, caps), or sync now. An
    /// offer it carries is cached so that a tap opens it offline.
    pub fn handle_push(
        &self,
        message: &str,
        received_at_ms: i64,
    ) -> std::result::Result<push::PushDecision, push::PushHandlingError> {
        checked_instant("received_at_ms", received_at_ms)?;
        let payload = push::parse(message)?;
        let gate = self.consent_gate();
        let decision = self
            .db
            .write(|tx| push::decide(tx, gate, &payload, received_at_ms))?;
        if payload.offer.is_some() {
            self.forget_offer_index();
        }
        Ok(decision)
    }

    // ----- cached reads -----

    /// The member's state as the server last sent it; none before the first sync. Its
    /// `rule_events` are left empty (the history can be long and every screen reads the state):
    /// `challenges()` is what uses them.
    pub fn member_state(&self) -> Result<Option<CachedMemberState>> {
        Ok(self
            .db
            .read(sync::local::member_state)?
            .map(|(state, as_of)| CachedMemberState {
                state,
                as_of: clock::to_time(as_of),
            }))
    }

    pub fn catalog_summary(&self) -> Result<CatalogSummary> {
        self.db.read(activity::catalog_summary)
    }

    /// Stores from the cache, by name (only those in `city` when given), at most `limit`.
    pub fn stores(&self, city: Option<&str>, limit: u32) -> Result<Vec<Store>> {
        self.db.read(|c| activity::stores(c, city, limit))
    }
}
