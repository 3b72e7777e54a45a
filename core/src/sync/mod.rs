//! The sync engine: enrolment, then `sync()` = push the outbox in order, pull the catalog feed a
//! page at a time, refresh the member's state.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | configuration, progress, the engine |
//! | [`error`] | [`SyncError`] |
//! | `http.rs` | one request: retries, backoff, `Retry-After`, size cap, version, clock |
//! | `local.rs` | the SQLite side: session, outbox, catalog cache, member state |
//!
//! Exactly once: an action is written with its outbox row (and its idempotency key) in one
//! transaction; the row is deleted in the transaction that records the server's answer. A crash
//! anywhere in between resends the same key, and the server replays its first answer.

pub mod error;
pub mod http;
pub(crate) mod local;
pub mod secrets;
mod service;
pub mod transport;

use crate::clock::now_ms;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::api::{
    CatalogPage, EnrolRequest, EnrolResponse, MemberState, RefreshRequest, Tokens, codes,
};
use crate::db::Db;
pub use error::SyncError;
pub use http::Http;
pub use http::check_server_url;
use http::{Request, Traffic};
use local::Session;
use secrets::Vault;
pub use secrets::{SecretStore, SecretStoreError};
pub use service::SyncService;
#[cfg(feature = "reqwest")]
pub use transport::ReqwestClient;
pub use transport::{
    HttpClient, HttpHeader, HttpMethod, HttpRequest, HttpResponse, TransportError,
};

/// Asks a running sync to stop at its next safe point: before its next request (a catalog page
/// being applied is applied whole first). What it did is kept; the next sync does the rest.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Network behaviour of the engine.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub connect_timeout: Duration,
    /// One request, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this ends the sync instead of waiting.
    pub max_retry_after: Duration,
    /// Largest answer accepted (after decompression).
    pub max_answer_bytes: usize,
    /// Catalog changes asked for per page.
    pub page_size: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            max_answer_bytes: 32 * 1024 * 1024,
            page_size: 2000,
        }
    }
}

impl SyncConfig {
    /// Refuse settings no phone should run with (zero timeouts, no attempt, pages the server
    /// would clamp anyway).
    pub fn validate(&self) -> Result<(), SyncError> {
        let bad = |field: &'static str, reason: &str| {
            Err(SyncError::InvalidInput {
                field,
                reason: reason.into(),
            })
        };
        let hour = Duration::from_secs(3600);
        if self.connect_timeout.is_zero() || self.connect_timeout > hour {
            return bad("connect_timeout", "must be between 1 ms and 1 hour");
        }
        if self.request_timeout.is_zero() || self.request_timeout > hour {
            return bad("request_timeout", "must be between 1 ms and 1 hour");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return bad("max_attempts", "must be between 1 and 10");
        }
        if self.base_delay > self.max_delay || self.max_delay > hour {
            return bad(
                "max_delay",
                "must be at least base_delay and at most 1 hour",
            );
        }
        if self.max_answer_bytes < 64 * 1024 {
            return bad("max_answer_bytes", "must be at least 64 KiB");
        }
        if !(1..=crate::api::MAX_PAGE).contains(&self.page_size) {
            return bad("page_size", "must be between 1 and 5000");
        }
        Ok(())
    }
}

/// Where a sync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    Started,
    /// Sending actions: `done` of `total`.
    Pushing,
    /// Applying catalog pages: `done` changes so far (`total` unknown: 0).
    Pulling,
    /// Reading the member's state.
    Member,
    Finished,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncProgress {
    pub phase: SyncPhase,
    pub done: u64,
    pub total: u64,
}

/// Told of a sync's progress, on the thread running the sync. Keep it quick.
pub trait SyncObserver: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncReport {
    /// Actions the server applied now.
    pub pushed: u64,
    /// Actions the server had already applied (a repeat after a lost answer or a crash).
    pub replayed: u64,
    /// Actions the server refused for good (kept in the rejected list).
    pub rejected: u64,
    /// Catalog changes applied.
    pub catalog_changes: u64,
    /// Catalog pages applied.
    pub catalog_pages: u64,
    /// Requests sent, retries included.
    pub requests: u64,
    pub retries: u64,
    /// Answer bytes received (after decompression).
    pub bytes_received: u64,
    /// Server clock minus device clock, in milliseconds.
    pub clock_offset_ms: Option<i64>,
}

