//! Bad answers from the server side: malformed, truncated, huge, garbled, wrong version, not a
//! Tessera server, invalid catalog data, endless errors. Each is a typed error, and the cache and
//! the outbox are exactly as before.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::{EventKind, SyncConfig, SyncError, Tessera};
use tessera_e2e::rusqlite::Connection;
use tessera_e2e::{Server, device, small_catalog};
use tessera_server::ServerConfig;

/// Answers every request with the current canned bytes.
struct Evil {
    url: String,
    answer: Arc<Mutex<Vec<u8>>>,
}

fn evil() -> Evil {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(Mutex::new(Vec::new()));
    let a = answer.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let a = a.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and whatever body came with it.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
                let bytes = a.lock().unwrap().clone();
                let _ = s.write_all(&bytes);
                let _ = s.flush();
            });
        }
    });
    Evil { url, answer }
}

fn response(
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    declared_len: Option<usize>,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\n\r\n",
        declared_len.unwrap_or(body.len())
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Whether an error is the one a case expects.
type Expect = fn(&SyncError) -> bool;

const V1: (&str, &str) = ("tessera-api-version", "1");
const JSON: (&str, &str) = ("content-type", "application/json");

fn snapshot(t: &Tessera) -> (u64, u64, Option<String>, u64, usize) {
    let conn = Connection::open(t.path()).unwrap();
    let cursor: Option<String> = conn
        .query_row("SELECT catalog_cursor FROM sync_state", [], |r| r.get(0))
        .unwrap();
    let summary = t.catalog_summary().unwrap();
    let status = t.sync_status().unwrap();
    (
        summary.stores,
        summary.offers,
        cursor,
        status.pending,
        t.activity(1000).unwrap().len(),
    )
}

#[test]
fn every_bad_answer_is_a_typed_error_and_leaves_the_cache_intact() {
    let server = Server::start_with(ServerConfig::default(), Some(small_catalog(30, 5)));
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&server.url(), "Eve", device()).unwrap();
    t.sync().unwrap();
    t.set_sync_config(SyncConfig {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_answer_bytes: 64 * 1024,
        request_timeout: Duration::from_secs(2),
        ..SyncConfig::default()
    })
    .unwrap();
    let evil = evil();
    let conn = Connection::open(t.path()).unwrap();
    conn.execute("UPDATE session SET server_url = ?1", [&evil.url])
        .unwrap();

    let valid_store = serde_json::to_string(&small_catalog(1, 0).stores[0]).unwrap();
    let bad_store = valid_store.replacen("\"latitude\":", "\"latitude\":999,\"x\":", 1);
    let page = |changes: &str, more: bool, format: u32| {
        format!(
            r#"{{"format":{format},"changes":[{changes}],"cursor":"c1.999","has_more":{more}}}"#
        )
    };
    let huge = page(
        &vec![format!(r#"{{"type":"store","store":{valid_store}}}"#); 400].join(","),
        false,
        1,
    );
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "malformed JSON",
            response("200 OK", &[V1, JSON], b"{\"format\":1,\"changes\":[", None),
            |e| matches!(e, SyncError::Protocol { .. }),
        ),
        (
            "truncated body",
            response("200 OK", &[V1, JSON], page("", false, 1).as_bytes(), Some(5000)),
            |e| matches!(e, SyncError::Protocol { .. }),
        ),
        (
            "huge answer",
            response("200 OK", &[V1, JSON], huge.as_bytes(), None),
            |e| matches!(e, SyncError::Protocol { reason } if reason.contains("larger")),
        ),
        (
            "garbled gzip",
            response("200 OK", &[V1, JSON, ("content-encoding", "gzip")], b"not gzip at all", None),
            |e| matches!(e, SyncError::Protocol { .. }),
        ),
        (
            "another protocol version (header)",
            response("200 OK", &[("tessera-api-version", "2"), JSON], page("", false, 2).as_bytes(), None),
            |e| matches!(e, SyncError::Incompatible { server_version } if server_version == "2"),
        ),
        (
            "another protocol version (page)",
            response("200 OK", &[V1, JSON], page("", false, 2).as_bytes(), None),
            |e| matches!(e, SyncError::Incompatible { .. }),
        ),
        (
            "not a Tessera server (captive portal)",
            response("200 OK", &[("content-type", "text/html")], b"<html>Log in to the Wi-Fi</html>", None),
            |e| matches!(e, SyncError::Protocol { reason } if reason.contains("Tessera")),
        ),
        (
            "an invalid store in the page",
            response(
                "200 OK",
                &[V1, JSON],
                page(&format!(r#"{{"type":"store","store":{valid_store}}},{{"type":"store","store":{bad_store}}}"#), false, 1).as_bytes(),
                None,
            ),
            |e| matches!(e, SyncError::Protocol { .. }),
        ),
        (
            "an empty page that says there is more",
            response("200 OK", &[V1, JSON], page("", true, 1).as_bytes(), None),
            |e| matches!(e, SyncError::Protocol { .. }),
        ),
        (
            "a server error, again and again",
            response("500 Internal Server Error", &[V1, ("content-type", "application/problem+json")], br#"{"type":"x","title":"t","status":500,"code":"internal"}"#, None),
            |e| matches!(e, SyncError::Server { status: 500, code } if code == "internal"),
        ),
        (
            "a very long Retry-After",
            response("503 Service Unavailable", &[V1, ("retry-after", "3600")], b"", None),
            |e| matches!(e, SyncError::Server { status: 503, .. }),
        ),
    ];

    // Cache-only cases first, with an empty outbox.
    let before = snapshot(&t);
    assert_eq!(before.0, 30);
    for (name, bytes, expected) in &cases {
        *evil.answer.lock().unwrap() = bytes.clone();
        let started = Instant::now();
        let err = t.sync().expect_err(name);
        assert!(expected(&err), "{name}: got {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: took {:?}",
            started.elapsed()
        );
        assert_eq!(snapshot(&t), before, "{name}: the cache changed");
        assert!(t.sync_status().unwrap().last_error.is_some());
    }

    // With an action waiting: a garbled answer to the mutation is not an acknowledgement.
    t.record_event(EventKind::AppOpened, None, BTreeMap::new())
        .unwrap();
    let before = snapshot(&t);
    for (name, bytes) in [
        (
            "garbled success",
            response("200 OK", &[V1, JSON], b"{\"applied_at\":", None),
        ),
        ("not a Tessera server", response("200 OK", &[], b"ok", None)),
        (
            "truncated success",
            response("200 OK", &[V1, JSON], b"{}", Some(100)),
        ),
    ] {
        *evil.answer.lock().unwrap() = bytes;
        assert!(t.sync().is_err(), "{name}");
        assert_eq!(snapshot(&t), before, "{name}: the outbox changed");
    }
    t.check_integrity().unwrap();

    // Back to the real server: the waiting action goes through once.
    conn.execute("UPDATE session SET server_url = ?1", [server.url()])
        .unwrap();
    let report = t.sync().unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(t.sync_status().unwrap().pending, 0);
}
