//! Sending push messages: a gateway trait, and the FCM HTTP v1 and APNs requests built to those
//! services' documented formats. The requests go to configurable base URLs: the real services in
//! production, a local HTTP receiver in tests (they are not reachable from CI).
//!
//! Provider credentials come from a [`TokenSource`]: minted by the server from the operator's
//! keys (an OAuth 2 access token from a service account for FCM, an ES256 provider token for
//! APNs: [`crate::credentials`]), or given ready-made.

use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

pub use crate::credentials::{StaticToken, TokenSource};
use tessera_domain::api::PushProvider;
use tessera_domain::push::{PushKind, PushPayload};

/// FCM HTTP v1: `POST {base_url}/v1/projects/{project_id}/messages:send`.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    pub base_url: String,
    pub project_id: String,
    /// OAuth 2 access tokens (scope `firebase.messaging`).
    pub credential: Arc<dyn TokenSource>,
}

/// APNs: `POST {base_url}/3/device/{token}` (HTTP/2 against Apple).
#[derive(Debug, Clone)]
pub struct ApnsConfig {
    pub base_url: String,
    /// The app's bundle id.
    pub topic: String,
    /// Provider tokens (ES256 JWTs).
    pub credential: Arc<dyn TokenSource>,
}

/// Push providers the server can reach; none configured means every push fails with a reason.
#[derive(Debug, Clone, Default)]
pub struct PushConfig {
    pub fcm: Option<FcmConfig>,
    pub apns: Option<ApnsConfig>,
}

/// One message for one device.
#[derive(Debug, Clone)]
pub struct OutgoingPush {
    pub provider: PushProvider,
    pub device_token: String,
    pub payload: PushPayload,
    /// Unix seconds after which the service may drop it.
    pub expires_at_s: i64,
}

/// A request as it goes on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct WireRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

/// The FCM HTTP v1 request: a data-only message (the app decides what to show through
/// `handle_push`), high priority for offers, with a TTL and a collapse key.
pub fn fcm_request(cfg: &FcmConfig, token: &str, push: &OutgoingPush, now_s: i64) -> WireRequest {
    let ttl = (push.expires_at_s - now_s).max(0);
    let mut android = json!({
        "priority": if push.payload.kind == PushKind::Offer { "HIGH" } else { "NORMAL" },
        "ttl": format!("{ttl}s"),
    });
    if let Some(key) = &push.payload.collapse_key {
        android["collapse_key"] = json!(key);
    }
    let payload = serde_json::to_string(&push.payload).unwrap_or_default();
    WireRequest {
        url: format!(
            "{}/v1/projects/{}/messages:send",
            cfg.base_url.trim_end_matches('/'),
            cfg.project_id
        ),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            (
                "content-type".into(),
                "application/json; charset=UTF-8".into(),
            ),
        ],
        body: json!({
            "message": {
                "token": push.device_token,
                "data": { "tessera": payload },
                "android": android,
            }
        }),
    }
}

/// The APNs request: an alert (mutable, so a notification service extension may enrich it) for
/// offers, a background push for "sync now"; expiry, priority and collapse id as headers.
pub fn apns_request(cfg: &ApnsConfig, token: &str, push: &OutgoingPush) -> WireRequest {
    let p = &push.payload;
    let (push_type, priority, aps) = match p.kind {
        PushKind::Offer => {
            let title = p
                .title
                .clone()
                .or_else(|| p.offer.as_ref().map(|o| o.title.clone()))
                .unwrap_or_default();
            let body = p
                .body
                .clone()
                .or_else(|| p.offer.as_ref().map(|o| o.description.clone()))
                .unwrap_or_default();
            (
                "alert",
                "10",
                json!({"alert": {"title": title, "body": body}, "mutable-content": 1}),
            )
        }
        PushKind::Sync => ("background", "5", json!({"content-available": 1})),
    };
    let mut headers = vec![
        ("authorization".into(), format!("bearer {token}")),
        ("apns-topic".into(), cfg.topic.clone()),
        ("apns-push-type".into(), push_type.into()),
        ("apns-priority".into(), priority.into()),
        (
            "apns-expiration".into(),
            push.expires_at_s.max(0).to_string(),
        ),
    ];
    if let Some(key) = &p.collapse_key {
        headers.push(("apns-collapse-id".into(), key.clone()));
    }
    WireRequest {
        url: format!(
            "{}/3/device/{}",
            cfg.base_url.trim_end_matches('/'),
            push.device_token
        ),
        headers,
        body: json!({"aps": aps, "tessera": p}),
    }
}

