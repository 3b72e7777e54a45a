//! `tessera`: the demo, and the card tools over the same core the apps link.

mod demo;
mod member;
mod serve;
mod terminal;
mod till;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tessera_core::barcode::analyse_card_number;
use tessera_core::{BarcodeMatrix, MemberCard, Program, Symbology, Tessera};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera loyalty core: demo and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through what Tessera does, in a temporary database.
    Demo {
        /// Keep the demo's files in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// The member's card in a database file.
    Card {
        /// Database file.
        #[arg(long, env = "TESSERA_DB", default_value = "tessera.db")]
        db: PathBuf,
        #[command(subcommand)]
        action: CardAction,
    },
    /// Run the reference server (admin and member APIs) until Ctrl-C.
    Serve(Box<serve::ServeArgs>),
    /// Make an operator credential: a fresh token and its line for `serve --admin-credentials`.
    AdminCredential {
        /// Its name (1 to 64 of A-Z a-z 0-9 . _ -), shown in the server's log of admin requests.
        name: String,
    },
    /// The member shell: enrol, act (offline too), sync, read the cache.
    Member {
        /// Database file.
        #[arg(long, env = "TESSERA_DB", default_value = "tessera.db")]
        db: PathBuf,
        #[command(subcommand)]
        action: member::MemberAction,
    },
    /// The till shell: verify and redeem coupons, record purchases, voids and returns (offline
    /// too), report the journal.
    Till(till::TillArgs),
    /// Which symbology a typed-in card number most likely is.
    Analyse { number: String },
    /// Draw any value in any symbology.
    Barcode {
        /// qr, code128, ean13, ean8, upca, pdf417, aztec
        symbology: String,
        value: String,
        #[command(flatten)]
        out: RenderOut,
    },
}

#[derive(Subcommand)]
enum CardAction {
    /// Show the card screen (add --json for everything `card()` returns).
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Set the programme.
    SetProgram {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// #RRGGBB
        #[arg(long)]
        color: String,
        /// The symbology the tills read: qr, code128, ean13, ean8, upca, pdf417, aztec.
        #[arg(long)]
        symbology: String,
    },
    /// Enrol (or replace) the member's card.
    Set {
        #[arg(long)]
        number: String,
        #[arg(long)]
        holder: String,
        /// YYYY-MM-DD
        #[arg(long)]
        since: String,
        #[arg(long)]
        tier: Option<String>,
    },
    /// Write the card's barcode as SVG and/or PNG.
    Render {
        #[command(flatten)]
        out: RenderOut,
    },
    /// Forget the card on this device.
    Remove,
}

#[derive(clap::Args)]
struct RenderOut {
    /// Write an SVG here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write a PNG here.
    #[arg(long)]
    png: Option<PathBuf>,
    /// PNG pixels per module.
    #[arg(long, default_value_t = 4)]
    scale: u32,
}

fn main() {
    // Like any Unix filter: a closed pipe (`tessera member stores | head`) ends the process
    // quietly instead of a panic in `println!`. Rust ignores SIGPIPE by default.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TESSERA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { keep } => demo::run(keep),
        Command::Serve(args) => serve::run(*args),
        Command::AdminCredential { name } => serve::new_credential(&name),
        Command::Till(args) => till::run(args),
        Command::Member { db, action } => {
            let t = open_phone(&db)?;
            member::run(&t, action)
        }
        Command::Analyse { number } => {
            let a = analyse_card_number(&number)?;
            for (i, s) in a.suggestions.iter().enumerate() {
                let mark = if i == 0 { "→" } else { " " };
                let differs = if s.differs_from_printed {
                    "  (scanner reads something else)"
                } else {
                    ""
                };
                println!(
                    "{mark} {:<9} {:<20} {}{differs}",
                    s.symbology.to_string(),
                    s.encoded_value,
                    s.note
                );
            }
            Ok(())
        }
        Command::Barcode {
            symbology,
            value,
            out,
        } => {
            let s: Symbology = symbology.parse()?;
            let m = BarcodeMatrix::encode(s, &value)?;
            print!("{}", terminal::draw(&m));
            write_outputs(&m, &out)
        }
        Command::Card { db, action } => {
            let t = open_phone(&db)?;
            card(&t, action)
        }
    }
}

/// The member's database at `db`, talking to the server through reqwest (an app gives its own
/// HTTP stack instead: docs/adr/0015).
pub(crate) fn open_phone(db: &std::path::Path) -> Result<Tessera> {
    let t = Tessera::open(db).with_context(|| format!("opening {}", db.display()))?;
    t.set_http_client(tessera_core::sync::ReqwestClient::shared());
    Ok(t)
}

fn card(t: &Tessera, action: CardAction) -> Result<()> {
    match action {
        CardAction::Show { json } => {
            let view = t.card()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print_card(&view);
            }
        }
        CardAction::SetProgram {
            id,
            name,
            color,
            symbology,
        } => {
            let p = t.set_program(&Program {
                id,
                name,
                brand_color: color,
                symbology: symbology.parse()?,
            })?;
            println!(
                "programme {} ({}), tills read {}",
                p.name, p.brand_color, p.symbology
            );
        }
        CardAction::Set {
            number,
            holder,
            since,
            tier,
        } => {
            let view = t.set_card(&MemberCard {
                card_number: number,
                holder_name: holder,
                member_since: since,
                tier_label: tier,
            })?;
            print_card(&view);
        }
        CardAction::Render { out } => {
            let view = t.card()?;
            write_outputs(&view.barcode, &out)?;
        }
        CardAction::Remove => {
            t.remove_card()?;
            println!("card removed from this device");
        }
    }
    Ok(())
}

pub(crate) fn print_card(view: &tessera_core::CardView) {
    println!("┌ {} ({})", view.program_name, view.brand_color);
    println!(
        "│ {}{}",
        view.holder_name,
        view.tier_label
            .as_deref()
            .map(|t| format!(" · {t}"))
            .unwrap_or_default()
    );
    println!(
        "│ card {} · member since {}",
        view.display_number, view.member_since
    );
    println!(
        "└ {} carrying {}",
        view.barcode.symbology, view.barcode.encoded_value
    );
    print!("{}", terminal::draw(&view.barcode));
}

fn write_outputs(m: &BarcodeMatrix, out: &RenderOut) -> Result<()> {
    if let Some(path) = &out.svg {
        std::fs::write(path, m.svg(4)?).with_context(|| format!("writing {}", path.display()))?;
        println!("SVG written to {}", path.display());
    }
    if let Some(path) = &out.png {
        std::fs::write(path, m.png(out.scale)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("PNG written to {}", path.display());
    }
    Ok(())
}