pub(crate) fn notify(
    observer: Option<&Arc<dyn SyncObserver>>,
    phase: SyncPhase,
    done: u64,
    total: u64,
) {
    if let Some(o) = observer {
        // The app's listener failing (a foreign exception becomes a panic here) must not stop
        // the sync halfway: it is logged and the sync goes on.
        let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            o.on_progress(SyncProgress { phase, done, total })
        }));
        if told.is_err() {
            tracing::warn!("the sync listener failed; the sync goes on");
        }
    }
}

fn parse_ms(field: &'static str, s: &str) -> Result<i64, SyncError> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| SyncError::protocol(format!("{field} is not an RFC 3339 instant")))
}

/// Enrol a member and this device, and store the card, the programme and the credentials.
pub(crate) fn enrol(
    db: &Db,
    http: &Http,
    vault: &Vault,
    server_url: &str,
    request: &EnrolRequest,
) -> Result<EnrolResponse, SyncError> {
    if db.read(local::session)?.is_some() {
        return Err(SyncError::AlreadyEnrolled);
    }
    let body = serde_json::to_vec(request).map_err(|e| SyncError::protocol(e.to_string()))?;
    let mut traffic = Traffic::default();
    let answer = http.send(&Request::post("/v1/enrol", body), &mut traffic)?;
    if answer.status != 201 {
        return Err(unexpected(&answer));
    }
    let resp: EnrolResponse = answer.json()?;
    let session = Session {
        server_url: server_url.to_owned(),
        member_id: resp.member_id.clone(),
        device_id: resp.device_id.clone(),
        access_token: resp.tokens.access_token.clone(),
        access_expires_at: parse_ms("access_expires_at", &resp.tokens.access_expires_at)?,
        refresh_token: resp.tokens.refresh_token.clone(),
        refresh_expires_at: parse_ms("refresh_expires_at", &resp.tokens.refresh_expires_at)?,
        secrets: None,
    };
    let program = resp
        .program
        .validated()
        .map_err(|e| SyncError::protocol(format!("programme: {e}")))?;
    let (card, encoded) = resp
        .card
        .validated(program.symbology)
        .map_err(|e| SyncError::protocol(format!("card: {e}")))?;
    db.write(|tx| -> Result<(), SyncError> {
        vault.save(tx, &session)?;
        crate::card::write_program(tx, &program).map_err(SyncError::from)?;
        crate::card::write_card(tx, &card, &encoded).map_err(SyncError::from)?;
        local::record_offset(tx, answer.clock_offset_ms)?;
        tx.execute(
            "UPDATE sync_state SET app_version = ?1 WHERE id = 1",
            [&request.device.app_version],
        )
        .map_err(crate::db::StorageError::from)?;
        Ok(())
    })?;
    Ok(resp)
}

fn unexpected(answer: &http::Answer) -> SyncError {
    let problem = answer.problem();
    SyncError::Server {
        status: answer.status,
        code: problem.code,
    }
}

/// Holds the session and refreshes its tokens when they expire.
struct Authed<'a> {
    db: &'a Arc<Db>,
    http: &'a Http,
    vault: &'a Vault,
    cancel: &'a Cancel,
    session: Session,
    clock_offset_ms: Option<i64>,
}

impl<'a> Authed<'a> {
    fn new(
        db: &'a Arc<Db>,
        http: &'a Http,
        vault: &'a Vault,
        cancel: &'a Cancel,
        session: Session,
    ) -> Result<Self, SyncError> {
        Ok(Authed {
            db,
            http,
            vault,
            cancel,
            session,
            clock_offset_ms: db.read(local::clock_offset)?,
        })
    }

