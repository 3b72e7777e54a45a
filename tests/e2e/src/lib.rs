//! Helpers shared by the end-to-end scenarios in `tests/`: a real server on loopback with its
//! storage at hand, a fault-injecting TCP proxy, and small admin calls.

pub mod bulk;
pub mod consent;
pub mod hooks;
pub mod memory_store;
pub mod proxy;
pub mod race;
pub mod raw;
pub mod receiver;
pub mod wallet;

use std::net::SocketAddr;
use std::sync::Arc;

use tessera_core::catalog::Catalog;
use tessera_server::storage::Storage;
use tessera_server::storage::postgres::PostgresStorage;
use tessera_server::storage::sqlite::SqliteStorage;
use tessera_server::{AppState, RunningServer, ServerConfig};

pub const ADMIN_TOKEN: &str = "e2e-operator-token";

/// The backend under the scenarios: SQLite, or PostgreSQL when `TESSERA_TEST_BACKEND=postgres`
/// (scripts/test.sh runs the server's tests once on each; the database is
/// `TESSERA_TEST_POSTGRES`, a fresh schema per server).
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite(SqliteStorage),
    Postgres(PostgresStorage),
}

impl Backend {
    /// Whether the scenarios run on PostgreSQL.
    pub fn postgres() -> bool {
        std::env::var("TESSERA_TEST_BACKEND").as_deref() == Ok("postgres")
    }

    /// A fresh, empty backend of the kind the run asks for, made on `rt` (which drives its
    /// PostgreSQL connections: it must keep running, hence a multi-thread runtime).
    pub fn fresh(rt: &tokio::runtime::Runtime) -> Backend {
        if Self::postgres() {
            let url = tessera_server::storage::postgres::test_url()
                .expect("TESSERA_TEST_BACKEND=postgres needs TESSERA_TEST_POSTGRES");
            Backend::Postgres(rt.block_on(PostgresStorage::temporary(&url)).unwrap())
        } else {
            Backend::Sqlite(SqliteStorage::temporary().unwrap())
        }
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Backend::Sqlite(s) => Arc::new(s.clone()),
            Backend::Postgres(s) => Arc::new(s.clone()),
        }
    }
}

/// A real server on a loopback port, with a temporary database (see [`Backend`]).
#[derive(Debug)]
pub struct Server {
    pub running: RunningServer,
    pub storage: Arc<dyn Storage>,
    pub backend: Backend,
    pub metrics: Arc<tessera_server::Metrics>,
    /// A runtime for direct storage calls from test threads.
    rt: tokio::runtime::Runtime,
}

/// A runtime for a test thread's storage calls: one worker that keeps running, so that the
/// PostgreSQL connections it opened stay driven while the test thread waits on something else.
fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

impl Server {
    /// A server with the given config (its operator credential forced to [`ADMIN_TOKEN`]) and
    /// catalog, on a fresh backend of the run's kind.
    pub fn start_with(config: ServerConfig, catalog: Option<Catalog>) -> Server {
        let rt = test_runtime();
        let backend = Backend::fresh(&rt);
        Self::start_inner("127.0.0.1:0".parse().unwrap(), backend, config, catalog, rt)
    }

    /// A server on `addr` over an SQLite database (restart scenarios reopen its file).
    pub fn start_on(
        addr: SocketAddr,
        storage: SqliteStorage,
        config: ServerConfig,
        catalog: Option<Catalog>,
    ) -> Server {
        Self::start_inner(
            addr,
            Backend::Sqlite(storage),
            config,
            catalog,
            test_runtime(),
        )
    }

    fn start_inner(
        addr: SocketAddr,
        backend: Backend,
        config: ServerConfig,
        catalog: Option<Catalog>,
        rt: tokio::runtime::Runtime,
    ) -> Server {
        let storage = backend.storage();
        if let Some(c) = catalog {
            rt.block_on(storage.load_catalog(c)).unwrap();
        }
        let config = ServerConfig {
            admin_credentials: vec![
                tessera_server::guard::AdminCredential::from_token("e2e", ADMIN_TOKEN).unwrap(),
            ],
            ..config
        };
        let state = AppState::new(storage.clone(), config);
        let metrics = state.metrics.clone();
        let running = RunningServer::start(addr, state, 2).unwrap();
        Server {
            running,
            storage,
            backend,
            metrics,
            rt,
        }
    }

