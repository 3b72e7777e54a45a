//! Webhook deliveries (issue #19), a load generator: the real server (in this process, release
//! build) delivering to the loopback receiver of the tests (`tessera_e2e::hooks`, which checks
//! every signature), on the run's backend (`TESSERA_TEST_BACKEND=postgres` for PostgreSQL).
//! Two receivers in the same run: one that never fails (the peer) and one that fails 30 % of
//! attempts. The dispatcher runs with its defaults (retries after 5 s).
//!
//! - **Throughput**: a backlog of `WEBHOOK_BENCH_MEMBERS` (default 1,000) members × 10 events
//!   queued on a paused endpoint, then the endpoint resumed: when half, 95 % and all of it had
//!   been accepted (every event once, in order per member), deliveries and attempts per second
//!   until 95 %. Under failures the last few percent wait for the retry schedule, not for the
//!   dispatcher.
//! - **Delay**: events written at `WEBHOOK_BENCH_RATE` per second (default 500) for 10 s from
//!   2,000 members; the delay from the event's commit to the receiver's first 2xx, p50/p99/max,
//!   for the events accepted at their first attempt and for all.
//!
//! `cargo bench -p tessera-e2e --bench webhooks`

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tessera_e2e::hooks::{HookBehaviour, HookReceiver};
use tessera_e2e::{Server, admin, env_count};
use tessera_server::ServerConfig;
use tessera_server::storage::repo::NewEvent;
use tessera_server::webhooks::WebhookConfig;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn put_endpoint(server: &Server, receiver: &HookReceiver, paused: bool) {
    let (status, body) = admin(
        Method::PUT,
        server,
        "/admin/v1/webhooks/bench",
        json!({"url": receiver.url, "paused": paused}),
    );
    assert!(status == 200 || status == 201, "{body}");
    if let Some(secret) = body["secret"].as_str() {
        receiver.set_secret(secret);
    }
}

fn endpoint(server: &Server) -> Value {
    admin(Method::GET, server, "/admin/v1/webhooks/bench", Value::Null).1
}

/// Write `events` (member, n) in one transaction, each a points change.
fn emit(server: &Server, events: Vec<(String, u32)>) {
    let storage = server.storage.clone();
    let at = now_ms();
    server
        .block_on(tessera_server::storage::write(&*storage, move |repo| {
            for (member, n) in &events {
                let data = format!(
                    r#"{{"type":"points.changed","data":{{"kind":"earn","points":{n},"reason":"bench"}}}}"#
                );
                repo.emit_event(&NewEvent {
                    id: &format!("evt_{member}_{n}"),
                    member_id: member,
                    event_type: "points.changed",
                    data: &data,
                    now_ms: at,
                })?;
            }
            Ok(())
        }))
        .unwrap();
}

fn wait_drained(server: &Server, limit: Duration) {
    let start = Instant::now();
    loop {
        let e = endpoint(server);
        if e["pending"] == 0 {
            return;
        }
        assert!(start.elapsed() < limit, "not drained: {e}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn scenario(fail_percent: u64) {
    let receiver = HookReceiver::start(HookBehaviour {
        fail_percent,
        ..HookBehaviour::default()
    });
    // The production defaults: retries after 5 s, growing threefold while the endpoint fails
    // everything (`tessera_server::webhooks::Health`).
    let config = WebhookConfig::default();
    let server = Server::start_with(
        ServerConfig {
            webhooks: config.clone(),
            ..ServerConfig::default()
        },
        None,
    );
    let backend = if tessera_e2e::Backend::postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    // Throughput: a backlog, then the endpoint resumed.
    let members = env_count("WEBHOOK_BENCH_MEMBERS", 1000);
    put_endpoint(&server, &receiver, true);
    for n in 1..=10u32 {
        let page: Vec<(String, u32)> = (0..members).map(|m| (format!("m-{m:06}"), n)).collect();
        emit(&server, page);
    }
    let total = members * 10;
    let start_ms = now_ms();
    let start = Instant::now();
    put_endpoint(&server, &receiver, false);
    wait_drained(&server, Duration::from_secs(900));
    let elapsed = start.elapsed();
    let received = receiver.received();
    assert!(received.iter().all(|r| r.signature_ok));
    let mut accepted: Vec<i64> = received
        .iter()
        .filter(|r| r.accepted)
        .map(|r| r.at_ms - start_ms)
        .collect();
    accepted.sort_unstable();
    assert_eq!(accepted.len(), total, "every event accepted once");
    let t95 = percentile(&accepted, 0.95);
    let attempts_by_t95 = received
        .iter()
        .filter(|r| r.at_ms - start_ms <= t95)
        .count();
    println!(
        "webhooks {backend}, receiver failing {fail_percent:>2} %: backlog of {total} events: half \
         accepted after {} ms, 95 % after {t95} ms ({:.0} deliveries/s, {:.0} attempts/s), all \
         after {:.1} s; {} attempts in all (concurrency {})",
        percentile(&accepted, 0.5),
        0.95 * total as f64 / (t95.max(1) as f64 / 1000.0),
        attempts_by_t95 as f64 / (t95.max(1) as f64 / 1000.0),
        elapsed.as_secs_f64(),
        received.len(),
        config.concurrency
    );

    // Delay: a steady stream.
    let rate = env_count("WEBHOOK_BENCH_RATE", 500);
    let seconds = 10;
    let before = receiver.received().len();
    let tick = Duration::from_millis(20);
    let per_tick = (rate as f64 * tick.as_secs_f64()).round() as usize;
    let stream_start = Instant::now();
    let mut n = 0usize;
    while stream_start.elapsed() < Duration::from_secs(seconds) {
        let events: Vec<(String, u32)> = (0..per_tick)
            .map(|i| {
                (
                    format!("s-{:04}", (n + i) % 2000),
                    100 + ((n + i) / 2000) as u32,
                )
            })
            .collect();
        n += per_tick;
        emit(&server, events);
        let next = tick.saturating_mul((n / per_tick.max(1)) as u32);
        if let Some(wait) = next.checked_sub(stream_start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    wait_drained(&server, Duration::from_secs(900));
    let received = receiver.received();
    let stream = &received[before..];
    let mut first_try = Vec::new();
    let mut all = Vec::new();
    for r in stream.iter().filter(|r| r.accepted) {
        let at: jiff::Timestamp = r.event["timestamp"].as_str().unwrap().parse().unwrap();
        let delay = r.at_ms - at.as_millisecond();
        all.push(delay);
        if stream.iter().filter(|x| x.id == r.id).count() == 1 {
            first_try.push(delay);
        }
    }
    first_try.sort_unstable();
    all.sort_unstable();
    assert_eq!(all.len(), n, "every streamed event accepted once");
    println!(
        "webhooks {backend}, receiver failing {fail_percent:>2} %: {n} events at {rate}/s: delay \
         first attempt p50 {} ms p99 {} ms; all p50 {} ms p99 {} ms max {} ms",
        percentile(&first_try, 0.5),
        percentile(&first_try, 0.99),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    scenario(0);
    scenario(30);
}