    /// Refresh if the access token expires within a minute (by the server's clock).
    fn ensure_fresh(&mut self, traffic: &mut Traffic) -> Result<(), SyncError> {
        let server_now = now_ms() + self.clock_offset_ms.unwrap_or(0);
        if self.session.access_expires_at - 60_000 > server_now {
            return Ok(());
        }
        self.refresh(traffic)
    }

    fn refresh(&mut self, traffic: &mut Traffic) -> Result<(), SyncError> {
        let body = serde_json::to_vec(&RefreshRequest {
            refresh_token: self.session.refresh_token.clone(),
        })
        .map_err(|e| SyncError::protocol(e.to_string()))?;
        let answer = self.http.send(&Request::post("/v1/token", body), traffic)?;
        match answer.status {
            200 => {}
            401 => return Err(SyncError::SignedOut),
            _ => return Err(unexpected(&answer)),
        }
        let tokens: Tokens = answer.json()?;
        self.session.access_token = tokens.access_token;
        self.session.access_expires_at = parse_ms("access_expires_at", &tokens.access_expires_at)?;
        self.session.refresh_token = tokens.refresh_token;
        self.session.refresh_expires_at =
            parse_ms("refresh_expires_at", &tokens.refresh_expires_at)?;
        let session = self.session.clone();
        let vault = self.vault;
        self.db.write(|tx| vault.save(tx, &session))?;
        Ok(())
    }

    /// Send with the access token; on `token_expired`, refresh once and send again. A cancelled
    /// sync stops here, before the request.
    fn send(&mut self, mut req: Request, traffic: &mut Traffic) -> Result<http::Answer, SyncError> {
        if self.cancel.is_cancelled() {
            return Err(SyncError::Cancelled);
        }
        self.ensure_fresh(traffic)?;
        req.bearer = Some(self.session.access_token.clone());
        let answer = self.http.send(&req, traffic)?;
        self.observe(&answer);
        if answer.status != 401 {
            return Ok(answer);
        }
        if answer.problem().code != codes::TOKEN_EXPIRED {
            return Err(SyncError::SignedOut);
        }
        self.refresh(traffic)?;
        req.bearer = Some(self.session.access_token.clone());
        let answer = self.http.send(&req, traffic)?;
        self.observe(&answer);
        if answer.status == 401 {
            return Err(SyncError::SignedOut);
        }
        Ok(answer)
    }

    fn observe(&mut self, answer: &http::Answer) {
        if answer.clock_offset_ms.is_some() {
            self.clock_offset_ms = answer.clock_offset_ms;
        }
    }
}

/// `GET /v1/me/export`: everything the server holds about the member.
pub(crate) fn export(
    db: &Arc<Db>,
    http: &Http,
    vault: &Vault,
    session: Session,
) -> Result<serde_json::Value, SyncError> {
    let never = Cancel::default();
    let mut authed = Authed::new(db, http, vault, &never, session)?;
    let mut traffic = Traffic::default();
    let answer = authed.send(Request::get("/v1/me/export"), &mut traffic)?;
    if answer.status != 200 {
        return Err(unexpected(&answer));
    }
    let export: crate::api::MemberExport = answer.json()?;
    serde_json::to_value(export).map_err(|e| SyncError::protocol(e.to_string()))
}

/// `DELETE /v1/me`: the server erases the member. A device whose credentials the server no
/// longer knows (erased already, from the call centre say) counts as erased.
pub(crate) fn erase(
    db: &Arc<Db>,
    http: &Http,
    vault: &Vault,
    session: Session,
) -> Result<crate::api::ErasureReceipt, SyncError> {
    let never = Cancel::default();
    let mut authed = Authed::new(db, http, vault, &never, session)?;
    let mut traffic = Traffic::default();
    match authed.send(Request::delete("/v1/me"), &mut traffic) {
        Ok(answer) if answer.status == 200 => answer.json(),
        Ok(answer) => Err(unexpected(&answer)),
        Err(SyncError::SignedOut) => Ok(crate::api::ErasureReceipt {
            erased_at: crate::rfc3339_ms(now_ms()),
            consent_records_anonymised: 0,
        }),
        Err(e) => Err(e),
    }
}

