//! Server event ingestion per second with challenges (issue #7): `POST
//! /admin/v1/members/{id}/rule-events` over loopback HTTP against a server with 2 worker threads
//! and a programme of 20 challenges. Each request records its events, counts them with the
//! member's kept engine (ADR 0024: restored, applied, saved; rebuilt from the whole history when
//! an event is older than the last one counted) and pays what is due, in one transaction.
//! Members start with 200 events; histories grow as the benchmark runs. Events of concurrent
//! requests for one member may arrive out of time order (then rebuilt): `scripts/load-rules.sh`
//! measures members whose events come in order.
//!
//! The load generator runs in this process on its own single-thread runtime, so on a 2-core
//! machine it competes with the server for the CPU: the figures are a floor.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_server::service::Services;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tessera_domain::rules::{RuleEvent, RuleEventKind, RuleLine, RuleSet};
use tessera_server::storage::Storage;
use tessera_server::storage::sqlite::SqliteStorage;

/// Events per measured iteration.
const BATCH: u64 = 256;
const MEMBERS: usize = 32;
const HOUR: i64 = 3_600_000;

fn programme() -> RuleSet {
    let kinds = [
        "purchase",
        "store_visit",
        "review_posted",
        "online_order",
        "app_opened",
    ];
    let challenges: Vec<_> = (0..20)
        .map(|i| {
            let filter = json!({"kinds": [kinds[i % 5]]});
            let goal = match i % 4 {
                0 => json!({"type": "count", "target": 10, "filter": filter}),
                1 => json!({"type": "distinct", "of": "store", "target": 5, "filter": filter}),
                2 => {
                    json!({"type": "sum", "of": "amount_cents", "target": 50_000, "filter": filter})
                }
                _ => json!({"type": "streak", "period": "week", "target": 3, "filter": filter}),
            };
            let window = [
                json!({"type": "calendar_month"}),
                json!({"type": "rolling_days", "days": 30}),
            ][i % 2]
                .clone();
            json!({"id": format!("ch-{i}"), "title": format!("Challenge {i}"), "badge": "b",
                   "window": window, "goal": goal, "reward": {"type": "points", "points": 10},
                   "repeat": {"type": "per_window"}})
        })
        .collect();
    serde_json::from_value(json!({"version": 1, "challenges": challenges})).unwrap()
}

fn event(n: u64, at_ms: i64) -> RuleEvent {
    let kinds = [
        RuleEventKind::Purchase,
        RuleEventKind::StoreVisit,
        RuleEventKind::ReviewPosted,
        RuleEventKind::OnlineOrder,
        RuleEventKind::AppOpened,
    ];
    RuleEvent {
        event_id: format!("ev-{n:012}"),
        kind: kinds[(n % 5) as usize],
        at_ms,
        store_id: Some(format!("st-paris-0{}", n % 9 + 1)),
        channel: None,
        amount_cents: 1000 + n % 3000,
        lines: vec![RuleLine {
            sku: format!("sku-{}", n % 40),
            category: Some("tea".into()),
            collection: None,
            quantity: 1,
            amount_cents: 1000,
        }],
    }
}

struct Load {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
    members: Vec<String>,
    next: AtomicU64,
}

impl Load {
    /// `BATCH` events in requests of `per_request`, `concurrency` requests at a time, each to the
    /// next member.
    fn run(self: &Arc<Self>, concurrency: u64, per_request: u64) {
        let first = self.next.fetch_add(BATCH, Ordering::Relaxed);
        let now = jiff::Timestamp::now().as_millisecond();
        self.rt.block_on(async {
            let mut lanes = tokio::task::JoinSet::new();
            let requests = BATCH / per_request;
            for lane in 0..concurrency {
                let load = self.clone();
                lanes.spawn(async move {
                    let mut r = lane;
                    while r < requests {
                        // Requests spread over the members: histories grow evenly.
                        let member = &load.members[(first / per_request + r) as usize % MEMBERS];
                        let events: Vec<RuleEvent> = (0..per_request)
                            .map(|k| event(first + r * per_request + k, now))
                            .collect();
                        let resp = load
                            .http
                            .post(format!(
                                "{}/admin/v1/members/{member}/rule-events",
                                load.url
                            ))
                            .bearer_auth("tessera-admin")
                            .json(&json!({ "events": events }))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
                        r += concurrency;
                    }
                });
            }
            while let Some(done) = lanes.join_next().await {
                done.unwrap();
            }
        });
    }
}

fn ingestion(c: &mut Criterion) {
    let storage = SqliteStorage::temporary().unwrap();
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, url, http) = common::serve(&storage, &setup);
    setup
        .block_on(storage.put_challenge_rules(programme()))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let members: Vec<String> = rt
        .block_on(common::enrol(&http, &url, MEMBERS))
        .into_iter()
        .map(|e| e.member_id)
        .collect();
    // 200 events over the last 60 days per member, in one batch each.
    let now = jiff::Timestamp::now().as_millisecond();
    let mut n = 0;
    for m in &members {
        let history: Vec<RuleEvent> = (0..200)
            .map(|k| {
                n += 1;
                event(n, now - (200 - k) * 7 * HOUR)
            })
            .collect();
        setup
            .block_on(storage.ingest_rule_events(m.clone(), history, now))
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let load = Arc::new(Load {
        rt,
        http,
        url,
        members,
        next: AtomicU64::new(1_000_000),
    });

    let mut group = c.benchmark_group("server_rule_events");
    group.throughput(Throughput::Elements(BATCH));
    group.measurement_time(Duration::from_secs(10));
    group.sample_size(20);
    for concurrency in [1, 8] {
        group.bench_function(format!("one_per_request/{concurrency}_in_flight"), |b| {
            b.iter(|| load.run(concurrency, 1))
        });
    }
    group.bench_function("64_per_request/4_in_flight", |b| b.iter(|| load.run(4, 64)));
    group.finish();
    server.stop();
}

criterion_group!(benches, ingestion);
criterion_main!(benches);
