//! Figures for the digital card (issue #2):
//! - time-to-card: open an existing database file from nothing (new connections, schema check),
//!   read the card, encode its barcode matrix. Target: median ≤ 2 ms.
//! - encode cost per symbology, and the SVG/PNG drawing cost.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::{BarcodeMatrix, MemberCard, Program, Symbology, Tessera};

fn time_to_card(c: &mut Criterion) {
    let mut group = c.benchmark_group("time_to_card");
    for (symbology, number) in [
        (Symbology::Qr, "MD-0000-4411-2291"),
        (Symbology::Ean13, "4006381333931"),
        (Symbology::Pdf417, "MD-0000-4411-2291"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.db");
        let t = Tessera::open(&path).unwrap();
        t.set_program(&Program {
            id: "bench".into(),
            name: "Bench".into(),
            brand_color: "#000000".into(),
            symbology,
        })
        .unwrap();
        t.set_card(&MemberCard {
            card_number: number.into(),
            holder_name: "Ada Lovelace".into(),
            member_since: "2021-03-04".into(),
            tier_label: Some("Gold".into()),
        })
        .unwrap();
        t.close();
        group.bench_function(symbology.as_str(), |b| {
            b.iter(|| {
                let t = Tessera::open(&path).unwrap();
                let view = t.card().unwrap();
                black_box(view.barcode.modules.len());
                t.close();
            })
        });
    }
    group.finish();
}

fn encode_per_symbology(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (symbology, value) in [
        (Symbology::Qr, "MD-0000-4411-2291"),
        (Symbology::Code128, "MD-0000-4411-2291"),
        (Symbology::Ean13, "4006381333931"),
        (Symbology::Ean8, "96385074"),
        (Symbology::UpcA, "036000291452"),
        (Symbology::Pdf417, "MD-0000-4411-2291"),
        (Symbology::Aztec, "MD-0000-4411-2291"),
    ] {
        group.bench_function(symbology.as_str(), |b| {
            b.iter(|| BarcodeMatrix::encode(symbology, black_box(value)).unwrap())
        });
    }
    group.finish();

    let qr = BarcodeMatrix::encode(Symbology::Qr, "MD-0000-4411-2291").unwrap();
    c.bench_function("draw/qr_svg", |b| b.iter(|| qr.svg(4).unwrap()));
    c.bench_function("draw/qr_png_scale4", |b| b.iter(|| qr.png(4).unwrap()));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(200);
    targets = time_to_card, encode_per_symbology
}
criterion_main!(benches);