/// Push every pending action in order, then pull the catalog, then the member's state.
pub(crate) fn sync(
    db: &Arc<Db>,
    http: &Http,
    vault: &Vault,
    session: Session,
    observer: Option<&Arc<dyn SyncObserver>>,
    cancel: &Cancel,
) -> Result<SyncReport, SyncError> {
    let mut authed = Authed::new(db, http, vault, cancel, session)?;
    let mut traffic = Traffic::default();
    let mut report = SyncReport {
        pushed: 0,
        replayed: 0,
        rejected: 0,
        catalog_changes: 0,
        catalog_pages: 0,
        requests: 0,
        retries: 0,
        bytes_received: 0,
        clock_offset_ms: None,
    };
    db.write(|tx| local::mark_attempt(tx, now_ms()))?;
    notify(observer, SyncPhase::Started, 0, 0);
    let result = run(&mut authed, &mut traffic, &mut report, observer);
    report.requests = traffic.requests;
    report.retries = traffic.retries;
    report.bytes_received = traffic.bytes_received;
    report.clock_offset_ms = authed.clock_offset_ms;
    let offset = authed.clock_offset_ms;
    match &result {
        Ok(()) => {
            db.write(|tx| local::mark_success(tx, now_ms(), offset))?;
            notify(observer, SyncPhase::Finished, 1, 1);
        }
        Err(e) => {
            let text = e.to_string();
            // Best effort: the sync's own error matters more than recording it.
            let _ = db.write(|tx| local::mark_failure(tx, &text, offset));
            notify(observer, SyncPhase::Failed, 0, 0);
        }
    }
    result.map(|()| report)
}

fn run(
    authed: &mut Authed<'_>,
    traffic: &mut Traffic,
    report: &mut SyncReport,
    observer: Option<&Arc<dyn SyncObserver>>,
) -> Result<(), SyncError> {
    push(authed, traffic, report, observer)?;
    let member_version = pull_catalog(authed, traffic, report, observer)?;
    // The catalog answer says whether the member's state changed: skip /v1/me when it did not.
    let cached = authed.db.read(local::member_version)?;
    if member_version.is_some() && member_version == cached {
        // Confirmed current: the cached state is as of now.
        authed
            .db
            .write(|tx| local::touch_member_state(tx, now_ms()))?;
        return Ok(());
    }
    notify(observer, SyncPhase::Member, 0, 1);
    let answer = authed.send(Request::get("/v1/me"), traffic)?;
    if answer.status != 200 {
        return Err(unexpected(&answer));
    }
    let mut state: MemberState = answer.json()?;
    if state.member_id != authed.session.member_id {
        return Err(SyncError::protocol("member state of another member"));
    }
    // The rule history is kept apart from the state every screen reads.
    let rule_events = std::mem::take(&mut state.rule_events);
    authed.db.write(|tx| -> Result<(), SyncError> {
        local::write_member_state(tx, &state, &rule_events, member_version, now_ms())?;
        crate::privacy::merge_from_server(tx, &state)?;
        Ok(())
    })?;
    notify(observer, SyncPhase::Member, 1, 1);
    Ok(())
}

