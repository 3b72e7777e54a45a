//! Figures for offers where the member is (issue #5), on 100,000 stores and 200,000 offers
//! (`TESSERA_BENCH_STORES`, `TESSERA_BENCH_OFFERS`): stores in clusters around 40 towns across
//! France, each offer at 1 to 4 stores, 5 % by store tag, 1 % everywhere.
//! - `offers_near/index`: `Tessera::offers_near` (2 km, 20 offers) at random points near the towns;
//!   `offers_near/brute_force`: the same answer by scanning every store; `offers_near/rtree_peer`:
//!   the peer, SQLite's R*Tree module answering the geometric part (stores in the box, exact
//!   distances, the offers naming them) with no eligibility (issue #15);
//! - `plan_geofences/ios_20`, `/android_100`: the plan from the same points;
//! - `offers_screen/index`: `Tessera::offers(50)`, the offers screen from the index (issue #15);
//!   `offers_screen/brute_force`: the same answer by parsing every cached offer (how it was
//!   answered before);
//! - `index/build`: indexing the whole cache from SQLite;
//! - `offers_near_retail/index`, `/brute_force`: offers near on a retail chain's catalog (half the
//!   offers in every shop, a tenth by tag, all in store; issue #15).
//!
//! Before measuring it prints the heap the index holds (counted by a global allocator wrapper)
//! and the process's resident memory before and after building it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts the bytes held on the heap, to measure what the index keeps.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::Tessera;
use tessera_core::api::{CatalogChange, CatalogPage};
use tessera_core::catalog::{Offer, OfferChannel, OfferKind, Store};
use tessera_core::geo::Position;
use tessera_core::nearby::{
    OfferIndex, anonymous_plan, offers_near_brute_force, offers_screen_brute_force,
};

/// A small deterministic generator (no dependency needed for a bench fixture).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 53) as f64
    }
}

