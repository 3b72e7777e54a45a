//! Server redemptions per second (issue #6): `POST /v1/till/redemptions` over loopback HTTP
//! against a server with 2 worker threads on embedded SQLite, and on PostgreSQL when
//! `TESSERA_TEST_POSTGRES` names a database (issue #17: a fresh schema), each request a fresh
//! coupon (the
//! signature checked, one conditional UPDATE, a coupon event, the answer stored under the till's
//! key), from 1 and from 50 tills at once. Coupons are clipped beforehand, outside the
//! measurement. Also: purchases with a member card per second (points, tier review, ledger), and
//! the core till's offline check including its journal lookup. The load generator runs in this
//! process on the same 2 cores: the figures are a floor.

mod common;

use std::sync::Arc;
use std::time::Duration;
use tessera_server::service::Services;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tessera_domain::api::{CouponState, Mutation};
use tessera_server::storage::Storage;
use tessera_server::storage::sqlite::SqliteStorage;

// Offers any member may use any number of times, in any shop, at any hour: the bench measures
// redemption, not the offers' rules refusing it (of-012 has hours, of-025 a per-member limit).
const OFFERS: [&str; 4] = ["of-002", "of-009", "of-021", "of-055"];
const MEMBERS: usize = 64;
const BATCH: usize = MEMBERS * OFFERS.len();
const TILLS: usize = 50;

fn redemptions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    on(c, "sqlite", SqliteStorage::temporary().unwrap(), &rt);
    if let Ok(url) = std::env::var("TESSERA_TEST_POSTGRES") {
        let storage = rt
            .block_on(tessera_server::storage::postgres::PostgresStorage::temporary(&url))
            .unwrap();
        on(c, "postgres", storage, &rt);
    } else {
        eprintln!("server_redemptions/postgres: not measured (TESSERA_TEST_POSTGRES is not set)");
    }
}

fn on<S: Storage + Clone>(
    c: &mut Criterion,
    backend: &str,
    storage: S,
    rt: &tokio::runtime::Runtime,
) {
    let (server, url, http) = common::serve(&storage, rt);
    let members: Vec<String> = rt
        .block_on(common::enrol(&http, &url, MEMBERS))
        .into_iter()
        .map(|e| e.member_id)
        .collect();
    let tokens: Vec<String> = (0..TILLS)
        .map(|i| {
            let token = format!("bench-till-token-{i:04}");
            rt.block_on(storage.register_till(
                "st-paris-01".into(),
                tessera_server::auth::hash_token(&token),
                0,
            ))
            .unwrap()
            .unwrap();
            token
        })
        .collect();
    let mut round = 0u64;
    let mut clip_all = || -> Vec<String> {
        round += 1;
        rt.block_on(async {
            let mut codes = Vec::with_capacity(BATCH);
            for (m, member) in members.iter().enumerate() {
                for (o, offer) in OFFERS.iter().enumerate() {
                    storage
                        .apply_mutation(
                            member.clone(),
                            format!("clip-{round}-{m}-{o}"),
                            format!("h{round}"),
                            Mutation::ClipOffer {
                                offer_id: (*offer).into(),
                            },
                            jiff::Timestamp::now().as_millisecond(),
                        )
                        .await
                        .unwrap();
                }
                let state = storage.member_state(member.clone()).await.unwrap();
                codes.extend(
                    state
                        .wallet
                        .into_iter()
                        .filter(|c| c.state == CouponState::Available)
                        .map(|c| c.code),
                );
            }
            assert_eq!(codes.len(), BATCH);
            codes
        })
    };
    let redeem_all = |codes: Vec<String>, lanes: usize| {
        rt.block_on(async {
            let codes = Arc::new(codes);
            let mut set = tokio::task::JoinSet::new();
            for (lane, token) in tokens.iter().take(lanes).enumerate() {
                let (http, url, token, codes) =
                    (http.clone(), url.clone(), token.clone(), codes.clone());
                set.spawn(async move {
                    let mut i = lane;
                    while i < codes.len() {
                        let resp = http
                            .post(format!("{url}/v1/till/redemptions"))
                            .bearer_auth(&token)
                            .header("idempotency-key", format!("r-{}", &codes[i][codes[i].len() - 24..]))
                            .json(&serde_json::json!({"code": codes[i], "receipt": "R-1", "basket_cents": 5000}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 200);
                        i += lanes;
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
        })
    };

    let mut group = c.benchmark_group(format!("server_redemptions/{backend}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    for lanes in [1, TILLS] {
        group.bench_function(format!("{lanes}_tills"), |b| {
            b.iter_batched(
                &mut clip_all,
                |codes| redeem_all(codes, lanes),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    // Purchases: each with a member's card, a fresh receipt; points, tier review, ledger lines.
    let cards: Vec<String> = rt.block_on(async {
        let mut cards = Vec::new();
        for m in &members {
            cards.push(storage.member_state(m.clone()).await.unwrap().card_number);
        }
        cards
    });
    let cards = Arc::new(cards);
    let mut receipt = 0u64;
    let mut purchase_all = |lanes: usize| {
        receipt += 1;
        let batch = receipt;
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for (lane, token) in tokens.iter().take(lanes).enumerate() {
                let (http, url, token, cards) =
                    (http.clone(), url.clone(), token.clone(), cards.clone());
                set.spawn(async move {
                    let mut i = lane;
                    while i < BATCH {
                        let resp = http
                            .post(format!("{url}/v1/till/purchases"))
                            .bearer_auth(&token)
                            .header("idempotency-key", format!("purchase-{batch}-{i}"))
                            .json(&serde_json::json!({
                                "receipt": format!("P-{batch}-{i}"),
                                "card_number": cards[i % cards.len()],
                                "lines": [{"sku": "sku-tea", "quantity": 2, "amount_cents": 4599}],
                                "total_cents": 4599
                            }))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 200);
                        i += lanes;
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
        })
    };
    let mut group = c.benchmark_group(format!("server_purchases/{backend}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    for lanes in [1, TILLS] {
        group.bench_function(format!("{lanes}_tills"), |b| b.iter(|| purchase_all(lanes)));
    }
    group.finish();

    // The till's offline check as a till runs it: signature, dates, shop, basket, and the
    // journal lookup that refuses a code this till already took.
    let dir = tempfile::tempdir().unwrap();
    let till = tessera_till::Till::open(
        dir.path().join("bench.journal"),
        &url,
        &tokens[0],
        "st-paris-01",
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap();
    let code = clip_all().pop().unwrap();
    c.bench_function(
        &format!("till/verify_offline_with_journal/{backend}"),
        |b| b.iter(|| std::hint::black_box(till.verify(&code, None, 5000).unwrap())),
    );
    server.stop();
}

criterion_group!(benches, redemptions);
criterion_main!(benches);
