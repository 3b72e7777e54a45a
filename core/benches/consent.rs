//! Figures for consent (issue #4): the gate sits on hot paths (every notification, geofence
//! event, offer list and analytics event asks it first). Target: a check ≤ 1 µs.
//! - `gate/permits`: `Tessera::permits(feature)` once the gate is loaded (one atomic load, one AND);
//! - `gate/derive_from_ledger`: rebuilding the gate from a 200-record ledger in memory (what every
//!   consent write and the first check after a sync pay);
//! - `gate/first_check_after_sync`: the first check after the cache is cleared, reading a
//!   200-record ledger from SQLite.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::Tessera;
use tessera_core::consent::{
    Channel, ConsentGate, ConsentRecord, ConsentSource, ConsentText, Decision, Feature, Purpose,
};
use tessera_core::privacy::ConsentChoice;

fn ledger(n: usize) -> Vec<ConsentRecord> {
    (0..n)
        .map(|i| ConsentRecord {
            record_id: format!("c-{i:06}"),
            member_id: "m1".into(),
            purpose: Purpose::ALL[i % 4],
            channel: Channel::ALL[i % 5],
            decision: if i % 3 == 0 {
                Decision::Withdrawn
            } else {
                Decision::Granted
            },
            text_version: "v1".into(),
            text_sha256: "0".repeat(64),
            decided_at: "2026-01-01T00:00:00Z".into(),
            effective_at: format!("2026-01-01T{:02}:{:02}:00Z", (i / 60) % 24, i % 60),
            recorded_at: None,
            source: ConsentSource::AppScreen,
            recorded_by: None,
            app_version: None,
        })
        .collect()
}

fn gate(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    Tessera::open(&path).unwrap().close();
    // A member as enrolment leaves one (no server needed), with a 200-record ledger.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO session (id, server_url, member_id, device_id, access_token, access_expires_at, refresh_token, refresh_expires_at) VALUES (1, 'http://127.0.0.1:9', 'm1', 'd1', 'a', 0, 'r', 0)",
            [],
        )
        .unwrap();
    let t = Tessera::open(&path).unwrap();
    let text = ConsentText {
        version: "v1".into(),
        text: "Offers by push, e-mail and SMS.".into(),
    };
    for round in 0..10 {
        let choices: Vec<ConsentChoice> = Purpose::ALL
            .iter()
            .flat_map(|p| Channel::ALL.iter().map(move |c| (*p, *c)))
            .map(|(purpose, channel)| ConsentChoice {
                purpose,
                channel,
                decision: if round % 2 == 0 {
                    Decision::Granted
                } else {
                    Decision::Withdrawn
                },
            })
            .collect();
        t.record_consent(&choices, &text).unwrap();
    }
    assert_eq!(t.consent_history().unwrap().len(), 200);
    let mut group = c.benchmark_group("gate");
    black_box(t.permits(Feature::PushOffers));
    group.bench_function("permits", |b| {
        b.iter(|| black_box(t.permits(black_box(Feature::GeolocatedNotifications))))
    });
    let records = ledger(200);
    group.bench_function("derive_from_ledger", |b| {
        b.iter(|| black_box(ConsentGate::from_records(black_box(&records))))
    });
    group.bench_function("first_check_after_sync", |b| {
        b.iter(|| {
            t.invalidate_consent_gate();
            black_box(t.permits(Feature::Analytics))
        })
    });
    group.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
