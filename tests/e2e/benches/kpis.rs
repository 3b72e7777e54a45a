//! The console's KPI panels at scale (issue #19: ≤ 200 ms server time per panel with 1,000,000
//! members and 10,000,000 ledger rows, on SQLite and PostgreSQL): a load generator. The real
//! server (in this process, release build) on the run's backend (`TESSERA_TEST_BACKEND=postgres`
//! for PostgreSQL); the members and a year of ledger entries are written straight into its
//! database, and the KPI counters derived from them as the server's changes add to them (one
//! `GROUP BY` over the ledger: what the conformance suite checks the incremental counters equal),
//! with receipts and revenue for 300 shops and a coupon funnel for 100 offers every day, and the
//! levels (members, consent of 20 purpose and channel pairs) changing every day.
//!
//! Measured: `GET /admin/v1/kpis` over loopback for three panels (every shop for 30 days and
//! for a year, one shop for a year), 30 times each; and the peer, the same points totals read
//! from the ledger itself (what a report would cost without the counters).
//!
//! `cargo bench -p tessera-e2e --bench kpis` (`KPI_BENCH_MEMBERS`, `KPI_BENCH_LEDGER`).

use std::time::Instant;

use tessera_domain::api::day_of;
use tessera_e2e::bulk::{load, padded, percentile, series};
use tessera_e2e::{Backend, Server, env_count};
use tessera_server::ServerConfig;

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The generator's SQL, in the backend's dialect: `series(n)` rows numbered `i` from 0.
fn load_sql(postgres: bool, members: usize, ledger: usize, start_ms: i64) -> Vec<String> {
    let series = |n: usize| series(postgres, n);
    let text = |prefix: &str, width: usize| padded(postgres, prefix, "i", width);
    let member_of = padded(postgres, "m-", &format!("i % {members}"), 7);
    let day = |expr: &str| format!("({expr}) / {DAY_MS}");
    let int = if postgres { "::bigint" } else { "" };
    let mut sql = vec![
        format!(
            "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at) \
             SELECT {}, {}, 'Member', '2026-01-01', '', {start_ms} + (i % 365) * {DAY_MS} FROM {}",
            text("m-", 7),
            text("C", 12),
            series(members)
        ),
        // 70 % earned, 15 % spent, 10 % lapsed, 5 % corrected, over a year.
        format!(
            "INSERT INTO points_entry (member_id, kind, points, reason, created_at) \
             SELECT {member_of}, \
               CASE WHEN i % 20 < 14 THEN 'earn' WHEN i % 20 < 17 THEN 'burn' \
                    WHEN i % 20 < 19 THEN 'expire' ELSE 'adjust' END, \
               CASE WHEN i % 20 < 14 THEN 40 WHEN i % 20 < 19 THEN -25 ELSE 10 END, \
               'bench', {start_ms} + (i % 365) * {DAY_MS} + (i % 1000) * 60000 FROM {}",
            series(ledger)
        ),
        // The counters the changes would have added to: points by kind, enrolments.
        format!(
            "INSERT INTO kpi (shop, day, metric, value) \
             SELECT '*', {}, 'points_' || kind, sum(points){int} FROM points_entry \
             GROUP BY {}, kind",
            day("created_at"),
            day("created_at")
        ),
        format!(
            "INSERT INTO kpi (shop, day, metric, value) \
             SELECT '*', {}, 'enrolments', count(*){int} FROM member GROUP BY {}",
            day("created_at"),
            day("created_at")
        ),
        // The levels: members, and grants of 20 purpose and channel pairs changing every day.
        format!(
            "INSERT INTO kpi (shop, day, metric, value) \
             SELECT '*', {}, 'members', count(*){int} FROM member GROUP BY {}",
            day("created_at"),
            day("created_at")
        ),
    ];
    for (purpose, channel) in pairs() {
        sql.push(format!(
            "INSERT INTO kpi (shop, day, metric, value) \
             SELECT '*', {} + i, 'consent:{purpose}:{channel}', \
               CASE WHEN i % 3 = 0 THEN -40 ELSE 100 END FROM {}",
            day_of(start_ms),
            series(365)
        ));
    }
    // Receipts and revenue of 300 shops, and 100 offers' funnel, every day of the year.
    let first = day_of(start_ms);
    for (metric, per) in [
        ("receipts", 40),
        ("revenue_cents", 180_000),
        ("member_receipts", 25),
        ("member_revenue_cents", 120_000),
    ] {
        sql.push(format!(
            "INSERT INTO kpi (shop, day, metric, value) \
             SELECT {}, {first} + i / 300, '{metric}', {per} + i % 7 FROM {}",
            padded(postgres, "st-", "i % 300", 3),
            series(300 * 365)
        ));
        sql.push(format!(
            "INSERT INTO kpi (shop, day, metric, value) \
             SELECT '*', {first} + i, '{metric}', {} FROM {}",
            per * 300,
            series(365)
        ));
    }
    for (metric, per) in [
        ("coupons_issued:", 120),
        ("coupons_clipped:", 90),
        ("coupons_redeemed:", 30),
    ] {
        sql.push(format!(
            "INSERT INTO kpi (shop, day, metric, value) \
             SELECT '*', {first} + i / 100, '{metric}' || {}, {per} FROM {}",
            padded(postgres, "of-", "i % 100", 3),
            series(100 * 365)
        ));
    }
    sql.push("ANALYZE".into());
    sql
}