/// The most either service accepts as a payload.
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// The push a campaign sends to one device: its id is unique per campaign and device (a digest
/// of both), so that the phone shows it once however often it arrives.
pub fn campaign_payload(
    campaign: &tessera_domain::api::Campaign,
    device_id: &str,
) -> tessera_domain::push::PushPayload {
    use sha2::Digest;
    use tessera_domain::push::{PUSH_VERSION, PushKind, PushPayload};
    let digest = sha2::Sha256::digest(format!("{}\n{device_id}", campaign.id).as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    PushPayload {
        v: PUSH_VERSION,
        id: format!("p-{hex}"),
        kind: PushKind::Offer,
        campaign_id: Some(campaign.id.clone()),
        offer: Some(campaign.offer.clone()),
        expires_at: Some(campaign.expires_at.clone()),
        collapse_key: campaign.collapse_key.clone(),
        title: campaign.title.clone(),
        body: campaign.body.clone(),
    }
}

/// The push a journey's entry sends to one device: its id a digest of the entry and the
/// device (shown once however often it arrives); messages of a journey replace each other.
pub fn journey_payload(
    entry: &crate::storage::repo::JourneyEntry,
    offer: &tessera_domain::catalog::Offer,
    title: &str,
    body: &str,
    device_id: &str,
) -> tessera_domain::push::PushPayload {
    use sha2::Digest;
    use tessera_domain::push::{PUSH_VERSION, PushKind, PushPayload};
    let digest = sha2::Sha256::digest(
        format!(
            "journey\n{}\n{}\n{}\n{device_id}",
            entry.journey, entry.member_id, entry.occurrence
        )
        .as_bytes(),
    );
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    // Display limits of the payload (a long name can push a filled-in text past them).
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>().trim().to_owned();
    PushPayload {
        v: PUSH_VERSION,
        id: format!("j-{hex}"),
        kind: PushKind::Offer,
        campaign_id: Some(format!("journey-{}", entry.journey.replace('_', "-"))),
        offer: Some(offer.clone()),
        expires_at: Some(offer.valid_to.clone()),
        collapse_key: Some(format!("journey-{}", entry.journey.replace('_', "-"))),
        title: Some(cut(title, 200)),
        body: Some(cut(body, 1000)),
    }
}

/// Delivers pushes.
#[async_trait]
pub trait PushGateway: Send + Sync + std::fmt::Debug {
    /// Send one message; `Err` carries why it failed (status and service reason when known).
    async fn send(&self, push: &OutgoingPush) -> Result<(), String>;
}

/// The gateway over HTTP to FCM and APNs.
#[derive(Debug)]
pub struct HttpGateway {
    http: reqwest::Client,
    config: PushConfig,
}

impl HttpGateway {
    pub fn new(config: PushConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        HttpGateway { http, config }
    }
}

#[async_trait]
impl PushGateway for HttpGateway {
    async fn send(&self, push: &OutgoingPush) -> Result<(), String> {
        let now_s = jiff::Timestamp::now().as_second();
        let request = match push.provider {
            PushProvider::Fcm => {
                let cfg = self.config.fcm.as_ref().ok_or("fcm is not configured")?;
                let token = cfg.credential.bearer().await.map_err(|e| e.to_string())?;
                fcm_request(cfg, &token, push, now_s)
            }
            PushProvider::Apns => {
                let cfg = self.config.apns.as_ref().ok_or("apns is not configured")?;
                let token = cfg.credential.bearer().await.map_err(|e| e.to_string())?;
                apns_request(cfg, &token, push)
            }
        };
        let resp = send_wire(&self.http, reqwest::Method::POST, &request).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(refusal(resp).await)
        }
    }
}

