//! Coupons in the embedded database: the signing key, clipping, the wallet, tills and the one
//! conditional UPDATE that redeems a coupon exactly once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_domain::api::{
    CouponState, Problem, Redemption, RedemptionConflict, WalletCoupon, codes,
};
use tessera_domain::catalog::Offer;
use tessera_domain::coupon::{CouponClaims, CouponKey, encode, signed_message};
use tessera_domain::eligibility::{Holder, OfferTerms, ShopFacts};
use tessera_domain::loyalty::WEB_STORE;

use super::StorageError;
use tessera_domain::rfc3339_ms as rfc3339;

/// Coupons from a clip are valid this long at most (and never after their offer).
const COUPON_LIFETIME_S: i64 = 30 * 86_400;

/// The newest signing key, made on first use.
pub(crate) fn signing_key(
    tx: &Transaction<'_>,
    now_ms: i64,
) -> Result<(String, Ed25519KeyPair), StorageError> {
    let found: Option<(String, Vec<u8>)> = tx
        .query_row(
            "SELECT key_id, pkcs8 FROM signing_key ORDER BY created_at DESC LIMIT 1",
            [],
            |r| r.try_into(),
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
/// still usable). The programme's rules ([`tessera_domain::eligibility::check_clip`]) decide.
pub(crate) fn clip(
    tx: &Transaction<'_>,
    member_id: &str,
    offer_id: &str,
    now_ms: i64,
) -> Result<Result<(), Problem>, StorageError> {
    let now_s = now_ms / 1000;
    let Some(offer) = offer(tx, offer_id)? else {
        return Ok(Err(Problem::new(
            422,
            codes::UNKNOWN_OFFER,
            "This offer cannot be clipped",
            Some("there is no such offer".into()),
        )));
    };
    let terms = OfferTerms::of(&offer).map_err(|e| StorageError::Backend(e.to_string()))?;
    let member = MemberFacts::read(tx, member_id, &offer)?;
    if let Err(refusal) =
        tessera_domain::eligibility::check_clip(&terms.terms(), &member.holder(), now_ms)
    {
        return Ok(Err(Problem::offer_refused(&refusal)));
    }
    let usable: Option<String> = tx
        .query_row(
            "SELECT id FROM coupon WHERE member_id = ?1 AND offer_id = ?2 AND origin = 'clip'
               AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > ?3",
            params![member_id, offer_id, now_s],
            |r| r.get(0),
        )
        .optional()?;
    if usable.is_some() {
        return Ok(Ok(()));
    }
    issue(tx, member_id, &offer, Origin::Clip, now_ms)?;
    Ok(Ok(()))
}

/// What the programme's rules need to know about a member, for one offer.
#[derive(Debug)]
pub(crate) struct MemberFacts {
    tier: String,
    segments: Vec<String>,
    /// The member's redeemed coupons of the offer (counted up to its limit only).
    used: u32,
}

/// How many of `offer`'s coupons the member redeemed, `except` one: counted only when the offer
/// has a per-member limit, and only up to it (a member's history of an unlimited offer may be
/// long; its length must not cost every clip and redemption).
pub(crate) fn uses(
    c: &Connection,
    member_id: &str,
    offer: &Offer,
    except: Option<&str>,
) -> Result<u32, StorageError> {
    let Some(limit) = offer.per_member_limit else {
        return Ok(0);
    };
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM (SELECT 1 FROM coupon
               WHERE member_id = ?1 AND offer_id = ?2 AND redeemed_at IS NOT NULL
                 AND id IS NOT ?3
               LIMIT ?4)",
    )?
    .query_row(params![member_id, offer.id, except, limit], |r| r.get(0))?)
}

impl MemberFacts {
    pub(crate) fn read(
        c: &Connection,
        member_id: &str,
        offer: &Offer,
    ) -> Result<Self, StorageError> {
        let (tier, segments): (String, String) = c
            .prepare_cached("SELECT tier, segments FROM member WHERE id = ?1")?
            .query_row([member_id], |r| r.try_into())
            .optional()?
            .ok_or(StorageError::NotFound)?;
        let segments = serde_json::from_str(&segments)
            .map_err(|e| StorageError::Backend(format!("member segments: {e}")))?;
        Ok(MemberFacts {
            tier,
            segments,
            used: uses(c, member_id, offer, None)?,
        })
    }

