//! Figures for coupons (issue #6): offline verification at the till (signature, dates, shop,
//! shop tags, days and hours in the shop's zone, member, basket) of a coupon signed by the server's Ed25519 key. Target: median ≤ 100 µs.

use std::hint::black_box;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use ring::signature::{Ed25519KeyPair, KeyPair};
use tessera_core::coupon::{CouponClaims, CouponKey, TillShop, encode, signed_message, verify};

fn coupon(c: &mut Criterion) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let key = CouponKey {
        key_id: "k1".into(),
        public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(pair.public_key().as_ref()),
    };
    let claims = CouponClaims {
        coupon_id: "cp-0123456789abcdef0123456789abcdef".into(),
        member_id: "m_0123456789abcdef0123456789abcdef".into(),
        offer_id: "of-009".into(),
        issued_at: 1_790_000_000,
        expires_at: 1_800_000_000,
        store_ids: vec!["st-paris-01".into(), "st-paris-02".into()],
        min_basket_cents: Some(2000),
        key_id: "k1".into(),
        // The most a till checks: shop tags, and days and hours in the shop's time zone.
        store_tags: vec!["outlet".into()],
        valid_from: Some(1_790_000_000),
        days: tessera_core::eligibility::day_mask(&[1, 2, 3, 4, 5, 6, 7]),
        hours_from: Some(0),
        hours_to: Some(23 * 60 + 59),
    };
    let shop = TillShop {
        store_id: "st-lyon-07".into(),
        tags: vec!["city".into(), "outlet".into()],
        zone: jiff::tz::TimeZone::get("Europe/Paris").unwrap(),
    };
    let json = serde_json::to_vec(&claims).unwrap();
    let code = encode(&json, pair.sign(&signed_message(&json)).as_ref());
    let keys = [key];
    c.bench_function("coupon/verify_offline", |b| {
        b.iter(|| {
            black_box(
                verify(
                    black_box(&code),
                    &keys,
                    1_795_000_000,
                    &shop,
                    Some("m_0123456789abcdef0123456789abcdef"),
                    2500,
                )
                .unwrap(),
            )
        })
    });
}

criterion_group!(benches, coupon);
criterion_main!(benches);
