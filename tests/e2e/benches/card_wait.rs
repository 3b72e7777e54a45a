//! Does the card wait? (issue #15.) `card()` polled in one thread while the app does its
//! background work in another, against the real server on loopback with a 100k-store /
//! 200k-offer catalog (`TESSERA_BENCH_STORES`, `TESSERA_BENCH_OFFERS` to change). Prints the
//! card's latency (p50, p99, max, samples) in each phase:
//! - `idle`: nothing else runs;
//! - `first_sync`: the first sync downloads and applies the whole catalog;
//! - `offers_near_after_sync`: right after that sync, `offers_near` is called once (the first
//!   use of the offer index after the catalog changed);
//! - `offers_screen`: `offers()` (the offers screen) runs, again and again for a second;
//! - `wallet_points`: `wallet()` and `points()` are polled too (they share the card's lane).
//!
//! A load generator, not a criterion bench: what matters is the tail and the maximum, which
//! criterion's means hide. Run it before and after a change on the same machine.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::geo::Position;
use tessera_e2e::{Server, big_catalog, device, env_count};
use tessera_server::ServerConfig;

const PHASES: [&str; 5] = [
    "idle",
    "first_sync",
    "offers_near_after_sync",
    "offers_screen",
    "wallet_points",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is not supported (one scenario).
    let stores = env_count("TESSERA_BENCH_STORES", 100_000);
    let offers = env_count("TESSERA_BENCH_OFFERS", 200_000);
    let config = ServerConfig {
        rate_limits: tessera_server::guard::RateLimits::off(),
        ..ServerConfig::default()
    };
    let server = Server::start_with(config, Some(big_catalog(stores, offers)));
    let dir = tempfile::tempdir().unwrap();
    let phone = Arc::new(tessera_e2e::phone(dir.path().join("m.db")));
    phone.enrol(&server.url(), "Bench", device()).unwrap();

    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Vec<Duration>>>> =
        Arc::new(Mutex::new(vec![Vec::new(); PHASES.len()]));
    let poller = {
        let (phone, phase, stop, samples) =
            (phone.clone(), phase.clone(), stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed) as usize;
                let t = Instant::now();
                phone.card().unwrap();
                if p == 4 {
                    phone.wallet().unwrap();
                    phone.points().unwrap();
                }
                let took = t.elapsed();
                samples.lock().unwrap()[p].push(took);
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut run = |p: u8, work: &mut dyn FnMut()| {
        phase.store(p, Ordering::Relaxed);
        let t = Instant::now();
        work();
        timings.push((PHASES[p as usize], t.elapsed()));
    };
    run(0, &mut || std::thread::sleep(Duration::from_secs(2)));
    run(1, &mut || {
        let report = phone.sync().unwrap();
        assert!(report.catalog_changes > 0);
    });
    let paris = Position {
        latitude: 48.8566,
        longitude: 2.3522,
    };
    run(2, &mut || {
        let near = phone.offers_near(paris, 2_000.0, 20).unwrap();
        assert!(!near.is_empty());
        // The rest of the phase: what follows the first call, as a member keeps scrolling.
        std::thread::sleep(Duration::from_secs(1));
    });
    run(3, &mut || {
        // The offers screen loaded again and again for a second (one call can be shorter than
        // the poller's period).
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            phone.offers(50).unwrap();
        }
    });
    run(4, &mut || std::thread::sleep(Duration::from_secs(2)));
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();

    println!("card_wait: {stores} stores, {offers} offers");
    let samples = samples.lock().unwrap();
    for (p, name) in PHASES.iter().enumerate() {
        let mut s = samples[p].clone();
        s.sort();
        let work = timings.iter().find(|t| t.0 == *name).map(|t| t.1);
        println!(
            "card_wait/{name:<24} p50 {:>10}  p99 {:>10}  max {:>10}  samples {:>6}  (phase {})",
            ms(percentile(&s, 0.5)),
            ms(percentile(&s, 0.99)),
            ms(s.last().copied().unwrap_or_default()),
            s.len(),
            work.map(ms).unwrap_or_default(),
        );
    }
}