fn push(
    authed: &mut Authed<'_>,
    traffic: &mut Traffic,
    report: &mut SyncReport,
    observer: Option<&Arc<dyn SyncObserver>>,
) -> Result<(), SyncError> {
    let total = authed.db.read(crate::outbox::pending_count)?;
    let mut done = 0;
    notify(observer, SyncPhase::Pushing, 0, total);
    // Oldest first; each row leaves the outbox in the transaction recording its answer.
    while let Some(row) = authed.db.read(crate::outbox::first_pending)? {
        let mut req = Request::post("/v1/mutations", row.body.clone().into_bytes());
        req.idempotency_key = Some(row.idempotency_key.clone());
        let answer = match authed.send(req, traffic) {
            Ok(a) => a,
            Err(e) => {
                let text = e.to_string();
                let _ = authed
                    .db
                    .write(|tx| crate::outbox::note_attempt(tx, row.seq, &text));
                return Err(e);
            }
        };
        let status = answer.status;
        if (200..300).contains(&status) {
            // A garbled success is not an acknowledgement: keep the row, send it again (the
            // server replays the first answer).
            let _: crate::api::MutationResponse = answer.json()?;
            authed
                .db
                .write(|tx| crate::outbox::acknowledge(tx, &row, now_ms()))?;
            if answer.replayed {
                report.replayed += 1;
            } else {
                report.pushed += 1;
            }
        } else if (400..500).contains(&status) {
            // Refused for good: keep it aside with the reason; the next ones still go.
            let problem = answer.problem();
            tracing::warn!(status, code = %problem.code, "an action was refused by the server");
            authed
                .db
                .write(|tx| crate::outbox::reject(tx, &row, &problem, now_ms()))?;
            report.rejected += 1;
        } else {
            return Err(unexpected(&answer));
        }
        done += 1;
        notify(observer, SyncPhase::Pushing, done, total.max(done));
    }
    Ok(())
}

fn catalog_request(page_size: u32, cursor: Option<&str>) -> Request {
    let mut path = format!("/v1/catalog?limit={page_size}");
    if let Some(c) = cursor {
        path.push_str("&cursor=");
        path.push_str(c);
    }
    let mut req = Request::get(path);
    req.if_none_match = cursor.map(|c| format!("\"{c}\""));
    req
}

/// Pull the catalog feed page by page. While one page is applied (on a second thread: SQLite
/// work), the next one is fetched and parsed on this one: download, parsing and writing
/// overlap, and each page is still applied whole, in order, with its cursor. Returns the member
/// version the last answer carried.
fn pull_catalog(
    authed: &mut Authed<'_>,
    traffic: &mut Traffic,
    report: &mut SyncReport,
    observer: Option<&Arc<dyn SyncObserver>>,
) -> Result<Option<i64>, SyncError> {
    let page_size = authed.http.config().page_size;
    let mut restarted = false;
    let cursor = authed.db.read(local::catalog_cursor)?;
    let mut fetched = fetch_page(authed, traffic, page_size, cursor.as_deref())?;
    loop {
        let (page, member_version) = match fetched {
            Fetched::Current { member_version } => {
                authed.db.write(|tx| local::touch_catalog(tx, now_ms()))?;
                return Ok(member_version);
            }
            // The server was restored to an older state: start the feed again from nothing,
            // once a sync. Here, with no page being written meanwhile.
            Fetched::Gone(answer) => {
                if restarted {
                    return Err(unexpected(&answer));
                }
                restarted = true;
                tracing::warn!("catalog cursor ahead of the server: full resync");
                authed.db.write(local::reset_catalog)?;
                fetched = fetch_page(authed, traffic, page_size, None)?;
                continue;
            }
            Fetched::Page(page, member_version) => (page, member_version),
        };
        let db = authed.db.clone();
        if !page.has_more {
            report.catalog_changes += write_catalog_page(&db, &page)?;
            report.catalog_pages += 1;
            notify(observer, SyncPhase::Pulling, report.catalog_changes, 0);
            return Ok(member_version);
        }
        let (applied, next) = std::thread::scope(|scope| {
            let apply = std::thread::Builder::new()
                .name("tessera-apply".into())
                .spawn_scoped(scope, || {
                    // Part of the sync's announcement (ChangeFeed::hold).
                    let _hold = db.changes().hold();
                    write_catalog_page(&db, &page)
                });
            let next = fetch_page(authed, traffic, page_size, Some(&page.cursor));
            let applied = match apply {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(SyncError::protocol("applying a catalog page panicked"))
                }),
                // No thread to spare: apply here, after the fetch.
                Err(_) => write_catalog_page(&db, &page),
            };
            (applied, next)
        });
        report.catalog_changes += applied?;
        report.catalog_pages += 1;
        notify(observer, SyncPhase::Pulling, report.catalog_changes, 0);
        fetched = next?;
    }
}