    /// The integer columns of the one row `sql` returns, on whichever backend (portable SQL:
    /// counts for audits).
    pub fn integers(&self, sql: &str) -> Vec<i64> {
        match &self.backend {
            Backend::Sqlite(s) => s
                .with_connection(|c| {
                    c.query_row(sql, [], |r| {
                        (0..r.as_ref().column_count())
                            .map(|i| r.get::<_, i64>(i))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .unwrap(),
            Backend::Postgres(s) => self.rt.block_on(s.integers(sql)).unwrap(),
        }
    }

    /// The seed catalog and the default config.
    pub fn start() -> Server {
        Self::start_with(ServerConfig::default(), Some(seed()))
    }

    pub fn url(&self) -> String {
        self.running.url()
    }

    /// Every event id the server holds for `member`, with how often it was applied.
    pub fn event_counts(&self, member: &str) -> Vec<(String, u64)> {
        self.rt
            .block_on(self.storage.event_ids(member.to_owned()))
            .unwrap()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// A stand-in's own runtime (two workers, so that it answers while the test thread waits) and
/// its listener bound to `addr` (`127.0.0.1:0`: any free port).
pub fn stand_in_runtime(addr: &str) -> (tokio::runtime::Runtime, tokio::net::TcpListener) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).unwrap();
    (rt, listener)
}

/// A loopback URL where nothing listens: a till or phone "offline" (connection refused at once).
/// Port 1, outside the ephemeral range every test server binds in: a port freed by this process
/// could be taken at once by another test's server (it happened: a till "offline" reached a
/// live server and was told its token was not valid).
pub fn dead_url() -> String {
    "http://127.0.0.1:1".to_owned()
}

/// Post a campaign and follow it to its end: 202 with its `Location`, then `GET` until its state
/// is `done` (the job queue sends it in batches). Its final report.
pub fn run_campaign(server: &Server, campaign: &serde_json::Value) -> serde_json::Value {
    let http = reqwest::blocking::Client::new();
    let resp = http
        .post(format!("{}/admin/v1/campaigns", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(campaign)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "a campaign is queued");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    loop {
        let report: serde_json::Value = http
            .get(format!("{}{location}", server.url()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if report["state"] == "done" {
            return report;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the campaign did not finish: {report}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Register a till of `store` (`web` for the web checkout); its token.
pub fn till_token(server: &Server, store: &str) -> String {
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{}/admin/v1/tills", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"store_id": store}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["token"].as_str().unwrap().to_owned()
}

pub fn seed() -> Catalog {
    tessera_server::seed::catalog().unwrap()
}

/// A small catalog: the seed programme, `stores` stores and `offers` offers.
pub fn small_catalog(stores: usize, offers: usize) -> Catalog {
    let mut c = seed();
    c.stores.truncate(stores);
    c.offers.truncate(offers);
    for o in &mut c.offers {
        o.store_ids
            .retain(|id| c.stores.iter().any(|s| &s.id == id));
    }
    c
}

pub fn device() -> tessera_core::DeviceInfo {
    tessera_core::DeviceInfo {
        platform: tessera_core::api::Platform::Cli,
        app_version: "e2e".into(),
    }
}

/// A field of this process's `/proc/self/status` in KiB (`VmHWM:`, the peak resident memory).
pub fn own_status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// For tests that read or damage the phone's database file directly.
pub use rusqlite;

/// A chain-sized catalog for benches: `stores` stores and `offers` offers, made by repeating the
/// seed's real stores and offers under new ids (`st-g0000001`…), stores spread a few hundred
/// metres around the originals, each offer valid in a handful of stores.
pub fn big_catalog(stores: usize, offers: usize) -> Catalog {
    let seed = seed();
    let mut c = seed.clone();
    c.stores = (0..stores)
        .map(|i| {
            let mut s = seed.stores[i % seed.stores.len()].clone();
            s.id = format!("st-g{i:07}");
            s.name = format!("{} #{i}", s.name);
            let round = (i / seed.stores.len()) as f64;
            s.latitude += 0.001 * (round % 17.0);
            s.longitude += 0.001 * (round / 17.0).floor();
            s
        })
        .collect();
    c.offers = (0..offers)
        .map(|i| {
            let mut o = seed.offers[i % seed.offers.len()].clone();
            o.id = format!("of-g{i:07}");
            o.store_ids = (0..o.store_ids.len().min(4))
                .map(|k| format!("st-g{:07}", (i * 7 + k) % stores.max(1)))
                .collect();
            o
        })
        .collect();
    c
}

/// A count from the environment (a bench's size), else `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A member's phone: the core on a database at `path`, talking through reqwest.
pub fn phone(path: impl AsRef<std::path::Path>) -> tessera_core::Tessera {
    let t = tessera_core::Tessera::open(path).unwrap();
    t.set_http_client(tessera_core::sync::ReqwestClient::shared());
    t
}

/// A till of `store` registered at `server`, its journal at `journal`, online.
pub fn open_till(
    server: &Server,
    journal: impl AsRef<std::path::Path>,
    store: &str,
) -> tessera_till::Till {
    tessera_till::Till::open(
        journal,
        &server.url(),
        &till_token(server, store),
        store,
        tessera_core::sync::ReqwestClient::shared(),
    )
    .unwrap()
}

/// An operator's request (the admin token) with a JSON body: the status and the JSON answer
/// (`null` when there is none).
pub fn admin(
    method: reqwest::Method,
    server: &Server,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .request(method, format!("{}{path}", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().unwrap_or(serde_json::Value::Null),
    )
}
