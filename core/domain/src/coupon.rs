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
    /// Shop tags where it is valid too (a shop named in `store_ids` or carrying one of these).
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub store_tags: Vec<String>,
    /// Unix seconds; not valid before (the offer's start, when after the issue).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<i64>,
    /// Days of the week it is valid, as [`crate::eligibility::day_mask`]; 0: every day.
    #[serde(rename = "d", default, skip_serializing_if = "is_zero")]
    pub days: u8,
    /// Local minute of the day it is valid from, in the shop's time zone (with `hours_to`).
    #[serde(rename = "hf", default, skip_serializing_if = "Option::is_none")]
    pub hours_from: Option<u16>,
    /// Local minute it is valid until (exclusive); before `hours_from`: past midnight.
    #[serde(rename = "ht", default, skip_serializing_if = "Option::is_none")]
    pub hours_to: Option<u16>,
}

fn is_zero(d: &u8) -> bool {
    *d == 0
}

/// The shop a till is in, as its coupon checks need it.
#[derive(Debug, Clone)]
pub struct TillShop {
    pub store_id: String,
    pub tags: Vec<String>,
    pub zone: jiff::tz::TimeZone,
}

impl TillShop {
    /// A shop known only by its id (no tags; days and hours read in UTC).
    pub fn bare(store_id: &str) -> Self {
        TillShop {
            store_id: store_id.to_owned(),
            tags: Vec::new(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// From the server's description of the shop (an unknown time zone reads as UTC).
    pub fn from_facts(facts: &crate::eligibility::ShopFacts) -> Self {
        TillShop {
            store_id: facts.store_id.clone(),
            tags: facts.tags.clone(),
            zone: jiff::tz::TimeZone::get(&facts.timezone).unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }
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
    /// Not on this day of the week, or outside its hours, in the shop's time zone.
    #[error("not valid at this day or time")]
    WrongTime,
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
/// shop and its tags, days and hours (in the shop's time zone), member (when the card was scanned
/// too) and basket. The shop and time rules are the domain's ([`crate::eligibility`]).
pub fn verify(
    code: &str,
    keys: &[CouponKey],
    now_s: i64,
    shop: &TillShop,
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
    if let Some(from) = claims.valid_from
        && now_s < from
    {
        return Err(CouponError::NotYetValid {
            valid_from: rfc3339(from),
        });
    }
    // A web coupon names the web checkout; a shop coupon never does (an empty list: every shop).
    let web = crate::catalog::WEB_STORE;
    let for_web = claims.store_ids.iter().any(|s| s == web);
    let here = if shop.store_id == web {
        for_web
    } else {
        !for_web
            && crate::eligibility::targets_shop(
                &claims.store_ids,
                &claims.store_tags,
                &shop.store_id,
                &shop.tags,
            )
            .is_ok()
    };
    if !here {
        return Err(CouponError::WrongStore);
    }
    let hours = claims.hours_from.zip(claims.hours_to);
    if claims.days != 0 || hours.is_some() {
        let local = crate::eligibility::local_time(&shop.zone, now_s.saturating_mul(1000));
        crate::eligibility::check_days_hours(claims.days, hours, local)
            .map_err(|_| CouponError::WrongTime)?;
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
            store_tags: Vec::new(),
            valid_from: None,
            days: 0,
            hours_from: None,
            hours_to: None,
        }
    }

    fn shop(id: &str) -> TillShop {
        TillShop::bare(id)
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
            verify(&code, &keys, now, &shop("st-paris-01"), Some("m1"), 2500).unwrap(),
            claims()
        );
        // Forged: another key signed it.
        let (other, _) = key();
        assert_eq!(
            verify(
                &sign(&other, &claims()),
                &keys,
                now,
                &shop("st-paris-01"),
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
            verify(&altered, &keys, now, &shop("st-paris-01"), None, 100),
            Err(CouponError::BadSignature)
        );
        assert!(matches!(
            verify(
                &code,
                &keys,
                1_950_000_000,
                &shop("st-paris-01"),
                None,
                2500
            ),
            Err(CouponError::Expired { .. })
        ));
        assert!(matches!(
            verify(
                &code,
                &keys,
                1_600_000_000,
                &shop("st-paris-01"),
                None,
                2500
            ),
            Err(CouponError::NotYetValid { .. })
        ));
        assert_eq!(
            verify(&code, &keys, now, &shop("st-lyon-01"), None, 2500),
            Err(CouponError::WrongStore)
        );
        assert_eq!(
            verify(&code, &keys, now, &shop("st-paris-01"), Some("m2"), 2500),
            Err(CouponError::WrongMember)
        );
        assert_eq!(
            verify(&code, &keys, now, &shop("st-paris-01"), None, 1999),
            Err(CouponError::BelowMinimum { min_cents: 2000 })
        );
        // Shop coupons are not for the website, web coupons not for shops.
        assert_eq!(
            verify(&code, &keys, now, &shop("web"), None, 2500),
            Err(CouponError::WrongStore)
        );
        let mut anywhere = claims();
        anywhere.store_ids.clear();
        let anywhere = sign(&pair, &anywhere);
        assert!(verify(&anywhere, &keys, now, &shop("st-lyon-01"), None, 2500).is_ok());
        assert_eq!(
            verify(&anywhere, &keys, now, &shop("web"), None, 2500),
            Err(CouponError::WrongStore)
        );
        let mut web = claims();
        web.store_ids = vec!["web".into()];
        let web = sign(&pair, &web);
        assert!(verify(&web, &keys, now, &shop("web"), None, 2500).is_ok());
        assert_eq!(
            verify(&web, &keys, now, &shop("st-paris-01"), None, 2500),
            Err(CouponError::WrongStore)
        );
        assert!(matches!(
            verify("TC1.abc", &keys, now, &shop("x"), None, 0),
            Err(CouponError::Malformed { .. })
        ));
        assert!(matches!(
            verify("hello", &keys, now, &shop("x"), None, 0),
            Err(CouponError::Malformed { .. })
        ));
        assert!(matches!(
            verify(&code, &[], now, &shop("x"), None, 0),
            Err(CouponError::UnknownKey { .. })
        ));
        assert!(
            code.len() < 400,
            "fits a QR code a till reads: {}",
            code.len()
        );
    }

    #[test]
    fn the_till_checks_tags_start_days_and_hours_the_coupon_carries() {
        let (pair, public) = key();
        let keys = [public];
        let mut c = claims();
        c.store_ids.clear();
        c.store_tags = vec!["outlet".into()];
        c.min_basket_cents = None;
        c.valid_from = Some(1_790_000_000);
        // Mondays, 08:00 to 12:00 shop time.
        c.days = crate::eligibility::day_mask(&[1]);
        (c.hours_from, c.hours_to) = (Some(8 * 60), Some(12 * 60));
        let code = sign(&pair, &c);
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let outlet = TillShop {
            store_id: "st-outlet".into(),
            tags: vec!["city".into(), "outlet".into()],
            zone: paris.clone(),
        };
        let plain = TillShop {
            store_id: "st-plain".into(),
            tags: vec!["city".into()],
            zone: paris,
        };
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_second();
        // 2027-01-04 is a Monday; 09:30 in Paris is 08:30Z.
        let monday_morning = at("2027-01-04T08:30:00Z");
        assert!(verify(&code, &keys, monday_morning, &outlet, None, 0).is_ok());
        assert_eq!(
            verify(&code, &keys, monday_morning, &plain, None, 0),
            Err(CouponError::WrongStore)
        );
        assert_eq!(
            verify(&code, &keys, at("2027-01-05T08:30:00Z"), &outlet, None, 0),
            Err(CouponError::WrongTime),
            "a Tuesday"
        );
        assert_eq!(
            verify(&code, &keys, at("2027-01-04T11:30:00Z"), &outlet, None, 0),
            Err(CouponError::WrongTime),
            "12:30 in Paris"
        );
        // Before the offer starts (2026-09-21T13:06:40Z).
        assert!(matches!(
            verify(&code, &keys, 1_789_999_000, &outlet, None, 0),
            Err(CouponError::NotYetValid { .. })
        ));
    }
}