/// A catalog answer, parsed and checked.
enum Fetched {
    /// 304: nothing new since the cursor.
    Current {
        member_version: Option<i64>,
    },
    /// 410: the cursor is ahead of the server. It only reads: the caller resets the cache.
    Gone(http::Answer),
    Page(Box<CatalogPage>, Option<i64>),
}

/// Fetch the page after `cursor`, parse and check it. Touches no catalog row: it runs while the
/// previous page is being written.
fn fetch_page(
    authed: &mut Authed<'_>,
    traffic: &mut Traffic,
    page_size: u32,
    cursor: Option<&str>,
) -> Result<Fetched, SyncError> {
    let answer = authed.send(catalog_request(page_size, cursor), traffic)?;
    match answer.status {
        200 => {}
        304 => {
            return Ok(Fetched::Current {
                member_version: answer.member_version,
            });
        }
        410 if cursor.is_some() => return Ok(Fetched::Gone(answer)),
        _ => return Err(unexpected(&answer)),
    }
    let page: CatalogPage = answer.json()?;
    check_catalog_page(&page)?;
    Ok(Fetched::Page(Box::new(page), answer.member_version))
}

/// Everything a catalog page must be before it touches the cache.
fn check_catalog_page(page: &CatalogPage) -> Result<(), SyncError> {
    if page.format != crate::api::API_VERSION {
        return Err(SyncError::Incompatible {
            server_version: page.format.to_string(),
        });
    }
    for change in &page.changes {
        change
            .validate()
            .map_err(|e| SyncError::protocol(format!("catalog: {e}")))?;
    }
    // The cursor goes back into a URL: unreserved characters only.
    let cursor_ok = (1..=64).contains(&page.cursor.len())
        && page
            .cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'));
    if !cursor_ok {
        return Err(SyncError::protocol("catalog: bad cursor"));
    }
    if page.has_more && page.changes.is_empty() {
        return Err(SyncError::protocol(
            "catalog: an empty page says there is more",
        ));
    }
    Ok(())
}

fn write_catalog_page(db: &Db, page: &CatalogPage) -> Result<u64, SyncError> {
    db.write(|tx| local::apply_page(tx, page, now_ms()))
}

/// Check a whole catalog page, then apply it and move the cursor in one transaction: the cache
/// holds all of it or none of it.
pub(crate) fn apply_catalog_page(db: &Db, page: &CatalogPage) -> Result<u64, SyncError> {
    check_catalog_page(page)?;
    write_catalog_page(db, page)
}

/// When the device last synced, what is waiting, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncStatus {
    pub enrolled: bool,
    pub member_id: Option<String>,
    pub server_url: Option<String>,
    /// Actions waiting to be sent.
    pub pending: u64,
    /// Actions the server refused for good.
    pub rejected: u64,
    pub last_attempt_at: Option<SystemTime>,
    pub last_success_at: Option<SystemTime>,
    pub last_error: Option<String>,
    pub catalog_as_of: Option<SystemTime>,
    pub clock_offset_ms: Option<i64>,
}

