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

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    /// A P-256 key as Apple issues it (PKCS #8 PEM) and its public key.
    fn apns_key() -> (String, Vec<u8>) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let pem = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, pkcs8.as_ref())
            .unwrap();
        (pem, pair.public_key().as_ref().to_vec())
    }

    #[test]
    fn apns_provider_tokens_are_es256_renewed_within_the_hour() {
        let (pem, public) = apns_key();
        let tokens = ApnsTokens::new(&pem, "ABC123DEFG", "TEAM123456").unwrap();
        let t0 = 1_796_000_000;
        let first = tokens.token_at(t0).unwrap();
        assert_eq!(tokens.token_at(t0 + 49 * 60).unwrap(), first, "reused");
        let renewed = tokens.token_at(t0 + 50 * 60).unwrap();
        assert_ne!(renewed, first, "renewed before Apple's hour");
        let key = jsonwebtoken::DecodingKey::from_ec_der(&public);
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.required_spec_claims = Default::default();
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<ApnsClaims>(&renewed, &key, &v).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some("ABC123DEFG"));
        assert_eq!(data.claims.iss, "TEAM123456");
        assert_eq!(data.claims.iat, t0 + 50 * 60);
        // A clock set back is not a reason to keep a token from the future.
        assert_ne!(tokens.token_at(t0).unwrap(), renewed);
    }

    #[test]
    fn bad_keys_are_refused_at_start() {
        let (pem, _) = apns_key();
        assert!(matches!(
            ApnsTokens::new(&pem, "short", "TEAM123456"),
            Err(CredentialError::BadKey { .. })
        ));
        assert!(matches!(
            ApnsTokens::new("not a key", "ABC123DEFG", "TEAM123456"),
            Err(CredentialError::BadKey { .. })
        ));
        assert!(ServiceAccount::from_json("{}").is_err());
        let account = serde_json::json!({
            "client_email": "a@b", "private_key_id": "k", "private_key": pem,
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        assert!(
            ServiceAccount::from_json(&account.to_string()).is_err(),
            "an EC key is not a service account's RSA key"
        );
    }

    /// A token endpoint on loopback that counts its tokens.
    async fn endpoint(lifetime: i64) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        let count = Arc::new(AtomicU32::new(0));
        let c = count.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move |body: String| {
                let c = c.clone();
                async move {
                    assert!(body.contains("grant_type=urn"), "{body}");
                    let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                    axum::Json(serde_json::json!({
                        "access_token": format!("tok-{n}"), "expires_in": lifetime,
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, count)
    }

    fn rsa_account(token_uri: &str) -> ServiceAccount {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl");
        ServiceAccount {
            client_email: "svc@test".into(),
            private_key_id: "k1".into(),
            private_key: String::from_utf8(out.stdout).unwrap(),
            token_uri: token_uri.into(),
            project_id: None,
        }
    }

    #[tokio::test]
    async fn access_tokens_are_cached_and_refreshed_before_they_expire() {
        let (url, count) = endpoint(3600).await;
        let tokens = ServiceAccountTokens::new(rsa_account(&url), FCM_SCOPE);
        let t0 = 1_796_000_000;
        assert_eq!(tokens.token_at(t0).await.unwrap(), "tok-1");
        assert_eq!(tokens.token_at(t0 + 3000).await.unwrap(), "tok-1", "cached");
        assert_eq!(
            tokens.token_at(t0 + 3301).await.unwrap(),
            "tok-2",
            "refreshed five minutes before the end"
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Many callers at once: one request.
        let tokens = std::sync::Arc::new(tokens);
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let t = tokens.clone();
                tokio::spawn(async move { t.token_at(t0 + 7000).await.unwrap() })
            })
            .collect();
        for c in calls {
            assert_eq!(c.await.unwrap(), "tok-3");
        }
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unreachable_or_refusing_endpoint_is_a_typed_error() {
        let tokens = ServiceAccountTokens::new(rsa_account("http://127.0.0.1:1/token"), FCM_SCOPE);
        assert!(matches!(
            tokens.token_at(0).await,
            Err(CredentialError::Endpoint(_))
        ));
    }
}
