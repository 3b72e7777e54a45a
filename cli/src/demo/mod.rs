//! `tessera demo`: what Tessera does, step by step, in a temporary database. Each later
//! capability adds its step here.

use std::path::PathBuf;
use std::time::Instant;

/// Timings printed by the demo say which build measured them: the README's figures are release
/// builds, and `cargo run` makes a debug one, several times slower.
const BUILD: &str = if cfg!(debug_assertions) {
    " (debug build; release figures in the README)"
} else {
    " (release build)"
};

mod challenges;
mod consent;
mod server;
mod sync;
mod till;
mod walk;

use challenges::*;
use consent::*;
use server::*;
use sync::*;
use till::*;
use walk::*;

use anyhow::Result;
use tessera_core::barcode::analyse_card_number;
use tessera_core::{Error, MemberCard, Program, Symbology, Tessera};

use crate::print_card;

fn step(n: u32, title: &str) {
    println!("\n── {n}. {title}");
}

pub fn run(keep: Option<PathBuf>) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = match keep {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => temp.path().to_path_buf(),
    };
    let db = dir.join("tessera.db");
    println!("Tessera demo — database {}", db.display());

    step(1, "The programme: Maison Dupont, whose tills read EAN-13");
    let t = Tessera::open(&db)?;
    let program = t.set_program(&Program {
        id: "maison-dupont".into(),
        name: "Maison Dupont".into(),
        brand_color: "#0a7d5a".into(),
        symbology: Symbology::Ean13,
    })?;
    println!(
        "programme {} ({}), tills read {}",
        program.name, program.brand_color, program.symbology
    );

    step(
        2,
        "The member types the number from her plastic card: \"4006 3813 3393\"",
    );
    let analysis = analyse_card_number("4006 3813 3393")?;
    for s in &analysis.suggestions {
        let flag = if s.differs_from_printed { "≠" } else { "=" };
        let name = s.symbology.to_string();
        println!("  {flag} {name:<9} {:<15} {}", s.encoded_value, s.note);
    }
    println!("  (≠: a scanner would read something other than what was typed)");

    step(3, "A wrong check digit is refused before anything is drawn");
    let wrong = MemberCard {
        card_number: "4006381333932".into(),
        holder_name: "Ada Lovelace".into(),
        member_since: "2021-03-04".into(),
        tier_label: Some("Gold".into()),
    };
    match t.set_card(&wrong) {
        Err(e @ Error::CardNumber(_)) => println!("  refused: {e}"),
        other => anyhow::bail!("a wrong check digit was accepted: {other:?}"),
    }

    step(4, "Enrolled: the card screen");
    let card = MemberCard {
        card_number: "4006 3813 3393".into(),
        ..wrong
    };
    print_card(&t.set_card(&card)?);
    t.close();

    step(
        5,
        "At the till, offline: open the database cold and show the card",
    );
    let start = Instant::now();
    let t = Tessera::open(&db)?;
    let view = t.card()?;
    let elapsed = start.elapsed();
    println!(
        "  open + card() + {} matrix: {:.2} ms, no network{}",
        view.barcode.symbology,
        elapsed.as_secs_f64() * 1000.0,
        BUILD
    );

    step(6, "The same card for e-mails and print");
    let svg = dir.join("card.svg");
    let png = dir.join("card.png");
    std::fs::write(&svg, view.barcode.svg(4)?)?;
    std::fs::write(&png, view.barcode.png(4)?)?;
    println!("  {}\n  {}", svg.display(), png.display());
    t.close();

    sync_steps(&dir)?;

    println!("\nDone.");
    Ok(())
}
