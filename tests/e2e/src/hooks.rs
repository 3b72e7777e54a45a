//! A webhook receiver on loopback (issue #19): it checks each delivery's signature with the
//! Standard Webhooks reference implementation, keeps what it received in arrival order, and
//! answers as told: a share of failures (5xx), slowly, past the server's timeout, or down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// How the receiver answers.
#[derive(Debug, Clone, Default)]
pub struct HookBehaviour {
    /// Percent of deliveries answered 503 (0–100), chosen by a hash of the event id and the
    /// attempt, so that a run is the same every time.
    pub fail_percent: u64,
    /// Each answer waits this long (past the server's timeout: the server gives up).
    pub delay: Duration,
    /// Answer every delivery 500.
    pub down: bool,
}

/// One delivery as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub event: serde_json::Value,
    /// The `webhook-id` header.
    pub id: String,
    pub signature_ok: bool,
    /// Answered 2xx.
    pub accepted: bool,
    /// When it arrived, after the receiver started.
    pub at: Duration,
    /// Wall clock at arrival, milliseconds since the epoch.
    pub at_ms: i64,
}

#[derive(Debug)]
struct Shared {
    secret: Mutex<String>,
    behaviour: Mutex<HookBehaviour>,
    received: Mutex<Vec<Received>>,
    seen: AtomicU64,
    /// Requests being answered now, and the most at once.
    open: AtomicU64,
    most_open: AtomicU64,
    started: Instant,
}

/// The receiver, on its own runtime; stops when dropped.
#[derive(Debug)]
pub struct HookReceiver {
    pub url: String,
    shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

fn fails(id: &str, attempt: u64, percent: u64) -> bool {
    // FNV-1a: a stable spread of (event, attempt) over 0..100.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes().chain(attempt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % 100 < percent
}

impl HookReceiver {
    pub fn start(behaviour: HookBehaviour) -> HookReceiver {
        let (rt, listener) = crate::stand_in_runtime("127.0.0.1:0");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            secret: Mutex::new(String::new()),
            behaviour: Mutex::new(behaviour),
            received: Mutex::new(Vec::new()),
            seen: AtomicU64::new(0),
            open: AtomicU64::new(0),
            most_open: AtomicU64::new(0),
            started: Instant::now(),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(shared.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        HookReceiver {
            url,
            shared,
            _rt: rt,
        }
    }

    /// The endpoint's secret, to check signatures with (the server shows it at creation).
    pub fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = secret.to_owned();
    }

    pub fn set_behaviour(&self, behaviour: HookBehaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Everything received, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The deliveries accepted, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }

    pub fn requests(&self) -> u64 {
        self.shared.seen.load(Ordering::Relaxed)
    }

    /// The most requests it was answering at once.
    pub fn most_at_once(&self) -> u64 {
        self.shared.most_open.load(Ordering::Relaxed)
    }
}

async fn receive(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    s.seen.fetch_add(1, Ordering::Relaxed);
    let at = s.started.elapsed();
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let secret = s.secret.lock().unwrap().clone();
    let signature_ok = standardwebhooks::Webhook::new(&secret)
        .map(|w| w.verify(&body, &headers).is_ok())
        .unwrap_or(false);
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let behaviour = s.behaviour.lock().unwrap().clone();
    let attempt = {
        let received = s.received.lock().unwrap();
        received.iter().filter(|r| r.id == id).count() as u64 + 1
    };
    let accepted = !behaviour.down && !fails(&id, attempt, behaviour.fail_percent);
    // Recorded before the wait: a delivery the server gives up on still arrived.
    s.received.lock().unwrap().push(Received {
        event,
        id,
        signature_ok,
        accepted: accepted && behaviour.delay.is_zero(),
        at,
        at_ms,
    });
    if !behaviour.delay.is_zero() {
        let open = s.open.fetch_add(1, Ordering::Relaxed) + 1;
        s.most_open.fetch_max(open, Ordering::Relaxed);
        tokio::time::sleep(behaviour.delay).await;
        s.open.fetch_sub(1, Ordering::Relaxed);
        if accepted {
            let mut received = s.received.lock().unwrap();
            if let Some(r) = received.iter_mut().rev().find(|r| r.at == at) {
                r.accepted = true;
            }
        }
    }
    if accepted {
        (StatusCode::NO_CONTENT, "")
    } else if behaviour.down {
        (StatusCode::INTERNAL_SERVER_ERROR, "down")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "try later")
    }
}
