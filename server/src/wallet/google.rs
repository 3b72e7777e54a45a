//! Google Wallet: the "Save to Google Wallet" link (an RS256 JWT signed with the operator's
//! service account key, `typ` `savetowallet`), and the REST requests that update an object
//! after a change (the Google Wallet API, `walletobjects/v1`), sent with an access token minted
//! from the same service account.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::Value;

use crate::credentials::{CredentialError, ServiceAccount};

/// Where a signed save link opens.
pub const SAVE_URL: &str = "https://pay.google.com/gp/v/save/";

/// The claims of a save link.
#[derive(Debug, Serialize)]
pub struct SaveClaims<'a> {
    pub iss: &'a str,
    pub aud: &'static str,
    pub typ: &'static str,
    pub iat: i64,
    /// The web origins allowed to show the button (may be empty for an app link).
    pub origins: &'a [String],
    pub payload: Value,
}

/// The save link for `payload` (`{"loyaltyClasses": [...], "loyaltyObjects": [...]}`).
pub fn save_link(
    account: &ServiceAccount,
    origins: &[String],
    payload: Value,
    now_s: i64,
) -> Result<String, CredentialError> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(account.private_key_id.clone());
    let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|e| {
        CredentialError::BadKey {
            what: "service account private_key".into(),
            reason: e.to_string(),
        }
    })?;
    let jwt = jsonwebtoken::encode(
        &header,
        &SaveClaims {
            iss: &account.client_email,
            aud: "google",
            typ: "savetowallet",
            iat: now_s,
            origins,
            payload,
        },
        &key,
    )
    .map_err(|e| CredentialError::BadKey {
        what: "save link".into(),
        reason: e.to_string(),
    })?;
    Ok(format!("{SAVE_URL}{jwt}"))
}

/// Which kind of Google object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Loyalty,
    Offer,
}

impl ObjectKind {
    fn resource(self) -> &'static str {
        match self {
            ObjectKind::Loyalty => "loyaltyObject",
            ObjectKind::Offer => "offerObject",
        }
    }
}

/// The request that replaces an object with its new state:
/// `PUT {api}/walletobjects/v1/{loyaltyObject|offerObject}/{id}`.
pub fn update_request(
    api_url: &str,
    kind: ObjectKind,
    object: &Value,
    token: &str,
) -> crate::push::WireRequest {
    let id = object["id"].as_str().unwrap_or_default();
    crate::push::WireRequest {
        url: format!(
            "{}/walletobjects/v1/{}/{}",
            api_url.trim_end_matches('/'),
            kind.resource(),
            id
        ),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            (
                "content-type".into(),
                "application/json; charset=UTF-8".into(),
            ),
        ],
        body: object.clone(),
    }
}
