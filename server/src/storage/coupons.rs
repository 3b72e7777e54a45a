//! Coupons in the embedded database: the signing key, clipping, the wallet, tills and the one
//! conditional UPDATE that redeems a coupon exactly once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_core::api::{CouponState, Problem, Redemption, WalletCoupon, codes};
use tessera_core::catalog::{Offer, OfferChannel};
use tessera_core::coupon::{CouponClaims, CouponKey, encode, signed_message};

use super::StorageError;
use super::rfc3339;

/// Coupons from a clip are valid this long at most (and never after their offer).
const COUPON_LIFETIME_S: i64 = 30 * 86_400;

fn rfc3339_s(s: i64) -> String {
    jiff::Timestamp::from_second(s)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The newest signing key, made on first use.
pub(crate) fn signing_key(
    tx: &Transaction<'_>,
    now_ms: i64,
) -> Result<(String, Ed25519KeyPair), StorageError> {
    let found: Option<(String, Vec<u8>)> = tx
        .query_row(
            "SELECT key_id, pkcs8 FROM signing_key ORDER BY created_at DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (key_id, pkcs8) = match found {
        Some(k) => k,
        None => {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| StorageError::Backend("cannot generate a signing key".into()))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| StorageError::Backend("bad signing key".into()))?;
            let key_id = format!("k{}", now_ms / 1000);
            tx.execute(
                "INSERT INTO signing_key (key_id, pkcs8, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key_id, pkcs8.as_ref(), B64.encode(pair.public_key().as_ref()), now_ms],
            )?;
            (key_id, pkcs8.as_ref().to_vec())
        }
    };
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| StorageError::Backend("stored signing key is damaged".into()))?;
    Ok((key_id, pair))
}

