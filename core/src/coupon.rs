//! Coupons: single-use codes bound to a member and an offer, signed by the server with Ed25519
//! so that a till verifies them offline with the programme's public key.
//!
//! A code is `TC1.<claims>.<signature>`, both base64url without padding; the claims are compact
//! JSON; the signature covers a domain-separation prefix and the claims' bytes exactly as sent.
//! It fits a QR code a phone screen shows and a till scanner reads.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

/// What a coupon says; signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct CouponClaims {
    /// The coupon's id (single use).
    #[serde(rename = "c")]
    pub coupon_id: String,
    #[serde(rename = "m")]
    pub member_id: String,
    #[serde(rename = "o")]
    pub offer_id: String,
    /// Unix seconds.
    #[serde(rename = "i")]
    pub issued_at: i64,
    /// Unix seconds; not valid after.
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// Shops where it is valid; empty: all.
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    pub store_ids: Vec<String>,
    /// The smallest basket, in cents.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub min_basket_cents: Option<u64>,
    /// Which server key signed it.
    #[serde(rename = "k")]
    pub key_id: String,
}

/// Why a till refuses a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum CouponError {
    /// Not a Tessera coupon, or damaged.
    #[error("not a valid coupon code: {reason}")]
    Malformed { reason: String },
    /// Signed by a key this till does not know: refresh the keys.
    #[error("signed by an unknown key {key_id}")]
    UnknownKey { key_id: String },
    /// Forged or altered: the signature does not match.
    #[error("the signature does not match: forged or altered")]
    BadSignature,
    #[error("expired at {expired_at}")]
    Expired { expired_at: String },
    /// Issued later than the till's clock: the till's clock is wrong, or the code is forged.
    #[error("not valid before {valid_from}")]
    NotYetValid { valid_from: String },
    #[error("not valid in this shop")]
    WrongStore,
    #[error("for another member")]
    WrongMember,
    #[error("the basket is below the minimum of {min_cents} cents")]
    BelowMinimum { min_cents: u64 },
    /// Already redeemed (at this till, or where the server says).
    #[error("already redeemed at {store_id} on {redeemed_at}")]
    AlreadyRedeemed {
        store_id: String,
        redeemed_at: String,
    },
}

const PREFIX: &str = "TC1.";
const DOMAIN: &[u8] = b"tessera-coupon-v1\0";
/// The longest code a till accepts.
pub const MAX_CODE: usize = 1024;
/// A till's clock may be this far behind the server's when checking `issued_at`.
pub const CLOCK_SLACK_S: i64 = 300;

/// The message signed for `claims_json`.
pub fn signed_message(claims_json: &[u8]) -> Vec<u8> {
    [DOMAIN, claims_json].concat()
}

/// Assemble a code from the claims' JSON and their signature.
pub fn encode(claims_json: &[u8], signature: &[u8]) -> String {
    format!(
        "{PREFIX}{}.{}",
        B64.encode(claims_json),
        B64.encode(signature)
    )
}

fn malformed(reason: impl Into<String>) -> CouponError {
    CouponError::Malformed {
        reason: reason.into(),
    }
}

fn rfc3339(s: i64) -> String {
    crate::rfc3339_ms(s.saturating_mul(1000))
}

/// A server public key a till trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CouponKey {
    pub key_id: String,
    /// Ed25519 public key, 32 bytes, base64url.
    pub public_key: String,
}

/// Check the code's signature against `keys` and return its claims (no business checks).
pub fn verify_signature(code: &str, keys: &[CouponKey]) -> Result<CouponClaims, CouponError> {
    let code = code.trim();
    if code.len() > MAX_CODE {
        return Err(malformed("too long"));
    }
    let rest = code
        .strip_prefix(PREFIX)
        .ok_or_else(|| malformed("not a Tessera coupon"))?;
    let (claims_b64, sig_b64) = rest
        .split_once('.')
        .ok_or_else(|| malformed("missing signature"))?;
    let claims_json = B64
        .decode(claims_b64)
        .map_err(|_| malformed("claims are not base64url"))?;
    let signature = B64
        .decode(sig_b64)
        .map_err(|_| malformed("signature is not base64url"))?;
    if signature.len() != 64 {
        return Err(malformed("signature is not 64 bytes"));
    }
    let claims: CouponClaims =
        serde_json::from_slice(&claims_json).map_err(|e| malformed(format!("claims: {e}")))?;
    let key = keys
        .iter()
        .find(|k| k.key_id == claims.key_id)
        .ok_or_else(|| CouponError::UnknownKey {
            key_id: claims.key_id.clone(),
        })?;
    let public = B64
        .decode(&key.public_key)
        .map_err(|_| malformed("the till's key is not base64url"))?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(&signed_message(&claims_json), &signature)
        .map_err(|_| CouponError::BadSignature)?;
    Ok(claims)
}

