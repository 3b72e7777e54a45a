//! What the app is told changed, through the member's real actions and a real sync against the
//! server: each action announces the kinds of data it changed, a sync announces once at its end
//! (after the offer index is refreshed, so a re-read sees the new catalog), sign-out announces
//! what it forgot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use tessera_core::changes::{Change, ChangeObserver};
use tessera_core::consent::{Channel, Decision, Purpose};
use tessera_core::{EventKind, Tessera};
use tessera_e2e::consent::choose;
use tessera_e2e::{Server, admin, device, seed, small_catalog};
use tessera_server::ServerConfig;

#[derive(Default)]
struct Seen(Mutex<Vec<Vec<Change>>>);

impl ChangeObserver for Seen {
    fn on_change(&self, changes: Vec<Change>) {
        self.0.lock().unwrap().push(changes);
    }
}

impl Seen {
    fn take(&self) -> Vec<Vec<Change>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Reads {
    offers_at_announcement: Mutex<Option<usize>>,
    t: Mutex<Option<Arc<Tessera>>>,
}

impl ChangeObserver for Reads {
    fn on_change(&self, changes: Vec<Change>) {
        if changes.contains(&Change::Offers) {
            let t = self.t.lock().unwrap().clone().unwrap();
            let n = t.offers(200).unwrap().offers.len();
            *self.offers_at_announcement.lock().unwrap() = Some(n);
        }
    }
}

#[test]
fn each_action_and_each_sync_announce_what_they_changed() {
    let server = Server::start_with(ServerConfig::default(), Some(seed()));
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    let seen = Arc::new(Seen::default());
    t.set_change_observer(Some(seen.clone()));

    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    let enrol = seen.take().concat();
    assert!(
        enrol.contains(&Change::Card) && enrol.contains(&Change::SyncStatus),
        "{enrol:?}"
    );

    // The first sync: hundreds of rows over several commits, one announcement.
    t.sync().unwrap();
    let sync = seen.take();
    assert_eq!(
        sync.len(),
        1,
        "one announcement for the whole sync: {sync:?}"
    );
    for kind in [
        Change::Offers,
        Change::Points,
        Change::Wallet,
        Change::SyncStatus,
    ] {
        assert!(sync[0].contains(&kind), "{kind:?} in {sync:?}");
    }

    choose(
        &t,
        &[(Purpose::MarketingOffers, Channel::Push)],
        Decision::Granted,
    );
    let consent = seen.take();
    assert_eq!(consent.len(), 1, "one transaction, one announcement");
    for kind in [Change::Consent, Change::Offers, Change::SyncStatus] {
        assert!(consent[0].contains(&kind), "{kind:?} in {consent:?}");
    }
    assert!(!consent[0].contains(&Change::Wallet), "{consent:?}");

    t.record_event(EventKind::AppOpened, None, BTreeMap::new())
        .unwrap();
    let event = seen.take();
    assert_eq!(event.len(), 1);
    assert!(event[0].contains(&Change::Activity) && event[0].contains(&Change::SyncStatus));

    // A clip waits in the outbox: the wallet changes when the coupon comes back at the sync.
    t.clip_offer("of-009").unwrap();
    let clip = seen.take().concat();
    assert!(
        clip.contains(&Change::SyncStatus) && !clip.contains(&Change::Wallet),
        "{clip:?}"
    );

    // A refused action changes nothing and says nothing.
    assert!(t.clip_offer("").is_err());
    assert_eq!(seen.take(), Vec::<Vec<Change>>::new());

    // The sync that sends the clip and brings the coupon back.
    t.sync().unwrap();
    let sync = seen.take();
    assert_eq!(sync.len(), 1);
    assert!(sync[0].contains(&Change::Wallet), "{sync:?}");

    t.sign_out(true).unwrap();
    let out = seen.take().concat();
    for kind in [
        Change::Card,
        Change::Offers,
        Change::Wallet,
        Change::SyncStatus,
    ] {
        assert!(out.contains(&kind), "{kind:?} in {out:?}");
    }
}

#[test]
fn the_sync_announces_after_the_offer_index_holds_the_new_catalog() {
    let server = Server::start_with(ServerConfig::default(), Some(seed()));
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(tessera_e2e::phone(dir.path().join("m.db")));
    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    t.sync().unwrap();
    let before = t.offers(200).unwrap().offers.len();
    // A new offer for everyone, in every shop.
    let mut offer = serde_json::to_value(&seed().offers[0]).unwrap();
    offer["id"] = serde_json::json!("of-announced");
    let (status, body) = admin(Method::PUT, &server, "/admin/v1/offers/of-announced", offer);
    assert_eq!(status, 204, "{body}");

    let reads = Arc::new(Reads {
        offers_at_announcement: Mutex::new(None),
        t: Mutex::new(Some(t.clone())),
    });
    t.set_change_observer(Some(reads.clone()));
    t.sync().unwrap();
    let seen = reads.offers_at_announcement.lock().unwrap().take();
    t.set_change_observer(None);
    reads.t.lock().unwrap().take();
    let after = t.offers(200).unwrap().offers.len();
    assert_eq!(after, before + 1);
    assert_eq!(
        seen,
        Some(after),
        "the re-read on the announcement saw the synced catalog"
    );
}

#[test]
fn a_sync_of_many_pages_is_one_announcement() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(120, 30)));
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    // Pages of 10: the pages after the first are written on the sync's second thread.
    t.set_sync_config(tessera_core::SyncConfig {
        page_size: 10,
        ..Default::default()
    })
    .unwrap();
    let seen = Arc::new(Seen::default());
    t.set_change_observer(Some(seen.clone()));
    let report = t.sync().unwrap();
    assert!(report.catalog_pages > 5, "{report:?}");
    let told = seen.take();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains(&Change::Offers));
}
