//! The merchant console at `/console` (issue #19): pages written on the server (no build step;
//! two small scripts of its own: the rules page checks rules as they are typed, the campaigns
//! page counts the audience as it is built), for staff
//! signed in with an account the operator created. Each page and action is checked against the
//! role (`StaffRole::may`); every action is written to the audit log;
//! every form carries the session's CSRF token, and a cross-site request is refused whatever it
//! carries. See docs/console.md and docs/adr/0028.

mod campaigns;
mod journeys;
mod loyalty;
mod pages;
mod rules;
mod staff;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tessera_domain::api::{PointsAdjustment, StaffAction};

use crate::service::Services;
use crate::service::staff::{Session, SessionLimits, SignIn, StaffServices};
use crate::service::webhooks::WebhookServices;
use crate::storage::StorageError;
use crate::{AppState, now_ms};

/// The session cookie's name.
pub const COOKIE: &str = "tessera_console";

/// The console's routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console", get(home))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/members", get(members))
        .route("/console/members/{id}/points", post(correct_points))
        .route("/console/members/{id}/consent", post(record_consent))
        .route("/console/members/{id}/export", get(export))
        .route("/console/members/{id}/erase", post(erase))
        .route(
            "/console/campaigns",
            get(campaigns::page).post(campaigns::send),
        )
        .route("/console/rules", get(rules::page).post(rules::submit))
        .route("/console/rules/check", post(rules::check))
        .route("/console/campaigns/count", get(campaigns::count))
        .route(
            rules::SCRIPT_PATH,
            get(|| script(include_str!("rules-check.js"))),
        )
        .route(
            KPI_SCRIPT_PATH,
            get(|| script(include_str!("kpis-live.js"))),
        )
        .route(
            campaigns::SCRIPT_PATH,
            get(|| script(include_str!("audience-count.js"))),
        )
        .route(
            "/console/journeys",
            get(journeys::page).post(journeys::save),
        )
        .route("/console/journeys/run", post(journeys::run))
        .route(
            "/console/rules/versions/{version}/restore",
            post(rules::restore),
        )
        .route("/console/analytics", get(analytics))
        .route("/console/analytics/run", post(run_analytics))
        .route("/console/kpis", get(kpis))
        .route("/console/kpis.csv", get(kpis_csv))
        .route("/console/conflicts", get(conflicts))
        .route("/console/conflicts/{id}/resolve", post(resolve_conflict))
        .route("/console/webhooks", get(webhooks))
        .route("/console/webhooks/{id}/replay", post(replay))
        .route("/console/audit", get(audit_page))
        .route("/console/loyalty", get(loyalty::page).post(loyalty::submit))
        .route(
            "/console/loyalty/versions/{version}/restore",
            post(loyalty::restore),
        )
        .route("/console/staff", get(staff::page).post(staff::create))
        .route("/console/staff/{id}/password", post(staff::set_password))
        .route("/console/staff/{id}/{change}", post(staff::button))
        .route(
            "/console/password",
            get(staff::own_password_page).post(staff::change_own_password),
        )
        .route(
            "/console/two-factor",
            get(staff::two_factor_page).post(staff::set_two_factor),
        )
        .layer(axum::middleware::map_response(harden))
}

/// What a console page may load: nothing from outside, no script.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
                      form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The rules and campaigns pages': the console's own script files too (no inline script), and
/// requests back to the console.
const POLICY_WITH_SCRIPT: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                                  img-src 'self'; script-src 'self'; connect-src 'self'; \
                                  form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The KPI page's script: the figures read again in place (no timed reload).
pub const KPI_SCRIPT_PATH: &str = "/console/assets/kpis-live.js";

/// One of the console's own scripts (embedded in the binary).
async fn script(source: &'static str) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        source,
    )
        .into_response()
}

/// A page answer that may run the console's own script.
fn with_script(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY_WITH_SCRIPT),
    );
    response
}

/// Every console answer: not cached, not framed, no outside resource at all, and no script
/// except on a page that asked for its own ([`with_script`]).
async fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Why a console request is not answered with its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// No session (or it ended): sign in.
    SignIn,
    /// The role may not do this.
    Forbidden,
    /// A form without the session's CSRF token, or sent from another site.
    Csrf,
    NotFound(&'static str),
    Invalid(String),
    Storage(StorageError),
}

