//! Push offers end to end: a member registers a push token and consents, the operator runs a
//! campaign, the server sends FCM HTTP v1 and APNs requests to a local receiver (the one fake:
//! those services are not reachable here), and the message it received is handed to the phone's
//! `handle_push`, which shows it once, caches the offer and suppresses repeats and expired ones.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_core::Tessera;
use tessera_core::api::PushProvider;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::nearby::SuppressReason;
use tessera_core::privacy::ConsentChoice;
use tessera_core::push::{PushDecision, PushError};
use tessera_e2e::{ADMIN_TOKEN, Server, device, seed};
use tessera_server::ServerConfig;
use tessera_server::push::{ApnsConfig, FcmConfig, PushConfig};

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// A local HTTP server standing in for FCM and APNs: records every request, answers 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(
                |State(got): State<Arc<Mutex<Vec<Received>>>>,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    got.lock().unwrap().push(Received {
                        path: uri.path().to_owned(),
                        headers,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    "{}"
                },
            )
            .with_state(got.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got, _rt: rt }
    }

    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

fn text() -> ConsentText {
    ConsentText {
        version: "push-2026-11".into(),
        text: "Offers by push notification.".into(),
    }
}

fn member(
    server: &Server,
    provider: PushProvider,
    token: &str,
    consent: bool,
) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    assert!(t.set_push_token(provider, token).unwrap());
    assert!(
        !t.set_push_token(provider, token).unwrap(),
        "unchanged: not sent again"
    );
    if consent {
        t.record_consent(
            &[ConsentChoice {
                purpose: Purpose::MarketingOffers,
                channel: Channel::Push,
                decision: Decision::Granted,
            }],
            &text(),
        )
        .unwrap();
    }
    t.set_preferences(&tessera_core::preferences::Preferences {
        quiet_hours: None,
        ..t.preferences().unwrap()
    })
    .unwrap();
    let report = t.sync().unwrap();
    assert_eq!(report.rejected, 0, "{:?}", t.rejected_actions().unwrap());
    (dir, t)
}

fn campaign(id: &str, expires_at: &str) -> Value {
    let mut offer = serde_json::to_value(&seed().offers[0]).unwrap();
    offer["id"] = json!(format!("of-{id}"));
    json!({"id": id, "offer": offer, "title": "Tea time at Maison Dupont",
        "body": "−20 % this week", "expires_at": expires_at, "collapse_key": "weekly"})
}