/// Make sure this device holds a certificate for the rotating member code that does not end
/// within [`crate::card_code::RENEW_BEFORE_MS`]: its key made on first use (kept with the
/// tokens), certified by the server (`POST /v1/card/certificate`). Whether one was fetched.
pub(crate) fn certify_device(
    db: &Arc<Db>,
    http: &Http,
    vault: &Vault,
    session: Session,
) -> Result<bool, SyncError> {
    use crate::card_code as cc;
    let now = now_ms();
    let row = db.read(cc::key_row)?;
    if row
        .as_ref()
        .and_then(|r| r.not_after_ms)
        .is_some_and(|end| end - now > cc::RENEW_BEFORE_MS)
    {
        return Ok(false);
    }
    let namespace = session.secrets.clone();
    let kept = match &row {
        Some(r) => vault.device_key(namespace.as_deref(), &r.pkcs8_in_file)?,
        None => None,
    };
    let pkcs8 = match kept {
        Some(k) => k,
        None => {
            let k = cc::new_key().map_err(SyncError::protocol)?;
            let in_file = vault.keep_device_key(namespace.as_deref(), &k)?;
            db.write(|tx| cc::store_key(tx, &in_file))?;
            k
        }
    };
    let pair = cc::key_pair(&pkcs8).map_err(SyncError::protocol)?;
    let body = serde_json::to_vec(&crate::api::DeviceKeyRequest {
        public_key: cc::public_key(&pair),
    })
    .map_err(|e| SyncError::protocol(e.to_string()))?;
    let never = Cancel::default();
    let mut authed = Authed::new(db, http, vault, &never, session)?;
    let mut traffic = Traffic::default();
    let answer = authed.send(Request::post("/v1/card/certificate", body), &mut traffic)?;
    if answer.status != 200 {
        return Err(unexpected(&answer));
    }
    let got: crate::api::DeviceCertificateAnswer = answer.json()?;
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &got.certificate,
    )
    .map_err(|e| SyncError::protocol(format!("certificate: {e}")))?;
    let (cert, _) = crate::member_code::DeviceCertificate::from_bytes(&bytes)
        .map_err(|e| SyncError::protocol(format!("certificate: {e}")))?;
    if cert.public_key.as_slice() != ring::signature::KeyPair::public_key(&pair).as_ref() {
        return Err(SyncError::protocol("the certificate is for another key"));
    }
    if !crate::member_code::PERIODS_S.contains(&cert.period_s) || cert.not_after_s <= now / 1000 {
        return Err(SyncError::protocol(
            "the certificate's period or dates are not ones a till accepts",
        ));
    }
    db.write(|tx| cc::store_certificate(tx, &bytes, cert.serial, cert.not_after_s * 1000))?;
    Ok(true)
}

/// Which wallet a pass is for: Apple (a signed `.pkpass`), Google (a save link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum WalletKind {
    Apple,
    Google,
}

/// The member's card (or one of their coupons: `coupon_id`) for a wallet, from the server:
/// Apple's `.pkpass` bytes, or Google's save link as UTF-8. `near` lists the shops nearest the
/// member on the pass.
pub(crate) fn wallet_pass(
    db: &Arc<Db>,
    http: &Http,
    vault: &Vault,
    session: Session,
    kind: WalletKind,
    coupon_id: Option<&str>,
    near: Option<crate::geo::Position>,
) -> Result<Vec<u8>, SyncError> {
    if let Some(id) = coupon_id {
        crate::catalog::check_id("coupon_id", id).map_err(|e| SyncError::InvalidInput {
            field: "coupon_id",
            reason: e.reason,
        })?;
    }
    if let Some(p) = near {
        p.validate().map_err(|e| SyncError::InvalidInput {
            field: "near",
            reason: e.reason,
        })?;
    }
    let wallet = match kind {
        WalletKind::Apple => "apple",
        WalletKind::Google => "google",
    };
    let mut path = match coupon_id {
        None => format!("/v1/wallet/{wallet}/card"),
        Some(id) => format!("/v1/wallet/{wallet}/coupons/{id}"),
    };
    if let Some(p) = near {
        path.push_str(&format!("?lat={}&lon={}", p.latitude, p.longitude));
    }
    let never = Cancel::default();
    let mut authed = Authed::new(db, http, vault, &never, session)?;
    let mut traffic = Traffic::default();
    let answer = authed.send(Request::get(path), &mut traffic)?;
    if answer.status != 200 {
        return Err(unexpected(&answer));
    }
    match kind {
        WalletKind::Apple => Ok(answer.body),
        WalletKind::Google => {
            let link: crate::api::GoogleSaveLink = answer.json()?;
            Ok(link.save_url.into_bytes())
        }
    }
}