    pub(crate) fn holder(&self) -> Holder<'_, String> {
        Holder {
            tier: Some(self.tier.clone()),
            segments: &self.segments,
            used: self.used,
        }
    }
}

/// A shop as the rules see it: its tags and time zone (`None` for an unknown shop).
pub(crate) fn shop(c: &Connection, store_id: &str) -> Result<Option<ShopFacts>, StorageError> {
    let data: Option<String> = c
        .prepare_cached(
            "SELECT data FROM catalog_entity WHERE kind = 'store' AND id = ?1 AND data IS NOT NULL",
        )?
        .query_row([store_id], |r| r.get(0))
        .optional()?;
    let Some(data) = data else {
        return Ok(None);
    };
    let store: tessera_domain::catalog::Store =
        serde_json::from_str(&data).map_err(|e| StorageError::Backend(e.to_string()))?;
    Ok(Some(ShopFacts {
        store_id: store.id,
        tags: store.tags,
        timezone: store.timezone,
    }))
}

/// Why a coupon was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The member clipped the offer (app or website).
    Clip,
    /// A purchase in a shop earned it, for the website.
    Purchase,
    /// Bought with points.
    Reward,
    /// A challenge's reward.
    Challenge,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Clip => "clip",
            Origin::Purchase => "purchase",
            Origin::Reward => "reward",
            Origin::Challenge => "challenge",
        }
    }
}

/// The offer `offer_id` if it is in the catalog.
pub(crate) fn offer(c: &Connection, offer_id: &str) -> Result<Option<Offer>, StorageError> {
    let data: Option<String> = c
        .prepare_cached(
            "SELECT data FROM catalog_entity WHERE kind = 'offer' AND id = ?1 AND data IS NOT NULL",
        )?
        .query_row([offer_id], |r| r.get(0))
        .optional()?;
    data.map(|d| serde_json::from_str(&d).map_err(|e| StorageError::Backend(e.to_string())))
        .transpose()
}

/// The offer `offer_id` if it is in the catalog and has not ended (for coupons the programme
/// gives: a challenge's reward, a purchase's web coupon).
pub(crate) fn live_offer(
    c: &Connection,
    offer_id: &str,
    now_ms: i64,
) -> Result<Option<Offer>, StorageError> {
    let Some(offer) = offer(c, offer_id)? else {
        return Ok(None);
    };
    let terms = OfferTerms::of(&offer).map_err(|e| StorageError::Backend(e.to_string()))?;
    Ok((terms.terms().to_ms > now_ms).then_some(offer))
}

/// Sign and store a coupon for `offer`. It carries what a till checks offline: the offer's shops
/// and shop tags (a purchase's coupon, or one of an online-only offer: the website only), its start, days and hours, its
/// minimum basket; it expires with the offer, or after 30 days. Returns its id and code.
pub(crate) fn issue(
    tx: &Transaction<'_>,
    member_id: &str,
    offer: &Offer,
    origin: Origin,
    now_ms: i64,
) -> Result<(String, String), StorageError> {
    let now_s = now_ms / 1000;
    let terms = OfferTerms::of(offer).map_err(|e| StorageError::Backend(e.to_string()))?;
    let terms = terms.terms();
    let valid_to = terms.to_ms.div_euclid(1000);
    let from_s = terms.from_ms.div_euclid(1000);
    // A purchase's coupon is for the website; so is any coupon of an online-only offer.
    let online = origin == Origin::Purchase || !terms.in_store;
    let (store_ids, store_tags, days, hours) = if online {
        (vec![WEB_STORE.to_owned()], Vec::new(), 0, None)
    } else {
        (
            offer.store_ids.clone(),
            offer.store_tags.clone(),
            terms.days,
            terms.hours,
        )
    };
    let (key_id, pair) = signing_key(tx, now_ms)?;
    let claims = CouponClaims {
        coupon_id: format!("cp-{}", uuid::Uuid::new_v4().simple()),
        member_id: member_id.to_owned(),
        offer_id: offer.id.clone(),
        issued_at: now_s,
        expires_at: valid_to.min(now_s + COUPON_LIFETIME_S),
        store_ids,
        min_basket_cents: offer.min_basket_cents,
        key_id,
        store_tags,
        valid_from: (from_s > now_s).then_some(from_s),
        days,
        hours_from: hours.map(|h| h.0),
        hours_to: hours.map(|h| h.1),
    };
    let json = serde_json::to_vec(&claims).map_err(|e| StorageError::Backend(e.to_string()))?;
    let code = encode(&json, pair.sign(&signed_message(&json)).as_ref());
    tx.execute(
        "INSERT INTO coupon (id, member_id, offer_id, code, issued_at, expires_at, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            claims.coupon_id,
            member_id,
            offer.id,
            code,
            now_s,
            claims.expires_at,
            origin.as_str()
        ],
    )?;
    Ok((claims.coupon_id, code))
}

