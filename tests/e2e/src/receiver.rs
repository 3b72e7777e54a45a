//! A stand-in for FCM and APNs on loopback: it answers every push 200 (or fails a share of them,
//! or answers slowly), and keeps the device token of each push it accepted, in arrival order. The
//! server's real request builders talk to it (`--fcm-url`, `--apns-url`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};

/// How the receiver answers.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Every n-th push is answered 503 (0: none).
    pub fail_every: u64,
    /// Each answer waits this long.
    pub delay: Duration,
}

#[derive(Debug, Default)]
struct Shared {
    tokens: Mutex<Vec<String>>,
    bodies: Mutex<Vec<serde_json::Value>>,
    seen: AtomicU64,
    behaviour: Behaviour,
}

/// The receiver, on its own runtime; stops when dropped.
#[derive(Debug)]
pub struct PushReceiver {
    pub url: String,
    shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

/// The device token a push is for: FCM's `message.token`, or APNs' path `/3/device/{token}`.
fn token_of(uri: &Uri, body: &[u8]) -> Option<String> {
    if let Some(t) = uri.path().strip_prefix("/3/device/") {
        return Some(t.to_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["message"]["token"].as_str().map(str::to_owned)
}

impl PushReceiver {
    /// On a free loopback port.
    pub fn start(behaviour: Behaviour) -> PushReceiver {
        Self::start_on("127.0.0.1:0", behaviour)
    }

    pub fn start_on(addr: &str, behaviour: Behaviour) -> PushReceiver {
        let (rt, listener) = crate::stand_in_runtime(addr);
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            behaviour,
            ..Shared::default()
        });
        let app = axum::Router::new()
            .route(
                "/count",
                axum::routing::get(|State(s): State<Arc<Shared>>| async move {
                    let tokens = s.tokens.lock().unwrap();
                    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
                    axum::Json(serde_json::json!({"accepted": tokens.len(),
                        "distinct": distinct.len(), "requests": s.seen.load(Ordering::Relaxed)}))
                }),
            )
            .fallback(
                |State(s): State<Arc<Shared>>, uri: Uri, body: Bytes| async move {
                    let n = s.seen.fetch_add(1, Ordering::Relaxed) + 1;
                    if !s.behaviour.delay.is_zero() {
                        tokio::time::sleep(s.behaviour.delay).await;
                    }
                    if s.behaviour.fail_every > 0 && n % s.behaviour.fail_every == 0 {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "{\"error\":\"unavailable\"}",
                        );
                    }
                    if let Some(token) = token_of(&uri, &body) {
                        s.tokens.lock().unwrap().push(token);
                        let json = serde_json::from_slice(&body).unwrap_or_default();
                        s.bodies.lock().unwrap().push(json);
                    }
                    (StatusCode::OK, "{}")
                },
            )
            .with_state(shared.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        PushReceiver {
            url,
            shared,
            _rt: rt,
        }
    }

    /// The device tokens of the pushes accepted, in arrival order.
    pub fn tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().unwrap().clone()
    }

    /// The bodies of the pushes accepted, in arrival order.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.shared.bodies.lock().unwrap().clone()
    }

    /// Requests received (accepted or failed).
    pub fn requests(&self) -> u64 {
        self.shared.seen.load(Ordering::Relaxed)
    }
}
