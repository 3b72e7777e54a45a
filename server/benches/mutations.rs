//! Server mutations per second on embedded SQLite (issue #3): `POST /v1/mutations` over loopback
//! HTTP against a server with 2 worker threads, each request with a fresh `Idempotency-Key`
//! (applied: one transaction writes the event and the stored answer) or a repeated one
//! (`replayed`: the stored answer is sent back).
//!
//! The load generator runs in this process on its own single-thread runtime, so on a 2-core
//! machine it competes with the server for the CPU: the figures are a floor.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tessera_domain::api::{API_VERSION, API_VERSION_HEADER};
use tessera_server::storage::sqlite::SqliteStorage;

/// Requests per measured iteration.
const BATCH: u64 = 256;

struct Load {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
    tokens: Vec<String>,
    next: AtomicU64,
}

impl Load {
    fn body(id: u64) -> String {
        format!(
            r#"{{"type":"record_event","event":{{"event_id":"ev-{id:012}","kind":"store_visit","occurred_at":"2026-01-02T10:00:00Z","store_id":"st-paris-01","attributes":{{"basket":"42.50"}}}}}}"#
        )
    }

    /// `BATCH` mutations, `concurrency` at a time, one member per lane; keys are fresh unless
    /// `replay`, which sends the same `BATCH` keys again.
    fn run(self: &Arc<Self>, concurrency: u64, replay: bool) {
        let first = if replay {
            0
        } else {
            self.next.fetch_add(BATCH, Ordering::Relaxed) + BATCH
        };
        self.rt.block_on(async {
            let mut lanes = tokio::task::JoinSet::new();
            for lane in 0..concurrency {
                let load = self.clone();
                lanes.spawn(async move {
                    let token = &load.tokens[lane as usize % load.tokens.len()];
                    let mut id = first + lane;
                    while id < first + BATCH {
                        let resp = load
                            .http
                            .post(format!("{}/v1/mutations", load.url))
                            .bearer_auth(token)
                            .header(API_VERSION_HEADER, API_VERSION)
                            .header("idempotency-key", format!("bench-key-{id:012}"))
                            .header("content-type", "application/json")
                            .body(Self::body(id))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
                        id += concurrency;
                    }
                });
            }
            while let Some(done) = lanes.join_next().await {
                done.unwrap();
            }
        });
    }
}

fn mutations(c: &mut Criterion) {
    let storage = SqliteStorage::temporary().unwrap();
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, url, http) = common::serve(&storage, &setup);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // One member per lane: the in-flight guard and the key store are per member.
    let tokens = rt
        .block_on(common::enrol(&http, &url, 32))
        .into_iter()
        .map(|e| e.tokens.access_token)
        .collect();
    let load = Arc::new(Load {
        rt,
        http,
        url,
        tokens,
        next: AtomicU64::new(1),
    });

    let mut group = c.benchmark_group("server_mutations");
    group.throughput(Throughput::Elements(BATCH));
    group.measurement_time(Duration::from_secs(10));
    for concurrency in [1, 8, 32] {
        group.bench_function(format!("applied/{concurrency}_in_flight"), |b| {
            b.iter(|| load.run(concurrency, false))
        });
    }
    load.run(32, true);
    group.bench_function("replayed/32_in_flight", |b| b.iter(|| load.run(32, true)));
    group.finish();
    server.stop();
}

criterion_group!(benches, mutations);
criterion_main!(benches);
