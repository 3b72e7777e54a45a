//! `tessera till`: the till shell over the same core `Till` the bindings expose. Works offline:
//! what cannot reach the server is journaled and reported by `tessera till sync`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tessera_core::api::{PurchaseLine, PurchaseRequest, ReturnRequest};
use tessera_till::{Done, Till};

#[derive(clap::Args, Debug)]
pub struct TillArgs {
    /// The till's journal file.
    #[arg(long, env = "TESSERA_TILL_JOURNAL", default_value = "till.journal")]
    journal: PathBuf,
    #[arg(long, env = "TESSERA_SERVER")]
    server: String,
    /// The till's token (from `tessera till register`); not needed to register.
    // Tokens are base64url: one in 64 starts with '-', which must not read as an option.
    #[arg(
        long,
        env = "TESSERA_TILL_TOKEN",
        default_value = "",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    token: String,
    /// The shop this till is in (`web` for the web checkout).
    #[arg(long, env = "TESSERA_STORE")]
    store: String,
    #[command(subcommand)]
    action: TillAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum TillAction {
    /// Register a till of --store with the operator's token; prints the till's token (alone, on
    /// stdout).
    Register {
        #[arg(long, env = "TESSERA_ADMIN_TOKEN", allow_hyphen_values = true)]
        admin_token: String,
    },
    /// Check a scanned code offline (signature, dates, shop, basket, this till's journal).
    Verify {
        code: String,
        /// The member id of the card scanned with it.
        #[arg(long)]
        member: Option<String>,
        #[arg(long, default_value_t = 0)]
        basket: u64,
    },
    /// Check a member's card as scanned: a rotating member code (`TM1:…`, checked offline:
    /// certificate, revocation, device signature, time) or a static card number.
    Scan { code: String },
    /// Redeem a code once (journaled when offline).
    Redeem {
        code: String,
        #[arg(long)]
        basket: u64,
        #[arg(long)]
        receipt: String,
    },
    /// Record a purchase: points for the card's member, maybe a web coupon.
    Purchase {
        #[arg(long)]
        receipt: String,
        /// The member's card as scanned, if one was: the card number, or the rotating member
        /// code from the app (`TM1:…`, checked here and again at the server).
        #[arg(long)]
        card: Option<String>,
        /// `SKU:CENTS[:QUANTITY[:CATEGORY[:COLLECTION]]]`, repeatable.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// What was paid, in cents (default: the lines' sum).
        #[arg(long)]
        total: Option<u64>,
    },
    /// Void what was recorded under a receipt in this shop, within the void window.
    Void { receipt: String },
    /// Goods brought back: the points they earned are taken back.
    Return {
        receipt: String,
        #[arg(long)]
        refunded: u64,
        /// The original purchase's shop, if not this one.
        #[arg(long)]
        from_store: Option<String>,
    },
    /// Report the journal to the server.
    Sync,
    /// Journaled requests and the server's latest answers to reports.
    Status {
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

fn parse_line(s: &str) -> Result<PurchaseLine> {
    let mut parts = s.split(':');
    let (Some(sku), Some(cents)) = (parts.next(), parts.next()) else {
        bail!("--line {s}: expected SKU:CENTS[:QUANTITY[:CATEGORY[:COLLECTION]]]");
    };
    Ok(PurchaseLine {
        sku: sku.to_owned(),
        amount_cents: cents.parse().context("--line: cents")?,
        quantity: parts
            .next()
            .map_or(Ok(1), str::parse)
            .context("--line: quantity")?,
        category: parts.next().map(str::to_owned),
        collection: parts.next().map(str::to_owned),
    })
}

fn done<T>(d: Done<T>, show: impl FnOnce(T)) {
    match d {
        Done::Online(t) => show(t),
        Done::Offline => {
            println!("offline: handled at the till and journaled; `tessera till sync` reports it")
        }
    }
}

pub fn run(args: TillArgs) -> Result<()> {
    if let TillAction::Register { admin_token } = &args.action {
        let v: serde_json::Value = reqwest::blocking::Client::new()
            .post(format!(
                "{}/admin/v1/tills",
                args.server.trim_end_matches('/')
            ))
            .bearer_auth(admin_token)
            .json(&serde_json::json!({ "store_id": args.store }))
            .send()?
            .error_for_status()?
            .json()?;
        // The token alone on stdout (`TOKEN=$(tessera till register …)`); what it is on stderr.
        eprintln!(
            "till {} of {}: its token (on stdout) is shown once",
            v["till_id"], v["store_id"]
        );
        println!("{}", v["token"].as_str().unwrap_or_default());
        return Ok(());
    }
    let till = Till::open(
        &args.journal,
        &args.server,
        &args.token,
        &args.store,
        tessera_core::sync::ReqwestClient::shared(),
    )?;
    match args.action {
        TillAction::Register { .. } => unreachable!("handled above"),
        TillAction::Verify {
            code,
            member,
            basket,
        } => {
            let c = till.verify(&code, member.as_deref(), basket)?;
            println!(
                "valid: coupon {} for offer {} (member {}), until {}",
                c.coupon_id,
                c.offer_id,
                c.member_id,
                tessera_core::rfc3339_ms(c.expires_at.saturating_mul(1000))
            );
        }
        TillAction::Scan { code } => {
            if code.trim().starts_with(tessera_till::MEMBER_CODE_PREFIX) {
                let scanned = till.scan_member(&code)?;
                seen_warning(&scanned);
                println!(
                    "member card {} (device {}, code of {})",
                    scanned.card_number, scanned.serial, scanned.made_at
                );
            } else {
                let card = code.trim();
                if card.is_empty() || card.len() > 64 {
                    bail!("not a card number: 1 to 64 characters");
                }
                println!("member card {card} (static number: not proof the member is here)");
            }
        }
        TillAction::Redeem {
            code,
            basket,
            receipt,
        } => done(till.redeem(&code, basket, &receipt)?, |r| {
            println!(
                "redeemed: coupon {} (offer {}) at {} on {}",
                r.coupon_id, r.offer_id, r.store_id, r.redeemed_at
            )
        }),
        TillAction::Purchase {
            receipt,
            card,
            lines,
            total,
        } => {
            let lines = lines
                .iter()
                .map(|l| parse_line(l))
                .collect::<Result<Vec<_>>>()?;
            let total_cents = total.unwrap_or_else(|| lines.iter().map(|l| l.amount_cents).sum());
            let (card_number, member_code) = match card {
                Some(c) if c.trim().starts_with(tessera_till::MEMBER_CODE_PREFIX) => {
                    let scanned = till.scan_member(&c)?;
                    seen_warning(&scanned);
                    (Some(scanned.card_number), Some(scanned.code))
                }
                other => (other, None),
            };
            let req = PurchaseRequest {
                receipt,
                card_number,
                member_code,
                lines,
                total_cents,
                occurred_offline_at: None,
            };
            done(till.record_purchase(&req)?, |r| {
                println!(
                    "recorded {}: {} points (balance {}){}",
                    r.purchase_id,
                    r.points_earned,
                    r.points_balance,
                    r.web_coupon
                        .map(|c| format!("\nweb coupon: {c}"))
                        .unwrap_or_default()
                )
            });
        }
        TillAction::Void { receipt } => done(till.void(&receipt)?, |r| {
            println!(
                "voided {}: {} coupon(s) usable again, purchase voided: {}, {} points taken back",
                r.receipt,
                r.coupons_restored.len(),
                r.purchase_voided,
                r.points_reversed
            )
        }),
        TillAction::Return {
            receipt,
            refunded,
            from_store,
        } => done(
            till.return_goods(&ReturnRequest {
                receipt,
                store_id: from_store,
                refunded_cents: refunded,
            })?,
            |r| {
                println!(
                    "{} points taken back ({} already spent, written off); balance {}",
                    r.points_reversed, r.points_unrecovered, r.points_balance
                )
            },
        ),
        TillAction::Sync => {
            let r = till.sync()?;
            println!(
                "reported: {} accepted, {} conflict(s), {} refused; {} still waiting",
                r.accepted,
                r.conflicts.len(),
                r.refused.len(),
                r.pending
            );
            for o in r.conflicts.iter().chain(&r.refused) {
                println!(
                    "  {} {}: {} {}",
                    o.kind,
                    o.receipt,
                    o.code.as_deref().unwrap_or(""),
                    o.detail.as_deref().unwrap_or("")
                );
            }
        }
        TillAction::Status { limit } => {
            println!("{} request(s) journaled, not reported yet", till.pending()?);
            for o in till.outcomes(limit)? {
                println!(
                    "  {} {} {}: {} {}",
                    o.reported_at,
                    o.kind,
                    o.receipt,
                    o.code.as_deref().unwrap_or("accepted"),
                    o.detail.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

/// The cashier is told when one device's code for one step comes back within its window.
fn seen_warning(scanned: &tessera_till::ScannedMember) {
    if scanned.seen_before {
        eprintln!(
            "warning: this code (device {}, {}) was scanned at this till already: the same \
             screen twice, or a copy",
            scanned.serial, scanned.made_at
        );
    }
}
