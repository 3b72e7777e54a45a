//! Figures for the streamed catalog import (issue #13): the server's peak resident memory while
//! a 100,000-shop / 200,000-offer catalog (`TESSERA_BENCH_STORES`, `TESSERA_BENCH_OFFERS`) is
//! posted to `POST /admin/v1/catalog`, next to the peer measured in the same run: the same
//! document read whole as the route did before (a JSON value, then a `Catalog`). Target: the
//! server's peak ≤ 64 MB. Prints the figures and fails above the target. Also times the import
//! (one sample: it replaces the catalog; repeated with criterion it would measure updates).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use tessera_e2e::{ADMIN_TOKEN, big_catalog, env_count};

const TARGET_KIB: u64 = 64 * 1024;

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read.
    let stores = env_count("TESSERA_BENCH_STORES", 100_000);
    let offers = env_count("TESSERA_BENCH_OFFERS", 200_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.json");
    {
        let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        serde_json::to_writer(out, &big_catalog(stores, offers)).unwrap();
    }
    let bytes = std::fs::metadata(&file).unwrap().len();
    println!(
        "catalog_import: {stores} stores, {offers} offers, {:.1} MB of JSON",
        bytes as f64 / 1e6
    );

    // The peer: the document read whole.
    let whole = Command::new(env!("CARGO_BIN_EXE_import-rss"))
        .args(["whole"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let whole = String::from_utf8(whole.stdout).unwrap();
    println!("catalog_import/read_whole (peer): {}", whole.trim());

    // The server, in a process of its own.
    let mut child = Command::new(env!("CARGO_BIN_EXE_import-rss"))
        .args(["serve"])
        .arg(dir.path().join("server.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("url=").unwrap().to_owned();
    let pid = child.id();
    let idle = status_kib(pid, "VmHWM:");
    let started = Instant::now();
    let resp = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(1800))
        .build()
        .unwrap()
        .post(format!("{url}/admin/v1/catalog"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(std::fs::File::open(&file).unwrap())
        .send()
        .unwrap();
    let elapsed = started.elapsed();
    let status = resp.status();
    let body = resp.text().unwrap();
    assert!(status.is_success(), "{status}: {body}");
    let peak = status_kib(pid, "VmHWM:");
    let after = status_kib(pid, "VmRSS:");
    let _ = child.stdin.take().unwrap().write_all(b"");
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "catalog_import/streamed: server idle_peak_kib={idle} peak_kib={peak} rss_after_kib={after} \
         import_s={:.2} ({:.0} entities/s) answer={body}",
        elapsed.as_secs_f64(),
        (stores + offers) as f64 / elapsed.as_secs_f64()
    );
    assert!(
        peak <= TARGET_KIB,
        "the server's peak {peak} KiB is above the target of {TARGET_KIB} KiB"
    );
}
