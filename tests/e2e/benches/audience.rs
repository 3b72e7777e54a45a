//! The campaigns page's audience count at scale (issue #19: "an audience builder with a live
//! count"): a load generator. The server's storage on the run's backend
//! (`TESSERA_TEST_BACKEND=postgres` for PostgreSQL), a programme written straight into its
//! database: members (a tenth Gold), 80 % granted offers by push (a twentieth of those withdrew
//! later), 60 % with a device and a push token, 30 % who declared interests (tea or coffee), a
//! seventh with Paris as a favourite, a third with a purchase (a quarter of those in Paris).
//!
//! Measured: `audience_count` (what `GET /console/campaigns/count` and
//! `GET /console/campaigns?count=1` run) for four audiences, 5 times each; and the peer, one
//! SQL statement counting the members whose latest decision is a grant (the floor a set-based
//! count cannot go under).
//!
//! `cargo bench -p tessera-e2e --bench audience` (`AUDIENCE_BENCH_MEMBERS`, default 100,000).

use std::time::Instant;

use tessera_domain::api::CampaignAudience;
use tessera_e2e::bulk::{load, padded, percentile, series};
use tessera_e2e::{Backend, Server, env_count};
use tessera_server::ServerConfig;
use tessera_server::service::Services;

fn load_sql(postgres: bool, members: usize) -> Vec<String> {
    let all = series(postgres, members);
    let id = |prefix: &str| padded(postgres, prefix, "i", 7);
    let (m, d) = (id("m-"), id("d-"));
    let consent = |record: &str, decision: &str, day: &str, ms: i64, rows: &str| {
        format!(
            "INSERT INTO consent_record (record_id, member_id, purpose, channel, decision, \
               text_version, text_sha256, decided_at, effective_at, effective_ms, recorded_at, \
               source, body_hash) \
             SELECT {record}, {m}, 'marketing_offers', 'push', '{decision}', 'v1', 'x', \
               '{day}T00:00:00Z', '{day}T00:00:00Z', {ms}, '{day}T00:00:00Z', 'app', 'h' \
             FROM {all} WHERE {rows}"
        )
    };
    vec![
        format!(
            "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at) \
             SELECT {m}, {}, 'Member', '2026-01-01', \
               CASE WHEN i % 10 = 0 THEN 'Gold' ELSE 'Member' END, 0 FROM {all}",
            padded(postgres, "C", "i", 12)
        ),
        format!(
            "INSERT INTO device (id, member_id, platform, app_version, created_at, access_hash, \
               access_expires, refresh_hash, refresh_expires) \
             SELECT {d}, {m}, 'android', '1.0', 0, {}, 0, {}, 0 FROM {all} WHERE i % 5 < 3",
            id("a-"),
            id("r-")
        ),
        format!(
            "INSERT INTO push_token (device_id, member_id, provider, token, updated_at) \
             SELECT {d}, {m}, 'fcm', {}, 0 FROM {all} WHERE i % 5 < 3",
            id("t-")
        ),
        // Granted by 80 %; withdrawn later by a twentieth of those.
        consent(&id("cg-"), "granted", "2026-01-01", 0, "i % 5 <> 4"),
        consent(&id("cw-"), "withdrawn", "2026-02-01", 1, "i % 20 = 1"),
        format!(
            "INSERT INTO preference (member_id, field, value, seq) \
             SELECT {m}, 'interests', \
               CASE WHEN i % 2 = 0 THEN '[\"tea\"]' ELSE '[\"coffee\"]' END, i \
             FROM {all} WHERE i % 10 < 3"
        ),
        format!(
            "INSERT INTO favourite_store (member_id, store_id) \
             SELECT {m}, 'st-paris-01' FROM {all} WHERE i % 7 = 0"
        ),
        format!(
            "INSERT INTO purchase (id, store_id, till_id, receipt, member_id, total_cents, lines, \
               occurred_at, recorded_at, points) \
             SELECT {}, CASE WHEN i % 4 = 0 THEN 'st-paris-01' ELSE 'st-lyon-01' END, 't', \
               {}, {m}, 1000, '[]', 0, 0, 10 FROM {all} WHERE i % 3 = 0",
            id("p-"),
            id("R")
        ),
        "ANALYZE".into(),
    ]
}

fn main() {
    let members = env_count("AUDIENCE_BENCH_MEMBERS", 100_000);
    let server = Server::start_with(ServerConfig::default(), Some(tessera_e2e::seed()));
    let postgres = Backend::postgres();
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    let started = Instant::now();
    load(&server, &load_sql(postgres, members));
    println!(
        "audience {backend}: {members} members loaded in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let storage = server.backend.storage();
    let list = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let audiences = [
        ("everyone who consented", CampaignAudience::default()),
        (
            "tier Gold",
            CampaignAudience {
                tiers: list(&["Gold"]),
                ..CampaignAudience::default()
            },
        ),
        (
            "shop Paris (favourite or bought there)",
            CampaignAudience {
                shops: list(&["st-paris-01"]),
                ..CampaignAudience::default()
            },
        ),
        (
            "interests tea",
            CampaignAudience {
                categories: list(&["tea"]),
                ..CampaignAudience::default()
            },
        ),
    ];
    for (name, audience) in audiences {
        let mut times = Vec::new();
        let mut reached = (0, 0, 0);
        for _ in 0..5 {
            let t = Instant::now();
            let c = server
                .block_on(storage.audience_count(audience.clone()))
                .unwrap();
            times.push(t.elapsed());
            reached = (c.members, c.devices, c.without_device);
        }
        times.sort();
        println!(
            "audience {backend}: {name}: p50 {:.0} ms, max {:.0} ms ({} members, {} devices, {} \
             without a device)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
            reached.0,
            reached.1,
            reached.2
        );
    }
    // The peer: the consenting members counted by one statement.
    let peer = "SELECT count(*) FROM (SELECT decision, row_number() OVER (PARTITION BY member_id \
                ORDER BY effective_ms DESC, record_id DESC) AS latest FROM consent_record \
                WHERE purpose = 'marketing_offers' AND channel = 'push') c \
                WHERE latest = 1 AND decision = 'granted'";
    let mut times = Vec::new();
    let mut counted = 0;
    for _ in 0..5 {
        let t = Instant::now();
        counted = server.integers(peer)[0];
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "audience {backend}: peer, the consenting members counted by one statement: p50 {:.0} ms \
         ({counted} members)",
        percentile(&times, 0.5).as_secs_f64() * 1e3
    );
}
