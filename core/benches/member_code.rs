//! Figures for the rotating member code (issue #18): the phone makes the code (one Ed25519
//! signature, base45) and the till verifies it offline (two Ed25519 verifications: the
//! programme's over the certificate, the device's over the step). Targets: each ≤ 100 µs median.
//! The peer in the same run: a static card number drawn as a QR code, and a coupon's offline
//! verification (one Ed25519 verification). The QR code's size is printed (modules across).

use std::hint::black_box;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use ring::signature::{Ed25519KeyPair, KeyPair};
use tessera_core::barcode::{BarcodeMatrix, Symbology};
use tessera_core::coupon::CouponKey;
use tessera_core::member_code::{
    CertificateRequest, DEFAULT_PERIOD_S, TillCheck, certify, member_code, verify,
};

const NOW: i64 = 1_796_000_000;

fn bench(c: &mut Criterion) {
    let programme = Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap();
    let device = Ed25519KeyPair::from_seed_unchecked(&[2; 32]).unwrap();
    let mut public_key = [0; 32];
    public_key.copy_from_slice(device.public_key().as_ref());
    let card = "4000123412341234";
    let cert = certify(
        &CertificateRequest {
            card_number: card.into(),
            serial: 0x0123_4567_89ab_cdef,
            public_key,
            period_s: DEFAULT_PERIOD_S,
            not_before_s: NOW - 86_400,
            not_after_s: NOW + 30 * 86_400,
        },
        "k1",
        &programme,
    )
    .unwrap();
    let keys = [CouponKey {
        key_id: "k1".into(),
        public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(programme.public_key().as_ref()),
    }];
    let revoked: Vec<u64> = (0..10_000).map(|n| n * 7919).collect();
    let check = TillCheck {
        keys: &keys,
        revoked: &revoked,
        now_s: NOW + 5,
        skew_steps: 1,
        expected_card: None,
    };
    let code = member_code(&cert, &device, NOW).unwrap();
    let qr = BarcodeMatrix::encode(Symbology::Qr, &code).unwrap();
    let plain = BarcodeMatrix::encode(Symbology::Qr, card).unwrap();
    let pdf = BarcodeMatrix::encode(Symbology::Pdf417, &code).unwrap();
    eprintln!(
        "member code: {} characters; QR {}×{} modules (the static card number: {}×{}); \
         PDF417 {}×{}",
        code.len(),
        qr.width,
        qr.height,
        plain.width,
        plain.height,
        pdf.width,
        pdf.height
    );
    let mut group = c.benchmark_group("member_code");
    group.bench_function("make_on_the_phone", |b| {
        b.iter(|| black_box(member_code(black_box(&cert), &device, NOW).unwrap()))
    });
    group.bench_function("verify_at_the_till", |b| {
        b.iter(|| black_box(verify(black_box(&code), &check).unwrap()))
    });
    group.bench_function("draw_qr/rotating_code", |b| {
        b.iter(|| black_box(BarcodeMatrix::encode(Symbology::Qr, black_box(&code)).unwrap()))
    });
    group.bench_function("draw_qr/static_card_number", |b| {
        b.iter(|| black_box(BarcodeMatrix::encode(Symbology::Qr, black_box(card)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
