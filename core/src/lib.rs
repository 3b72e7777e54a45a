//! # tessera-core
//!
//! The phone client behind Tessera's Android and iOS apps: storage, sync, and one service per
//! feature, each owning its SQL. The rules it decides with are `tessera-domain`'s (re-exported
//! here under the names the phone has always used). No FFI types: the `uniffi` feature only adds
//! derives to records that cross the boundary unchanged.
//!
//! | module | job |
//! |---|---|
//! | [`card`] | the card service ([`card::Cards`]): programme, card, the card screen ([`CardView`]) |
//! | [`activity`] | member actions (local effect + outbox row) and cached reads ([`activity::Activity`]) |
//! | [`wallet`] | clip, buy rewards, coupons, points, tier ([`wallet::Wallet`]) |
//! | [`privacy`] | consent ledger, gate, preference centre, export ([`privacy::Consent`]) |
//! | [`nearby`] | offers near me, geofence plan, region events ([`nearby::Offers`]) |
//! | [`challenges`] | challenges and badges, offline ([`challenges::Challenges`]) |
//! | [`push`] | push token and messages ([`push::Push`]) |
//! | [`sync`] | enrolment and the sync engine ([`sync::SyncService`]) |
//! | [`barcode`] | the domain's symbologies, plus the encoders and renderers (SVG, PNG) |
//! | [`db`] | SQLite: connections, pragmas, migrations, the one write path, quarantine |
//! | [`diagnostics`] | checks a shell's build can run on itself |
//! | [`simulate`] | a walk replayed through the geofence calls, as the OS would drive them |
//! | [`Tessera`] (this file) | holds the services; each method is one line over one of them |
//!
//! Services below the facade never import it; the sync service tells the consent and offers
//! services what a sync changed.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("tessera_core");

pub mod activity;
pub mod barcode;
pub mod card;
pub mod card_code;
pub mod challenges;
pub mod changes;
mod clock;
pub mod db;
pub mod diagnostics;
mod error;
pub mod nearby;
mod outbox;
pub mod privacy;
pub mod push;
pub mod simulate;
pub mod sync;
pub mod wallet;

