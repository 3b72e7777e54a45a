//! Measures a server's memory around a whole-catalog import, in a process of its own.
//!
//! - `import-rss serve DB_PATH`: a real server (rate limits off) on a free loopback port over the
//!   SQLite file at `DB_PATH`; prints `url=…` and serves until standard input closes. The bench
//!   reads this process's `VmHWM` from `/proc` before and after posting a catalog to it.
//! - `import-rss whole CATALOG_JSON`: the peer, what the admin route did before streaming: the
//!   whole body in memory, parsed into a JSON value, then into a `Catalog`, then validated; prints
//!   `peak_kib=…`.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use tessera_e2e::own_status_kib as status_kib;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [_, "serve", db] => {
            let storage = tessera_server::storage::sqlite::SqliteStorage::open(db).unwrap();
            let config = tessera_server::ServerConfig {
                admin_credentials: vec![
                    tessera_server::guard::AdminCredential::from_token(
                        "bench",
                        tessera_e2e::ADMIN_TOKEN,
                    )
                    .unwrap(),
                ],
                rate_limits: tessera_server::guard::RateLimits::off(),
                ..tessera_server::ServerConfig::default()
            };
            let state = tessera_server::AppState::new(Arc::new(storage), config);
            let server =
                tessera_server::RunningServer::start("127.0.0.1:0".parse().unwrap(), state, 2)
                    .unwrap();
            println!("url={}", server.url());
            // Serve until the bench closes our standard input.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            ExitCode::SUCCESS
        }
        [_, "whole", file] => {
            let bytes = std::fs::read(file).unwrap();
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let catalog: tessera_core::catalog::Catalog = serde_json::from_value(value).unwrap();
            catalog.validate().unwrap();
            println!(
                "peak_kib={} stores={} offers={}",
                status_kib("VmHWM:").unwrap_or(0),
                catalog.stores.len(),
                catalog.offers.len()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: import-rss serve DB_PATH | import-rss whole CATALOG_JSON");
            ExitCode::from(2)
        }
    }
}
