//! The till: verifies coupons offline with the programme's public keys, redeems them through the
//! server exactly once, records purchases, voids and returns, and keeps working offline. Used by
//! the CLI's till shell and the bindings.
//!
//! A till keeps a journal (its own SQLite file): the public keys, the coupons it redeemed (a
//! second scan is refused even offline) and the requests it could not report yet. When the
//! server cannot be reached, or its answer is lost, the till honours what it verified and
//! journals it with the till's time; [`Till::sync`] reports the journal in order, each request
//! under the idempotency key it was journaled with. The server orders conflicting redemptions
//! (the first report wins) and records the others as conflicts for the merchant; the till learns
//! which in the report.
//!
//! The till is the shop's app, not the member's: its own crate, its own journal file. It decides
//! with the domain's rules (`tessera-domain`) and reuses the client's SQLite and HTTP plumbing
//! (`tessera-core`'s `db` and `sync::http`), nothing of the member's phone.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("tessera_till");

mod report;

/// Now, in milliseconds since the epoch (the till's clock).
fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

use tessera_core::db::{Db, StorageError};
use tessera_core::sync::http::{Answer, Request, Traffic};
use tessera_core::sync::{Http, HttpClient, SyncConfig, SyncError};
use tessera_domain::api::{
    PurchaseReceipt, PurchaseRequest, RedeemRequest, Redemption, ReturnReport, ReturnRequest,
    VoidReport, VoidRequest, check_receipt, codes,
};
use tessera_domain::coupon::{CouponClaims, CouponError, CouponKey, TillShop, verify};
use tessera_domain::eligibility::ShopFacts;
use tessera_domain::member_code::{DEFAULT_SKEW_STEPS, MemberCodeError, SeenCodes, TillCheck};

const STEPS: &[M<'static>] = &[
    M::up(include_str!("journal/0001_journal.sql")),
    M::up(include_str!("journal/0002_shop.sql")),
    M::up(include_str!("journal/0003_revoked.sql")),
];
static MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

/// A till's journal file ("TSRT").
const JOURNAL_FILE: tessera_core::db::FileKind = tessera_core::db::FileKind {
    application_id: 0x5453_5254,
    first_table: "coupon_key",
    tables: tessera_core::changes::no_tables,
};

pub use tessera_domain::member_code::CODE_PREFIX as MEMBER_CODE_PREFIX;

/// Why a till could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TillError {
    /// The coupon is refused (forged, expired, another shop's, redeemed already…).
    #[error(transparent)]
    Coupon(#[from] CouponError),
    /// The rotating member code is refused (a screenshot, another device's, revoked…).
    #[error(transparent)]
    MemberCode(#[from] MemberCodeError),
    /// The server refused the request (`code` is its stable problem code).
    #[error("refused: {code}: {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    /// Bad input (a receipt number, a purchase).
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The server cannot be used (never reached for the keys, another protocol, a bad token).
    #[error(transparent)]
    Network(#[from] SyncError),
    /// The journal file.
    #[error(transparent)]
    Journal(#[from] StorageError),
}

impl From<tessera_domain::catalog::CatalogError> for TillError {
    fn from(e: tessera_domain::catalog::CatalogError) -> Self {
        TillError::InvalidInput {
            field: e.field.to_owned(),
            reason: e.reason,
        }
    }
}

impl From<rusqlite::Error> for TillError {
    fn from(e: rusqlite::Error) -> Self {
        TillError::Journal(e.into())
    }
}

/// What happened to a request at the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done<T> {
    /// The server answered now.
    Online(T),
    /// Handled at the till without the server (it could not be reached, or its answer was
    /// lost): what the server must learn is journaled for [`Till::sync`].
    Offline,
}

/// What a [`Till::sync`] reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct TillSyncReport {
    /// Reports the server accepted.
    pub accepted: u32,
    /// Offline redemptions that lost to an earlier redemption elsewhere: the merchant reviews
    /// them on the server.
    pub conflicts: Vec<TillOutcome>,
    /// Reports the server refused for another reason.
    pub refused: Vec<TillOutcome>,
    /// Still waiting (the server could not be reached again).
    pub pending: u32,
}

/// The server's answer to one journaled report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct TillOutcome {
    /// `redemption`, `purchase`, `void` or `return`.
    pub kind: String,
    pub receipt: String,
    pub coupon_id: Option<String>,
    pub status: u16,
    /// The problem code when refused (`redemption_conflict`…).
    pub code: Option<String>,
    /// For a conflict: the shop and time of the redemption that counts.
    pub detail: Option<String>,
    /// RFC 3339.
    pub reported_at: String,
}