impl From<StorageError> for ConsoleError {
    fn from(e: StorageError) -> Self {
        ConsoleError::Storage(e)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            ConsoleError::SignIn => {
                return Redirect::to("/console/sign-in").into_response();
            }
            ConsoleError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Your role does not allow this.".to_owned(),
            ),
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form is out of date or came from another site: open the page again."
                    .to_owned(),
            ),
            ConsoleError::NotFound(what) => (StatusCode::NOT_FOUND, format!("No such {what}.")),
            ConsoleError::Invalid(why) => (StatusCode::UNPROCESSABLE_ENTITY, why),
            ConsoleError::Storage(e) => {
                tracing::error!(error = %e, "console");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong; it was logged.".to_owned(),
                )
            }
        };
        (status, pages::message(status, &text)).into_response()
    }
}

type Page = Result<Response, ConsoleError>;

fn limits(state: &AppState) -> SessionLimits {
    state.config.console
}

/// The session cookie's token, if the request has one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The signed-in member of staff, or [`ConsoleError::SignIn`].
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, ConsoleError> {
    let token = cookie_token(headers).ok_or(ConsoleError::SignIn)?;
    state
        .storage
        .session(token, limits(state), now_ms())
        .await?
        .ok_or(ConsoleError::SignIn)
}

/// The session, allowed to do `action`.
async fn allowed(
    state: &AppState,
    headers: &HeaderMap,
    action: StaffAction,
) -> Result<Session, ConsoleError> {
    let s = session(state, headers).await?;
    if s.role.may(action) {
        Ok(s)
    } else {
        Err(ConsoleError::Forbidden)
    }
}

/// A form sent from this site with the session's token: the `Origin` (or `Referer`) names this
/// host, and `csrf` is the session's.
fn check_form(headers: &HeaderMap, session: &Session, csrf: &str) -> Result<(), ConsoleError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok())
        .and_then(|o| reqwest::Url::parse(o).ok());
    let same_site = from.is_some_and(|u| {
        let origin_host = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => String::new(),
        };
        origin_host == host
    });
    let token_ok = {
        use sha2::Digest;
        // Compared as digests: the time taken says nothing about the token.
        sha2::Sha256::digest(csrf.as_bytes()) == sha2::Sha256::digest(session.csrf.as_bytes())
    };
    if same_site && token_ok {
        Ok(())
    } else {
        Err(ConsoleError::Csrf)
    }
}

async fn audit(
    state: &AppState,
    session: &Session,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), ConsoleError> {
    Ok(state
        .storage
        .audit(
            session.email.clone(),
            action.into(),
            subject.into(),
            detail.into(),
            now_ms(),
        )
        .await?)
}

/// The session cookie: over HTTPS only (browsers count loopback as secure, so a development
/// server on 127.0.0.1 works), never to scripts, never sent with another site's request, for the
/// console's paths only.
fn set_cookie(value: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Page {
    let s = session(&state, &headers).await?;
    Ok(pages::home(&s).into_response())
}

async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap) -> Page {
    if session(&state, &headers).await.is_ok() {
        return Ok(Redirect::to("/console").into_response());
    }
    Ok(pages::sign_in(None).into_response())
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// The authenticator app's code, for accounts with two-factor sign-in.
    #[serde(default)]
    code: String,
}

async fn sign_in(State(state): State<AppState>, Form(form): Form<SignInForm>) -> Page {
    if form.email.len() > 254 || form.password.len() > 1024 || form.code.len() > 32 {
        return Ok((
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("Wrong e-mail address, password or code.")),
        )
            .into_response());
    }
    match state
        .storage
        .sign_in(
            form.email,
            form.password,
            form.code,
            limits(&state),
            now_ms(),
        )
        .await?
    {
        SignIn::Signed(token, _) => {
            let max_age = i64::try_from(limits(&state).absolute.as_secs()).unwrap_or(i64::MAX);
            let mut r = Redirect::to("/console").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&token, max_age));
            Ok(r)
        }
        SignIn::Refused => Ok((
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("Wrong e-mail address, password or code.")),
        )
            .into_response()),
        SignIn::Throttled { retry_after_s } => {
            let minutes = retry_after_s.div_ceil(60);
            let message = format!(
                "Too many failed sign-ins with this address: try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            );
            Ok((
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_s.to_string())],
                pages::sign_in(Some(&message)),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    let s = session(&state, &headers).await?;
    check_form(&headers, &s, &form.csrf)?;
    state.storage.sign_out(s, now_ms()).await?;
    let mut r = Redirect::to("/console/sign-in").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0));
    Ok(r)
}

