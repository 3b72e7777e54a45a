//! Several `tessera serve` processes over one PostgreSQL database, as a load balancer would
//! spread requests over them (issue #17): 50 tills spread over three processes race for each
//! coupon; one idempotency key sent to two processes at once; processes SIGKILLed in the middle
//! of a load and started again. The real binary, the real database (`TESSERA_TEST_POSTGRES`, a
//! fresh database per test), real HTTP.
// Test code: a failed step panics with its cause.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};

const ADMIN: &str = "processes-test-operator-token";

/// A database of its own in the test cluster, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    fn new() -> Option<Database> {
        let admin_url = tessera_server::storage::postgres::test_url()?;
        let name = format!("tessera_procs_{}", uuid_like());
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = admin_url.rsplit_once('/').unwrap().0;
        let url = format!("{base}/{name}");
        Some(Database {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}

/// One `tessera serve` on the database; SIGKILLed when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Database, dir: &Path, name: &str, seed: bool) -> Process {
    serve_with(db, dir, name, seed, &[])
}

/// A process with more arguments (push service, job settings).
fn serve_with(db: &Database, dir: &Path, name: &str, seed: bool, extra: &[String]) -> Process {
    let ready = dir.join(format!("{name}.url"));
    let _ = std::fs::remove_file(&ready);
    let mut args = vec![
        "serve".to_owned(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        db.url.clone(),
        "--database-pool".into(),
        "8".into(),
        "--admin-token".into(),
        ADMIN.into(),
        "--rate-per-address".into(),
        "0".into(),
        "--rate-per-member".into(),
        "0".into(),
        "--rate-per-till".into(),
        "0".into(),
        "--ready-file".into(),
        ready.display().to_string(),
    ];
    if seed {
        args.push("--seed".into());
    }
    args.extend(extra.iter().cloned());
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    // Owned at once: killed and waited for on every path, a failed start included.
    let mut process = Process {
        child: Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(&args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        url: String::new(),
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(url) = std::fs::read_to_string(&ready)
            && !url.is_empty()
        {
            process.url = url;
            return process;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{name} did not start: {}",
        std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
    );
}

/// The seed programme's processes: the first loads the seed catalog, the others join it.
fn processes(db: &Database, dir: &Path, n: usize) -> Vec<Process> {
    let mut all = vec![serve(db, dir, "p0", true)];
    for i in 1..n {
        all.push(serve(db, dir, &format!("p{i}"), false));
    }
    all
}

/// A new member: its id, access token and device.
fn enrol(http: &Client, url: &str) -> (String, String, String) {
    let v: Value = http
        .post(format!("{url}/v1/enrol"))
        .json(&json!({"holder_name": "Chloé Martin",
            "device": {"platform": "android", "app_version": "3.2.0"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    (
        text(&v["member_id"]),
        text(&v["tokens"]["access_token"]),
        text(&v["device_id"]),
    )
}

fn till_token(http: &Client, url: &str) -> String {
    let v: Value = http
        .post(format!("{url}/admin/v1/tills"))
        .bearer_auth(ADMIN)
        .json(&json!({"store_id": "st-paris-01"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// How many times each event id was applied for the member (the admin audit).
fn applied(http: &Client, url: &str, member: &str) -> Vec<(String, u64)> {
    let v: Value = http
        .get(format!("{url}/admin/v1/members/{member}/events"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["applied"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn event(id: &str) -> Value {
    json!({"type": "record_event", "event": {"event_id": id, "kind": "app_opened",
        "occurred_at": "2026-09-21T12:00:00Z"}})
}

#[test]
fn fifty_tills_over_three_processes_redeem_each_coupon_once() {
    let Some(db) = Database::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let procs = processes(&db, dir.path(), 3);
    let urls: Vec<String> = procs.iter().map(|p| p.url.clone()).collect();
    let trials: usize = std::env::var("TESSERA_PROCESS_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let tills = 50;
    let http = Client::new();
    // The member's phone, on the first process.
    let phone = tessera_core::Tessera::open(dir.path().join("phone.db")).unwrap();
    phone.set_http_client(tessera_core::sync::ReqwestClient::shared());
    phone
        .enrol(
            &urls[0],
            "Chloé Martin",
            tessera_core::DeviceInfo {
                platform: tessera_core::api::Platform::Cli,
                app_version: "processes".into(),
            },
        )
        .unwrap();
    // Till i belongs to process i % 3, and is registered there.
    let tokens: Vec<(String, String)> = (0..tills)
        .map(|i| {
            let url = urls[i % 3].clone();
            (till_token(&http, &url), url)
        })
        .collect();
    tessera_e2e::race::race(tokens, trials, || {
        tessera_e2e::race::fresh_coupon(&phone, "of-009")
    });
}

#[test]
fn one_key_sent_to_two_processes_at_once_is_applied_once() {
    let Some(db) = Database::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let procs = processes(&db, dir.path(), 2);
    let http = Client::new();
    let (member, token, _) = enrol(&http, &procs[0].url);
    let rounds = 30;
    for round in 0..rounds {
        let key = format!("key-both-{round}");
        let body = event(&format!("e-{round}"));
        let answers: Vec<(u16, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let url = &procs[i % 2].url;
                    let (token, key, body) = (&token, &key, &body);
                    s.spawn(move || {
                        let r = Client::new()
                            .post(format!("{url}/v1/mutations"))
                            .bearer_auth(token)
                            .header("idempotency-key", key)
                            .json(body)
                            .send()
                            .unwrap();
                        (r.status().as_u16(), r.text().unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
        assert!(
            answers.windows(2).all(|w| w[0].1 == w[1].1),
            "one answer, replayed: {answers:?}"
        );
    }
    let counts = applied(&http, &procs[1].url, &member);
    assert_eq!(counts.len(), rounds);
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
}

#[test]
fn a_process_killed_under_load_loses_nothing_acknowledged_and_applies_nothing_twice() {
    let Some(db) = Database::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut procs = processes(&db, dir.path(), 2);
    let http = Client::new();
    let (member, token, _) = enrol(&http, &procs[0].url);
    let urls = Arc::new(Mutex::new(
        procs.iter().map(|p| p.url.clone()).collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let resent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let loaders = 4;
    // Each loader sends a new key each time; a failed request (connection refused or reset,
    // a 5xx) is sent again with the same key to the other process, as a load balancer
    // retries, until it is acknowledged.
    let workers: Vec<_> = (0..loaders)
        .map(|w| {
            let (urls, stop, acknowledged, token, resent) = (
                urls.clone(),
                stop.clone(),
                acknowledged.clone(),
                token.clone(),
                resent.clone(),
            );
            std::thread::spawn(move || {
                let http = Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("w{w}-{n}");
                    let mut attempt = n;
                    loop {
                        let url = {
                            let urls = urls.lock().unwrap();
                            urls[attempt % urls.len()].clone()
                        };
                        let sent = http
                            .post(format!("{url}/v1/mutations"))
                            .bearer_auth(&token)
                            .header("idempotency-key", format!("key-{id}"))
                            .json(&event(&id))
                            .send();
                        match sent {
                            Ok(r) if r.status().is_success() => {
                                // Every fourth answer is "lost": the client sends the request
                                // again to the other process, and gets the same answer back.
                                let first = r.text().unwrap();
                                if n % 4 == 0 {
                                    let other = {
                                        let urls = urls.lock().unwrap();
                                        urls[(attempt + 1) % urls.len()].clone()
                                    };
                                    if let Ok(again) = http
                                        .post(format!("{other}/v1/mutations"))
                                        .bearer_auth(&token)
                                        .header("idempotency-key", format!("key-{id}"))
                                        .json(&event(&id))
                                        .send()
                                        && again.status().is_success()
                                    {
                                        assert_eq!(again.text().unwrap(), first, "{id} replayed");
                                    }
                                }
                                break;
                            }
                            Ok(r) if r.status().is_server_error() => {}
                            Ok(r) => panic!("{id}: {} {}", r.status(), r.text().unwrap()),
                            Err(_) => {}
                        }
                        attempt += 1;
                        resent.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    acknowledged.lock().unwrap().push(id);
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before_kill = acknowledged.lock().unwrap().len();
    // SIGKILL, three times, each process in turn: no graceful shutdown, transactions and
    // answers in flight cut off; each is started again on the same database.
    for round in 0..3 {
        let which = round % 2;
        drop(procs.remove(which));
        std::thread::sleep(Duration::from_millis(300));
        let restarted = serve(&db, dir.path(), &format!("p{which}-again-{round}"), false);
        urls.lock().unwrap()[which] = restarted.url.clone();
        procs.insert(which, restarted);
        std::thread::sleep(Duration::from_millis(400));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        before_kill > 0 && acknowledged.len() > before_kill,
        "load before and after the kill: {before_kill}, {}",
        acknowledged.len()
    );
    eprintln!(
        "acknowledged {} ({before_kill} before the kill), sent again after a failure: {}",
        acknowledged.len(),
        resent.load(Ordering::Relaxed)
    );
    let counts = applied(&http, &procs[0].url, &member);
    let held: std::collections::BTreeSet<&str> = counts.iter().map(|(e, _)| e.as_str()).collect();
    for id in &acknowledged {
        assert!(
            held.contains(id.as_str()),
            "{id} was acknowledged, then lost"
        );
    }
    assert!(
        counts.iter().all(|(_, n)| *n == 1),
        "applied twice: {:?}",
        counts.iter().filter(|(_, n)| *n != 1).collect::<Vec<_>>()
    );
    assert_eq!(
        counts.len(),
        acknowledged.len(),
        "nothing unacknowledged kept"
    );
}

/// A member enrolled over HTTP with a push token and consent to offers by push.
fn push_member(http: &Client, url: &str, token: &str) {
    let (member, access, device) = enrol(http, url);
    let status = http
        .post(format!("{url}/v1/mutations"))
        .bearer_auth(&access)
        .header("idempotency-key", format!("key-push-{token}"))
        .json(
            &json!({"type": "set_push_token", "device_id": device, "provider": "fcm",
            "token": token}),
        )
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let status = http
        .post(format!("{url}/admin/v1/members/{member}/consents"))
        .bearer_auth(ADMIN)
        .json(
            &json!({"purpose": "marketing_offers", "channel": "push", "decision": "granted",
            "text_version": "v1", "text_sha256": "0".repeat(64), "source": "in_store",
            "recorded_by": "staff-1"}),
        )
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 201);
}

fn campaign_report(http: &Client, url: &str, id: &str) -> Value {
    http.get(format!("{url}/admin/v1/campaigns/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn a_campaign_whose_process_is_killed_resumes_and_reaches_each_device_at_most_once() {
    let Some(db) = Database::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let receiver = tessera_e2e::receiver::PushReceiver::start(Default::default());
    let rate = 200;
    let sender_args = |lease: &str| -> Vec<String> {
        [
            "--fcm-project",
            "tessera-test",
            "--fcm-token",
            "fcm-oauth-token",
            "--fcm-url",
            &receiver.url,
            "--push-rate",
            &rate.to_string(),
            "--campaign-batch",
            "40",
            "--job-lease-seconds",
            lease,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // The sender runs the jobs; the other process serves requests only.
    let requests = serve_with(&db, dir.path(), "requests", true, &["--no-jobs".into()]);
    let mut sender = serve_with(&db, dir.path(), "sender", false, &sender_args("2"));
    let http = Client::new();
    let members = 600;
    for i in 0..members {
        push_member(&http, &requests.url, &format!("tok-{i:04}"));
    }
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string();
    assert_eq!(
        campaign_report(&http, &requests.url, "none")["status"],
        404,
        "no such campaign"
    );
    let mut offer =
        serde_json::to_value(&tessera_server::seed::catalog().unwrap().offers[0]).unwrap();
    offer["id"] = json!("of-crash-1");
    let started = Instant::now();
    let queued = http
        .post(format!("{}/admin/v1/campaigns", requests.url))
        .bearer_auth(ADMIN)
        .json(
            &json!({"id": "crash-1", "offer": offer, "title": "Tea time",
            "expires_at": expires}),
        )
        .send()
        .unwrap();
    assert_eq!(queued.status(), 202);
    assert_eq!(
        queued.headers()["location"].to_str().unwrap(),
        "/admin/v1/campaigns/crash-1"
    );
    // Progress is readable while it runs (from the process that does not send it).
    let mut seen_sending = false;
    // Mid-batch (batches of 40): some deliveries of the batch handed over, others not yet.
    while receiver.tokens().len() < members / 3 + 17 {
        let report = campaign_report(&http, &requests.url, "crash-1");
        if report["state"] == "sending" && report["sent"].as_u64().unwrap() > 0 {
            seen_sending = true;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{report}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = receiver.tokens().len();
    let elapsed = started.elapsed().as_secs_f64();
    // SIGKILL in the middle of a batch, then a new sender: it resumes when the lease runs out.
    drop(sender);
    let killed_at = receiver.tokens().len();
    sender = serve_with(&db, dir.path(), "sender-again", false, &sender_args("2"));
    let report = loop {
        let report = campaign_report(&http, &requests.url, "crash-1");
        if report["state"] == "done" {
            break report;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{report}");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(sender);
    let tokens = receiver.tokens();
    let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
    eprintln!(
        "{} pushes received ({killed_at} when the sender was killed), report {report}",
        tokens.len()
    );
    assert!(seen_sending, "progress was readable while it ran");
    assert_eq!(
        distinct.len(),
        tokens.len(),
        "a device received a push twice"
    );
    let (sent, failed, unknown) = (
        report["sent"].as_u64().unwrap() as usize,
        report["failed"].as_u64().unwrap() as usize,
        report["unknown"].as_u64().unwrap() as usize,
    );
    assert_eq!(report["members"], members);
    assert_eq!(
        sent + failed + unknown,
        members,
        "every device accounted for"
    );
    assert_eq!(failed, 0);
    assert!(
        sent <= tokens.len() && tokens.len() <= sent + unknown,
        "sent {sent}, unknown {unknown}, received {}",
        tokens.len()
    );
    // The rate: what arrived before the kill came no faster than the limit (with slack).
    assert!(
        before as f64 <= f64::from(rate) * elapsed * 1.2 + 40.0,
        "{before} pushes in {elapsed:.2} s at {rate}/s"
    );
}