/// Everything a till checks before redeeming, offline: signature, dates (on the till's clock),
/// shop, member (when the card was scanned too) and basket.
pub fn verify(
    code: &str,
    keys: &[CouponKey],
    now_s: i64,
    store_id: &str,
    member_id: Option<&str>,
    basket_cents: u64,
) -> Result<CouponClaims, CouponError> {
    let claims = verify_signature(code, keys)?;
    if now_s > claims.expires_at {
        return Err(CouponError::Expired {
            expired_at: rfc3339(claims.expires_at),
        });
    }
    if now_s + CLOCK_SLACK_S < claims.issued_at {
        return Err(CouponError::NotYetValid {
            valid_from: rfc3339(claims.issued_at),
        });
    }
    // A web coupon names the web checkout; a shop coupon never does (an empty list: every shop).
    let web = crate::loyalty::WEB_STORE;
    let for_web = claims.store_ids.iter().any(|s| s == web);
    let here = if store_id == web {
        for_web
    } else {
        !for_web && (claims.store_ids.is_empty() || claims.store_ids.iter().any(|s| s == store_id))
    };
    if !here {
        return Err(CouponError::WrongStore);
    }
    if let Some(m) = member_id
        && m != claims.member_id
    {
        return Err(CouponError::WrongMember);
    }
    if let Some(min) = claims.min_basket_cents
        && basket_cents < min
    {
        return Err(CouponError::BelowMinimum { min_cents: min });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn key() -> (Ed25519KeyPair, CouponKey) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = CouponKey {
            key_id: "k1".into(),
            public_key: B64.encode(pair.public_key().as_ref()),
        };
        (pair, public)
    }

    fn claims() -> CouponClaims {
        CouponClaims {
            coupon_id: "cp-1".into(),
            member_id: "m1".into(),
            offer_id: "of-1".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_900_000_000,
            store_ids: vec!["st-paris-01".into()],
            min_basket_cents: Some(2000),
            key_id: "k1".into(),
        }
    }

    fn sign(pair: &Ed25519KeyPair, c: &CouponClaims) -> String {
        let json = serde_json::to_vec(c).unwrap();
        encode(&json, pair.sign(&signed_message(&json)).as_ref())
    }

    #[test]
    fn a_signed_code_verifies_and_every_tampering_is_refused() {
        let (pair, public) = key();
        let keys = [public];
        let code = sign(&pair, &claims());
        let now = 1_800_000_000;
        assert_eq!(
            verify(&code, &keys, now, "st-paris-01", Some("m1"), 2500).unwrap(),
            claims()
        );
        // Forged: another key signed it.
        let (other, _) = key();
        assert_eq!(
            verify(
                &sign(&other, &claims()),
                &keys,
                now,
                "st-paris-01",
                None,
                2500
            ),
            Err(CouponError::BadSignature)
        );
        // Altered: the claims changed after signing.
        let (_, sig) = code[4..].split_once('.').unwrap();
        let mut richer = claims();
        richer.min_basket_cents = None;
        let altered = format!(
            "TC1.{}.{sig}",
            B64.encode(serde_json::to_vec(&richer).unwrap())
        );
        assert_eq!(
            verify(&altered, &keys, now, "st-paris-01", None, 100),
            Err(CouponError::BadSignature)
        );
        assert!(matches!(
            verify(&code, &keys, 1_950_000_000, "st-paris-01", None, 2500),
            Err(CouponError::Expired { .. })
        ));
        assert!(matches!(
            verify(&code, &keys, 1_600_000_000, "st-paris-01", None, 2500),
            Err(CouponError::NotYetValid { .. })
        ));
        assert_eq!(
            verify(&code, &keys, now, "st-lyon-01", None, 2500),
            Err(CouponError::WrongStore)
        );
        assert_eq!(
            verify(&code, &keys, now, "st-paris-01", Some("m2"), 2500),
            Err(CouponError::WrongMember)
        );
        assert_eq!(
            verify(&code, &keys, now, "st-paris-01", None, 1999),
            Err(CouponError::BelowMinimum { min_cents: 2000 })
        );
        // Shop coupons are not for the website, web coupons not for shops.
        assert_eq!(
            verify(&code, &keys, now, "web", None, 2500),
            Err(CouponError::WrongStore)
        );
        let mut anywhere = claims();
        anywhere.store_ids.clear();
        let anywhere = sign(&pair, &anywhere);
        assert!(verify(&anywhere, &keys, now, "st-lyon-01", None, 2500).is_ok());
        assert_eq!(
            verify(&anywhere, &keys, now, "web", None, 2500),
            Err(CouponError::WrongStore)
        );
        let mut web = claims();
        web.store_ids = vec!["web".into()];
        let web = sign(&pair, &web);
        assert!(verify(&web, &keys, now, "web", None, 2500).is_ok());
        assert_eq!(
            verify(&web, &keys, now, "st-paris-01", None, 2500),
            Err(CouponError::WrongStore)
        );
        assert!(matches!(
            verify("TC1.abc", &keys, now, "x", None, 0),
            Err(CouponError::Malformed { .. })
        ));
        assert!(matches!(
            verify("hello", &keys, now, "x", None, 0),
            Err(CouponError::Malformed { .. })
        ));
        assert!(matches!(
            verify(&code, &[], now, "x", None, 0),
            Err(CouponError::UnknownKey { .. })
        ));
        assert!(
            code.len() < 400,
            "fits a QR code a till reads: {}",
            code.len()
        );
    }
}