#[derive(Deserialize)]
struct Lookup {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

async fn members(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Lookup>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::LookupMember).await?;
    let Some(mut query) = q.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()) else {
        return Ok(pages::lookup(&s, "", pages::Found::Nothing, q.done.as_deref()).into_response());
    };
    // A scanner types what the code holds: the card number, or the app's rotating code.
    let by_code = query.starts_with(tessera_domain::member_code::CODE_PREFIX);
    let found = if by_code {
        match state
            .storage
            .member_by_code(query.clone(), now_ms())
            .await?
        {
            Ok(found) => found,
            Err(refused) => {
                audit(&state, &s, "member_code_refused", "", refused.reason()).await?;
                let page = pages::lookup(&s, "", pages::Found::Refused(&refused), None);
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
        }
    } else {
        state.storage.find_member(query.clone()).await?
    };
    let Some(id) = found else {
        let page = pages::lookup(&s, &query, pages::Found::Nobody, q.done.as_deref());
        return Ok(page.into_response());
    };
    use crate::service::analytics::AnalyticsServices;
    use crate::service::wallet::WalletServices;
    let how = if by_code {
        "by the app's member code"
    } else {
        ""
    };
    audit(&state, &s, "member_viewed", &id, how).await?;
    let view = pages::MemberView {
        score: state.storage.member_score(id.clone()).await?,
        passes: state.storage.member_wallet_passes(id.clone()).await?,
        state: state.storage.member_state(id).await?,
    };
    if by_code {
        // The code is good for a minute: the page asks again by the card number.
        query = view.state.card_number.clone();
    }
    let page = pages::lookup(&s, &query, pages::Found::Member(&view), q.done.as_deref());
    Ok(page.into_response())
}

/// Every field defaults: the session and the role are checked before what the form holds.
#[derive(Deserialize)]
struct PointsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    points: String,
    #[serde(default)]
    reason: String,
}

async fn correct_points(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<PointsForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::CorrectPoints).await?;
    check_form(&headers, &s, &form.csrf)?;
    let points: i64 = form
        .points
        .trim()
        .parse()
        .ok()
        .filter(|p: &i64| *p != 0 && p.unsigned_abs() <= 100_000_000)
        .ok_or_else(|| {
            ConsoleError::Invalid("Points: a whole number, not 0, at most 100,000,000.".into())
        })?;
    let reason = form.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ConsoleError::Invalid("Reason: 1 to 200 characters.".into()));
    }
    let detail = format!("{points:+} points: {reason}");
    let card = match state
        .storage
        .adjust_points(
            id.clone(),
            PointsAdjustment {
                points,
                reason: format!("{reason} (by {})", s.email),
            },
            now_ms(),
        )
        .await?
    {
        None => return Err(ConsoleError::NotFound("member")),
        Some(Err(refused)) => return Err(ConsoleError::Invalid(refused.to_string())),
        Some(Ok(_)) => state.storage.member_state(id.clone()).await?.card_number,
    };
    audit(&state, &s, "points_corrected", &id, &detail).await?;
    Ok(Redirect::to(&format!("/console/members?q={card}&done=points")).into_response())
}

/// What staff read out at the counter before recording a decision; its version and SHA-256
/// go into the consent record.
pub const COUNTER_TEXT: &str = "Do you agree that the programme contacts you on this channel \
    for this purpose? You can change your mind at any time, in the app or at any counter.";
pub const COUNTER_TEXT_VERSION: &str = "counter-1";

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    decision: String,
}

