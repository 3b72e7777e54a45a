//! Wallet passes (issue #18): the cost of one pass, from the model to what is served. Apple:
//! `pass.json` written from the model (the peer: what every pass costs before signing), then the
//! whole `.pkpass` (manifest SHA-1s, the CMS signature with a 2048-bit RSA pass type key, the
//! zip). Google: the save link (an RS256 JWT). The operator's files are made with `openssl`, as
//! in the tests. Passes served per second over HTTP: `scripts/load-wallet.sh`.

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_domain::barcode::Symbology;
use tessera_domain::geo::Position;
use tessera_domain::pass::{AppleIdentity, Branding, CardPass, PassShop, Rgb};
use tessera_server::credentials::ServiceAccount;
use tessera_server::wallet::apple::{PassImages, PassSigner, pkpass};

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let ok = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl {args:?}");
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(&vec![90u8; (w * h * 3) as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

fn wallet(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ca.ext"), "basicConstraints=critical,CA:TRUE\n").unwrap();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "wwdr.key",
            "-out",
            "wwdr.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Bench WWDR",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "pass.key",
            "-out",
            "pass.csr",
            "-subj",
            "/UID=pass.app.tessera.bench/CN=Bench",
        ],
    );
    std::fs::write(d.join("leaf.ext"), "basicConstraints=critical,CA:FALSE\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "pass.csr",
            "-CA",
            "wwdr.pem",
            "-CAkey",
            "wwdr.key",
            "-set_serial",
            "3",
            "-out",
            "pass.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    );
    let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
    let signer =
        PassSigner::from_pem(&read("pass.pem"), &read("pass.key"), &read("wwdr.pem")).unwrap();
    let images = PassImages::new(vec![
        ("icon.png".into(), png(29, 29)),
        ("icon@2x.png".into(), png(58, 58)),
        ("logo.png".into(), png(160, 50)),
        ("logo@2x.png".into(), png(320, 100)),
    ])
    .unwrap();
    let branding = Branding {
        programme_name: "Tessera Club".into(),
        organization_name: "Maison Tessera".into(),
        foreground: Rgb(255, 255, 255),
        background: Rgb(20, 40, 80),
        label: Rgb(200, 210, 230),
        logo_url: Some("https://tessera.example/logo.png".into()),
    };
    let id = AppleIdentity {
        pass_type_id: "pass.app.tessera.bench".into(),
        team_id: "TESSERA123".into(),
        web_service_url: Some("https://tessera.example/passkit".into()),
        authentication_token: "a".repeat(43),
    };
    let card = CardPass {
        serial: "card-m_0123456789abcdef".into(),
        card_number: "4006381333931".into(),
        member_name: "Chloé Martin".into(),
        points: 1234,
        tier: Some("Gold".into()),
        symbology: Symbology::Ean13,
        shops: (0..10)
            .map(|i| PassShop {
                store_id: format!("st-{i}"),
                name: format!("Maison Tessera {i}"),
                position: Position {
                    latitude: 48.0 + f64::from(i) / 10.0,
                    longitude: 2.35,
                },
            })
            .collect(),
        linked_offers: vec![],
    };
    let now = 1_796_000_000;
    let mut g = c.benchmark_group("wallet");
    g.bench_function("apple pass.json (model → JSON, limits checked)", |b| {
        b.iter(|| card.apple(&id, &branding).unwrap())
    });
    g.bench_function(
        "apple pkpass (pass.json, manifest, RSA-2048 CMS signature, zip)",
        |b| {
            b.iter(|| {
                let json = card.apple(&id, &branding).unwrap();
                pkpass(&json, &images, &signer, now).unwrap()
            })
        },
    );
    let size = pkpass(&card.apple(&id, &branding).unwrap(), &images, &signer, now)
        .unwrap()
        .len();
    eprintln!("wallet: one card pkpass is {size} bytes (4 images)");
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "sa.key",
        ],
    );
    let account = ServiceAccount::from_json(
        &serde_json::json!({
            "client_email": "bench@tessera", "private_key_id": "k",
            "private_key": read("sa.key"), "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string(),
    )
    .unwrap();
    g.bench_function("google save link (loyalty object, RS256 JWT)", |b| {
        b.iter(|| {
            let object = card
                .google("3388000000022000000", "3388000000022000000.club")
                .unwrap();
            tessera_server::wallet::google::save_link(
                &account,
                &[],
                serde_json::json!({ "loyaltyObjects": [object] }),
                now,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, wallet);
criterion_main!(benches);