/// One till of one shop.
pub struct Till {
    http: Http,
    token: String,
    store_id: String,
    /// Read by every scan, replaced on a key refresh.
    keys: RwLock<Vec<CouponKey>>,
    /// The shop's tags and time zone, replaced on a key refresh.
    shop: RwLock<TillShop>,
    /// Revoked device certificates (serials, ascending), replaced on a key refresh.
    revoked: RwLock<Vec<u64>>,
    /// Member codes scanned within their window (one device and step twice is flagged).
    seen_codes: std::sync::Mutex<SeenCodes>,
    /// Steps of a member code accepted either side of the till's clock.
    skew_steps: std::sync::atomic::AtomicU32,
    journal: Db,
}

/// A rotating member code that passed at the till.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ScannedMember {
    pub card_number: String,
    /// The device certificate's serial.
    pub serial: u64,
    /// RFC 3339: when the code's step began.
    pub made_at: String,
    /// Scanned here already within its window: the cashier decides.
    pub seen_before: bool,
    /// For the purchase's `member_code`.
    pub code: String,
}

impl std::fmt::Debug for Till {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Till")
            .field("store_id", &self.store_id)
            .finish_non_exhaustive()
    }
}

/// A till waits briefly: a customer is at the counter, and offline is a normal mode.
fn till_config() -> SyncConfig {
    SyncConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_attempts: 2,
        max_retry_after: Duration::from_secs(2),
        ..SyncConfig::default()
    }
}

fn new_key() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

fn json<T: Serialize>(v: &T) -> Result<String, TillError> {
    serde_json::to_string(v).map_err(|e| SyncError::protocol(e.to_string()).into())
}

/// The server's refusal as a typed error.
fn refusal(answer: &Answer) -> TillError {
    let problem = answer.problem();
    let detail = problem.detail.clone().unwrap_or_default();
    match problem.code.as_str() {
        codes::ALREADY_REDEEMED | codes::REDEMPTION_CONFLICT => {
            let (store_id, redeemed_at) = detail.split_once(' ').unwrap_or((detail.as_str(), ""));
            CouponError::AlreadyRedeemed {
                store_id: store_id.to_owned(),
                redeemed_at: redeemed_at.to_owned(),
            }
            .into()
        }
        _ => TillError::Refused {
            status: answer.status,
            code: problem.code,
            detail,
        },
    }
}

/// A request as sent and, when it cannot be, as journaled.
struct Report {
    kind: &'static str,
    receipt: String,
    coupon_id: Option<String>,
    path: &'static str,
    /// The body sent online now.
    online: String,
    /// The body journaled if the server cannot be reached (with the till's time in it).
    offline: String,
}

