//! The `tessera` binary's PNGs, read by a second independent decoder (zbar's `zbarimg`, C), for
//! the symbologies zbar reads. The Python scanner check covers all seven with zxing-cpp.

use std::process::Command;

/// GS1 check digit, computed here rather than by the code under test.
fn gs1(payload: &str) -> char {
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

fn digits(seed: &mut u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'0' + ((*seed >> 33) % 10) as u8)
        })
        .collect()
}

fn scan(symbology: &str, value: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("code.png");
    let status = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["barcode", symbology, value, "--png"])
        .arg(&png)
        .args(["--scale", "3"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "tessera barcode failed: {status:?}"
    );
    // zbar decodes UPC-A through its EAN-13 decoder and reports it as EAN-13 (a leading 0)
    // unless UPC-A is enabled on top.
    let mut zbar = Command::new("zbarimg");
    zbar.args(["--quiet", "--raw"]);
    if symbology == "upca" {
        zbar.arg("-Supca.enable");
    }
    let out = zbar
        .arg(&png)
        .output()
        .expect("zbarimg is missing: run scripts/setup.sh");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

#[test]
fn zbar_reads_what_the_cli_draws() {
    let mut seed = 7u64;
    for _ in 0..10 {
        let p = digits(&mut seed, 12);
        let ean13 = format!("{p}{}", gs1(&p));
        assert_eq!(scan("ean13", &ean13), ean13);
        let p = digits(&mut seed, 7);
        let ean8 = format!("{p}{}", gs1(&p));
        assert_eq!(scan("ean8", &ean8), ean8);
        let p = digits(&mut seed, 11);
        let upca = format!("{p}{}", gs1(&p));
        assert_eq!(scan("upca", &upca), upca, "UPC-A reads as 12 digits");
        let code = format!("MD-{}", digits(&mut seed, 9));
        assert_eq!(scan("code128", &code), code);
        let text = format!("tessera:card/{}", digits(&mut seed, 16));
        assert_eq!(scan("qr", &text), text);
    }
}

/// The rotating member code drawn as a QR code by the project's encoder, read back by zbar and
/// verified by the till's check: the till accepts what a scanner reads off the screen.
#[test]
fn zbar_reads_a_rotating_member_code_and_the_till_verifies_it() {
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use tessera_core::coupon::CouponKey;
    use tessera_core::member_code::{
        CertificateRequest, DEFAULT_PERIOD_S, TillCheck, certify, member_code, verify,
    };
    let now = jiff::Timestamp::now().as_second();
    let programme = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let keys = [CouponKey {
        key_id: "k1".into(),
        public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(programme.public_key().as_ref()),
    }];
    for (seed, card) in [
        (1u8, "4000123412341234"),
        (2, "MD-000000042"),
        (3, "9".repeat(19).as_str()),
    ] {
        let device = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let mut public_key = [0; 32];
        public_key.copy_from_slice(device.public_key().as_ref());
        let request = CertificateRequest {
            card_number: card.into(),
            serial: u64::from(seed) << 40,
            public_key,
            period_s: DEFAULT_PERIOD_S,
            not_before_s: now - 60,
            not_after_s: now + 30 * 86_400,
        };
        let cert = certify(&request, "k1", &programme).unwrap();
        let code = member_code(&cert, &device, now).unwrap();
        let read = scan("qr", &code);
        assert_eq!(read, code, "zbar reads the code as drawn");
        let check = TillCheck {
            keys: &keys,
            revoked: &[],
            now_s: now,
            skew_steps: 1,
            expected_card: None,
        };
        assert_eq!(verify(&read, &check).unwrap().card_number, card);
    }
}

#[test]
fn bad_input_is_an_error_message_not_a_crash() {
    for args in [
        vec!["barcode", "ean13", "4006381333932"],
        vec!["barcode", "datamatrix", "x"],
        vec!["barcode", "code128", "naïve"],
        vec!["analyse", "   "],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn card_commands_round_trip_through_a_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("card")
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&["show"]);
    assert!(!ok && err.contains("no card is enrolled"), "{err}");
    assert!(
        run(&[
            "set-program",
            "--id",
            "p",
            "--name",
            "Shop",
            "--color",
            "#112233",
            "--symbology",
            "code128"
        ])
        .0
    );
    assert!(
        run(&[
            "set",
            "--number",
            "MD-42",
            "--holder",
            "Ada",
            "--since",
            "2020-02-02"
        ])
        .0
    );
    let (ok, json, _) = run(&["show", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["card_number"], "MD-42");
    assert_eq!(v["barcode"]["symbology"], "code128");
    let png = dir.path().join("card.png");
    assert!(run(&["render", "--png", png.to_str().unwrap()]).0);
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw"])
        .arg(&png)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), "MD-42");
}
