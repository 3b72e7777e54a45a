//! The server's doors against the real server: a streamed catalog whole or not at all, operator
//! credentials off loopback, no token stored, rate limits per member, till and address, clients
//! behind a trusted balancer.

use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_e2e::raw::*;
use tessera_e2e::{ADMIN_TOKEN, Server, till_token};

#[test]
fn a_streamed_catalog_replaces_the_old_one_whole_or_not_at_all() {
    let server = Server::start();
    let url = format!("{}/admin/v1/catalog", server.url());
    let post = |body: String| {
        let resp = Client::new()
            .post(&url)
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<Value>().unwrap_or(Value::Null),
        )
    };
    // A chain's catalog replaces the seed, then a small one replaces the chain's: what the new
    // one lacks is deleted (here more than one batch of tombstones).
    let chain = serde_json::to_value(tessera_e2e::big_catalog(1_200, 10)).unwrap();
    let (status, body) = post(chain.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], 321 + 90);
    let mut catalog = serde_json::to_value(tessera_e2e::small_catalog(20, 10)).unwrap();
    let (status, body) = post(catalog.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stores"], 20);
    assert_eq!(body["deleted"], 1_200 + 10);
    // A duplicate id at the very end: refused, and nothing of it applied.
    let first = catalog["stores"][0].clone();
    catalog["stores"].as_array_mut().unwrap().push(first);
    catalog["stores"][1]["name"] = json!("Renamed");
    let (status, body) = post(catalog.to_string());
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("twice"), "{body}");
    let (status, body) = post("{\"program\": ".to_owned());
    assert_eq!(status, 400, "{body}");
    let names =
        server.integers("SELECT count(*) FROM catalog_entity WHERE data LIKE '%Renamed%'")[0];
    assert_eq!(names, 0, "the refused catalog left nothing behind");
}

#[test]
fn the_admin_door_needs_an_operator_credential_off_loopback() {
    use tessera_server::guard::{AdminCredential, DEVELOPMENT_TOKEN};
    use tessera_server::storage::sqlite::SqliteStorage;
    use tessera_server::{AppState, RunningServer, ServerConfig};
    let state = |config: ServerConfig| {
        AppState::new(
            std::sync::Arc::new(SqliteStorage::temporary().unwrap()),
            config,
        )
    };
    // The built-in credential on every interface: refused at start.
    let refused = RunningServer::start(
        "0.0.0.0:0".parse().unwrap(),
        state(ServerConfig::default()),
        1,
    );
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    // With an operator credential it starts, and the built-in token is refused.
    let config = ServerConfig {
        admin_credentials: vec![
            AdminCredential::from_token("alice", "alice-operator-token-1").unwrap(),
            AdminCredential::from_token("bob", "bob-operator-token-01").unwrap(),
        ],
        ..ServerConfig::default()
    };
    let app = state(config);
    let admins = app.admins.clone();
    let running = RunningServer::start("0.0.0.0:0".parse().unwrap(), app, 1).unwrap();
    let url = format!("http://127.0.0.1:{}", running.addr.port());
    let status = |token: &str| {
        Client::new()
            .get(format!("{url}/admin/v1/redemption-conflicts"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status(DEVELOPMENT_TOKEN), 401);
    assert_eq!(status("alice-operator-token-1"), 200);
    assert_eq!(status("bob-operator-token-01"), 200);
    // Rotation: alice retired while serving.
    admins
        .replace(vec![
            AdminCredential::from_token("bob", "bob-operator-token-01").unwrap(),
        ])
        .unwrap();
    assert_eq!(status("alice-operator-token-1"), 401);
    assert_eq!(status("bob-operator-token-01"), 200);
    // On loopback, the development credential still works.
    let dev = RunningServer::start(
        "127.0.0.1:0".parse().unwrap(),
        state(ServerConfig::default()),
        1,
    )
    .unwrap();
    let resp = Client::new()
        .get(format!("{}/admin/v1/redemption-conflicts", dev.url()))
        .bearer_auth(DEVELOPMENT_TOKEN)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn no_token_is_stored_in_the_servers_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let storage = tessera_server::storage::sqlite::SqliteStorage::open(&path).unwrap();
    let server = Server::start_on(
        "127.0.0.1:0".parse().unwrap(),
        storage,
        tessera_server::ServerConfig::default(),
        Some(tessera_e2e::seed()),
    );
    let (_, access, refresh) = enrol(&server);
    let till = till_token(&server, "st-paris-01");
    // Use them, so that nothing is only in flight.
    assert_eq!(clip(&server, &access, "of-009").0, 200);
    drop(server);
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(format!("{}{suffix}", path.display())) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    for token in [&access, &refresh, &till, &ADMIN_TOKEN.to_owned()] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "a token is stored in plain text"
        );
    }
}

#[test]
fn rates_are_limited_per_member_till_and_address_with_retry_after() {
    use tessera_server::guard::{RateLimit, RateLimits};
    let tight = Some(RateLimit {
        per_second: 1,
        burst: 3,
    });
    let server = Server::start_with(
        tessera_server::ServerConfig {
            rate_limits: RateLimits {
                per_address: Some(RateLimit {
                    per_second: 1,
                    burst: 40,
                }),
                per_member: tight,
                per_till: tight,
            },
            ..tessera_server::ServerConfig::default()
        },
        Some(tessera_e2e::small_catalog(5, 5)),
    );
    let (_, token, _) = enrol(&server);
    let get = |path: &str, token: &str| {
        Client::new()
            .get(format!("{}{path}", server.url()))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    let statuses: Vec<u16> = (0..4)
        .map(|_| get("/v1/me", &token).status().as_u16())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    let limited = get("/v1/me", &token);
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    let body: Value = limited.json().unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another member still has its budget.
    let (_, other, _) = enrol(&server);
    assert_eq!(get("/v1/me", &other).status().as_u16(), 200);
    // A till likewise.
    let till = till_token(&server, "st-paris-01");
    let till_statuses: Vec<u16> = (0..4)
        .map(|_| get("/v1/till/shop", &till).status().as_u16())
        .collect();
    assert_eq!(till_statuses, [200, 200, 200, 429]);
    // And the address, whoever asks: the burst of 40 is spent by now.
    let mut last = 0;
    for _ in 0..40 {
        last = get("/v1/coupon-keys", "").status().as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "the address's budget runs out");
}

#[test]
fn behind_a_trusted_balancer_each_client_address_has_its_own_budget() {
    use tessera_server::guard::{RateLimit, RateLimits};
    let server = Server::start_with(
        tessera_server::ServerConfig {
            rate_limits: RateLimits {
                per_address: Some(RateLimit {
                    per_second: 1,
                    burst: 3,
                }),
                ..RateLimits::off()
            },
            // The tests reach the server from loopback: loopback plays the balancer.
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
            ..tessera_server::ServerConfig::default()
        },
        Some(tessera_e2e::small_catalog(5, 5)),
    );
    let from = |client: &str| {
        Client::new()
            .get(format!("{}/v1/coupon-keys", server.url()))
            .header("x-forwarded-for", format!("192.0.2.77, {client}"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let a: Vec<u16> = (0..4).map(|_| from("198.51.100.1")).collect();
    assert_eq!(a, [200, 200, 200, 429]);
    // Another client behind the same balancer has its own budget, whatever it writes leftmost.
    assert_eq!(from("198.51.100.2"), 200);
}