pub(crate) fn public_keys(c: &Connection) -> Result<Vec<CouponKey>, StorageError> {
    let mut stmt =
        c.prepare_cached("SELECT key_id, public_key FROM signing_key ORDER BY created_at")?;
    let keys = stmt
        .query_map([], |r| {
            Ok(CouponKey {
                key_id: r.get(0)?,
                public_key: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(keys)
}

/// Clip `offer_id` for the member: a signed coupon in the wallet (the one already there if it is
/// still usable).
pub(crate) fn clip(
    tx: &Transaction<'_>,
    member_id: &str,
    offer_id: &str,
    now_ms: i64,
) -> Result<Result<(), Problem>, StorageError> {
    let now_s = now_ms / 1000;
    let unknown = |detail: &str| {
        Ok(Err(Problem::new(
            422,
            codes::UNKNOWN_OFFER,
            "This offer cannot be clipped",
            Some(detail.to_owned()),
        )))
    };
    let data: Option<String> = tx
        .query_row(
            "SELECT data FROM catalog_entity WHERE kind = 'offer' AND id = ?1 AND data IS NOT NULL",
            [offer_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(data) = data else {
        return unknown("there is no such offer");
    };
    let offer: Offer =
        serde_json::from_str(&data).map_err(|e| StorageError::Backend(e.to_string()))?;
    let valid_to = offer
        .valid_to
        .parse::<jiff::Timestamp>()
        .map_err(|e| StorageError::Backend(e.to_string()))?
        .as_second();
    if valid_to <= now_s || offer.channel == OfferChannel::Online {
        return unknown("the offer has ended or is online only");
    }
    let usable: Option<String> = tx
        .query_row(
            "SELECT id FROM coupon WHERE member_id = ?1 AND offer_id = ?2
               AND redeemed_at IS NULL AND expires_at > ?3",
            params![member_id, offer_id, now_s],
            |r| r.get(0),
        )
        .optional()?;
    if usable.is_some() {
        return Ok(Ok(()));
    }
    let (key_id, pair) = signing_key(tx, now_ms)?;
    let claims = CouponClaims {
        coupon_id: format!("cp-{}", uuid::Uuid::new_v4().simple()),
        member_id: member_id.to_owned(),
        offer_id: offer_id.to_owned(),
        issued_at: now_s,
        expires_at: valid_to.min(now_s + COUPON_LIFETIME_S),
        store_ids: offer.store_ids.clone(),
        min_basket_cents: offer.min_basket_cents,
        key_id,
    };
    let json = serde_json::to_vec(&claims).map_err(|e| StorageError::Backend(e.to_string()))?;
    let code = encode(&json, pair.sign(&signed_message(&json)).as_ref());
    tx.execute(
        "INSERT INTO coupon (id, member_id, offer_id, code, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            claims.coupon_id,
            member_id,
            offer_id,
            code,
            now_s,
            claims.expires_at
        ],
    )?;
    Ok(Ok(()))
}

pub(crate) fn wallet(
    c: &Connection,
    member_id: &str,
    now_ms: i64,
) -> Result<Vec<WalletCoupon>, StorageError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, offer_id, code, expires_at, redeemed_at, redeemed_store FROM coupon
         WHERE member_id = ?1 ORDER BY issued_at DESC, id",
    )?;
    let rows = stmt
        .query_map([member_id], |r| {
            let expires: i64 = r.get(3)?;
            let redeemed: Option<i64> = r.get(4)?;
            let store: Option<String> = r.get(5)?;
            Ok(WalletCoupon {
                coupon_id: r.get(0)?,
                offer_id: r.get(1)?,
                code: r.get(2)?,
                expires_at: rfc3339_s(expires),
                state: match (redeemed, store) {
                    (Some(at), Some(store_id)) => CouponState::Redeemed {
                        store_id,
                        redeemed_at: rfc3339(at),
                    },
                    _ if expires * 1000 <= now_ms => CouponState::Expired,
                    _ => CouponState::Available,
                },
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Redeem exactly once: one conditional UPDATE; every other attempt learns where and when.
pub(crate) fn redeem(
    tx: &Transaction<'_>,
    till_id: &str,
    store_id: &str,
    claims: &CouponClaims,
    receipt: &str,
    now_ms: i64,
) -> Result<Result<Redemption, Problem>, StorageError> {
    let updated = tx
        .prepare_cached(
            "UPDATE coupon SET redeemed_at = ?3, redeemed_store = ?4, redeemed_till = ?5, receipt = ?6
             WHERE id = ?1 AND member_id = ?2 AND redeemed_at IS NULL",
        )?
        .execute(params![claims.coupon_id, claims.member_id, now_ms, store_id, till_id, receipt])?;
    if updated == 1 {
        // The member's wallet changed: the next sync fetches it.
        tx.execute(
            "UPDATE member SET version = version + 1 WHERE id = ?1",
            [&claims.member_id],
        )?;
        return Ok(Ok(Redemption {
            coupon_id: claims.coupon_id.clone(),
            offer_id: claims.offer_id.clone(),
            member_id: claims.member_id.clone(),
            store_id: store_id.to_owned(),
            till_id: till_id.to_owned(),
            redeemed_at: rfc3339(now_ms),
        }));
    }
    let earlier: Option<(Option<String>, Option<i64>)> = tx
        .query_row(
            "SELECT redeemed_store, redeemed_at FROM coupon WHERE id = ?1",
            [&claims.coupon_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(Err(match earlier {
        Some((Some(store), Some(at))) => Problem::new(
            409,
            codes::ALREADY_REDEEMED,
            "This coupon was redeemed already",
            Some(format!("{store} {}", rfc3339(at))),
        ),
        _ => Problem::new(
            422,
            codes::COUPON_REFUSED,
            "This coupon is not known to the server",
            Some("unknown coupon".into()),
        ),
    }))
}

pub(crate) fn register_till(
    tx: &Transaction<'_>,
    store_id: &str,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM catalog_entity WHERE kind = 'store' AND id = ?1 AND data IS NOT NULL",
            [store_id],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let till_id = format!("till-{}", uuid::Uuid::new_v4().simple());
    tx.execute(
        "INSERT INTO till (id, store_id, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![till_id, store_id, token_hash, now_ms],
    )?;
    Ok(Some(till_id))
}

pub(crate) fn till_by_token(
    c: &Connection,
    token_hash: &str,
) -> Result<Option<(String, String)>, StorageError> {
    Ok(
        c.prepare_cached("SELECT id, store_id FROM till WHERE token_hash = ?1")?
            .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    )
}
