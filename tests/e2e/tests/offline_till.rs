//! Tills offline and reconnecting, against the real server: ten tills honour the same coupon
//! offline and report it later (one effect, nine recorded conflicts, every till and the wallet
//! told), lost answers do not redeem twice, and journaled purchases and voids are reported once.

use std::sync::{Arc, Barrier};

use reqwest::blocking::Client;
use serde_json::Value;
use tessera_core::Tessera;
use tessera_core::api::{CouponState, PurchaseLine, PurchaseRequest, codes};
use tessera_core::coupon::CouponError;
use tessera_e2e::proxy::Proxy;
use tessera_e2e::race::fresh_coupon;
use tessera_e2e::{ADMIN_TOKEN, Server, dead_url, device, open_till, till_token};
use tessera_till::{Done, Till, TillError};

const OFFER: &str = "of-009"; // in store, every shop, must be clipped

fn member(server: &Server, dir: &std::path::Path) -> Tessera {
    let t = tessera_e2e::phone(dir.join("m.db"));
    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    t
}

fn conflicts(server: &Server) -> Vec<Value> {
    Client::new()
        .get(format!("{}/admin/v1/redemption-conflicts", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn ten_offline_tills_replay_one_coupon_one_effect_nine_conflicts() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let phone = member(&server, dir.path());
    let code = fresh_coupon(&phone, OFFER);
    let tokens: Vec<String> = (0..10)
        .map(|_| till_token(&server, "st-paris-01"))
        .collect();
    let journal = |i: usize| dir.path().join(format!("till-{i}.journal"));
    // Each till reaches the server once (its keys), then the shop's network goes down.
    for (i, token) in tokens.iter().enumerate() {
        Till::open(
            journal(i),
            &server.url(),
            token,
            "st-paris-01",
            tessera_core::sync::ReqwestClient::shared(),
        )
        .unwrap();
    }
    let offline = dead_url();
    for (i, token) in tokens.iter().enumerate() {
        let till = Till::open(
            journal(i),
            &offline,
            token,
            "st-paris-01",
            tessera_core::sync::ReqwestClient::shared(),
        )
        .unwrap();
        assert_eq!(
            till.redeem(&code, 2500, &format!("R-{i}")).unwrap(),
            Done::Offline
        );
        // The same till refuses the same code again, offline, from its journal.
        assert!(matches!(
            till.redeem(&code, 2500, &format!("R-{i}b")),
            Err(TillError::Coupon(CouponError::AlreadyRedeemed { .. }))
        ));
        assert_eq!(till.pending().unwrap(), 1);
    }
    // The network is back: the ten report at once.
    let start = Arc::new(Barrier::new(10));
    let url = server.url();
    let handles: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let (start, url, token, path) = (start.clone(), url.clone(), token.clone(), journal(i));
            std::thread::spawn(move || {
                let till = Till::open(
                    path,
                    &url,
                    &token,
                    "st-paris-01",
                    tessera_core::sync::ReqwestClient::shared(),
                )
                .unwrap();
                start.wait();
                (i, till.sync().unwrap(), till.outcomes(10).unwrap())
            })
        })
        .collect();
    let reports: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<usize> = reports
        .iter()
        .filter(|(_, r, _)| r.accepted == 1)
        .map(|(i, ..)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one effect: {reports:?}");
    let winner = winners[0];
    let mut conflicted = 0;
    for (i, report, outcomes) in &reports {
        assert_eq!(report.pending, 0);
        assert!(report.refused.is_empty(), "{report:?}");
        assert_eq!(outcomes.len(), 1, "each till keeps what it learnt");
        if *i != winner {
            assert_eq!(report.conflicts.len(), 1);
            let c = &report.conflicts[0];
            assert_eq!(c.code.as_deref(), Some(codes::REDEMPTION_CONFLICT));
            assert!(
                c.detail.as_deref().unwrap().starts_with("st-paris-01 "),
                "{c:?}"
            );
            conflicted += 1;
        }
    }
    assert_eq!(conflicted, 9);
    // The merchant sees nine conflicts, each naming the redemption that counts.
    let listed = conflicts(&server);
    assert_eq!(listed.len(), 9, "{listed:?}");
    let receipts: std::collections::BTreeSet<&str> = listed
        .iter()
        .map(|c| c["receipt"].as_str().unwrap())
        .collect();
    assert_eq!(receipts.len(), 9);
    assert!(!receipts.contains(format!("R-{winner}").as_str()));
    assert!(listed.iter().all(|c| c["winner_store_id"] == "st-paris-01"));
    // The member's wallet learns the outcome at the next sync.
    phone.sync().unwrap();
    let state = phone
        .wallet()
        .unwrap()
        .into_iter()
        .find(|c| c.code == code)
        .unwrap()
        .state;
    assert!(
        matches!(&state, CouponState::Redeemed { store_id, .. } if store_id == "st-paris-01"),
        "{state:?}"
    );
    // Reporting again changes nothing: the journal is empty, the server holds one redemption.
    let again = Till::open(
        journal(winner),
        &url,
        &tokens[winner],
        "st-paris-01",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap();
    assert_eq!(again.sync().unwrap().accepted, 0);
    assert_eq!(conflicts(&server).len(), 9);
}

#[test]
fn a_till_never_reached_cannot_verify_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = Till::open(
        dir.path().join("t.journal"),
        &dead_url(),
        "token",
        "st-paris-01",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap_err();
    assert!(matches!(err, TillError::Network(_)), "{err:?}");
}

#[test]
fn lost_answers_neither_redeem_twice_nor_make_conflicts() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let phone = member(&server, dir.path());
    let token = till_token(&server, "st-paris-01");
    let proxy = Proxy::start(server.running.addr, 7, 0.7);
    let till = Till::open(
        dir.path().join("t.journal"),
        &proxy.url(),
        &token,
        "st-paris-01",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap();
    // Rounds of: clip a few offers (a redeemed coupon is issued anew), redeem every one this
    // shop takes for a 50 € basket while the network drops requests and loses answers.
    let (mut usable, mut journaled) = (0, 0);
    for round in 0..8 {
        for offer in ["of-009", "of-001", "of-002", "of-004", "of-008", "of-012"] {
            phone.clip_offer(offer).unwrap();
        }
        phone.sync().unwrap();
        let codes: Vec<String> = phone
            .wallet()
            .unwrap()
            .into_iter()
            .filter(|c| c.state == CouponState::Available)
            .map(|c| c.code)
            .filter(|c| till.verify(c, None, 5000).is_ok())
            .collect();
        proxy.set_faults(true);
        for (i, code) in codes.iter().enumerate() {
            usable += 1;
            if till.redeem(code, 5000, &format!("R-{round}-{i}")).unwrap() == Done::Offline {
                journaled += 1;
            }
        }
        proxy.set_faults(false);
        assert_eq!(till.sync().unwrap().pending, 0);
    }
    assert!(usable >= 16, "{usable} coupons redeemed");
    assert!(journaled > 0, "the faults hit some redemptions");
    let lost = proxy.stats.lost.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        lost > 0,
        "some requests were applied and their answers lost"
    );
    let outcomes = till.outcomes(1000).unwrap();
    assert_eq!(
        outcomes.len(),
        journaled,
        "every journaled redemption reported"
    );
    assert!(
        outcomes.iter().all(|o| o.code.is_none()),
        "all accepted, none a conflict: {outcomes:?}"
    );
    assert!(conflicts(&server).is_empty());
    phone.sync().unwrap();
    let redeemed = phone
        .wallet()
        .unwrap()
        .into_iter()
        .filter(|c| matches!(c.state, CouponState::Redeemed { .. }))
        .count();
    assert_eq!(redeemed, usable, "every verified coupon redeemed once");
}

fn purchase(receipt: &str, card: Option<&str>, cents: u64) -> PurchaseRequest {
    PurchaseRequest {
        receipt: receipt.into(),
        card_number: card.map(str::to_owned),
        member_code: None,
        lines: vec![PurchaseLine {
            sku: "sku-tea-1".into(),
            category: Some("tea".into()),
            collection: None,
            quantity: 1,
            amount_cents: cents,
        }],
        total_cents: cents,
        occurred_offline_at: None,
    }
}

#[test]
fn journaled_purchases_are_reported_once_and_offline_voids_drop_what_was_never_sent() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let phone = member(&server, dir.path());
    let card = phone.card().unwrap().card_number;
    let code = fresh_coupon(&phone, OFFER);
    let token = till_token(&server, "st-paris-01");
    let journal = dir.path().join("t.journal");
    Till::open(
        &journal,
        &server.url(),
        &token,
        "st-paris-01",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap();
    let offline = Till::open(
        &journal,
        &dead_url(),
        &token,
        "st-paris-01",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap();
    assert_eq!(
        offline
            .record_purchase(&purchase("R-1", Some(&card), 4599))
            .unwrap(),
        Done::Offline
    );
    // A cashier's mistake, voided before the network came back: never reaches the server, and
    // the coupon can be scanned again.
    assert_eq!(offline.redeem(&code, 2500, "R-2").unwrap(), Done::Offline);
    assert_eq!(offline.void("R-2").unwrap(), Done::Offline);
    assert!(offline.verify(&code, None, 2500).is_ok());
    assert_eq!(offline.pending().unwrap(), 1);
    drop(offline);
    let online = Till::open(
        &journal,
        &server.url(),
        &token,
        "st-paris-01",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap();
    let report = online.sync().unwrap();
    assert_eq!((report.accepted, report.pending), (1, 0), "{report:?}");
    phone.sync().unwrap();
    let points = phone.points().unwrap();
    assert_eq!(points.balance, 45, "€45.99 at 1 point per euro");
    assert_eq!(points.ledger.len(), 1);
    // The coupon is still available on the server too.
    assert!(matches!(
        online.redeem(&code, 2500, "R-3").unwrap(),
        Done::Online(_)
    ));
    // Another till of the shop voids R-3 (never seen by it): the server does, the coupon is
    // usable again.
    let other = open_till(&server, dir.path().join("other.journal"), "st-paris-01");
    match other.void("R-3").unwrap() {
        Done::Online(r) => assert_eq!(r.coupons_restored.len(), 1),
        Done::Offline => panic!("voided on the server, not only in a journal"),
    }
    // A receipt nobody used: the server says so.
    assert!(matches!(
        other.void("R-404"),
        Err(TillError::Refused { code, .. }) if code == codes::NOTHING_TO_VOID
    ));
}
