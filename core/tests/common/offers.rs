//! Synthetic catalogs imported into a real database, and a member with every consent.

use proptest::prelude::*;
use tessera_core::Tessera;
use tessera_core::api::{CatalogChange, CatalogPage};
use tessera_core::catalog::{Offer, OfferChannel, OfferKind, Store};
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::privacy::ConsentChoice;

pub fn store(id: usize, lat: f64, lon: f64, radius_m: u32) -> Store {
    Store {
        id: format!("s{id:05}"),
        name: format!("Store {id}"),
        address: "1 rue de la Paix".into(),
        postcode: "75002".into(),
        city: "Paris".into(),
        country: "FR".into(),
        latitude: lat,
        longitude: lon,
        radius_m,
        timezone: "Europe/Paris".into(),
        opening_hours: Vec::new(),
        tags: if id % 3 == 0 {
            vec!["outlet".into()]
        } else {
            vec![]
        },
    }
}

pub fn offer(id: usize, stores: Vec<String>, tags: Vec<String>, channel: OfferChannel) -> Offer {
    Offer {
        id: format!("o{id:05}"),
        title: format!("Offer {id}"),
        description: "10 % off".into(),
        kind: OfferKind::PercentOff { percent: 10 },
        valid_from: "2020-01-01T00:00:00Z".into(),
        valid_to: "2099-01-01T00:00:00Z".into(),
        channel,
        days: vec![],
        hours_from: None,
        hours_to: None,
        store_ids: stores,
        store_tags: tags,
        categories: vec![],
        tiers: vec![],
        segments: vec![],
        min_basket_cents: None,
        per_member_limit: None,
        requires_clip: false,
        points_cost: None,
    }
}

pub fn import(stores: &[Store], offers: &[Offer]) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = Tessera::open(dir.path().join("t.db")).unwrap();
    let changes = stores
        .iter()
        .map(|s| CatalogChange::Store { store: s.clone() })
        .chain(
            offers
                .iter()
                .map(|o| CatalogChange::Offer { offer: o.clone() }),
        )
        .collect();
    t.import_catalog_page(&CatalogPage {
        format: 1,
        changes,
        cursor: "c1.1".into(),
        has_more: false,
    })
    .unwrap();
    (dir, t)
}

pub fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Stores around a centre, a third of them with their own offer, every outlet with the outlet
/// offer, one online-only offer that must never show.
pub fn catalog(points: &[(f64, f64)]) -> (Vec<Store>, Vec<Offer>) {
    let stores: Vec<Store> = points
        .iter()
        .enumerate()
        .map(|(i, (lat, lon))| store(i, *lat, *lon, 150))
        .collect();
    let mut offers: Vec<Offer> = stores
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1)
        .map(|(i, s)| offer(i, vec![s.id.clone()], vec![], OfferChannel::InStore))
        .collect();
    offers.push(offer(
        90_000,
        vec![],
        vec!["outlet".into()],
        OfferChannel::Both,
    ));
    offers.push(offer(90_001, vec![], vec![], OfferChannel::Online));
    (stores, offers)
}

pub fn position() -> impl Strategy<Value = (f64, f64)> {
    (-89.9f64..89.9, -180.0f64..180.0)
}

/// An enrolled-looking member (a session row) with every consent granted.
pub fn member(t: &Tessera) {
    tessera_e2e_free_session(t);
    let choices: Vec<ConsentChoice> = Purpose::ALL
        .iter()
        .flat_map(|p| Channel::ALL.iter().map(move |c| (*p, *c)))
        .map(|(purpose, channel)| ConsentChoice {
            purpose,
            channel,
            decision: Decision::Granted,
        })
        .collect();
    t.record_consent(
        &choices,
        &ConsentText {
            version: "v1".into(),
            text: "all".into(),
        },
    )
    .unwrap();
    let p = t.preferences().unwrap();
    t.set_preferences(&tessera_core::preferences::Preferences {
        quiet_hours: None,
        ..p
    })
    .unwrap();
}

pub fn tessera_e2e_free_session(t: &Tessera) {
    rusqlite::Connection::open(t.path())
        .unwrap()
        .execute(
            "INSERT INTO session (id, server_url, member_id, device_id, access_token, access_expires_at, refresh_token, refresh_expires_at) VALUES (1, 'http://127.0.0.1:9', 'm1', 'd1', 'a', 0, 'r', 0)",
            [],
        )
        .unwrap();
}

pub fn at_distance(from: (f64, f64), azimuth: f64, metres: f64) -> (f64, f64) {
    use geographiclib_rs::{DirectGeodesic, Geodesic};
    let (lat, lon, _az): (f64, f64, f64) =
        Geodesic::wgs84().direct(from.0, from.1, azimuth, metres);
    (lat, lon)
}
