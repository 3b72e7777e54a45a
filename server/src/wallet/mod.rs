//! Wallet passes and the credentials the server mints for the services it calls (issue #18,
//! docs/adr/0026).
//!
//! - [`apple`]: `.pkpass` files signed with the pass type certificate;
//! - [`google`]: save links and object updates for Google Wallet;
//! - [`crate::credentials`]: OAuth 2 tokens from service accounts, APNs provider tokens;
//! - [`WalletConfig`]: what the operator supplies, checked once at start;
//! - [`Notifier`]: tells the wallets a pass changed (an APNs push with the pass type
//!   certificate; a Google object update).

pub mod apple;
pub mod google;

use std::sync::Arc;
use std::time::Duration;

use tessera_domain::pass::Branding;

use self::apple::{PassImages, PassSigner};
use crate::credentials::{ServiceAccount, ServiceAccountTokens, TokenSource};

/// Apple Wallet, as the operator set it up.
#[derive(Debug)]
pub struct AppleWallet {
    pub pass_type_id: String,
    pub team_id: String,
    /// The PassKit web service's public base (`https://…/passkit`).
    pub web_service_url: String,
    pub signer: PassSigner,
    pub images: PassImages,
    /// APNs for pass updates (`https://api.push.apple.com`; a local receiver in tests).
    pub apns_url: String,
    /// The HTTP client that presents the pass type certificate to APNs (Apple authenticates
    /// pass update pushes with it, not with provider tokens).
    pub apns_client: reqwest::Client,
}

/// Google Wallet, as the operator set it up.
#[derive(Debug)]
pub struct GoogleWallet {
    /// The issuer's number.
    pub issuer_id: String,
    /// The loyalty class's suffix (`{issuer}.{suffix}`).
    pub class_suffix: String,
    pub account: ServiceAccount,
    /// Access tokens for the Wallet API (scope `wallet_object.issuer`).
    pub tokens: Arc<dyn TokenSource>,
    /// `https://walletobjects.googleapis.com`; a local receiver in tests.
    pub api_url: String,
    /// Web origins allowed to show the save button.
    pub origins: Vec<String>,
    pub http: reqwest::Client,
}

impl GoogleWallet {
    pub fn class_id(&self) -> String {
        format!("{}.{}", self.issuer_id, self.class_suffix)
    }
}

/// The wallets the server issues passes for.
#[derive(Debug)]
pub struct WalletConfig {
    pub branding: Branding,
    pub apple: Option<AppleWallet>,
    pub google: Option<GoogleWallet>,
}

/// An HTTP client for a provider: bounded waits.
pub fn client(identity: Option<reqwest::Identity>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| {
        // reqwest says "builder error"; the reason is in the source (rustls refusing the
        // certificate, say).
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    })
}

impl GoogleWallet {
    /// From the service account key file: tokens minted for the Wallet API at its token URI.
    pub fn new(
        issuer_id: String,
        class_suffix: String,
        account: ServiceAccount,
        api_url: String,
        origins: Vec<String>,
    ) -> Result<Self, String> {
        let tokens = Arc::new(ServiceAccountTokens::new(
            account.clone(),
            crate::credentials::WALLET_SCOPE,
        ));
        Ok(GoogleWallet {
            issuer_id,
            class_suffix,
            account,
            tokens,
            api_url,
            origins,
            http: client(None)?,
        })
    }
}

/// How telling a wallet went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    Done,
    /// The device's token is no longer valid (APNs 410): forget the registration.
    Gone,
    /// Google has no such object (the member never saved it).
    NotSaved,
}

/// The APNs request that tells one device's Wallet a pass changed: an empty payload on the pass
/// type's topic (sent with the pass type certificate as the client's).
pub fn pass_update_request(apple: &AppleWallet, push_token: &str) -> crate::push::WireRequest {
    crate::push::WireRequest {
        url: format!(
            "{}/3/device/{push_token}",
            apple.apns_url.trim_end_matches('/')
        ),
        headers: vec![
            ("apns-topic".into(), apple.pass_type_id.clone()),
            ("apns-push-type".into(), "background".into()),
            ("apns-priority".into(), "5".into()),
        ],
        body: serde_json::json!({}),
    }
}

/// Tell one device's Wallet that a pass changed.
pub async fn push_pass_update(apple: &AppleWallet, push_token: &str) -> Result<Told, String> {
    let request = pass_update_request(apple, push_token);
    let resp = crate::push::send_wire(&apple.apns_client, reqwest::Method::POST, &request).await?;
    match resp.status().as_u16() {
        200..=299 => Ok(Told::Done),
        410 => Ok(Told::Gone),
        _ => Err(crate::push::refusal(resp).await),
    }
}