impl Till {
    /// A till of `store_id` talking to `server_url` with its token through `client` (the till
    /// app's HTTP stack), journaling in the SQLite file at `journal_path`. Fetches the public
    /// keys; offline, uses the journal's (a till that has never reached the server cannot verify
    /// anything: `Network`).
    pub fn open(
        journal_path: impl AsRef<Path>,
        server_url: &str,
        token: &str,
        store_id: &str,
        client: Arc<dyn HttpClient>,
    ) -> Result<Self, TillError> {
        tessera_domain::catalog::check_id("store_id", store_id)?;
        let http = Http::new(client, server_url, till_config())?;
        let journal = Db::open_with(journal_path, &MIGRATIONS, STEPS.len() as u32, JOURNAL_FILE)?;
        let till = Till {
            http,
            token: token.to_owned(),
            store_id: store_id.to_owned(),
            keys: RwLock::new(Vec::new()),
            shop: RwLock::new(TillShop::bare(store_id)),
            revoked: RwLock::new(Vec::new()),
            seen_codes: std::sync::Mutex::new(SeenCodes::default()),
            skew_steps: std::sync::atomic::AtomicU32::new(DEFAULT_SKEW_STEPS),
            journal,
        };
        match till.refresh_keys() {
            Ok(_) => {}
            Err(TillError::Network(e)) if e.is_transient() => {
                let cached = till.journal.read(|c| -> Result<_, TillError> {
                    let mut stmt = c.prepare("SELECT key_id, public_key FROM coupon_key")?;
                    let keys = stmt
                        .query_map([], |r| {
                            Ok(CouponKey {
                                key_id: r.get(0)?,
                                public_key: r.get(1)?,
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(keys)
                })?;
                if cached.is_empty() {
                    return Err(e.into());
                }
                tracing::info!(
                    keys = cached.len(),
                    "till offline: using its journaled keys"
                );
                *till.keys.write().unwrap_or_else(|p| p.into_inner()) = cached;
                let revoked = till.journal.read(|c| -> Result<Vec<u64>, TillError> {
                    let mut stmt =
                        c.prepare("SELECT serial FROM revoked_certificate ORDER BY serial")?;
                    let rows = stmt
                        .query_map([], |r| r.get::<_, i64>(0))?
                        .map(|r| r.map(|s| s as u64))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows)
                })?;
                *till.revoked.write().unwrap_or_else(|p| p.into_inner()) = revoked;
                let shop: Option<String> = till.journal.read(|c| -> Result<_, TillError> {
                    Ok(
                        c.query_row("SELECT data FROM shop WHERE id = 1", [], |r| r.get(0))
                            .optional()?,
                    )
                })?;
                if let Some(facts) = shop.and_then(|s| serde_json::from_str::<ShopFacts>(&s).ok())
                    && facts.store_id == till.store_id
                {
                    *till.shop.write().unwrap_or_else(|p| p.into_inner()) =
                        TillShop::from_facts(&facts);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(till)
    }

    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Fetch the server's coupon keys again (a new key was added), the shop's tags and time
    /// zone, and the revoked device certificates, and journal them.
    pub fn refresh_keys(&self) -> Result<usize, TillError> {
        let answer = self.send(&Request::get("/v1/coupon-keys"))?;
        if answer.status != 200 {
            return Err(refusal(&answer));
        }
        let keys: Vec<CouponKey> = answer.json()?;
        let mut req = Request::get("/v1/till/shop");
        req.bearer = Some(self.token.clone());
        let answer = self.send(&req)?;
        if answer.status != 200 {
            return Err(refusal(&answer));
        }
        let facts: ShopFacts = answer.json()?;
        let facts_json = json(&facts)?;
        let mut req = Request::get("/v1/till/revocations");
        req.bearer = Some(self.token.clone());
        let answer = self.send(&req)?;
        if answer.status != 200 {
            return Err(refusal(&answer));
        }
        let revoked = answer.json::<tessera_domain::api::Revocations>()?.revoked;
        // The server sends them ascending (verification searches them by halves).
        if !revoked.is_sorted_by(|a, b| a < b) {
            return Err(
                SyncError::protocol("the revoked serials are not in ascending order").into(),
            );
        }
        self.journal.write(|tx| -> Result<(), TillError> {
            tx.execute(
                "INSERT OR REPLACE INTO shop (id, data) VALUES (1, ?1)",
                [&facts_json],
            )?;
            tx.execute("DELETE FROM revoked_certificate", [])?;
            for serial in &revoked {
                tx.execute(
                    "INSERT INTO revoked_certificate (serial) VALUES (?1)",
                    params![*serial as i64],
                )?;
            }
            tx.execute("DELETE FROM coupon_key", [])?;
            for k in &keys {
                tx.execute(
                    "INSERT INTO coupon_key (key_id, public_key) VALUES (?1, ?2)",
                    params![k.key_id, k.public_key],
                )?;
            }
            Ok(())
        })?;
        let n = keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        *self.shop.write().unwrap_or_else(|p| p.into_inner()) = TillShop::from_facts(&facts);
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) = revoked;
        Ok(n)
    }

    /// Steps of a rotating member code accepted either side of the till's clock (default 1).
    pub fn set_member_code_skew(&self, steps: u32) -> Result<(), TillError> {
        if steps > 10 {
            return Err(TillError::InvalidInput {
                field: "skew_steps".into(),
                reason: "0 to 10 steps".into(),
            });
        }
        self.skew_steps
            .store(steps, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Check a rotating member code offline, on the till's clock: the programme's certificate,
    /// the revocation list fetched with the keys, the device's signature, the time step. A
    /// device's code for one step scanned twice within its window is flagged (`seen_before`).
    pub fn scan_member(&self, code: &str) -> Result<ScannedMember, TillError> {
        self.scan_member_at(code, jiff::Timestamp::now().as_second())
    }

    /// [`Till::scan_member`] at `now_s` on the till's clock (tests, and tills replaying a scan).
    pub fn scan_member_at(&self, code: &str, now_s: i64) -> Result<ScannedMember, TillError> {
        let skew_steps = self.skew_steps.load(std::sync::atomic::Ordering::Relaxed);
        let verified = tessera_domain::member_code::verify(
            code,
            &TillCheck {
                keys: &self.keys.read().unwrap_or_else(|p| p.into_inner()),
                revoked: &self.revoked.read().unwrap_or_else(|p| p.into_inner()),
                now_s,
                skew_steps,
                expected_card: None,
            },
        )?;
        // A step stays acceptable until skew steps after it ends.
        let window_s = i64::from(verified.period_s) * (2 * i64::from(skew_steps) + 1);
        let seen_before = self
            .seen_codes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(&verified, now_s, window_s);
        Ok(ScannedMember {
            card_number: verified.card_number,
            serial: verified.serial,
            made_at: tessera_domain::rfc3339_ms(verified.made_at_s.saturating_mul(1000)),
            seen_before,
            code: code.trim().to_owned(),
        })
    }

    fn send(&self, req: &Request) -> Result<Answer, SyncError> {
        let mut traffic = Traffic::default();
        self.http.send(req, &mut traffic)
    }

    fn post(&self, path: &str, body: &str, key: &str) -> Result<Answer, SyncError> {
        let mut req = Request::post(path.to_owned(), body.as_bytes().to_vec());
        req.bearer = Some(self.token.clone());
        req.idempotency_key = Some(key.to_owned());
        self.send(&req)
    }

    /// Everything checked offline, on the till's clock, including this till's journal of
    /// redeemed coupons.
    pub fn verify(
        &self,
        code: &str,
        member_id: Option<&str>,
        basket_cents: u64,
    ) -> Result<CouponClaims, TillError> {
        tessera_domain::catalog::check_cents("basket_cents", basket_cents)?;
        // Checked under the read lock: no copy of the keys per scan.
        let claims = verify(
            code,
            &self.keys.read().unwrap_or_else(|p| p.into_inner()),
            jiff::Timestamp::now().as_second(),
            &self.shop.read().unwrap_or_else(|p| p.into_inner()),
            member_id,
            basket_cents,
        )?;
        let seen: Option<i64> = self.journal.read(|c| -> Result<_, TillError> {
            Ok(
                c.prepare_cached("SELECT at FROM seen_coupon WHERE coupon_id = ?1")?
                    .query_row([&claims.coupon_id], |r| r.get(0))
                    .optional()?,
            )
        })?;
        if let Some(at) = seen {
            return Err(CouponError::AlreadyRedeemed {
                store_id: self.store_id.clone(),
                redeemed_at: tessera_domain::rfc3339_ms(at),
            }
            .into());
        }
        Ok(claims)
    }

    /// Send `report` now; if the server cannot be reached (or its answer is lost), journal it
    /// (with `also` in the same transaction) and answer `Journaled`.
    fn report<T: serde::de::DeserializeOwned>(
        &self,
        report: Report,
        also: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), TillError>,
    ) -> Result<Done<T>, TillError> {
        match self.post(report.path, &report.online, &new_key()) {
            Ok(answer) if (200..300).contains(&answer.status) => {
                self.journal
                    .write(|tx| Self::mark_sent(tx, &report.receipt))?;
                Ok(Done::Online(answer.json()?))
            }
            Ok(answer) => Err(refusal(&answer)),
            Err(e) if e.is_transient() => {
                tracing::info!(kind = report.kind, error = %e, "till offline: journaled");
                self.journal.write(|tx| -> Result<(), TillError> {
                    also(tx)?;
                    tx.execute(
                        "INSERT INTO pending (kind, receipt, coupon_id, path, body,
                           idempotency_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            report.kind,
                            report.receipt,
                            report.coupon_id,
                            report.path,
                            report.offline,
                            new_key(),
                            now_ms()
                        ],
                    )?;
                    Ok(())
                })?;
                Ok(Done::Offline)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn mark_sent(tx: &rusqlite::Transaction<'_>, receipt: &str) -> Result<(), TillError> {
        tx.execute(
            "INSERT OR IGNORE INTO sent_receipt (receipt, at) VALUES (?1, ?2)",
            params![receipt, now_ms()],
        )?;
        Ok(())
    }

    fn mark_seen(
        tx: &rusqlite::Transaction<'_>,
        coupon_id: &str,
        receipt: &str,
        at: i64,
    ) -> Result<(), TillError> {
        tx.execute(
            "INSERT OR REPLACE INTO seen_coupon (coupon_id, receipt, at) VALUES (?1, ?2, ?3)",
            params![coupon_id, receipt, at],
        )?;
        Ok(())
    }

    /// Verify offline, then redeem through the server: exactly one till ever succeeds for a
    /// coupon; the others get `AlreadyRedeemed` with where and when. Offline (or when the answer
    /// is lost), the till honours the verified coupon and journals the redemption.
    pub fn redeem(
        &self,
        code: &str,
        basket_cents: u64,
        receipt: &str,
    ) -> Result<Done<Redemption>, TillError> {
        check_receipt("receipt", receipt)?;
        let claims = self.verify(code, None, basket_cents)?;
        let now = now_ms();
        let mut req = RedeemRequest {
            code: code.trim().to_owned(),
            receipt: receipt.to_owned(),
            basket_cents,
            redeemed_offline_at: None,
        };
        let online = json(&req)?;
        req.redeemed_offline_at = Some(tessera_domain::rfc3339_ms(now));
        let report = Report {
            kind: "redemption",
            receipt: receipt.to_owned(),
            coupon_id: Some(claims.coupon_id.clone()),
            path: "/v1/till/redemptions",
            online,
            offline: json(&req)?,
        };
        let done: Done<Redemption> = self.report(report, |tx| {
            Self::mark_seen(tx, &claims.coupon_id, receipt, now)
        })?;
        if let Done::Online(r) = &done {
            // The server's time of the redemption, so that the till and the server tell the same
            // instant; the till's clock only when the answer has none it can read.
            let at = r
                .redeemed_at
                .parse::<jiff::Timestamp>()
                .map_or(now, |t| t.as_millisecond());
            self.journal
                .write(|tx| Self::mark_seen(tx, &claims.coupon_id, receipt, at))?;
        }
        Ok(done)
    }

    /// Record a purchase: points for the member whose card was scanned, and a web coupon when it
    /// qualifies. Offline, journaled and reported by [`Till::sync`].
    pub fn record_purchase(
        &self,
        purchase: &PurchaseRequest,
    ) -> Result<Done<PurchaseReceipt>, TillError> {
        purchase.validate()?;
        let mut req = purchase.clone();
        req.occurred_offline_at = None;
        let online = json(&req)?;
        req.occurred_offline_at = Some(tessera_domain::rfc3339_ms(now_ms()));
        self.report(
            Report {
                kind: "purchase",
                receipt: req.receipt.clone(),
                coupon_id: None,
                path: "/v1/till/purchases",
                online,
                offline: json(&req)?,
            },
            |_| Ok(()),
        )
    }

    /// Void what was recorded under `receipt` in this shop within the void window: coupons are
    /// usable again, the purchase's points are taken back. What is still in the journal is
    /// dropped from it (it never reached the server); the rest is voided on the server, or
    /// journaled with the till's time if it cannot be reached.
    pub fn void(&self, receipt: &str) -> Result<Done<VoidReport>, TillError> {
        check_receipt("receipt", receipt)?;
        let (dropped, sent) = self
            .journal
            .write(|tx| -> Result<(usize, bool), TillError> {
                tx.execute(
                    "DELETE FROM seen_coupon WHERE coupon_id IN (SELECT coupon_id FROM pending
                   WHERE receipt = ?1 AND kind = 'redemption')",
                    [receipt],
                )?;
                let dropped = tx.execute(
                    "DELETE FROM pending WHERE receipt = ?1 AND kind IN ('redemption', 'purchase')",
                    [receipt],
                )?;
                let sent = tx
                    .query_row(
                        "SELECT 1 FROM sent_receipt WHERE receipt = ?1",
                        [receipt],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                Ok((dropped, sent))
            })?;
        // What this till journaled under the receipt and never reported is voided here alone;
        // anything else (reported by this till, or recorded by another till of the shop) is the
        // server's to void.
        if dropped > 0 && !sent {
            return Ok(Done::Offline);
        }
        let mut req = VoidRequest {
            receipt: receipt.to_owned(),
            voided_offline_at: None,
        };
        let online = json(&req)?;
        req.voided_offline_at = Some(tessera_domain::rfc3339_ms(now_ms()));
        let report = Report {
            kind: "void",
            receipt: receipt.to_owned(),
            coupon_id: None,
            path: "/v1/till/voids",
            online,
            offline: json(&req)?,
        };
        let done = self.report::<VoidReport>(report, |_| Ok(()))?;
        if let Done::Online(r) = &done {
            self.forget_seen(&r.coupons_restored)?;
        }
        Ok(done)
    }

    fn forget_seen(&self, coupon_ids: &[String]) -> Result<(), TillError> {
        self.journal.write(|tx| -> Result<(), TillError> {
            for id in coupon_ids {
                tx.execute("DELETE FROM seen_coupon WHERE coupon_id = ?1", [id])?;
            }
            Ok(())
        })
    }

    /// Goods brought back: the points they earned are taken back in proportion.
    pub fn return_goods(&self, req: &ReturnRequest) -> Result<Done<ReturnReport>, TillError> {
        check_receipt("receipt", &req.receipt)?;
        let body = json(req)?;
        self.report(
            Report {
                kind: "return",
                receipt: req.receipt.clone(),
                coupon_id: None,
                path: "/v1/till/returns",
                online: body.clone(),
                offline: body,
            },
            |_| Ok(()),
        )
    }
}
