//! The server over loopback HTTP: every malformed request gets a 4xx problem document (never a
//! 5xx, never plain text), idempotency keys behave as documented, the catalog feed pages.

use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use tessera_server::storage::Storage;
use tessera_server::storage::postgres::PostgresStorage;
use tessera_server::storage::sqlite::SqliteStorage;
use tessera_server::{AppState, RunningServer, ServerConfig};

const ADMIN: &str = "api-test-operator";

/// The backend under the tests: SQLite, or PostgreSQL when `TESSERA_TEST_BACKEND=postgres`
/// (scripts/test.sh runs these tests on each).
enum Db {
    Sqlite(SqliteStorage),
    Postgres(PostgresStorage),
}

impl Db {
    fn fresh(rt: &tokio::runtime::Runtime) -> Db {
        if std::env::var("TESSERA_TEST_BACKEND").as_deref() == Ok("postgres") {
            let url = tessera_server::storage::postgres::test_url()
                .expect("TESSERA_TEST_BACKEND=postgres needs TESSERA_TEST_POSTGRES");
            Db::Postgres(rt.block_on(PostgresStorage::temporary(&url)).unwrap())
        } else {
            Db::Sqlite(SqliteStorage::temporary().unwrap())
        }
    }

    fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Db::Sqlite(s) => Arc::new(s.clone()),
            Db::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// What a second server process on the same database has: a storage of its own.
    fn second_process(&self, rt: &tokio::runtime::Runtime) -> Arc<dyn Storage> {
        match self {
            Db::Sqlite(s) => Arc::new(SqliteStorage::open(s.path()).unwrap()),
            Db::Postgres(s) => Arc::new(rt.block_on(s.another_process()).unwrap()),
        }
    }
}