async fn record_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ConsentForm>,
) -> Page {
    use tessera_domain::consent::{Channel, ConsentRecord, ConsentSource, Decision, Purpose};
    let s = allowed(&state, &headers, StaffAction::RecordConsent).await?;
    check_form(&headers, &s, &form.csrf)?;
    let (Some(purpose), Some(channel), Some(decision)) = (
        Purpose::parse(&form.purpose),
        Channel::parse(&form.channel),
        Decision::parse(&form.decision),
    ) else {
        return Err(ConsoleError::Invalid(
            "Choose a purpose, a channel and a decision.".into(),
        ));
    };
    let now = now_ms();
    let at = tessera_domain::rfc3339_ms(now);
    let text_sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(COUNTER_TEXT.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let record = ConsentRecord {
        record_id: format!("c-{}", uuid::Uuid::new_v4().simple()),
        member_id: id.clone(),
        purpose,
        channel,
        decision,
        text_version: COUNTER_TEXT_VERSION.into(),
        text_sha256,
        decided_at: at.clone(),
        effective_at: at,
        recorded_at: None,
        source: ConsentSource::InStore,
        recorded_by: Some(s.staff_id.clone()),
        app_version: None,
    };
    record
        .validate()
        .map_err(|e| ConsoleError::Invalid(e.to_string()))?;
    let card = match state.storage.staff_consent(record, now).await? {
        None => return Err(ConsoleError::NotFound("member")),
        Some(Err(refused)) => return Err(ConsoleError::Invalid(refused.to_string())),
        Some(Ok(_)) => state.storage.member_state(id.clone()).await?.card_number,
    };
    let detail = format!(
        "{} {} {} at {}",
        purpose.as_str(),
        channel.as_str(),
        decision.as_str(),
        s.store_id.as_deref().unwrap_or("the console")
    );
    audit(&state, &s, "consent_recorded", &id, &detail).await?;
    Ok(Redirect::to(&format!("/console/members?q={card}&done=consent")).into_response())
}

async fn export(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Page {
    let s = allowed(&state, &headers, StaffAction::ExportMember).await?;
    let export = state
        .storage
        .export(id.clone(), now_ms())
        .await?
        .ok_or(ConsoleError::NotFound("member"))?;
    audit(&state, &s, "member_exported", &id, "").await?;
    let body = serde_json::to_vec_pretty(&export)
        .map_err(|e| ConsoleError::Storage(StorageError::backend(e)))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"member-{id}.json\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
struct EraseForm {
    #[serde(default)]
    csrf: String,
    /// The member's card number, typed again: erasure cannot be undone.
    #[serde(default)]
    confirm: String,
}

async fn erase(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EraseForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::EraseMember).await?;
    check_form(&headers, &s, &form.csrf)?;
    let card = state
        .storage
        .find_member(id.clone())
        .await?
        .ok_or(ConsoleError::NotFound("member"))?;
    let card = state.storage.member_state(card).await?.card_number;
    let typed: String = form
        .confirm
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if typed != card {
        return Err(ConsoleError::Invalid(
            "Type the member's card number to confirm the erasure.".into(),
        ));
    }
    let receipt = state
        .storage
        .erase(id.clone(), now_ms(), format!("console:{}", s.email))
        .await?
        .ok_or(ConsoleError::NotFound("member"))?;
    let detail = format!(
        "{} consent records kept, detached",
        receipt.consent_records_anonymised
    );
    audit(&state, &s, "member_erased", &id, &detail).await?;
    Ok(Redirect::to("/console/members?done=erased").into_response())
}

#[derive(Deserialize)]
struct KpiForm {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    shop: Option<String>,
}

/// The report asked for, as the role may see it: store staff their own shop only.
async fn report(
    state: &AppState,
    headers: &HeaderMap,
    q: KpiForm,
) -> Result<(Session, tessera_domain::api::KpiReport), ConsoleError> {
    use crate::service::kpis::KpiServices;
    let s = allowed(state, headers, StaffAction::ViewKpis).await?;
    let empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let mut shop = empty(q.shop);
    if let Some(own) = &s.store_id {
        match &shop {
            None => shop = Some(own.clone()),
            Some(asked) if asked != own => return Err(ConsoleError::Forbidden),
            Some(_) => {}
        }
    }
    let (from, to) = crate::routes::kpis::period(empty(q.from).as_deref(), empty(q.to).as_deref())
        .map_err(ConsoleError::Invalid)?;
    let report = state.storage.kpis(shop, from, to).await?;
    Ok((s, report))
}

async fn kpis(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<KpiForm>) -> Page {
    let (s, report) = report(&state, &headers, q).await?;
    // Visit frequency needs distinct members over a period: the latest analysis counts them.
    use crate::service::analytics::AnalyticsServices;
    let frequency = state.storage.analytics_report().await?.map(|a| {
        let per = |visits: u64, active: u64| (active > 0).then(|| visits as f64 / active as f64);
        (
            a.as_of,
            per(a.visits_30, a.active_30),
            per(a.visits_90, a.active_90),
        )
    });
    let as_of = tessera_domain::rfc3339_ms(now_ms());
    Ok(with_script(
        pages::kpis(&s, &report, frequency, &as_of).into_response(),
    ))
}

async fn kpis_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<KpiForm>,
) -> Page {
    let (_, report) = report(&state, &headers, q).await?;
    let name = format!(
        "kpis-{}-{}-{}.csv",
        report.shop.as_deref().unwrap_or("all"),
        report.from,
        report.to
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        report.csv(),
    )
        .into_response())
}