/// Replace a Google object with its new state.
pub async fn update_google_object(
    google: &GoogleWallet,
    kind: google::ObjectKind,
    object: &serde_json::Value,
) -> Result<Told, String> {
    let token = google.tokens.bearer().await.map_err(|e| e.to_string())?;
    let request = google::update_request(&google.api_url, kind, object, &token);
    let resp = crate::push::send_wire(&google.http, reqwest::Method::PUT, &request).await?;
    match resp.status().as_u16() {
        200..=299 => Ok(Told::Done),
        404 => Ok(Told::NotSaved),
        _ => Err(crate::push::refusal(resp).await),
    }
}

/// The operator's wallet settings file (JSON; paths relative to the file).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletFile {
    pub branding: Branding,
    #[serde(default)]
    pub apple: Option<AppleFile>,
    #[serde(default)]
    pub google: Option<GoogleFile>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleFile {
    pub pass_type_id: String,
    pub team_id: String,
    /// The PassKit web service's public address: this server's public URL + `/passkit`.
    pub web_service_url: String,
    /// The pass type certificate (PEM).
    pub certificate: std::path::PathBuf,
    /// Its key (PKCS #8 PEM).
    pub key: std::path::PathBuf,
    /// Apple's WWDR intermediate (PEM).
    pub wwdr: std::path::PathBuf,
    /// A directory of the pass's PNG images (`icon.png` at least).
    pub images: std::path::PathBuf,
    #[serde(default = "default_apns_url")]
    pub apns_url: String,
}

fn default_apns_url() -> String {
    "https://api.push.apple.com".into()
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleFile {
    pub issuer_id: String,
    pub class_suffix: String,
    /// The service account key file (JSON).
    pub service_account: std::path::PathBuf,
    #[serde(default = "default_google_api")]
    pub api_url: String,
    #[serde(default)]
    pub origins: Vec<String>,
}

fn default_google_api() -> String {
    "https://walletobjects.googleapis.com".into()
}

impl WalletConfig {
    /// Read and check the operator's settings: the branding, the certificate and key (the key
    /// must be the certificate's, issued by the WWDR certificate), the images (Apple's sizes),
    /// the service account key and the Google class (Google's limits). Every problem is found
    /// at start, not at the first pass.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let read = |p: &std::path::Path| -> Result<String, String> {
            let p = dir.join(p);
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: WalletFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        file.branding.validate().map_err(|e| e.to_string())?;
        let apple = match file.apple {
            None => None,
            Some(a) => {
                let (cert, key, wwdr) = (read(&a.certificate)?, read(&a.key)?, read(&a.wwdr)?);
                let signer = PassSigner::from_pem(&cert, &key, &wwdr).map_err(|e| e.to_string())?;
                tessera_domain::pass::AppleIdentity {
                    pass_type_id: a.pass_type_id.clone(),
                    team_id: a.team_id.clone(),
                    web_service_url: Some(a.web_service_url.clone()),
                    authentication_token: "x".repeat(tessera_domain::pass::MIN_AUTH_TOKEN),
                }
                .validate()
                .map_err(|e| e.to_string())?;
                if let Some(named) = signer.pass_type_id()
                    && named != a.pass_type_id
                {
                    return Err(format!(
                        "the pass type certificate is for {named}, not {}",
                        a.pass_type_id
                    ));
                }
                let images =
                    PassImages::from_dir(&dir.join(&a.images)).map_err(|e| e.to_string())?;
                let identity =
                    reqwest::Identity::from_pem(format!("{key}\n{cert}\n{wwdr}").as_bytes())
                        .map_err(|e| format!("the pass type certificate for APNs: {e}"))?;
                Some(AppleWallet {
                    pass_type_id: a.pass_type_id,
                    team_id: a.team_id,
                    web_service_url: a.web_service_url,
                    signer,
                    images,
                    apns_url: a.apns_url,
                    apns_client: client(Some(identity))
                        .map_err(|e| format!("the pass type certificate for APNs: {e}"))?,
                })
            }
        };
        let google = match file.google {
            None => None,
            Some(g) => {
                let account = ServiceAccount::from_json(&read(&g.service_account)?)
                    .map_err(|e| e.to_string())?;
                tessera_domain::pass::google_loyalty_class(
                    &file.branding,
                    &g.issuer_id,
                    &g.class_suffix,
                )
                .map_err(|e| format!("the Google loyalty class: {e}"))?;
                Some(GoogleWallet::new(
                    g.issuer_id,
                    g.class_suffix,
                    account,
                    g.api_url,
                    g.origins,
                )?)
            }
        };
        Ok(WalletConfig {
            branding: file.branding,
            apple,
            google,
        })
    }
}