#[test]
fn a_campaign_reaches_consenting_devices_through_fcm_and_apns_and_shows_once() {
    let receiver = Receiver::start();
    let config = ServerConfig {
        push: PushConfig {
            fcm: Some(FcmConfig {
                base_url: receiver.url.clone(),
                project_id: "tessera-test".into(),
                credential: std::sync::Arc::new(tessera_server::push::StaticToken(
                    "fcm-oauth-token".into(),
                )),
            }),
            apns: Some(ApnsConfig {
                base_url: receiver.url.clone(),
                topic: "app.tessera.demo".into(),
                credential: std::sync::Arc::new(tessera_server::push::StaticToken(
                    "apns-jwt".into(),
                )),
            }),
        },
        ..ServerConfig::default()
    };
    let server = Server::start_with(config, Some(seed()));
    let (_a, android) = member(&server, PushProvider::Fcm, "fcm-device-token-1", true);
    let (_b, iphone) = member(&server, PushProvider::Apns, "apns-device-token-2", true);
    let (_c, silent) = member(&server, PushProvider::Fcm, "fcm-device-token-3", false);

    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap()
        .to_string();
    let http = Client::new();
    let report = tessera_e2e::run_campaign(&server, &campaign("cmp-tea-1", &expires));
    assert_eq!(report["members"], 2, "only members who consented: {report}");
    assert_eq!(
        (report["sent"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(0))
    );

    let got = receiver.take();
    assert_eq!(got.len(), 2);
    let fcm = got
        .iter()
        .find(|r| r.path.contains("messages:send"))
        .unwrap();
    assert_eq!(fcm.path, "/v1/projects/tessera-test/messages:send");
    assert_eq!(fcm.headers["authorization"], "Bearer fcm-oauth-token");
    assert_eq!(fcm.body["message"]["token"], "fcm-device-token-1");
    let apns = got
        .iter()
        .find(|r| r.path.starts_with("/3/device/"))
        .unwrap();
    assert_eq!(apns.path, "/3/device/apns-device-token-2");
    assert_eq!(apns.headers["apns-topic"], "app.tessera.demo");
    assert_eq!(apns.headers["apns-push-type"], "alert");
    assert_eq!(apns.headers["apns-collapse-id"], "weekly");

    // What the OS hands the app: FCM's data map, APNs' userInfo (the body minus nothing).
    let fcm_message = fcm.body["message"]["data"].to_string();
    let now = jiff::Timestamp::now().as_millisecond();
    let shown = android.handle_push(&fcm_message, now).unwrap();
    let PushDecision::Show { notification } = &shown else {
        panic!("{shown:?}")
    };
    assert_eq!(notification.title, "Tea time at Maison Dupont");
    assert_eq!(notification.offer_id, "of-cmp-tea-1");
    assert_eq!(
        android.handle_push(&fcm_message, now).unwrap(),
        PushDecision::Suppress {
            reason: SuppressReason::Duplicate
        }
    );
    // The offer is cached: the tap opens it offline.
    assert!(
        android
            .offers(200)
            .unwrap()
            .offers
            .iter()
            .any(|o| o.id == "of-cmp-tea-1")
    );
    let apns_message = apns.body.to_string();
    assert!(matches!(
        iphone.handle_push(&apns_message, now).unwrap(),
        PushDecision::Show { .. }
    ));
    // A phone whose member withdrew since suppresses it even if it arrives.
    assert_eq!(
        silent.handle_push(&fcm_message, now).unwrap(),
        PushDecision::Suppress {
            reason: SuppressReason::NoConsent
        }
    );
    // Delivered after its expiry: not shown.
    let late = now + 48 * 3_600_000;
    let mut copy: Value = serde_json::from_str(&apns_message).unwrap();
    copy["tessera"]["id"] = json!("another-delivery");
    assert_eq!(
        iphone.handle_push(&copy.to_string(), late).unwrap(),
        PushDecision::Suppress {
            reason: SuppressReason::Expired
        }
    );

    // The same campaign id twice is refused before anything is sent; a past expiry too.
    let again = http
        .post(format!("{}/admin/v1/campaigns", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&campaign("cmp-tea-1", &expires))
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
    let past = http
        .post(format!("{}/admin/v1/campaigns", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&campaign("cmp-old", "2020-01-01T00:00:00Z"))
        .send()
        .unwrap();
    assert_eq!(past.status(), 422);
    assert!(
        receiver.take().is_empty(),
        "nothing sent for refused campaigns"
    );

    // A silent "sync now".
    let sync = json!({"tessera": {"v": 1, "id": "sync-1", "kind": "sync"}}).to_string();
    assert_eq!(
        android.handle_push(&sync, now).unwrap(),
        PushDecision::SyncNow
    );
    // Not ours, or malformed: typed errors.
    let err = |m: &str| match android.handle_push(m, now) {
        Err(tessera_core::push::PushHandlingError::Message(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(err(r#"{"aps":{}}"#), PushError::NotTessera);
    assert!(matches!(err("{"), PushError::NotJson { .. }));
}

#[test]
fn audiences_follow_tier_segment_interests_and_shops() {
    let receiver = Receiver::start();
    let config = ServerConfig {
        push: PushConfig {
            fcm: Some(FcmConfig {
                base_url: receiver.url.clone(),
                project_id: "p".into(),
                credential: std::sync::Arc::new(tessera_server::push::StaticToken("t".into())),
            }),
            apns: None,
        },
        ..ServerConfig::default()
    };
    let server = Server::start_with(config, Some(seed()));
    let (_a, tea) = member(&server, PushProvider::Fcm, "tok-tea", true);
    tea.set_preferences(&tessera_core::preferences::Preferences {
        interests: vec!["tea".into()],
        ..tea.preferences().unwrap()
    })
    .unwrap();
    tea.sync().unwrap();
    let (_b, vip) = member(&server, PushProvider::Apns, "tok-vip", true);
    let vip_id = vip.sync_status().unwrap().member_id.unwrap();
    let http = Client::new();
    let status = http
        .put(format!(
            "{}/admin/v1/members/{vip_id}/segments",
            server.url()
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!(["vip"]))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 204);
    vip.sync().unwrap();
    assert_eq!(vip.member_state().unwrap().unwrap().state.segments, ["vip"]);
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap()
        .to_string();
    let run = |id: &str, audience: Value| -> Value {
        let mut body = campaign(id, &expires);
        body["audience"] = audience;
        tessera_e2e::run_campaign(&server, &body)
    };
    assert_eq!(run("c-vip", json!({"segments": ["vip"]}))["members"], 1);
    // The tea drinker is not sent coffee; a member with no declared interests is.
    assert_eq!(
        run("c-coffee", json!({"categories": ["coffee"]}))["members"],
        1
    );
    assert_eq!(run("c-tea", json!({"categories": ["tea"]}))["members"], 2);
    assert_eq!(run("c-gold", json!({"tiers": ["Gold"]}))["members"], 0);
    // Shops: the tea drinker's favourite is Lyon; nobody chose or bought in Paris. A shop the
    // catalog does not have is refused, not counted as nobody.
    tea.set_favourite_store("st-lyon-01", true).unwrap();
    tea.sync().unwrap();
    assert_eq!(
        run("c-lyon", json!({"shops": ["st-lyon-01"]}))["members"],
        1
    );
    assert_eq!(
        run("c-paris", json!({"shops": ["st-paris-01"]}))["members"],
        0
    );
    let mut nowhere = campaign("c-nowhere", &expires);
    nowhere["audience"] = json!({"shops": ["st-lyon-01", "st-nowhere"]});
    let (status, problem) = tessera_e2e::admin(
        reqwest::Method::POST,
        &server,
        "/admin/v1/campaigns",
        nowhere,
    );
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("campaign.audience.shops: no shop \"st-nowhere\""),
        "{problem}"
    );
    // APNs is not configured here: its delivery fails and is counted, FCM's goes out.
    let report = run("c-all", json!({}));
    assert_eq!(
        (report["sent"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1))
    );
}