/// What serde_json says is wrong with a text, without the place it appends (" at line 2 column
/// 3"): the pages give the line and column apart.
fn json_reason(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rsplit_once(" at line ") {
        Some((reason, _)) => reason.to_owned(),
        None => message,
    }
}

/// A page's query after an action: what was done (the page says so).
#[derive(Deserialize)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

async fn analytics(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Page {
    use crate::service::analytics::AnalyticsServices;
    let s = allowed(&state, &headers, StaffAction::Analytics).await?;
    let report = state.storage.analytics_report().await?;
    Ok(pages::analytics(&s, report.as_ref(), q.done.as_deref()).into_response())
}

async fn run_analytics(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Analytics).await?;
    check_form(&headers, &s, &form.csrf)?;
    let run = format!("now-{}", now_ms());
    state
        .storage
        .schedule_job(
            crate::service::analytics::ANALYTICS_JOB.to_owned(),
            run.clone(),
            now_ms(),
        )
        .await?;
    state.jobs_waiting.notify_one();
    audit(&state, &s, "analytics_run", &run, "").await?;
    Ok(Redirect::to("/console/analytics?done=queued").into_response())
}

async fn conflicts(State(state): State<AppState>, headers: HeaderMap) -> Page {
    let s = allowed(&state, &headers, StaffAction::ResolveConflicts).await?;
    let list = state.storage.redemption_conflicts(200).await?;
    Ok(pages::conflicts(&s, &list).into_response())
}

#[derive(Deserialize)]
struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
}

async fn resolve_conflict(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(form): Form<ResolveForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::ResolveConflicts).await?;
    check_form(&headers, &s, &form.csrf)?;
    let outcome = tessera_domain::api::ConflictOutcome::parse(&form.outcome)
        .ok_or_else(|| ConsoleError::Invalid("Choose an outcome.".into()))?;
    let note = form.note.trim().to_owned();
    if note.is_empty() || note.chars().count() > 500 {
        return Err(ConsoleError::Invalid("Note: 1 to 500 characters.".into()));
    }
    if !state
        .storage
        .resolve_conflict(id, outcome, note, s.email.clone(), now_ms())
        .await?
    {
        return Err(ConsoleError::NotFound("undecided conflict"));
    }
    Ok(Redirect::to("/console/conflicts").into_response())
}

async fn webhooks(State(state): State<AppState>, headers: HeaderMap) -> Page {
    let s = allowed(&state, &headers, StaffAction::Webhooks).await?;
    let endpoints = state.storage.endpoints().await?;
    let mut dead = Vec::new();
    for e in &endpoints {
        if e.dead > 0 {
            let list = state
                .storage
                .deliveries(
                    e.id.clone(),
                    Some(tessera_domain::api::DeliveryState::Dead),
                    0,
                    50,
                )
                .await?
                .unwrap_or_default();
            dead.push((e.id.clone(), list));
        }
    }
    Ok(pages::webhooks(&s, &endpoints, &dead).into_response())
}

async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::Webhooks).await?;
    check_form(&headers, &s, &form.csrf)?;
    let n = state
        .storage
        .replay(id.clone(), None, now_ms())
        .await?
        .ok_or(ConsoleError::NotFound("endpoint"))?;
    audit(
        &state,
        &s,
        "webhooks_replayed",
        &id,
        &format!("{n} deliveries"),
    )
    .await?;
    Ok(Redirect::to("/console/webhooks").into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
}

async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::ViewAudit).await?;
    let rows = state
        .storage
        .audit_log(q.before.unwrap_or(i64::MAX), 100)
        .await?;
    Ok(pages::audit(&s, &rows).into_response())
}
