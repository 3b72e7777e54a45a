//! Coupons: the signing key, clipping, issuing, the wallet, and redemption exactly once (one
//! conditional write in the repository; every other attempt learns where and when).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair};
use tessera_domain::api::{CouponState, EventData, Redemption, WalletCoupon};
use tessera_domain::catalog::Offer;
use tessera_domain::coupon::{CouponClaims, CouponKey, TillShop, encode, signed_message};
use tessera_domain::eligibility::{Holder, OfferTerms};
use tessera_domain::loyalty::WEB_STORE;
use tessera_domain::rfc3339_ms as rfc3339;

use super::webhooks;
use crate::storage::repo::{
    CouponEvent, CouponEventKind, CouponRow, Origin, RedeemedAt, RepoResult,
};
use crate::storage::{Refusal, Repo, StorageError};

/// Coupons from a clip are valid this long at most (and never after their offer).
const COUPON_LIFETIME_S: i64 = 30 * 86_400;

/// The newest signing key, made on first use.
pub(crate) fn signing_key(
    repo: &mut dyn Repo,
    now_ms: i64,
) -> RepoResult<(String, Ed25519KeyPair)> {
    let (key_id, pkcs8) = match repo.signing_key()? {
        Some(k) => k,
        None => {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| StorageError::Backend("cannot generate a signing key".into()))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| StorageError::Backend("bad signing key".into()))?;
            let key_id = format!("k{}", now_ms / 1000);
            let public = B64.encode(pair.public_key().as_ref());
            repo.insert_signing_key(&key_id, pkcs8.as_ref(), &public, now_ms)?;
            (key_id, pkcs8.as_ref().to_vec())
        }
    };
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| StorageError::Backend("stored signing key is damaged".into()))?;
    Ok((key_id, pair))
}

/// The public keys tills verify with (a signing key is made on first use).
pub(crate) fn keys(repo: &mut dyn Repo, now_ms: i64) -> RepoResult<Vec<CouponKey>> {
    signing_key(repo, now_ms)?;
    repo.public_keys()
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
    repo: &mut dyn Repo,
    member_id: &str,
    offer: &Offer,
    except: Option<&str>,
) -> RepoResult<u32> {
    match offer.per_member_limit {
        None => Ok(0),
        Some(limit) => repo.redeemed_count(member_id, &offer.id, except, limit),
    }
}

