//! Figures for the sync engine (issue #3), against the real server on loopback:
//! - `catalog_apply`: a 100k-store / 200k-offer catalog (`TESSERA_BENCH_STORES`,
//!   `TESSERA_BENCH_OFFERS` to change), in rows per second:
//!   - `full_sync`: enrol-free part of a first sync from the server (download, gunzip, parse,
//!     check, apply page by page), the member's figure;
//!   - `apply_pages`: the same pages, already downloaded, checked and applied as sync does;
//!   - `plain_insert`: the ceiling, the same rows (JSON made beforehand) inserted with prepared
//!     statements in one transaction into the same tables, no checks.
//!
//!   Before measuring it prints the peak resident memory of a full sync run in a process of its
//!   own (`sync-rss`), and fails if it is above 30 MB.
//! - `no_change_sync`: a sync with nothing to send or fetch, through a counting proxy; prints the
//!   bytes on the wire per sync.

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tessera_core::api::{
    API_VERSION, API_VERSION_HEADER, CatalogChange, CatalogPage, EnrolRequest, EnrolResponse,
};
use tessera_e2e::proxy::Proxy;
use tessera_e2e::{Server, big_catalog, device, env_count};
use tessera_server::ServerConfig;

const PEAK_LIMIT_KIB: u64 = 30 * 1024;

/// Every page of the feed, as a phone with the default page size receives them.
fn download_pages(url: &str) -> Vec<CatalogPage> {
    let http = reqwest::blocking::Client::new();
    let enrolled: EnrolResponse = http
        .post(format!("{url}/v1/enrol"))
        .header(API_VERSION_HEADER, API_VERSION)
        .json(&EnrolRequest {
            holder_name: "Bench".into(),
            device: device(),
        })
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap();
    let page_size = tessera_core::SyncConfig::default().page_size;
    let mut pages: Vec<CatalogPage> = Vec::new();
    loop {
        let mut req = http
            .get(format!("{url}/v1/catalog"))
            .bearer_auth(&enrolled.tokens.access_token)
            .query(&[("limit", page_size.to_string())]);
        if let Some(last) = pages.last() {
            req = req.query(&[("cursor", &last.cursor)]);
        }
        let page: CatalogPage = req
            .send()
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .unwrap();
        let more = page.has_more;
        pages.push(page);
        if !more {
            return pages;
        }
    }
}

fn peak_rss_of_a_full_sync(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sync-rss"))
        .arg(url)
        .arg(dir.path().join("rss.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    println!("catalog_apply/peak_memory: {}", line.trim());
    let peak: u64 = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("peak_kib="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        peak <= PEAK_LIMIT_KIB,
        "a full sync peaked at {peak} KiB, above {PEAK_LIMIT_KIB} KiB"
    );
}

fn catalog_apply(c: &mut Criterion) {
    let stores = env_count("TESSERA_BENCH_STORES", 100_000);
    let offers = env_count("TESSERA_BENCH_OFFERS", 200_000);
    let config = ServerConfig {
        rate_limits: tessera_server::guard::RateLimits::off(),
        ..ServerConfig::default()
    };
    let server = Server::start_with(config, Some(big_catalog(stores, offers)));
    let url = server.url();
    peak_rss_of_a_full_sync(&url);
    let pages = download_pages(&url);
    let rows: usize = pages.iter().map(|p| p.changes.len()).sum();
    println!(
        "catalog_apply: {rows} rows in {} pages ({stores} stores, {offers} offers)",
        pages.len()
    );

    let mut group = c.benchmark_group("catalog_apply");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(rows as u64));

    group.bench_function("full_sync", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let t = tessera_e2e::phone(dir.path().join("m.db"));
                t.enrol(&url, "Bench", device()).unwrap();
                (dir, t)
            },
            |(dir, t)| {
                let report = t.sync().unwrap();
                assert_eq!(report.catalog_changes, rows as u64);
                (dir, t)
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("apply_pages", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let t = tessera_e2e::phone(dir.path().join("m.db"));
                (dir, t)
            },
            |(dir, t)| {
                for page in &pages {
                    black_box(t.import_catalog_page(page).unwrap());
                }
                (dir, t)
            },
            BatchSize::PerIteration,
        )
    });

    // The ceiling: the same rows, JSON made beforehand, one transaction, no checks.
    let stores_rows: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| match c {
            CatalogChange::Store { store: s } => Some((
                s.id.clone(),
                s.name.clone(),
                s.city.clone(),
                s.latitude,
                s.longitude,
                s.radius_m,
                serde_json::to_string(s).unwrap(),
            )),
            _ => None,
        })
        .collect();
    let offer_rows: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| match c {
            CatalogChange::Offer { offer: o } => Some((
                o.id.clone(),
                o.title.clone(),
                o.valid_from.clone(),
                o.valid_to.clone(),
                serde_json::to_string(o).unwrap(),
            )),
            _ => None,
        })
        .collect();
    group.bench_function("plain_insert", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("m.db");
                tessera_e2e::phone(&path).close();
                let conn = rusqlite::Connection::open(&path).unwrap();
                conn.pragma_update(None, "journal_mode", "WAL").unwrap();
                conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
                (dir, conn)
            },
            |(dir, mut conn)| {
                let tx = conn.transaction().unwrap();
                {
                    let mut store = tx
                        .prepare(
                            "INSERT INTO store (id, name, city, latitude, longitude, radius_m, data)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )
                        .unwrap();
                    for r in &stores_rows {
                        store
                            .execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5, r.6])
                            .unwrap();
                    }
                    let mut offer = tx
                        .prepare(
                            "INSERT INTO offer (id, title, valid_from, valid_to, data)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )
                        .unwrap();
                    for r in &offer_rows {
                        offer
                            .execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4])
                            .unwrap();
                    }
                }
                tx.commit().unwrap();
                (dir, conn)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(server);
}

fn no_change_sync(c: &mut Criterion) {
    let server = Server::start();
    let proxy = Proxy::start(server.running.addr, 1, 0.0);
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&proxy.url(), "Bench", device()).unwrap();
    t.sync().unwrap();

    let (up, down) = (&proxy.stats.bytes_up, &proxy.stats.bytes_down);
    let (up0, down0) = (up.load(Ordering::SeqCst), down.load(Ordering::SeqCst));
    let n = 100;
    for _ in 0..n {
        let report = t.sync().unwrap();
        assert_eq!((report.requests, report.catalog_changes), (1, 0));
    }
    println!(
        "no_change_sync: 1 request per sync, {} bytes up and {} bytes down on the wire",
        (up.load(Ordering::SeqCst) - up0) / n,
        (down.load(Ordering::SeqCst) - down0) / n
    );

    c.bench_function("no_change_sync", |b| {
        b.iter(|| black_box(t.sync().unwrap()))
    });
}

criterion_group!(benches, no_change_sync, catalog_apply);
criterion_main!(benches);