// The domain's rules, under the names the phone client has always used for them.
pub use tessera_domain::{
    api, catalog, catalog_reader, consent, coupon, eligibility, geo, intern, loyalty, member_code,
    preferences, rfc3339_ms, rules, text,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use activity::{ActivityEntry, CachedMemberState, CatalogSummary, RejectedAction};
pub use api::{DeviceInfo, EventKind, MemberState, Platform};
pub use barcode::{
    BarcodeError, BarcodeMatrix, CardNumberAnalysis, Symbology, SymbologySuggestion,
};
pub use card::{CardView, MemberCard, Program};
pub use catalog::{Offer, Store};
pub use db::{Db, StorageError};
pub(crate) use error::invalid;
pub use error::{Error, Result};
pub use sync::{
    HttpClient, SyncConfig, SyncError, SyncObserver, SyncPhase, SyncProgress, SyncReport,
    SyncStatus,
};

/// One member's Tessera on one device: the services of each feature over one database.
/// `Send + Sync`: call it from any thread. Network calls block the calling thread in the app's
/// [`HttpClient`] (given with [`Tessera::set_http_client`]): make them off the main thread.
#[derive(Debug)]
pub struct Tessera {
    db: Arc<Db>,
    cards: card::Cards,
    activity: activity::Activity,
    wallet: wallet::Wallet,
    consent: Arc<privacy::Consent>,
    offers: Arc<nearby::Offers>,
    challenges: challenges::Challenges,
    push: push::Push,
    sync: sync::SyncService,
}

impl Tessera {
    /// Open (or create) the database at `path`. A file that cannot be used is a typed
    /// [`StorageError`]; see [`Tessera::recover`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let db = Arc::new(Db::open(path)?);
        let consent = Arc::new(privacy::Consent::new(db.clone()));
        let offers = Arc::new(nearby::Offers::new(db.clone(), consent.clone()));
        Ok(Tessera {
            cards: card::Cards::new(db.clone()),
            activity: activity::Activity::new(db.clone()),
            wallet: wallet::Wallet::new(db.clone()),
            challenges: challenges::Challenges::new(db.clone()),
            push: push::Push::new(db.clone(), consent.clone(), offers.clone()),
            sync: sync::SyncService::new(db.clone(), consent.clone(), offers.clone()),
            consent,
            offers,
            db,
        })
    }

    /// Move an unusable database aside (kept, never deleted) and start a fresh one at `path`.
    /// Returns the new instance and where the old file went. The card comes back by enrolling
    /// again (later: from the server).
    pub fn recover(path: impl AsRef<Path>) -> Result<(Self, PathBuf), StorageError> {
        let path = path.as_ref();
        let moved = db::quarantine(path)?;
        Ok((Self::open(path)?, moved))
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Full read of the file looking for damage.
    pub fn check_integrity(&self) -> Result<(), StorageError> {
        self.db.check_integrity()
    }

    /// Close the database; every later call returns [`StorageError::Closed`].
    pub fn close(&self) {
        self.db.close();
    }

    // ----- the card -----

    pub fn program(&self) -> Result<Option<Program>> {
        self.cards.program()
    }
    /// See [`card::Cards::set_program`].
    pub fn set_program(&self, program: &Program) -> Result<Program> {
        self.cards.set_program(program)
    }
    /// See [`card::Cards::set_card`].
    pub fn set_card(&self, card: &MemberCard) -> Result<CardView> {
        self.cards.set_card(card)
    }
    /// Everything the card screen shows, from the local database only.
    pub fn card(&self) -> Result<CardView> {
        self.cards.card()
    }
    /// Forget the card on this device (sign-out).
    pub fn remove_card(&self) -> Result<()> {
        self.cards.remove_card()
    }

    // ----- sync -----

    /// The HTTP stack every network call goes through: the app's own (OkHttp or
    /// `HttpURLConnection`, `URLSession`) through the FFI, `sync::ReqwestClient` in Rust tools.
    /// Until one is given, network calls answer [`SyncError::NoHttpClient`].
    pub fn set_http_client(&self, client: Arc<dyn HttpClient>) {
        self.sync.set_http_client(client)
    }

    /// The rotating member code for the card screen now: a code a till verifies offline and a
    /// screenshot cannot replay (draw it again at `changes_at`). Offline; the certificate comes
    /// at enrolment or the next sync.
    pub fn member_code(
        &self,
    ) -> std::result::Result<card_code::MemberCodeView, card_code::MemberCodeUnavailable> {
        self.sync.member_code(clock::now_ms())
    }

    /// See [`sync::SyncService::set_secret_store`].
    pub fn set_secret_store(&self, store: Arc<dyn sync::SecretStore>) -> Result<(), SyncError> {
        self.sync.set_secret_store(store)
    }

    /// See [`sync::SyncService::set_config`].
    pub fn set_sync_config(&self, config: SyncConfig) -> Result<(), SyncError> {
        self.sync.set_config(config)
    }
    pub fn set_sync_observer(&self, observer: Option<Arc<dyn SyncObserver>>) {
        self.sync.set_observer(observer)
    }
    /// Told what changed after each write commits (once at the end of a sync); `None` stops.
    /// See [`changes`].
    pub fn set_change_observer(&self, observer: Option<Arc<dyn changes::ChangeObserver>>) {
        self.db.changes().set_observer(observer)
    }
    /// See [`sync::SyncService::sync_cancellable`].
    pub fn sync_cancellable(&self, cancel: &sync::Cancel) -> Result<SyncReport, SyncError> {
        self.sync.sync_cancellable(cancel)
    }
    /// See [`sync::SyncService::enrol`].
    pub fn enrol(
        &self,
        server_url: &str,
        holder_name: &str,
        device: DeviceInfo,
    ) -> Result<CardView, SyncError> {
        self.sync.enrol(server_url, holder_name, device)
    }
    /// See [`sync::SyncService::sync`].
    pub fn sync(&self) -> Result<SyncReport, SyncError> {
        self.sync.sync()
    }
    /// See [`sync::SyncService::wallet_pass`].
    pub fn wallet_pass(
        &self,
        kind: sync::WalletKind,
        coupon_id: Option<&str>,
        near: Option<geo::Position>,
    ) -> Result<Vec<u8>, SyncError> {
        self.sync.wallet_pass(kind, coupon_id, near)
    }
    /// See [`sync::SyncService::import_catalog_page`].
    pub fn import_catalog_page(&self, page: &api::CatalogPage) -> Result<u64, SyncError> {
        self.sync.import_catalog_page(page)
    }
    /// See [`sync::SyncService::sign_out`].
    pub fn sign_out(&self, discard_pending: bool) -> Result<(), SyncError> {
        self.sync.sign_out(discard_pending)
    }
    pub fn sync_status(&self) -> Result<SyncStatus, StorageError> {
        self.sync.status()
    }
    /// See [`sync::SyncService::export_my_data`].
    pub fn export_my_data(&self) -> Result<String, SyncError> {
        self.sync.export_my_data()
    }
    /// See [`sync::SyncService::erase_member`].
    pub fn erase_member(&self) -> Result<api::ErasureReceipt, SyncError> {
        self.sync.erase_member()
    }

    // ----- member actions and cached reads -----

    /// See [`activity::Activity::record_event`].
    pub fn record_event(
        &self,
        kind: EventKind,
        store_id: Option<String>,
        attributes: BTreeMap<String, String>,
    ) -> Result<String> {
        self.activity.record_event(kind, store_id, attributes)
    }
    pub fn set_favourite_store(&self, store_id: &str, favourite: bool) -> Result<()> {
        self.activity.set_favourite_store(store_id, favourite)
    }
    pub fn activity(&self, limit: u32) -> Result<Vec<ActivityEntry>, StorageError> {
        self.activity.history(limit)
    }
    pub fn rejected_actions(&self) -> Result<Vec<RejectedAction>, StorageError> {
        self.activity.rejected()
    }
    pub fn favourite_stores(&self) -> Result<Vec<String>, StorageError> {
        self.activity.favourite_stores()
    }
    /// See [`activity::Activity::member_state`].
    pub fn member_state(&self) -> Result<Option<CachedMemberState>, StorageError> {
        self.activity.member_state()
    }
    pub fn catalog_summary(&self) -> Result<CatalogSummary, StorageError> {
        self.activity.catalog_summary()
    }
    pub fn stores(&self, city: Option<&str>, limit: u32) -> Result<Vec<Store>, StorageError> {
        self.activity.stores(city, limit)
    }

    // ----- wallet, points, rewards -----

    pub fn clip_offer(&self, offer_id: &str) -> Result<()> {
        self.wallet.clip_offer(offer_id)
    }
    pub fn buy_reward(&self, offer_id: &str) -> Result<()> {
        self.wallet.buy_reward(offer_id)
    }
    pub fn rewards(&self) -> Result<Vec<activity::Reward>> {
        self.wallet.rewards()
    }
    pub fn points(&self) -> Result<api::PointsView> {
        self.wallet.points()
    }
    pub fn tier_progress(&self) -> Result<Option<loyalty::TierProgress>> {
        self.wallet.tier_progress()
    }
    pub fn wallet(&self) -> Result<Vec<api::WalletCoupon>> {
        self.wallet.coupons()
    }

    // ----- consent and preferences -----

    pub fn consent_gate(&self) -> consent::ConsentGate {
        self.consent.gate()
    }
    pub fn invalidate_consent_gate(&self) {
        self.consent.invalidate()
    }
    pub fn permits(&self, feature: consent::Feature) -> bool {
        self.consent.permits(feature)
    }
    /// See [`privacy::Consent::record`].
    pub fn record_consent(
        &self,
        choices: &[privacy::ConsentChoice],
        text: &consent::ConsentText,
    ) -> Result<Vec<consent::ConsentRecord>> {
        self.consent.record(choices, text)
    }
    pub fn withdraw_all_consents(
        &self,
        text: &consent::ConsentText,
    ) -> Result<Vec<consent::ConsentRecord>> {
        self.consent.withdraw_all(text)
    }
    pub fn consent_state(&self) -> Result<Vec<consent::ConsentStatus>, StorageError> {
        self.consent.state()
    }
    pub fn consent_history(&self) -> Result<Vec<consent::ConsentRecord>, StorageError> {
        self.consent.history()
    }
    pub fn preferences(&self) -> Result<preferences::Preferences, StorageError> {
        self.consent.preferences()
    }
    pub fn set_preferences(
        &self,
        preferences: &preferences::Preferences,
    ) -> Result<preferences::Preferences> {
        self.consent.set_preferences(preferences)
    }
    /// See [`privacy::Consent::claim_notification`].
    pub fn claim_notification(
        &self,
        request: &preferences::NotificationRequest,
    ) -> Result<preferences::NotificationVerdict> {
        self.consent.claim_notification(request)
    }
    pub fn track(&self, name: &str, attributes: BTreeMap<String, String>) -> Result<bool> {
        self.consent.track(name, attributes)
    }
    /// See [`nearby::Offers::screen`].
    pub fn offers(&self, limit: u32) -> Result<privacy::OfferList, StorageError> {
        self.offers.screen(limit)
    }
    pub fn export_device_data(&self) -> Result<String, StorageError> {
        self.consent.export_device_data()
    }

    // ----- offers where the member is -----

    pub fn offer_index(&self) -> Result<Arc<nearby::OfferIndex>, StorageError> {
        self.offers.index()
    }
    pub fn set_offer_settings(&self, settings: nearby::OfferSettings) {
        self.offers.set_settings(settings)
    }
    /// See [`nearby::Offers::near`].
    pub fn offers_near(
        &self,
        position: geo::Position,
        radius_m: f64,
        limit: u32,
    ) -> Result<Vec<nearby::NearbyOffer>> {
        self.offers.near(position, radius_m, limit)
    }
    /// See [`nearby::Offers::plan_geofences`].
    pub fn plan_geofences(
        &self,
        position: geo::Position,
        budget: u32,
        registered: &[String],
    ) -> Result<nearby::GeofencePlan> {
        self.offers.plan_geofences(position, budget, registered)
    }
    /// See [`nearby::Offers::on_region_event`].
    pub fn on_region_event(
        &self,
        region_id: &str,
        kind: nearby::RegionEventKind,
        at_ms: i64,
    ) -> Result<nearby::RegionOutcome> {
        self.offers.on_region_event(region_id, kind, at_ms)
    }
    /// See [`nearby::Offers::refusal`].
    pub fn offer_refusal(&self, offer_id: &str) -> Result<Option<eligibility::Refusal>> {
        self.offers.refusal(offer_id)
    }

    // ----- challenges and push -----

    /// See [`challenges::Challenges::view`].
    pub fn challenges(&self) -> Result<challenges::ChallengesView> {
        self.challenges.view()
    }
    pub fn join_challenge(&self, challenge_id: &str) -> Result<()> {
        self.challenges.join(challenge_id)
    }
    pub fn set_push_token(&self, provider: api::PushProvider, token: &str) -> Result<bool> {
        self.push.set_token(provider, token)
    }
    /// See [`push::Push::handle`].
    pub fn handle_push(
        &self,
        message: &str,
        received_at_ms: i64,
    ) -> Result<push::PushDecision, push::PushHandlingError> {
        self.push.handle(message, received_at_ms)
    }
}
