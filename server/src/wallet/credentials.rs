//! Provider credentials the server mints itself (issue #18): OAuth 2 access tokens for FCM HTTP
//! v1 and the Google Wallet REST API from a service account key (an RS256 JWT exchanged at the
//! token endpoint, RFC 7523), cached and refreshed before they expire; and APNs provider tokens
//! (an ES256 JWT with the key id and team id, renewed well within the hour Apple allows).

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// Why a credential could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The operator's key file is not what it should be.
    #[error("{what}: {reason}")]
    BadKey { what: String, reason: String },
    /// The token endpoint refused or could not be reached.
    #[error("token endpoint: {0}")]
    Endpoint(String),
}

fn bad_key(what: &str, reason: impl ToString) -> CredentialError {
    CredentialError::BadKey {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// A bearer credential for a provider request.
#[async_trait]
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    async fn bearer(&self) -> Result<String, CredentialError>;
}

/// A token given ready-made (a deployment that mints its own).
#[derive(Debug, Clone)]
pub struct StaticToken(pub String);

#[async_trait]
impl TokenSource for StaticToken {
    async fn bearer(&self) -> Result<String, CredentialError> {
        Ok(self.0.clone())
    }
}

/// The fields of a Google service account key file that minting needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: String,
    /// PKCS #8 PEM.
    pub private_key: String,
    pub token_uri: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

impl ServiceAccount {
    pub fn from_json(text: &str) -> Result<Self, CredentialError> {
        let account: ServiceAccount =
            serde_json::from_str(text).map_err(|e| bad_key("service account", e))?;
        EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| bad_key("service account private_key", e))?;
        if !account.token_uri.starts_with("https://") && !is_loopback(&account.token_uri) {
            return Err(bad_key("service account token_uri", "not https"));
        }
        Ok(account)
    }
}

fn is_loopback(url: &str) -> bool {
    url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost")
}

/// The scope FCM HTTP v1 needs.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The scope the Google Wallet REST API needs.
pub const WALLET_SCOPE: &str = "https://www.googleapis.com/auth/wallet_object.issuer";
/// A token is renewed when it has less than this left.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How long the assertion asks for (Google's maximum).
const ASSERTION_S: i64 = 3600;

#[derive(Debug, Serialize, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub scope: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// The signed assertion exchanged for an access token.
pub fn service_account_assertion(
    account: &ServiceAccount,
    scope: &str,
    now_s: i64,
) -> Result<String, CredentialError> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(account.private_key_id.clone());
    let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
        .map_err(|e| bad_key("service account private_key", e))?;
    jsonwebtoken::encode(
        &header,
        &AssertionClaims {
            iss: account.client_email.clone(),
            scope: scope.to_owned(),
            aud: account.token_uri.clone(),
            iat: now_s,
            exp: now_s + ASSERTION_S,
        },
        &key,
    )
    .map_err(|e| bad_key("service account assertion", e))
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    /// Unix seconds.
    expires_at_s: i64,
}

/// OAuth 2 access tokens for one scope from a service account, cached.
#[derive(Debug)]
pub struct ServiceAccountTokens {
    account: ServiceAccount,
    scope: String,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Cached>>,
    /// Tokens fetched from the endpoint since start.
    pub fetched: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

impl ServiceAccountTokens {
    pub fn new(account: ServiceAccount, scope: &str) -> Self {
        ServiceAccountTokens {
            account,
            scope: scope.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            cached: tokio::sync::Mutex::new(None),
            fetched: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A token valid for at least [`REFRESH_MARGIN`] at `now_s`: the cached one, or a new one
    /// (one request at a time: concurrent callers wait for it).
    pub async fn token_at(&self, now_s: i64) -> Result<String, CredentialError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expires_at_s - now_s > REFRESH_MARGIN.as_secs() as i64
        {
            return Ok(c.token.clone());
        }
        let assertion = service_account_assertion(&self.account, &self.scope, now_s)?;
        let resp = self
            .http
            .post(&self.account.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| CredentialError::Endpoint(format!("unreachable: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| CredentialError::Endpoint(e.to_string()))?;
        if !status.is_success() {
            return Err(CredentialError::Endpoint(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| CredentialError::Endpoint(format!("not a token: {e}")))?;
        if answer.access_token.is_empty() || answer.expires_in <= 0 {
            return Err(CredentialError::Endpoint("an empty token".into()));
        }
        self.fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *cached = Some(Cached {
            token: answer.access_token.clone(),
            expires_at_s: now_s + answer.expires_in,
        });
        Ok(answer.access_token)
    }
}

#[async_trait]
impl TokenSource for ServiceAccountTokens {
    async fn bearer(&self) -> Result<String, CredentialError> {
        self.token_at(jiff::Timestamp::now().as_second()).await
    }
}

/// APNs provider tokens: renewed after this (Apple refuses tokens older than an hour, and
/// renewals more often than every 20 minutes).
pub const APNS_TOKEN_AGE: Duration = Duration::from_secs(50 * 60);

#[derive(Debug, Serialize, Deserialize)]
pub struct ApnsClaims {
    pub iss: String,
    pub iat: i64,
}

/// APNs provider tokens from the operator's `.p8` key.
pub struct ApnsTokens {
    key_id: String,
    team_id: String,
    key: EncodingKey,
    cached: Mutex<Option<(String, i64)>>,
}

impl std::fmt::Debug for ApnsTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsTokens")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl ApnsTokens {
    /// `p8`: the PKCS #8 PEM of the P-256 key Apple issued; its 10-character id; the team.
    pub fn new(p8: &str, key_id: &str, team_id: &str) -> Result<Self, CredentialError> {
        let ten = |s: &str| s.len() == 10 && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ten(key_id) {
            return Err(bad_key("apns key id", "10 letters and digits"));
        }
        if !ten(team_id) {
            return Err(bad_key("apns team id", "10 letters and digits"));
        }
        let key = EncodingKey::from_ec_pem(p8.as_bytes()).map_err(|e| bad_key("apns key", e))?;
        let tokens = ApnsTokens {
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            key,
            cached: Mutex::new(None),
        };
        // Sign once now: a key that cannot sign (not P-256) is refused at start.
        tokens.token_at(0)?;
        *tokens.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(tokens)
    }

    /// The token in force at `now_s`: made again once it is [`APNS_TOKEN_AGE`] old.
    pub fn token_at(&self, now_s: i64) -> Result<String, CredentialError> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, iat)) = cached.as_ref()
            && now_s - iat < APNS_TOKEN_AGE.as_secs() as i64
            && now_s >= *iat
        {
            return Ok(token.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let token = jsonwebtoken::encode(
            &header,
            &ApnsClaims {
                iss: self.team_id.clone(),
                iat: now_s,
            },
            &self.key,
        )
        .map_err(|e| bad_key("apns token", e))?;
        *cached = Some((token.clone(), now_s));
        Ok(token)
    }
}

#[async_trait]
impl TokenSource for ApnsTokens {
    async fn bearer(&self) -> Result<String, CredentialError> {
        self.token_at(jiff::Timestamp::now().as_second())
    }
}