impl MemberFacts {
    pub(crate) fn read(repo: &mut dyn Repo, member_id: &str, offer: &Offer) -> RepoResult<Self> {
        let member = repo.member(member_id)?.ok_or(StorageError::NotFound)?;
        Ok(MemberFacts {
            tier: member.tier,
            segments: member.segments,
            used: uses(repo, member_id, offer, None)?,
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

/// Clip `offer_id` for the member: a signed coupon in the wallet (the one already there if it is
/// still usable). The programme's rules ([`tessera_domain::eligibility::check_clip`]) decide.
pub(crate) fn clip(
    repo: &mut dyn Repo,
    member_id: &str,
    offer_id: &str,
    now_ms: i64,
) -> RepoResult<Result<(), Refusal>> {
    let Some(offer) = repo.offer(offer_id)? else {
        return Ok(Err(Refusal::UnknownOffer));
    };
    let terms = OfferTerms::of(&offer).map_err(StorageError::backend)?;
    let member = MemberFacts::read(repo, member_id, &offer)?;
    if let Err(refusal) =
        tessera_domain::eligibility::check_clip(&terms.terms(), &member.holder(), now_ms)
    {
        return Ok(Err(Refusal::Offer(refusal)));
    }
    if !repo.usable_clip(member_id, offer_id, now_ms / 1000)? {
        issue(repo, member_id, &offer, Origin::Clip, now_ms)?;
    }
    Ok(Ok(()))
}

/// The offer `offer_id` if it is in the catalog and has not ended (for coupons the programme
/// gives: a challenge's reward, a purchase's web coupon).
pub(crate) fn live_offer(
    repo: &mut dyn Repo,
    offer_id: &str,
    now_ms: i64,
) -> RepoResult<Option<Offer>> {
    let Some(offer) = repo.offer(offer_id)? else {
        return Ok(None);
    };
    let terms = OfferTerms::of(&offer).map_err(StorageError::backend)?;
    Ok((terms.terms().to_ms > now_ms).then_some(offer))
}

/// Sign and store a coupon for `offer`. It carries what a till checks offline: the offer's shops
/// and shop tags (a purchase's coupon, or one of an online-only offer: the website only), its
/// start, days and hours, its minimum basket; it expires with the offer, or after 30 days.
/// Returns its id and code.
pub(crate) fn issue(
    repo: &mut dyn Repo,
    member_id: &str,
    offer: &Offer,
    origin: Origin,
    now_ms: i64,
) -> RepoResult<(String, String)> {
    let now_s = now_ms / 1000;
    let terms = OfferTerms::of(offer).map_err(StorageError::backend)?;
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
    let (key_id, pair) = signing_key(repo, now_ms)?;
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
    let json = serde_json::to_vec(&claims).map_err(StorageError::backend)?;
    let code = encode(&json, pair.sign(&signed_message(&json)).as_ref());
    repo.insert_coupon(&CouponRow {
        id: claims.coupon_id.clone(),
        member_id: member_id.to_owned(),
        offer_id: offer.id.clone(),
        code: code.clone(),
        issued_s: now_s,
        expires_s: claims.expires_at,
        origin,
        redeemed_at_ms: None,
        redeemed_store: None,
        redeemed_till: None,
        receipt: None,
        revoked_at_ms: None,
    })?;
    {
        use tessera_domain::api::metric;
        let (issued, clipped) = (
            format!("{}{}", metric::COUPONS_ISSUED, offer.id),
            format!("{}{}", metric::COUPONS_CLIPPED, offer.id),
        );
        let day = tessera_domain::api::day_of(now_ms);
        let clip = i64::from(origin == Origin::Clip);
        repo.add_kpis(&[(&issued, None, day, 1), (&clipped, None, day, clip)])?;
    }
    webhooks::emit(
        repo,
        member_id,
        EventData::CouponIssued {
            coupon_id: claims.coupon_id.clone(),
            offer_id: offer.id.clone(),
            origin: origin.as_str().to_owned(),
        },
        now_ms,
    )?;
    Ok((claims.coupon_id, code))
}

/// The member's wallet at `now_ms`, newest first.
pub(crate) fn wallet(
    repo: &mut dyn Repo,
    member_id: &str,
    now_ms: i64,
) -> RepoResult<Vec<WalletCoupon>> {
    Ok(repo
        .wallet(member_id)?
        .into_iter()
        .map(|c| WalletCoupon {
            state: match (c.redeemed_at_ms, c.redeemed_store) {
                _ if c.revoked_at_ms.is_some() => CouponState::Revoked,
                (Some(at), Some(store_id)) => CouponState::Redeemed {
                    store_id,
                    redeemed_at: rfc3339(at),
                },
                _ if c.expires_s.saturating_mul(1000) <= now_ms => CouponState::Expired,
                _ => CouponState::Available,
            },
            coupon_id: c.id,
            offer_id: c.offer_id,
            code: c.code,
            expires_at: rfc3339(c.expires_s.saturating_mul(1000)),
        })
        .collect())
}

/// A redemption a till asks for.
#[derive(Debug, Clone)]
pub(crate) struct RedeemAt<'a> {
    pub till_id: &'a str,
    pub store_id: &'a str,
    /// The till's shop: tags and time zone, for the offer's rules.
    pub shop: &'a TillShop,
    pub receipt: &'a str,
    /// When the till redeemed it offline (its clock), for a report made after reconnecting.
    pub offline_at_ms: Option<i64>,
}

/// Redeem exactly once: one conditional write; every other attempt learns where and when. An
/// offline redemption that loses was honoured at its till already: it is recorded as a conflict
/// for the merchant, and the till is told which redemption counts.
pub(crate) fn redeem(
    repo: &mut dyn Repo,
    at: &RedeemAt<'_>,
    claims: &CouponClaims,
    now_ms: i64,
) -> RepoResult<Result<Redemption, Refusal>> {
    let when = at.offline_at_ms.unwrap_or(now_ms);
    let stored = repo.coupon(&claims.coupon_id, &claims.member_id)?;
    let unused = stored
        .as_ref()
        .is_some_and(|c| c.redeemed_at_ms.is_none() && c.revoked_at_ms.is_none());
    if unused && let Err(refusal) = offer_rules_at_redemption(repo, at, claims, when)? {
        return Ok(Err(Refusal::Offer(refusal)));
    }
    let place = RedeemedAt {
        store_id: at.store_id,
        till_id: at.till_id,
        receipt: at.receipt,
        at_ms: when,
    };
    let event = |kind| CouponEvent {
        coupon_id: &claims.coupon_id,
        kind,
        store_id: at.store_id,
        till_id: at.till_id,
        receipt: at.receipt,
        till_at_ms: at.offline_at_ms,
        at_ms: now_ms,
    };
    let redemption = |store_id: String, till_id: String, at_ms: i64| Redemption {
        coupon_id: claims.coupon_id.clone(),
        offer_id: claims.offer_id.clone(),
        member_id: claims.member_id.clone(),
        store_id,
        till_id,
        redeemed_at: rfc3339(at_ms),
    };
    if repo.mark_redeemed(&claims.coupon_id, &claims.member_id, &place)? {
        repo.coupon_event(&event(CouponEventKind::Redeemed))?;
        let origin = stored.as_ref().map_or(Origin::Clip, |c| c.origin);
        // On the day of the redemption (the till's, offline), as its void takes it off.
        super::kpis::count_redemption(repo, &claims.offer_id, origin, at.store_id, when, 1)?;
        webhooks::emit(
            repo,
            &claims.member_id,
            EventData::CouponRedeemed {
                coupon_id: claims.coupon_id.clone(),
                offer_id: claims.offer_id.clone(),
                store_id: at.store_id.to_owned(),
            },
            now_ms,
        )?;
        // The member's wallet changed: the next sync fetches it.
        repo.touch_member(&claims.member_id)?;
        return Ok(Ok(redemption(
            at.store_id.to_owned(),
            at.till_id.to_owned(),
            when,
        )));
    }
    let earlier = repo.coupon(&claims.coupon_id, &claims.member_id)?;
    Ok(Err(match earlier {
        Some(CouponRow {
            redeemed_store: Some(store),
            redeemed_at_ms: Some(first),
            redeemed_till,
            receipt,
            ..
        }) => {
            // The same till reporting the same receipt again (its first answer was lost, and
            // it reported the redemption as offline under a new key): the same redemption.
            if let (Some(till), Some(receipt)) = (&redeemed_till, &receipt)
                && till == at.till_id
                && receipt == at.receipt
            {
                return Ok(Ok(redemption(store, till.clone(), first)));
            }
            if at.offline_at_ms.is_some() {
                repo.coupon_event(&event(CouponEventKind::Conflict))?;
                webhooks::emit(
                    repo,
                    &claims.member_id,
                    EventData::CouponRedemptionConflict {
                        coupon_id: claims.coupon_id.clone(),
                        store_id: at.store_id.to_owned(),
                    },
                    now_ms,
                )?;
                Refusal::RedemptionConflict {
                    store_id: store,
                    at_ms: first,
                }
            } else {
                Refusal::AlreadyRedeemed {
                    store_id: store,
                    at_ms: first,
                }
            }
        }
        Some(CouponRow {
            revoked_at_ms: Some(_),
            ..
        }) => Refusal::CouponRevoked,
        _ => Refusal::UnknownCoupon,
    }))
}

/// The offer's rules at a redemption at `when` (the till's time for an offline report), by the
/// domain's [`tessera_domain::eligibility::check_redemption`], against the offer as it stands.
/// Checked only while the coupon is unused (a repeat learns where it was redeemed instead). A
/// coupon whose offer has left the catalog stands on its claims.
fn offer_rules_at_redemption(
    repo: &mut dyn Repo,
    at: &RedeemAt<'_>,
    claims: &CouponClaims,
    when: i64,
) -> RepoResult<Result<(), tessera_domain::eligibility::Refusal>> {
    use tessera_domain::eligibility::{Place, check_redemption};
    let Some(offer) = repo.offer(&claims.offer_id)? else {
        return Ok(Ok(()));
    };
    let terms = OfferTerms::of(&offer).map_err(StorageError::backend)?;
    let used = uses(repo, &claims.member_id, &offer, Some(&claims.coupon_id))?;
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