struct T {
    server: RunningServer,
    storage: Arc<dyn Storage>,
    db: Db,
    /// Drives the test's own storage calls (and the PostgreSQL connections they open).
    rt: tokio::runtime::Runtime,
    /// The server's state, for what a test does as the server itself (claims, purges).
    state: AppState,
    http: Client,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn start() -> T {
    start_with(ServerConfig::default())
}

fn start_with(config: ServerConfig) -> T {
    let rt = runtime();
    let db = Db::fresh(&rt);
    let storage = db.storage();
    let mut catalog = tessera_server::seed::catalog().unwrap();
    catalog.stores.truncate(30);
    catalog.offers.truncate(10);
    for o in &mut catalog.offers {
        o.store_ids.clear();
    }
    rt.block_on(storage.load_catalog(catalog)).unwrap();
    let state = AppState::new(
        storage.clone(),
        ServerConfig {
            admin_credentials: vec![
                tessera_server::guard::AdminCredential::from_token("tests", ADMIN).unwrap(),
            ],
            ..config
        },
    );
    let server = RunningServer::start("127.0.0.1:0".parse().unwrap(), state.clone(), 2).unwrap();
    T {
        server,
        storage,
        db,
        rt,
        state,
        http: Client::builder().gzip(false).build().unwrap(),
    }
}

impl T {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn enrol(&self) -> (String, String) {
        let r = self
            .http
            .post(self.url("/v1/enrol"))
            .json(&json!({"holder_name": "Ada", "device": {"platform": "android", "app_version": "1.0"}}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        (
            v["tokens"]["access_token"].as_str().unwrap().to_owned(),
            v["member_id"].as_str().unwrap().to_owned(),
        )
    }

    fn mutate(&self, token: &str, key: &str, body: &str) -> Response {
        self.http
            .post(self.url("/v1/mutations"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap()
    }
}

/// Asserts a problem document with `status` and `code`.
fn problem(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "{:?}", r.headers());
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "status {status}"
    );
    assert_eq!(r.headers()["tessera-api-version"], "1");
    let v: Value = r.json().unwrap();
    assert_eq!(v["status"], status);
    assert_eq!(v["code"], code, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with(code));
    v
}

fn event(id: &str) -> String {
    json!({"type": "record_event", "event": {"event_id": id, "kind": "app_opened", "occurred_at": "2026-11-01T10:00:00Z"}}).to_string()
}

#[test]
fn malformed_requests_get_problem_documents() {
    let t = start();
    let (token, _) = t.enrol();
    let h = &t.http;
    problem(h.get(t.url("/nowhere")).send().unwrap(), 404, "not_found");
    problem(
        h.delete(t.url("/v1/enrol")).send().unwrap(),
        405,
        "method_not_allowed",
    );
    problem(
        h.post(t.url("/v1/enrol"))
            .body("{")
            .header("content-type", "application/json")
            .send()
            .unwrap(),
        400,
        "invalid_body",
    );
    problem(
        h.post(t.url("/v1/enrol")).body("{}").send().unwrap(),
        415,
        "unsupported_media_type",
    );
    problem(
        h.post(t.url("/v1/enrol"))
            .json(&json!({"holder_name": 5}))
            .send()
            .unwrap(),
        422,
        "invalid_body",
    );
    problem(
        h.post(t.url("/v1/enrol"))
            .json(&json!({"holder_name": "A", "device": {"platform": "amiga", "app_version": "1"}}))
            .send()
            .unwrap(),
        422,
        "invalid_body",
    );
    // The server answers 413 as soon as it sees the length, before the client has sent the whole
    // body; now and then the client's write then fails on the closed socket instead of reading
    // the answer. That is the transport, not the answer: try again until the answer is read.
    // And the server closes that connection: send it on a connection of its own, so that the
    // pooled one the next requests use is not the closed one.
    let huge = "x".repeat(200 * 1024);
    let unpooled = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let too_large = (0..5)
        .find_map(|_| {
            unpooled
                .post(t.url("/v1/enrol"))
                .json(&json!({"holder_name": huge, "device": {"platform": "ios", "app_version": "1"}}))
                .send()
                .ok()
        })
        .expect("an answer to the oversized body");
    problem(too_large, 413, "payload_too_large");
    problem(h.get(t.url("/v1/me")).send().unwrap(), 401, "unauthorized");
    problem(
        h.get(t.url("/v1/me")).bearer_auth("forged").send().unwrap(),
        401,
        "unauthorized",
    );
    problem(
        h.get(t.url("/v1/catalog?cursor=garbage"))
            .bearer_auth(&token)
            .send()
            .unwrap(),
        400,
        "invalid_cursor",
    );
    problem(
        h.get(t.url("/v1/catalog?limit=-1"))
            .bearer_auth(&token)
            .send()
            .unwrap(),
        400,
        "invalid_query",
    );
    problem(
        h.get(t.url("/v1/catalog?cursor=c1.99999"))
            .bearer_auth(&token)
            .send()
            .unwrap(),
        410,
        "cursor_ahead",
    );
    // Mutations: the key and the body.
    let no_key = h
        .post(t.url("/v1/mutations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(event("e-1"))
        .send()
        .unwrap();
    problem(no_key, 400, "idempotency_key_missing");
    problem(
        t.mutate(&token, "short", &event("e-1")),
        400,
        "idempotency_key_invalid",
    );
    problem(
        t.mutate(&token, "key-00000001", "{\"type\":\"teleport\"}"),
        400,
        "invalid_body",
    );
    problem(
        t.mutate(&token, "key-00000002", &"[".repeat(100_000)),
        413,
        "payload_too_large",
    );
    let future = json!({"type": "record_event", "event": {"event_id": "e-f", "kind": "app_opened", "occurred_at": "2099-01-01T00:00:00Z"}});
    problem(
        t.mutate(&token, "key-00000003", &future.to_string()),
        422,
        "event_in_future",
    );
    let bad_id = json!({"type": "record_event", "event": {"event_id": "bad id!", "kind": "app_opened", "occurred_at": "2026-01-01T00:00:00Z"}});
    problem(
        t.mutate(&token, "key-00000004", &bad_id.to_string()),
        422,
        "validation_failed",
    );
    // Admin.
    problem(
        h.put(t.url("/admin/v1/program"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .unwrap(),
        401,
        "unauthorized",
    );
    problem(
        h.put(t.url("/admin/v1/program"))
            .bearer_auth(ADMIN)
            .json(&json!({"id": "p", "name": "P", "brand_color": "red", "symbology": "qr"}))
            .send()
            .unwrap(),
        422,
        "validation_failed",
    );
    problem(
        h.delete(t.url("/admin/v1/stores/nope"))
            .bearer_auth(ADMIN)
            .send()
            .unwrap(),
        404,
        "not_found",
    );
}

#[test]
fn an_idempotency_key_applies_once_and_replays_its_first_answer() {
    let t = start();
    let (token, member) = t.enrol();
    let first = t.mutate(&token, "key-aaaaaaaa", &event("e-1"));
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().unwrap();
    assert_eq!(first["sequence"], 1);
    for _ in 0..3 {
        let again = t.mutate(&token, "key-aaaaaaaa", &event("e-1"));
        assert_eq!(again.status(), 200);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(
            again.json::<Value>().unwrap(),
            first,
            "the first answer, byte for byte"
        );
    }
    problem(
        t.mutate(&token, "key-aaaaaaaa", &event("e-2")),
        422,
        "idempotency_key_reused",
    );
    // A refused mutation's answer is stored and replayed too.
    let fav = json!({"type": "set_favourite_store", "store_id": "st-nowhere", "favourite": true})
        .to_string();
    problem(t.mutate(&token, "key-bbbbbbbb", &fav), 422, "unknown_store");
    problem(t.mutate(&token, "key-bbbbbbbb", &fav), 422, "unknown_store");
    // Keys are per member: another member's same key is another request.
    let (other, _) = t.enrol();
    assert_eq!(
        t.mutate(&other, "key-aaaaaaaa", &event("e-1")).status(),
        200
    );

    let counts = t.rt.block_on(t.storage.event_ids(member)).unwrap();
    assert_eq!(counts, vec![("e-1".to_owned(), 1)]);
}

/// A second server "process" on the first one's database: its own storage (connections,
/// writer or pool), state and HTTP listener, as another process would have.
fn second_process(t: &T) -> (RunningServer, AppState) {
    let state = AppState::new(t.db.second_process(&t.rt), (*t.state.config).clone());
    let server = RunningServer::start("127.0.0.1:0".parse().unwrap(), state.clone(), 2).unwrap();
    (server, state)
}

/// Another process's claim of `key-held` for `member`: its transaction wrote the key's row and
/// is still running. The returned function commits it.
fn hold_claim(t: &T, member: &str, hash: &str, stored: &str) -> Box<dyn FnOnce()> {
    let insert = "INSERT INTO idempotency_key (member_id, key, body_hash, status, response,
        created_at) VALUES ($1, 'key-held', $2, 200, $3, 0)";
    match &t.db {
        Db::Sqlite(s) => {
            let raw = rusqlite::Connection::open(s.path()).unwrap();
            raw.execute_batch("BEGIN IMMEDIATE").unwrap();
            raw.execute(
                &insert.replace('$', "?"),
                rusqlite::params![member, hash, stored],
            )
            .unwrap();
            Box::new(move || raw.execute_batch("COMMIT").unwrap())
        }
        Db::Postgres(s) => {
            let config = s.connection_config().clone();
            let (member, hash, stored) = (member.to_owned(), hash.to_owned(), stored.to_owned());
            let (commit, wait) = std::sync::mpsc::channel::<()>();
            let (written, written_rx) = std::sync::mpsc::channel::<()>();
            // The client runs its own runtime: a thread of its own, as another process.
            let other = std::thread::spawn(move || {
                let mut client = config.connect(postgres::NoTls).unwrap();
                let mut tx = client.transaction().unwrap();
                tx.execute(insert, &[&member, &hash, &stored]).unwrap();
                written.send(()).unwrap();
                wait.recv().unwrap();
                tx.commit().unwrap();
            });
            written_rx.recv().unwrap();
            Box::new(move || {
                commit.send(()).unwrap();
                other.join().unwrap();
            })
        }
    }
}

#[test]
fn two_processes_on_one_database_apply_each_key_once_and_replay_it_to_the_others() {
    use std::sync::atomic::Ordering::Relaxed;
    let t = Arc::new(start());
    let (other, other_state) = second_process(&t);
    let (token, member) = t.enrol();
    let rounds = 20;
    for round in 0..rounds {
        let key = format!("key-concurrent-{round}");
        let body = event(&format!("e-{round}"));
        // Eight requests with one key at once, half through each process.
        let answers: Vec<(u16, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (t, token, key, body) =
                        (t.clone(), token.clone(), key.clone(), body.clone());
                    let url = if i % 2 == 0 {
                        t.url("/v1/mutations")
                    } else {
                        format!("{}/v1/mutations", other.url())
                    };
                    s.spawn(move || {
                        let r = t
                            .http
                            .post(url)
                            .bearer_auth(&token)
                            .header("idempotency-key", &key)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .unwrap();
                        (r.status().as_u16(), r.text().unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // No 409: whoever comes second waits for the first's claim and gets its answer.
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
        assert!(answers.windows(2).all(|w| w[0].1 == w[1].1), "{answers:?}");
    }
    let applied = t.state.metrics.applied.load(Relaxed) + other_state.metrics.applied.load(Relaxed);
    let replayed =
        t.state.metrics.replayed.load(Relaxed) + other_state.metrics.replayed.load(Relaxed);
    assert_eq!((applied, replayed), (rounds, rounds * 7));
    let counts = t.rt.block_on(t.storage.event_ids(member.clone())).unwrap();
    assert_eq!(counts.len(), rounds as usize);
    assert!(counts.iter().all(|(_, n)| *n == 1));

    // Deterministic: another process holds the key's claim (its transaction wrote the key's row
    // and is still running). The request waits for it, applies nothing, and answers what that
    // process stored.
    let hash = tessera_server::problem::body_hash(event("e-held").as_bytes());
    let stored = r#"{"applied":true,"server_time":"2026-11-30T06:00:00.000Z"}"#;
    let held = hold_claim(&t, &member, &hash, stored);
    let waiting = {
        let (t, token) = (t.clone(), token.clone());
        std::thread::spawn(move || {
            let r = t.mutate(&token, "key-held", &event("e-held"));
            (r.status().as_u16(), r.text().unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "the request waits for the claim");
    held();
    assert_eq!(waiting.join().unwrap(), (200, stored.to_owned()));
    assert_eq!(
        t.rt.block_on(t.storage.event_ids(member)).unwrap().len(),
        rounds as usize,
        "nothing applied twice"
    );
}

#[test]
fn keys_are_kept_for_the_retention_period_then_purged() {
    let t = start();
    let (token, _) = t.enrol();
    assert_eq!(
        t.mutate(&token, "key-retained", &event("e-1")).status(),
        200
    );
    let now = jiff::Timestamp::now().as_millisecond();
    let retention = ServerConfig::default().key_retention;
    assert!(retention >= Duration::from_secs(30 * 24 * 3600));
    let day = 86_400_000;
    // The server's own purge, as its hourly loop runs it: 30 days on, the key is kept.
    let purge = |at: i64| {
        t.rt.block_on(tessera_server::purge_expired_keys(&t.state, at))
            .unwrap()
    };
    assert_eq!(purge(now + 30 * day), 0);
    assert_eq!(
        t.mutate(&token, "key-retained", &event("e-1")).headers()["idempotent-replayed"],
        "true"
    );
    // Once the retention period has passed, the key is forgotten.
    assert_eq!(purge(now + retention.as_millis() as i64 + 60_000), 1);
    assert_eq!(purge(now + retention.as_millis() as i64 + 60_000), 0);
}

#[test]
fn the_catalog_feed_pages_compresses_and_answers_304_when_nothing_changed() {
    let t = start();
    let (token, _) = t.enrol();
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let mut url = t.url("/v1/catalog?limit=7");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let v: Value = t
            .http
            .get(url)
            .bearer_auth(&token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        seen += v["changes"].as_array().unwrap().len();
        pages += 1;
        cursor = Some(v["cursor"].as_str().unwrap().to_owned());
        if !v["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!((seen, pages), (41, 6), "programme + 30 stores + 10 offers");
    let c = cursor.unwrap();
    let r = t
        .http
        .get(t.url(&format!("/v1/catalog?cursor={c}")))
        .bearer_auth(&token)
        .header("if-none-match", format!("\"{c}\""))
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.headers().contains_key("tessera-member-version"));
    let r = t
        .http
        .get(t.url("/v1/catalog"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
}

#[test]
fn refresh_tokens_are_single_use() {
    let t = start();
    let r: Value = t
        .http
        .post(t.url("/v1/enrol"))
        .json(&json!({"holder_name": "Ada", "device": {"platform": "ios", "app_version": "1"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let refresh = r["tokens"]["refresh_token"].as_str().unwrap();
    let ok = t
        .http
        .post(t.url("/v1/token"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let new: Value = ok.json().unwrap();
    let me = t
        .http
        .get(t.url("/v1/me"))
        .bearer_auth(new["access_token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(me.status(), 200);
    // The old access token died with the refresh.
    let old = t
        .http
        .get(t.url("/v1/me"))
        .bearer_auth(r["tokens"]["access_token"].as_str().unwrap())
        .send()
        .unwrap();
    problem(old, 401, "unauthorized");
    problem(
        t.http
            .post(t.url("/v1/token"))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .unwrap(),
        401,
        "invalid_refresh_token",
    );
}

#[test]
fn the_served_openapi_document_lists_every_route() {
    let t = start();
    let doc: Value = t
        .http
        .get(t.url("/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/enrol", &["post"][..]),
        ("/v1/token", &["post"]),
        ("/v1/me", &["get", "delete"]),
        ("/v1/me/export", &["get"]),
        ("/v1/catalog", &["get"]),
        ("/v1/mutations", &["post"]),
        ("/admin/v1/program", &["put"]),
        ("/admin/v1/stores/{id}", &["put", "delete"]),
        ("/admin/v1/offers/{id}", &["put", "delete"]),
        ("/admin/v1/catalog", &["post"]),
        ("/admin/v1/members/{id}/events", &["get"]),
        ("/admin/v1/members/{id}/consents", &["get", "post"]),
        ("/admin/v1/members/{id}/export", &["get"]),
        ("/admin/v1/members/{id}", &["delete"]),
        ("/admin/v1/audience", &["get"]),
        ("/admin/v1/members/{id}/segments", &["put"]),
        ("/admin/v1/campaigns", &["post"]),
        ("/admin/v1/campaigns/{id}", &["get"]),
        ("/admin/v1/tills", &["post"]),
        ("/v1/coupon-keys", &["get"]),
        ("/v1/till/redemptions", &["post"]),
        ("/v1/till/purchases", &["post"]),
        ("/v1/till/voids", &["post"]),
        ("/v1/till/returns", &["post"]),
        ("/admin/v1/loyalty-rules", &["get", "put"]),
        ("/admin/v1/members/{id}/points", &["post"]),
        ("/admin/v1/redemption-conflicts", &["get"]),
        ("/admin/v1/challenges", &["get", "put"]),
        ("/admin/v1/members/{id}/rule-events", &["post"]),
        ("/admin/v1/members/{id}/birthday", &["put"]),
        ("/v1/till/shop", &["get"]),
        ("/v1/card/certificate", &["post"]),
        ("/v1/till/revocations", &["get"]),
        ("/admin/v1/members/{id}/devices/revoke", &["post"]),
        ("/v1/wallet/apple/card", &["get"]),
        ("/v1/wallet/apple/coupons/{coupon_id}", &["get"]),
        ("/v1/wallet/google/card", &["get"]),
        ("/v1/wallet/google/coupons/{coupon_id}", &["get"]),
        ("/admin/v1/webhooks", &["get"]),
        ("/admin/v1/webhooks/{id}", &["put", "get", "delete"]),
        ("/admin/v1/webhooks/{id}/deliveries", &["get"]),
        ("/admin/v1/webhooks/{id}/replay", &["post"]),
        ("/admin/v1/staff", &["post", "get"]),
        ("/admin/v1/staff/{id}", &["patch"]),
        ("/admin/v1/loyalty-rules/versions", &["get"]),
        ("/admin/v1/loyalty-rules/versions/{version}", &["get"]),
        (
            "/admin/v1/loyalty-rules/versions/{version}/restore",
            &["post"],
        ),
        ("/admin/v1/kpis", &["get"]),
        ("/admin/v1/analytics", &["get"]),
        ("/admin/v1/analytics/runs", &["post"]),
        ("/admin/v1/analytics/runs/{run}", &["get"]),
        ("/admin/v1/analytics/members/{member_id}", &["get"]),
        ("/admin/v1/analytics/settings", &["get", "put"]),
        ("/admin/v1/journeys", &["get", "put"]),
        ("/admin/v1/journeys/report", &["get"]),
        ("/admin/v1/journeys/runs", &["post"]),
        ("/admin/v1/journeys/runs/{run}", &["get"]),
        ("/admin/v1/challenges/versions", &["get"]),
        ("/admin/v1/challenges/versions/{version}", &["get"]),
        ("/admin/v1/challenges/versions/{version}/restore", &["post"]),
        ("/admin/v1/challenges/dry-run", &["post"]),
        ("/health", &["get"]),
        ("/ready", &["get"]),
        ("/metrics", &["get"]),
    ] {
        for m in methods {
            assert!(paths[path][m].is_object(), "{m} {path} documented");
            // Rate limits apply to every route, and say so.
            assert!(
                paths[path][m]["responses"]["429"]["headers"]["Retry-After"].is_object(),
                "{m} {path} documents 429 with Retry-After"
            );
        }
    }
    assert_eq!(paths.len(), 64, "no undocumented or stale paths");
    assert_eq!(
        doc,
        serde_json::to_value(tessera_server::openapi()).unwrap()
    );
}

#[test]
fn health_readiness_and_metrics_answer_without_credentials() {
    let t = start();
    let health = t.http.get(t.url("/health")).send().unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().unwrap()["status"], "ok");
    let ready = t.http.get(t.url("/ready")).send().unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().unwrap()["status"], "ready");

    t.state
        .metrics
        .applied
        .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
    let metrics = t.http.get(t.url("/metrics")).send().unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().unwrap();
    assert!(
        text.contains("\ntessera_mutations_applied_total 3\n"),
        "{text}"
    );
    for name in [
        "tessera_mutations_replayed_total 0",
        "tessera_idempotency_key_reused_total 0",
        "tessera_draining 0",
        "# TYPE tessera_catalog_sequence gauge",
    ] {
        assert!(text.contains(name), "{name} in {text}");
    }
}

#[test]
fn a_shutdown_drains_says_not_ready_and_still_serves_then_stops() {
    let rt = runtime();
    let state = AppState::new(
        Db::fresh(&rt).storage(),
        ServerConfig {
            drain_delay: Duration::from_millis(1500),
            ..ServerConfig::default()
        },
    );
    let server = RunningServer::start("127.0.0.1:0".parse().unwrap(), state, 2).unwrap();
    let url = server.url();
    let http = Client::new();
    assert_eq!(
        http.get(format!("{url}/ready")).send().unwrap().status(),
        200
    );
    let stopping = std::thread::spawn(move || server.stop());
    // While draining: not ready, yet answering (requests already routed here are served).
    let mut saw_draining = false;
    for _ in 0..100 {
        let ready = http.get(format!("{url}/ready")).send().unwrap();
        if ready.status() == 503 {
            assert_eq!(ready.json::<Value>().unwrap()["status"], "draining");
            assert_eq!(
                http.get(format!("{url}/health")).send().unwrap().status(),
                200
            );
            saw_draining = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(saw_draining, "/ready never said draining");
    stopping.join().unwrap();
    assert!(http.get(format!("{url}/health")).send().is_err(), "stopped");
}

/// Each process allows its share of a limit: with two on one database (counted by their
/// heartbeats), a member's burst of 10 is 5 at each, 10 for the deployment; when one stops,
/// the other takes the whole limit back.
#[test]
fn processes_on_one_database_share_the_rate_limits() {
    use tessera_server::guard::{RateLimit, RateLimits};
    let config = ServerConfig {
        rate_limits: RateLimits {
            per_member: Some(RateLimit {
                per_second: 1,
                burst: 10,
            }),
            ..RateLimits::off()
        },
        // A process counts as alive for three heartbeats: 750 ms, so that a heartbeat late
        // on a loaded machine (the whole suite runs at once) does not drop it.
        heartbeat: Duration::from_millis(250),
        ..ServerConfig::default()
    };
    let t = start_with(config);
    let (token, _) = t.enrol();
    let (other, other_state) = second_process(&t);
    let until = |what: &str, ok: &dyn Fn() -> bool| {
        let started = std::time::Instant::now();
        while !ok() {
            assert!(started.elapsed() < Duration::from_secs(5), "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until("two processes counted", &|| {
        t.state.limiters.share() == 2 && other_state.limiters.share() == 2
    });
    let burst = |url: &str| {
        (0..10)
            .filter(|_| {
                t.http
                    .get(format!("{url}/v1/me"))
                    .bearer_auth(&token)
                    .send()
                    .unwrap()
                    .status()
                    == 200
            })
            .count()
    };
    // Within a second: the burst's half, and one token refilled at most.
    let here = burst(&t.server.url());
    let there = burst(&other.url());
    assert!((5..=6).contains(&here), "{here} of 10 at one process");
    assert!((5..=6).contains(&there), "{there} of 10 at the other");
    other.stop();
    until("the stopped process left", &|| {
        t.state.limiters.share() == 1
    });
}

/// The hourly jobs (lapses, the key purge) are queued by every process and run by one.
#[test]
fn hourly_jobs_are_queued_by_every_process_and_run_once() {
    use tessera_server::jobs::{HOURLY, JobConfig, hour_of};
    use tessera_server::service::Services;
    let config = ServerConfig {
        jobs: JobConfig {
            schedule_every: Duration::from_millis(50),
            poll: Duration::from_millis(50),
            ..JobConfig::default()
        },
        ..ServerConfig::default()
    };
    let t = start_with(config);
    let (_other, _) = second_process(&t);
    let hour = hour_of(jiff::Timestamp::now().as_millisecond());
    let started = std::time::Instant::now();
    for kind in HOURLY {
        loop {
            let state =
                t.rt.block_on(t.storage.job_state((*kind).to_owned(), hour.clone()))
                    .unwrap();
            if state.as_deref() == Some("done") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{kind} for {hour}: {state:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
