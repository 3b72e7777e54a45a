//! Wallet passes (issue #18): the cost of one pass, from the model to what is served. Apple:
//! `pass.json` written from the model (the peer: what every pass costs before signing), then the
//! whole `.pkpass` (manifest SHA-1s, the CMS signature with a 2048-bit RSA pass type key, the
//! zip). Google: the save link (an RS256 JWT). The operator's files are the tests' (made with
//! `openssl`: `tessera_e2e::wallet::WalletFixture`). Passes served per second over HTTP: `scripts/load-wallet.sh`.

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_domain::barcode::Symbology;
use tessera_domain::geo::Position;
use tessera_domain::pass::{AppleIdentity, Branding, CardPass, PassShop, Rgb};
use tessera_e2e::wallet::WalletFixture;
use tessera_server::wallet::apple::pkpass;

fn wallet(c: &mut Criterion) {
    // The operator's files as the tests make them (openssl), checked as `serve` checks them.
    let fixture = WalletFixture::make("http://127.0.0.1:1", "http://127.0.0.1/passkit");
    let wallet = fixture.load();
    let apple = wallet.apple.as_ref().unwrap();
    let (signer, images) = (&apple.signer, &apple.images);
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
                pkpass(&json, images, signer, now).unwrap()
            })
        },
    );
    let size = pkpass(&card.apple(&id, &branding).unwrap(), images, signer, now)
        .unwrap()
        .len();
    eprintln!("wallet: one card pkpass is {size} bytes (4 images)");
    let account = &wallet.google.as_ref().unwrap().account;
    g.bench_function("google save link (loyalty object, RS256 JWT)", |b| {
        b.iter(|| {
            let object = card
                .google("3388000000022000000", "3388000000022000000.club")
                .unwrap();
            tessera_server::wallet::google::save_link(
                account,
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