/// Send a request as it was built (URL, headers, JSON body) with `method`.
pub(crate) async fn send_wire(
    http: &reqwest::Client,
    method: reqwest::Method,
    request: &WireRequest,
) -> Result<reqwest::Response, String> {
    let body = serde_json::to_vec(&request.body).map_err(|e| e.to_string())?;
    let mut builder = http.request(method, &request.url).body(body);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    builder
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))
}

/// A service's refusal as "status, then the start of its answer" (for the log).
pub(crate) async fn refusal(resp: reqwest::Response) -> String {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    format!("{status} {}", text.chars().take(200).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind) -> OutgoingPush {
        OutgoingPush {
            provider: PushProvider::Apns,
            device_token: "abc123".into(),
            payload: PushPayload {
                v: 1,
                id: "p-1".into(),
                kind,
                campaign_id: Some("c-1".into()),
                offer: None,
                expires_at: Some("2026-12-01T00:00:00Z".into()),
                collapse_key: Some("tea".into()),
                title: Some("Tea time".into()),
                body: Some("−20 %".into()),
            },
            expires_at_s: 1_795_000_000,
        }
    }

    #[test]
    fn fcm_messages_are_data_only_with_ttl_and_collapse_key() {
        let cfg = FcmConfig {
            base_url: "https://fcm.googleapis.com/".into(),
            project_id: "tessera-prod".into(),
            credential: Arc::new(StaticToken("ya29.x".into())),
        };
        let r = fcm_request(&cfg, "ya29.x", &push(PushKind::Offer), 1_795_000_000 - 3600);
        assert_eq!(r.headers[0].1, "Bearer ya29.x");
        assert_eq!(
            r.url,
            "https://fcm.googleapis.com/v1/projects/tessera-prod/messages:send"
        );
        assert_eq!(r.body["message"]["token"], "abc123");
        assert_eq!(r.body["message"]["android"]["ttl"], "3600s");
        assert_eq!(r.body["message"]["android"]["collapse_key"], "tea");
        assert!(r.body["message"].get("notification").is_none(), "data only");
        let data: serde_json::Value =
            serde_json::from_str(r.body["message"]["data"]["tessera"].as_str().unwrap()).unwrap();
        assert_eq!(data["id"], "p-1");
    }

    #[test]
    fn apns_offers_alert_and_syncs_are_background() {
        let cfg = ApnsConfig {
            base_url: "https://api.push.apple.com".into(),
            topic: "app.tessera.demo".into(),
            credential: Arc::new(StaticToken("jwt".into())),
        };
        let offer = apns_request(&cfg, "jwt", &push(PushKind::Offer));
        assert_eq!(offer.url, "https://api.push.apple.com/3/device/abc123");
        let h = |r: &WireRequest, n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(h(&offer, "apns-push-type").as_deref(), Some("alert"));
        assert_eq!(h(&offer, "apns-priority").as_deref(), Some("10"));
        assert_eq!(h(&offer, "apns-collapse-id").as_deref(), Some("tea"));
        assert_eq!(offer.body["aps"]["alert"]["title"], "Tea time");
        assert_eq!(offer.body["tessera"]["id"], "p-1");
        let sync = apns_request(&cfg, "jwt", &push(PushKind::Sync));
        assert_eq!(h(&sync, "apns-push-type").as_deref(), Some("background"));
        assert_eq!(h(&sync, "apns-priority").as_deref(), Some("5"));
        assert_eq!(sync.body["aps"]["content-available"], 1);
    }
}