/// Every purpose and channel, as the consent levels name them.
fn pairs() -> Vec<(&'static str, &'static str)> {
    use tessera_domain::consent::{Channel, Purpose};
    Purpose::ALL
        .iter()
        .flat_map(|p| Channel::ALL.iter().map(move |c| (p.as_str(), c.as_str())))
        .collect()
}

fn main() {
    let members = env_count("KPI_BENCH_MEMBERS", 1_000_000);
    let ledger = env_count("KPI_BENCH_LEDGER", 10_000_000);
    let server = Server::start_with(ServerConfig::default(), Some(tessera_e2e::seed()));
    let backend = if Backend::postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let today = day_of(now_ms());
    let start_ms = (today - 364) * DAY_MS;
    let started = Instant::now();
    load(
        &server,
        &load_sql(Backend::postgres(), members, ledger, start_ms),
    );
    let counted = server.integers("SELECT count(*) FROM points_entry")[0];
    let kpi_rows = server.integers("SELECT count(*) FROM kpi")[0];
    println!(
        "kpis {backend}: {members} members, {counted} ledger rows, {kpi_rows} counters loaded in \
         {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let client = reqwest::blocking::Client::new();
    let day = |d: i64| tessera_domain::api::day_text(d);
    let panels = [
        (
            "every shop, 30 days",
            format!("from={}&to={}", day(today - 29), day(today)),
        ),
        (
            "every shop, a year",
            format!("from={}&to={}", day(today - 364), day(today)),
        ),
        (
            "one shop, a year",
            format!("from={}&to={}&shop=st-042", day(today - 364), day(today)),
        ),
    ];
    let mut liabilities = Vec::new();
    for (name, query) in &panels {
        let mut times = Vec::new();
        let mut report = serde_json::Value::Null;
        for _ in 0..30 {
            let t = Instant::now();
            let r = client
                .get(format!("{}/admin/v1/kpis?{query}", server.url()))
                .bearer_auth(tessera_e2e::ADMIN_TOKEN)
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            report = r.json().unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        liabilities.push(report["points_liability"].as_i64().unwrap());
        assert_eq!(report["members"], members, "the members' level");
        assert_eq!(report["consent_opt_in"].as_array().map(Vec::len), Some(20));
        assert!(report["consent_opt_in"][0]["rate"].as_f64().is_some());
        println!(
            "kpis {backend}: {name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (liability {}, \
             receipts {}, {} offers)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
            report["points_liability"],
            report["totals"]["receipts"],
            report["coupons"].as_array().map_or(0, Vec::len),
        );
    }
    // The levels' own share of a panel: their statement alone, on the database.
    let names = std::iter::once("'members'".to_owned())
        .chain(pairs().iter().map(|(p, c)| format!("'consent:{p}:{c}'")))
        .collect::<Vec<_>>()
        .join(", ");
    let levels_sql = format!(
        "SELECT count(*) FROM (SELECT metric, sum(value) FROM (\
           SELECT metric, value FROM kpi WHERE shop = '*' AND metric IN ({names}) AND day < {end} \
           UNION ALL SELECT metric, value FROM kpi_delta \
           WHERE shop = '*' AND metric IN ({names}) AND day < {end}) k GROUP BY metric) l",
        end = today + 1
    );
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        assert_eq!(server.integers(&levels_sql)[0], 21);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "kpis {backend}: the levels (members, 20 consent pairs) alone: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
    // The peer: the year's points by kind read from the ledger itself.
    let mut times = Vec::new();
    let mut total = 0;
    for _ in 0..3 {
        let t = Instant::now();
        total = server.integers(&format!(
            "SELECT CAST(coalesce(sum(points), 0) AS BIGINT) FROM points_entry \
             WHERE created_at >= {start_ms}"
        ))[0];
        times.push(t.elapsed());
    }
    times.sort();
    assert!(
        liabilities.iter().all(|l| *l == total),
        "the counters' liability {liabilities:?} is the ledger's sum {total}"
    );
    println!(
        "kpis {backend}: peer, the year's points summed from the ledger ({ledger} rows): p50 \
         {:.0} ms (sum {total})",
        percentile(&times, 0.5).as_secs_f64() * 1e3
    );
}