pub(crate) fn wallet(
    c: &Connection,
    member_id: &str,
    now_ms: i64,
) -> Result<Vec<WalletCoupon>, StorageError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, offer_id, code, expires_at, redeemed_at, redeemed_store, revoked_at FROM coupon
         WHERE member_id = ?1 ORDER BY issued_at DESC, id",
    )?;
    let rows = stmt
        .query_map([member_id], |r| {
            let expires: i64 = r.get(3)?;
            let redeemed: Option<i64> = r.get(4)?;
            let store: Option<String> = r.get(5)?;
            let revoked: Option<i64> = r.get(6)?;
            Ok(WalletCoupon {
                coupon_id: r.get(0)?,
                offer_id: r.get(1)?,
                code: r.get(2)?,
                expires_at: tessera_domain::rfc3339_ms(expires.saturating_mul(1000)),
                state: match (redeemed, store) {
                    _ if revoked.is_some() => CouponState::Revoked,
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

/// A redemption a till asks for.
#[derive(Debug, Clone)]
pub(crate) struct RedeemAt<'a> {
    pub till_id: &'a str,
    pub store_id: &'a str,
    /// The till's shop: tags and time zone, for the offer's rules.
    pub shop: &'a tessera_domain::coupon::TillShop,
    pub receipt: &'a str,
    /// When the till redeemed it offline (its clock), for a report made after reconnecting.
    pub offline_at_ms: Option<i64>,
}

/// Redeem exactly once: one conditional UPDATE; every other attempt learns where and when. An
/// offline redemption that loses was honoured at its till already: it is recorded as a conflict
/// for the merchant, and the till is told which redemption counts.
pub(crate) fn redeem(
    tx: &Transaction<'_>,
    at: &RedeemAt<'_>,
    claims: &CouponClaims,
    now_ms: i64,
) -> Result<Result<Redemption, Problem>, StorageError> {
    let when = at.offline_at_ms.unwrap_or(now_ms);
    if let Err(refusal) = offer_rules_at_redemption(tx, at, claims, when)? {
        return Ok(Err(Problem::offer_refused(&refusal)));
    }
    let updated = tx
        .prepare_cached(
            "UPDATE coupon SET redeemed_at = ?3, redeemed_store = ?4, redeemed_till = ?5, receipt = ?6
             WHERE id = ?1 AND member_id = ?2 AND redeemed_at IS NULL AND revoked_at IS NULL",
        )?
        .execute(params![claims.coupon_id, claims.member_id, when, at.store_id, at.till_id, at.receipt])?;
    let event = |kind: &str| -> Result<(), StorageError> {
        tx.prepare_cached(
            "INSERT INTO coupon_event (coupon_id, kind, store_id, till_id, receipt, till_at, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            claims.coupon_id,
            kind,
            at.store_id,
            at.till_id,
            at.receipt,
            at.offline_at_ms,
            now_ms
        ])?;
        Ok(())
    };
    if updated == 1 {
        event("redeemed")?;
        // The member's wallet changed: the next sync fetches it.
        super::touch_member(tx, &claims.member_id)?;
        return Ok(Ok(Redemption {
            coupon_id: claims.coupon_id.clone(),
            offer_id: claims.offer_id.clone(),
            member_id: claims.member_id.clone(),
            store_id: at.store_id.to_owned(),
            till_id: at.till_id.to_owned(),
            redeemed_at: rfc3339(when),
        }));
    }
    type Earlier = (
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let earlier: Option<Earlier> = tx
        .query_row(
            "SELECT redeemed_store, redeemed_at, revoked_at, redeemed_till, receipt FROM coupon
             WHERE id = ?1 AND member_id = ?2",
            params![claims.coupon_id, claims.member_id],
            |r| r.try_into(),
        )
        .optional()?;
    Ok(Err(match earlier {
        // The same till reporting the same receipt again (its first answer was lost, and it
        // reported the redemption as offline under a new key): the same redemption.
        Some((Some(store), Some(when), _, Some(till), Some(receipt)))
            if till == at.till_id && receipt == at.receipt =>
        {
            return Ok(Ok(Redemption {
                coupon_id: claims.coupon_id.clone(),
                offer_id: claims.offer_id.clone(),
                member_id: claims.member_id.clone(),
                store_id: store,
                till_id: till,
                redeemed_at: rfc3339(when),
            }));
        }
        Some((Some(store), Some(when), ..)) => {
            let detail = Some(format!("{store} {}", rfc3339(when)));
            if at.offline_at_ms.is_some() {
                event("conflict")?;
                Problem::new(
                    409,
                    codes::REDEMPTION_CONFLICT,
                    "Redeemed offline after another redemption: recorded as a conflict",
                    detail,
                )
            } else {
                Problem::new(
                    409,
                    codes::ALREADY_REDEEMED,
                    "This coupon was redeemed already",
                    detail,
                )
            }
        }
        Some((_, _, Some(_), ..)) => Problem::new(
            422,
            codes::COUPON_REFUSED,
            "This coupon was revoked",
            Some("revoked".into()),
        ),
        _ => Problem::new(
            422,
            codes::COUPON_REFUSED,
            "This coupon is not known to the server",
            Some("unknown coupon".into()),
        ),
    }))
}

/// The offer's rules at a redemption at `when` (the till's time for an offline report), by the
/// domain's [`tessera_domain::eligibility::check_redemption`], against the offer as it stands.
/// Checked only while the coupon is unused: a repeat learns where it was redeemed instead. A
/// coupon whose offer has left the catalog stands on its claims.
fn offer_rules_at_redemption(
    tx: &Transaction<'_>,
    at: &RedeemAt<'_>,
    claims: &CouponClaims,
    when: i64,
) -> Result<Result<(), tessera_domain::eligibility::Refusal>, StorageError> {
    use tessera_domain::eligibility::{Place, check_redemption};
    let unused: Option<bool> = tx
        .prepare_cached(
            "SELECT redeemed_at IS NULL AND revoked_at IS NULL FROM coupon
             WHERE id = ?1 AND member_id = ?2",
        )?
        .query_row(params![claims.coupon_id, claims.member_id], |r| r.get(0))
        .optional()?;
    if unused != Some(true) {
        return Ok(Ok(()));
    }
    let Some(offer) = offer(tx, &claims.offer_id)? else {
        return Ok(Ok(()));
    };
    let terms = OfferTerms::of(&offer).map_err(|e| StorageError::Backend(e.to_string()))?;
    let used = uses(tx, &claims.member_id, &offer, Some(&claims.coupon_id))?;
    let place = if at.store_id == WEB_STORE {
        Place::Website
    } else {
        Place::Shop {
            id: at.store_id,
            tags: &at.shop.tags,
            zone: &at.shop.zone,
        }
    };
    Ok(check_redemption(
        &terms.terms(),
        &offer.store_ids,
        &offer.store_tags,
        used,
        when,
        place,
    ))
}

/// Redemption conflicts for the merchant to review, newest first.
pub(crate) fn conflicts(
    c: &Connection,
    limit: u32,
) -> Result<Vec<RedemptionConflict>, StorageError> {
    let mut stmt = c.prepare_cached(
        "SELECT e.coupon_id, c.offer_id, c.redeemed_store, c.redeemed_till, c.redeemed_at,
                e.store_id, e.till_id, e.receipt, e.till_at, e.at
         FROM coupon_event e JOIN coupon c ON c.id = e.coupon_id
         WHERE e.kind = 'conflict' ORDER BY e.at DESC, e.id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(RedemptionConflict {
                coupon_id: r.get(0)?,
                offer_id: r.get(1)?,
                winner_store_id: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                winner_till_id: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                winner_at: r.get::<_, Option<i64>>(4)?.map(rfc3339).unwrap_or_default(),
                store_id: r.get(5)?,
                till_id: r.get(6)?,
                receipt: r.get(7)?,
                redeemed_offline_at: r.get::<_, Option<i64>>(8)?.map(rfc3339).unwrap_or_default(),
                reported_at: rfc3339(r.get(9)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
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
    // The web checkout redeems web coupons through the same path, as the shop `web`.
    if exists.is_none() && store_id != tessera_domain::loyalty::WEB_STORE {
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
            .query_row([token_hash], |r| r.try_into())
            .optional()?,
    )
}