fn towns(rng: &mut Rng) -> Vec<(f64, f64)> {
    (0..40)
        .map(|_| (43.0 + rng.unit() * 7.0, -1.5 + rng.unit() * 9.0))
        .collect()
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `retail`: a chain's catalog, half the offers valid in every shop and a tenth in the shops of a
/// tag, all in store (issue #15); otherwise 1 % everywhere (online only) and 5 % by tag.
fn catalog(
    stores: usize,
    offers: usize,
    retail: bool,
) -> (Vec<Store>, Vec<Offer>, Vec<(f64, f64)>) {
    let mut rng = Rng(42);
    let centres = towns(&mut rng);
    let stores: Vec<Store> = (0..stores)
        .map(|i| {
            let (lat, lon) = centres[i % centres.len()];
            // Spread over ~20 km around the town.
            let (dlat, dlon) = ((rng.unit() - 0.5) * 0.36, (rng.unit() - 0.5) * 0.5);
            Store {
                id: format!("st-{i:07}"),
                name: format!("Store {i}"),
                address: "1 place de la Mairie".into(),
                postcode: "75001".into(),
                city: format!("Town {}", i % centres.len()),
                country: "FR".into(),
                latitude: lat + dlat,
                longitude: lon + dlon,
                radius_m: 150 + (i % 4) as u32 * 50,
                timezone: "Europe/Paris".into(),
                opening_hours: Vec::new(),
                tags: if i % 20 == 0 {
                    vec!["outlet".into()]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    let offers: Vec<Offer> = (0..offers)
        .map(|i| {
            let (everywhere, tagged) = if retail {
                (0..=49, 50..=59)
            } else {
                (0..=0, 1..=5)
            };
            let (store_ids, store_tags) = match i % 100 {
                k if everywhere.contains(&k) => (vec![], vec![]),
                k if tagged.contains(&k) => (vec![], vec!["outlet".into()]),
                _ => (
                    (0..1 + i % 4)
                        .map(|_| format!("st-{:07}", rng.next() as usize % stores.len()))
                        .collect(),
                    vec![],
                ),
            };
            Offer {
                id: format!("of-{i:07}"),
                title: format!("Offer {i}"),
                description: "10 % off".into(),
                kind: OfferKind::PercentOff { percent: 10 },
                valid_from: "2020-01-01T00:00:00Z".into(),
                valid_to: "2099-01-01T00:00:00Z".into(),
                channel: if i % 10 == 0 && !retail {
                    OfferChannel::Online
                } else {
                    OfferChannel::InStore
                },
                days: vec![],
                hours_from: None,
                hours_to: None,
                store_ids,
                store_tags,
                categories: vec![["tea", "coffee", "pastry"][i % 3].into()],
                tiers: vec![],
                segments: vec![],
                min_basket_cents: None,
                per_member_limit: None,
                requires_clip: false,
                points_cost: None,
            }
        })
        .collect();
    let queries: Vec<(f64, f64)> = (0..256)
        .map(|i| {
            let (lat, lon) = centres[i % centres.len()];
            (
                lat + (rng.unit() - 0.5) * 0.2,
                lon + (rng.unit() - 0.5) * 0.3,
            )
        })
        .collect();
    (stores, offers, queries)
}

/// The peer: the same catalog in an SQLite R*Tree (the module compiled into the bundled SQLite),
/// in memory (the peer's best case): each store's bounding box, its position, and the offers
/// naming it.
fn rtree_peer(stores: &[Store], offers: &[Offer]) -> rusqlite::Connection {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    c.execute_batch(
        "CREATE VIRTUAL TABLE store_rtree USING rtree(id, min_lat, max_lat, min_lon, max_lon);
         CREATE TABLE store_pos (id INTEGER PRIMARY KEY, lat REAL, lon REAL, sid TEXT);
         CREATE TABLE store_offer (store INTEGER, offer TEXT);",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    let mut ids = std::collections::HashMap::new();
    for (i, s) in stores.iter().enumerate() {
        ids.insert(s.id.as_str(), i as i64);
        tx.execute(
            "INSERT INTO store_rtree VALUES (?1, ?2, ?2, ?3, ?3)",
            rusqlite::params![i as i64, s.latitude, s.longitude],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO store_pos VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![i as i64, s.latitude, s.longitude, s.id],
        )
        .unwrap();
    }
    for o in offers {
        for s in &o.store_ids {
            tx.execute(
                "INSERT INTO store_offer VALUES (?1, ?2)",
                rusqlite::params![ids[s.as_str()], o.id],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    c.execute_batch("CREATE INDEX store_offer_store ON store_offer (store)")
        .unwrap();
    c
}

/// Offers naming a store within `radius_m`, each at its nearest store, nearest first: the
/// R*Tree's bounding-box query, then exact distances. Less than `offers_near` answers (no
/// chain-wide or tag offers, no eligibility), so the ratio flatters the peer.
fn rtree_near(c: &rusqlite::Connection, at: Position, radius_m: f64, limit: usize) -> usize {
    let dlat = radius_m / 111_320.0;
    let dlon = radius_m / (111_320.0 * at.latitude.to_radians().cos().max(1e-6));
    let mut stmt = c
        .prepare_cached(
            "SELECT p.lat, p.lon, p.sid, o.offer FROM store_rtree r
             JOIN store_pos p ON p.id = r.id JOIN store_offer o ON o.store = r.id
             WHERE r.max_lat >= ?1 AND r.min_lat <= ?2 AND r.max_lon >= ?3 AND r.min_lon <= ?4",
        )
        .unwrap();
    let mut best: std::collections::HashMap<String, (f64, String)> = Default::default();
    let rows = stmt
        .query_map(
            rusqlite::params![
                at.latitude - dlat,
                at.latitude + dlat,
                at.longitude - dlon,
                at.longitude + dlon
            ],
            |r| {
                Ok((
                    r.get::<_, f64>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .unwrap();
    for row in rows {
        let (latitude, longitude, store, offer) = row.unwrap();
        let d = tessera_core::geo::distance_m(
            at,
            Position {
                latitude,
                longitude,
            },
        );
        if d <= radius_m && best.get(&offer).is_none_or(|b| d < b.0) {
            best.insert(offer, (d, store));
        }
    }
    let mut ranked: Vec<_> = best.into_iter().collect();
    ranked.sort_by(|a, b| a.1.0.total_cmp(&b.1.0).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(limit);
    ranked.len()
}

/// A phone database holding the catalog.
fn imported(stores: Vec<Store>, offers: Vec<Offer>) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = Tessera::open(dir.path().join("bench.db")).unwrap();
    let changes: Vec<CatalogChange> = stores
        .into_iter()
        .map(|store| CatalogChange::Store { store })
        .chain(
            offers
                .into_iter()
                .map(|offer| CatalogChange::Offer { offer }),
        )
        .collect();
    for (i, chunk) in changes.chunks(2000).enumerate() {
        t.import_catalog_page(&CatalogPage {
            format: 1,
            changes: chunk.to_vec(),
            cursor: format!("c1.{i}"),
            has_more: true,
        })
        .unwrap();
    }
    (dir, t)
}

fn offers(c: &mut Criterion) {
    let (n_stores, n_offers) = (
        env_count("TESSERA_BENCH_STORES", 100_000),
        env_count("TESSERA_BENCH_OFFERS", 200_000),
    );
    let (stores, offers, queries) = catalog(n_stores, n_offers, false);
    let peer = rtree_peer(&stores, &offers);
    let (_dir, t) = imported(stores, offers);
    let before = rss_kib();
    let held = HELD.load(Ordering::Relaxed);
    let start = std::time::Instant::now();
    let idx = t.offer_index().unwrap();
    let built = start.elapsed();
    let after = rss_kib();
    println!(
        "index: {} stores, built in {:.0} ms; heap held by the index {:.1} MB; its sections {:.1} MB {}; resident memory {:.1} MB -> {:.1} MB",
        idx.stores(),
        built.as_secs_f64() * 1000.0,
        (HELD.load(Ordering::Relaxed) - held) as f64 / 1e6,
        idx.sections_len() as f64 / 1e6,
        if idx.is_mapped() {
            "in a mapped file"
        } else {
            "in the heap"
        },
        before as f64 / 1024.0,
        after as f64 / 1024.0,
    );
    let now = jiff::Timestamp::now().as_millisecond();
    let at = |i: usize| {
        let (latitude, longitude) = queries[i % queries.len()];
        Position {
            latitude,
            longitude,
        }
    };

    let (mut peer_found, mut found) = (0, 0);
    for q in 0..64 {
        peer_found += rtree_near(&peer, at(q), 2000.0, 20);
        found += t.offers_near(at(q), 2000.0, 20).unwrap().len();
    }
    println!("offers_near over 64 queries: {found} offers found, the R*Tree peer {peer_found}");
    let mut group = c.benchmark_group("offers_near");
    let mut i = 0;
    group.bench_function("index", |b| {
        b.iter(|| {
            i += 1;
            black_box(t.offers_near(at(i), 2000.0, 20).unwrap())
        })
    });
    group.bench_function("rtree_peer", |b| {
        b.iter(|| {
            i += 1;
            black_box(rtree_near(&peer, at(i), 2000.0, 20))
        })
    });
    group.sample_size(10);
    group.bench_function("brute_force", |b| {
        b.iter(|| {
            i += 1;
            black_box(offers_near_brute_force(&idx, at(i), 2000.0, 20, now))
        })
    });
    group.finish();
    println!(
        "resident memory after the offers_near runs: {:.1} MB",
        rss_kib() as f64 / 1024.0
    );
    drop(peer);

    let mut group = c.benchmark_group("plan_geofences");
    for (name, budget) in [("ios_20", 20usize), ("android_100", 100)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                black_box(anonymous_plan(&idx, at(i), budget, now))
            })
        });
    }
    group.finish();

    let db = tessera_core::Db::open(t.path()).unwrap();
    let mut group = c.benchmark_group("offers_screen");
    group.bench_function("index", |b| b.iter(|| black_box(t.offers(50).unwrap())));
    group.sample_size(10);
    let gate = t.consent_gate();
    group.bench_function("brute_force", |b| {
        b.iter(|| {
            black_box(
                db.read(|c| offers_screen_brute_force(c, gate, 50, now))
                    .unwrap(),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("index");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("build", |b| {
        b.iter(|| black_box(db.read(OfferIndex::build).unwrap().stores()))
    });
    group.finish();
    drop((idx, t));

    // A retail chain's catalog: half the offers in every shop, a tenth in the shops of a tag.
    let (stores, offers, _) = catalog(n_stores, n_offers, true);
    let (_dir, t) = imported(stores, offers);
    let idx = t.offer_index().unwrap();
    let mut group = c.benchmark_group("offers_near_retail");
    group.bench_function("index", |b| {
        b.iter(|| {
            i += 1;
            black_box(t.offers_near(at(i), 2000.0, 20).unwrap())
        })
    });
    group.sample_size(10);
    group.bench_function("brute_force", |b| {
        b.iter(|| {
            i += 1;
            black_box(offers_near_brute_force(&idx, at(i), 2000.0, 20, now))
        })
    });
    group.finish();
}

criterion_group!(benches, offers);
criterion_main!(benches);
