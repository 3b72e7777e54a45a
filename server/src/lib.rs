//! # tessera-server
//!
//! The reference loyalty backend the core syncs with: axum on tokio, embedded SQLite by default.
//!
//! | module | job |
//! |---|---|
//! | [`service`] | the business rules over any backend's repository (`Services` on every `Storage`) |
//! | [`storage`] | the `Storage` trait, the `Repo` a backend implements, and the SQLite backend |
//! | `conformance` | the suite every backend passes (tests, or the `conformance` feature) |
//! | [`routes`] | the member, till and admin APIs (HTTP only) |
//! | [`auth`] | bearer tokens (hashed at rest) and the extractors that check them |
//! | [`guard`] | operator credentials (named, digests only, rotated) and rate limits |
//! | [`problem`] | problem documents (RFC 9457) and extractors that never answer plain text |
//! | [`seed`] | the seed catalog shipped with the project |
//! | this file | configuration, the router (with its OpenAPI document), limits, serving |
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod console;
pub mod credentials;
pub mod guard;
pub mod jobs;
pub mod problem;
pub mod push;
pub mod routes;
pub mod seed;
pub mod service;
pub mod storage;
pub mod wallet;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_domain::api::{
    API_VERSION, API_VERSION_HEADER, MAX_MEMBER_BODY, SERVER_TIME_HEADER, codes,
};
use tower::ServiceBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::ApiError;
use crate::storage::Storage;

/// How the server behaves. [`ServerConfig::default`] is what `tessera serve` uses.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The operators' credentials for `/admin/v1` (named digests; see [`guard`]). The default
    /// is the built-in development credential, which [`serve`] accepts on loopback only.
    pub admin_credentials: Vec<guard::AdminCredential>,
    /// Requests per client address, member and till.
    pub rate_limits: guard::RateLimits,
    /// Load balancers and proxies in front of the server: a request from one of them is counted
    /// against the client address it names in `X-Forwarded-For` (the nearest hop that is not one
    /// of them). Empty: the peer's address is the client's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long an idempotency key and its answer are kept (at least 30 days).
    pub key_retention: Duration,
    /// Every request is answered within this, or gets 503 `timeout`.
    pub request_timeout: Duration,
    /// Largest body of the admin routes that take many things at once (a rule set, a batch of
    /// rule events, a campaign), read whole; a single shop, offer or correction takes 64 KiB.
    pub max_admin_body: usize,
    /// Largest catalog document (`POST /admin/v1/catalog`), streamed to disk and read one
    /// entity at a time: memory does not grow with it.
    pub max_catalog_body: usize,
    /// Default catalog page size.
    pub page_size: u32,
    /// The push services campaigns are sent through.
    pub push: push::PushConfig,
    /// How long a shutting-down process keeps serving while `/ready` says `draining`, before it
    /// stops accepting connections and finishes those in flight (behind a load balancer: a few
    /// of its health-check intervals; 0 alone).
    pub drain_delay: Duration,
    /// The background worker (campaigns sent in batches): [`jobs::JobConfig`].
    pub jobs: jobs::JobConfig,
    /// How often the process writes its heartbeat and counts the live processes it shares the
    /// rate limits with (a process silent for three of these is no longer counted).
    pub heartbeat: Duration,
    /// The wallets passes are issued for (Apple Wallet, Google Wallet); `None`: none.
    pub wallet: Option<Arc<wallet::WalletConfig>>,
    /// How webhook deliveries are sent (run where jobs run).
    pub webhooks: webhooks::WebhookConfig,
    /// How long a console session lasts (idle, and at most).
    pub console: service::staff::SessionLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            admin_credentials: vec![guard::AdminCredential::development()],
            rate_limits: guard::RateLimits::default(),
            trusted_proxies: Vec::new(),
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(90 * 24 * 3600),
            key_retention: Duration::from_secs(35 * 24 * 3600),
            request_timeout: Duration::from_secs(30),
            max_admin_body: 4 * 1024 * 1024,
            max_catalog_body: 1024 * 1024 * 1024,
            page_size: 1000,
            push: push::PushConfig::default(),
            drain_delay: Duration::ZERO,
            jobs: jobs::JobConfig::default(),
            heartbeat: Duration::from_secs(5),
            wallet: None,
            webhooks: webhooks::WebhookConfig::default(),
            console: service::staff::SessionLimits::default(),
        }
    }
}

/// Counters of what the mutation endpoint did since start.
#[derive(Debug, Default)]
pub struct Metrics {
    pub applied: std::sync::atomic::AtomicU64,
    /// Answers replayed for a repeated key (a phone retrying after a lost answer or a crash).
    pub replayed: std::sync::atomic::AtomicU64,
    /// 422: the same key with another body.
    pub key_reused: std::sync::atomic::AtomicU64,
    /// Webhook deliveries answered 2xx, failed (to be tried again), and dead.
    pub webhooks_delivered: std::sync::atomic::AtomicU64,
    pub webhooks_failed: std::sync::atomic::AtomicU64,
    pub webhooks_dead: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub gateway: Arc<dyn push::PushGateway>,
    /// The operator credentials in force (replaced on rotation).
    pub admins: Arc<guard::AdminCredentials>,
    pub limiters: Arc<guard::Limiters>,
    /// Set when a shutdown begins: `/ready` answers 503 so that the load balancer sends no new
    /// requests while those in flight finish.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes this process's job worker when a request queues a job.
    pub jobs_waiting: Arc<tokio::sync::Notify>,
    /// This process's name in the database (heartbeats, job leases): new at each start.
    pub process: Arc<str>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(storage: Arc<dyn Storage>, config: ServerConfig) -> Self {
        let gateway = Arc::new(push::HttpGateway::new(config.push.clone()));
        AppState {
            storage,
            gateway,
            admins: Arc::new(guard::AdminCredentials::new(
                config.admin_credentials.clone(),
            )),
            limiters: Arc::new(guard::Limiters::new(&config.rate_limits)),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            jobs_waiting: Arc::new(tokio::sync::Notify::new()),
            process: format!(
                "{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4()
                    .simple()
                    .to_string()
                    .get(..12)
                    .unwrap_or("")
            )
            .into(),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera", description = "The reference loyalty backend Tessera's core syncs with."),
    modifiers(&Security),
    tags((name = "member", description = "Called by the apps"), (name = "admin", description = "Called by the operator"), (name = "till", description = "Called by shop tills"), (name = "ops", description = "Called by the load balancer and the monitoring"))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["member", "admin", "till"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The routes and their OpenAPI document, built from the same `routes!` lists: a handler cannot
/// be served without being documented.
fn documented_routes(max_admin: usize) -> OpenApiRouter<AppState> {
    let member = OpenApiRouter::new()
        .routes(routes!(routes::member::enrol))
        .routes(routes!(routes::member::refresh))
        .routes(routes!(routes::member::me, routes::member::erase_me))
        .routes(routes!(routes::member::catalog))
        .routes(routes!(routes::member::mutate))
        .routes(routes!(routes::member::export_me))
        .routes(routes!(routes::member::certify_device))
        .routes(routes!(routes::wallet::apple_card))
        .routes(routes!(routes::wallet::apple_coupon))
        .routes(routes!(routes::wallet::google_card))
        .routes(routes!(routes::wallet::google_coupon))
        .routes(routes!(routes::till::coupon_keys))
        .routes(routes!(routes::till::revocations))
        .routes(routes!(routes::till::shop))
        .routes(routes!(routes::till::redeem))
        .routes(routes!(routes::till::purchase))
        .routes(routes!(routes::till::void))
        .routes(routes!(routes::till::return_goods))
        .layer(DefaultBodyLimit::max(MAX_MEMBER_BODY));
    // Every admin body is bounded by what its route needs: one entity in 64 KiB; rule sets,
    // batches of rule events and campaigns in `max_admin`; the catalog is streamed (its own
    // bound, `max_catalog_body`, checked as it arrives).
    let admin = OpenApiRouter::new()
        .routes(routes!(routes::admin::put_program))
        .routes(routes!(
            routes::admin::put_store,
            routes::admin::delete_store
        ))
        .routes(routes!(
            routes::admin::put_offer,
            routes::admin::delete_offer
        ))
        .routes(routes!(routes::admin::member_events))
        .routes(routes!(routes::admin::revoke_devices))
        .routes(routes!(
            routes::admin::record_consent,
            routes::admin::consent_history
        ))
        .routes(routes!(routes::admin::export_member))
        .routes(routes!(routes::admin::erase_member))
        .routes(routes!(routes::admin::audience))
        .routes(routes!(routes::admin::set_segments))
        .routes(routes!(routes::till::register_till))
        .routes(routes!(
            routes::loyalty::get_rules,
            routes::loyalty::put_rules
        ))
        .routes(routes!(routes::loyalty::adjust_points))
        .routes(routes!(routes::loyalty::set_birthday))
        .routes(routes!(routes::loyalty::conflicts))
        .routes(routes!(routes::webhooks::list_endpoints))
        .routes(routes!(
            routes::webhooks::put_endpoint,
            routes::webhooks::get_endpoint,
            routes::webhooks::delete_endpoint
        ))
        .routes(routes!(routes::webhooks::deliveries))
        .routes(routes!(routes::webhooks::replay))
        .routes(routes!(
            routes::staff::create_staff,
            routes::staff::list_staff
        ))
        .routes(routes!(routes::staff::change_staff))
        .routes(routes!(routes::kpis::kpis))
        .routes(routes!(routes::loyalty::rule_versions))
        .routes(routes!(routes::loyalty::loyalty_versions))
        .routes(routes!(routes::loyalty::loyalty_version))
        .routes(routes!(routes::loyalty::restore_loyalty_version))
        .routes(routes!(routes::loyalty::rule_version))
        .routes(routes!(routes::loyalty::restore_rule_version))
        .routes(routes!(routes::analytics::report))
        .routes(routes!(routes::analytics::start_run))
        .routes(routes!(routes::analytics::run_state))
        .routes(routes!(routes::analytics::member_score))
        .routes(routes!(
            routes::analytics::get_settings,
            routes::analytics::put_settings
        ))
        .routes(routes!(
            routes::journeys::get_settings,
            routes::journeys::put_settings
        ))
        .routes(routes!(routes::journeys::report))
        .routes(routes!(routes::journeys::start_run))
        .routes(routes!(routes::journeys::run_state))
        .layer(DefaultBodyLimit::max(MAX_MEMBER_BODY));
    let admin_large = OpenApiRouter::new()
        .routes(routes!(routes::admin::run_campaign))
        .routes(routes!(routes::admin::campaign_status))
        .routes(routes!(
            routes::loyalty::get_challenges,
            routes::loyalty::put_challenges
        ))
        .routes(routes!(routes::loyalty::ingest_rule_events))
        .routes(routes!(routes::loyalty::rule_dry_run))
        .layer(DefaultBodyLimit::max(max_admin));
    let catalog = OpenApiRouter::new()
        .routes(routes!(routes::admin::load_catalog))
        .layer(DefaultBodyLimit::disable());
    let ops = OpenApiRouter::new()
        .routes(routes!(routes::ops::health))
        .routes(routes!(routes::ops::ready))
        .routes(routes!(routes::ops::metrics));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops)
        .merge(member)
        .merge(admin)
        .merge(admin_large)
        .merge(catalog)
}

/// Now, in milliseconds since the epoch (the server's clock).
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The API router and its OpenAPI document.
pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, mut doc) = documented_routes(state.config.max_admin_body).split_for_parts();
    close_tagged_variants(&mut doc);
    name_tagged_variants(&mut doc);
    document_rate_limits(&mut doc);
    (router.with_state(state), doc)
}

/// The wire types refuse unknown fields (`deny_unknown_fields`); utoipa says so for structs but
/// not for the variants of internally tagged enums (`Mutation`, `CatalogChange`), so the
/// document would promise that extra fields are accepted. Close those variants.
fn close_tagged_variants(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for schema in components.schemas.values_mut() {
        if let RefOr::T(Schema::OneOf(one_of)) = schema {
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(object)) = item
                    && object.additional_properties.is_none()
                {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}

/// utoipa writes each variant of an internally tagged enum inline in a `oneOf`. Client
/// generators want names: an inline variant that refers back to its own enum (`Goal`'s
/// `all_of`) is one that `openapi-python-client` drops, and with it every schema and operation
/// using it. Give each variant its own component (`Goal` → `GoalCount`, `GoalAllOf`…), refer to
/// them, and name the tag as the `oneOf`'s discriminator.
fn name_tagged_variants(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{Discriminator, Schema};
    use utoipa::openapi::{Ref, RefOr};
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    // The tag of an inline variant: its one property with a single enum value.
    fn tag(item: &RefOr<Schema>) -> Option<(String, String)> {
        let RefOr::T(Schema::Object(object)) = item else {
            return None;
        };
        let mut tags = object.properties.iter().filter_map(|(name, p)| match p {
            RefOr::T(Schema::Object(p)) => match p.enum_values.as_deref() {
                Some([serde_json::Value::String(v)]) => Some((name.clone(), v.clone())),
                _ => None,
            },
            _ => None,
        });
        let found = tags.next();
        if tags.next().is_some() { None } else { found }
    }
    fn pascal(s: &str) -> String {
        s.split(['_', '.'])
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect()
    }
    let taken: std::collections::BTreeSet<String> = components.schemas.keys().cloned().collect();
    let mut hoisted = Vec::new();
    for (name, schema) in components.schemas.iter_mut() {
        let RefOr::T(Schema::OneOf(one_of)) = schema else {
            continue;
        };
        let Some(tags) = one_of.items.iter().map(tag).collect::<Option<Vec<_>>>() else {
            continue;
        };
        let Some(property) = tags.first().map(|(p, _)| p.clone()) else {
            continue;
        };
        // Every variant tagged by the same property, and no name already a schema's (a clash
        // leaves the enum as utoipa wrote it rather than replace another schema).
        if tags.iter().any(|(p, _)| *p != property)
            || tags
                .iter()
                .any(|(_, v)| taken.contains(&format!("{name}{}", pascal(v))))
        {
            continue;
        }
        let mut discriminator = Discriminator::new(property);
        for (item, (_, value)) in one_of.items.iter_mut().zip(tags) {
            let variant = format!("{name}{}", pascal(&value));
            discriminator
                .mapping
                .insert(value, format!("#/components/schemas/{variant}"));
            let inline = std::mem::replace(item, RefOr::Ref(Ref::from_schema_name(&variant)));
            hoisted.push((variant, inline));
        }
        one_of.discriminator = Some(discriminator);
    }
    components.schemas.extend(hoisted);
}

/// Every operation may answer 429 (rate limits per client address, member and till): say so once
/// for all, with its `Retry-After` header.
fn document_rate_limits(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{Object, Type};
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
    let response = ResponseBuilder::new()
        .description(
            "Too many requests from this client address, member or till: retry after the \
             Retry-After header's seconds (problem code `rate_limited`)",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Object::with_type(Type::Integer))
                .description(Some("Seconds to wait"))
                .build(),
        )
        .content(
            tessera_domain::api::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("429".to_owned())
                .or_insert_with(|| response.clone().into());
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn stamp(resp: Response) -> Response {
    // axum answers an unsupported method with an empty 405: make it a problem document.
    let mut resp = if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key("content-type")
    {
        let allow = resp.headers().get("allow").cloned();
        let mut p = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "Method not allowed",
            None,
        )
        .into_response();
        if let Some(allow) = allow {
            p.headers_mut().insert("allow", allow);
        }
        p
    } else {
        resp
    };
    let headers = resp.headers_mut();
    headers.insert(API_VERSION_HEADER, HeaderValue::from(API_VERSION));
    headers.insert(
        SERVER_TIME_HEADER,
        HeaderValue::from(jiff::Timestamp::now().as_millisecond()),
    );
    resp
}

async fn timed_out(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::TIMEOUT,
            "The request took too long",
            None,
        )
        .with_retry_after(1)
    } else {
        ApiError::internal()
    }
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::internal().into_response()
}

/// The per-address rate limit, before anything else (a request without a known peer, as in
/// in-process tests, is not limited).
async fn limit_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(axum::extract::ConnectInfo(peer)) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        let client = guard::client_address(
            peer.ip(),
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .collect::<Vec<_>>()
                .into_iter(),
            &state.config.trusted_proxies,
        );
        if let Err(e) = state.limiters.address(client) {
            return e.into_response();
        }
    }
    next.run(req).await
}

/// The whole application: API, `/openapi.json`, limits, compression, version and clock headers.
pub fn app(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    let guarded = state.clone();
    let (api, doc) = api(state);
    let doc = Arc::new(doc);
    api.route(
        "/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .merge(routes::wallet::passkit().with_state(guarded.clone()))
    .merge(console::router().with_state(guarded.clone()))
    .fallback(not_found)
    // Innermost first: the timeout, then panics, then the headers, then compression.
    .layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(timed_out))
            .timeout(timeout),
    )
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
    .layer(axum::middleware::from_fn_with_state(guarded, limit_address))
    .layer(axum::middleware::map_response(stamp))
    // The fastest gzip level: catalog pages are repetitive JSON, which compresses ~8:1 even
    // there, and on a small server the default level costs more time than the bytes it saves.
    .layer(
        tower_http::compression::CompressionLayer::new()
            .gzip(true)
            .quality(tower_http::CompressionLevel::Fastest),
    )
}

/// The OpenAPI document as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented_routes(0).split_for_parts().1;
    close_tagged_variants(&mut doc);
    name_tagged_variants(&mut doc);
    document_rate_limits(&mut doc);
    doc
}

/// Forget the idempotency keys older than the retention period as of `now_ms` (what the serving
/// loop runs every hour): how many went.
pub async fn purge_expired_keys(
    state: &AppState,
    now_ms: i64,
) -> Result<u64, storage::StorageError> {
    let retention = i64::try_from(state.config.key_retention.as_millis()).unwrap_or(i64::MAX);
    state
        .storage
        .purge_keys(now_ms.saturating_sub(retention))
        .await
}

/// Whether a server on `addr` may use the built-in development credential: loopback only.
pub fn check_credentials(
    addr: SocketAddr,
    admins: &guard::AdminCredentials,
) -> std::io::Result<()> {
    if admins.names().is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            guard::CredentialError::None.to_string(),
        ));
    }
    if admins.has_built_in() && !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "refusing to serve on {addr} with the built-in development admin credential: \
                 set an operator credential (--admin-token or --admin-credentials)"
            ),
        ));
    }
    Ok(())
}

/// Serve on `listener` until `shutdown` resolves, with the job worker and its hourly jobs
/// (lapses, the purge of old idempotency keys), the heartbeat, and idle rate-limit counters
/// forgotten every minute. Refuses to start with the built-in development credential on
/// an address other than loopback.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    check_credentials(listener.local_addr()?, &state.admins)?;
    let limiters = state.limiters.clone();
    let forget = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiters.forget_idle();
        }
    });
    // Every hour, the recurring jobs (lapses, the key purge) are queued; one process runs each.
    let purge = tokio::spawn(jobs::run_scheduler(state.clone()));
    // The heartbeat: this process is alive; the rate limits are shared among those that are.
    let beat_state = state.clone();
    let heartbeat = tokio::spawn(async move {
        let every = beat_state.config.heartbeat.max(Duration::from_millis(10));
        let alive_ms = (every * 3).as_millis() as i64;
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let process = beat_state.process.to_string();
            let beat =
                service::Services::heartbeat(&*beat_state.storage, process, now_ms(), alive_ms);
            match beat.await {
                Ok(n) => beat_state.limiters.set_share(n),
                Err(e) => tracing::warn!(error = %e, "heartbeat not written"),
            }
        }
    });
    let leaving = (state.storage.clone(), state.process.to_string());
    let state_timeout = state.config.webhooks.timeout;
    // The job worker: campaigns and other background work, claimed from the database.
    let worker = tokio::spawn(jobs::run_worker(state.clone()));
    // Wallet passes whose content changed: their wallets are told.
    let wallet_updates = tokio::spawn(jobs::run_wallet_updates(state.clone()));
    // The KPIs' increments folded into their sums.
    let kpi_fold = tokio::spawn(service::kpis::run_fold(state.clone()));
    // Webhook deliveries: claimed, signed, sent, recorded.
    let dispatcher = tokio::spawn(webhooks::run_dispatcher(state.clone()));
    let (worker_waiting, worker_stop) = (state.jobs_waiting.clone(), state.draining.clone());
    // On shutdown: say not ready, keep serving for the drain delay (the load balancer stops
    // sending), then stop accepting and finish what is in flight.
    let draining = state.draining.clone();
    let drain_delay = state.config.drain_delay;
    let shutdown = async move {
        shutdown.await;
        draining.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(delay_ms = drain_delay.as_millis() as u64, "draining");
        tokio::time::sleep(drain_delay).await;
    };
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    purge.abort();
    forget.abort();
    heartbeat.abort();
    wallet_updates.abort();
    kpi_fold.abort();
    if let Err(e) = service::Services::leave(&*leaving.0, leaving.1).await {
        tracing::warn!(error = %e, "could not leave the process list");
    }
    // The worker stops after its batch and gives its job back (draining is set); one that takes
    // too long is cut off, and its job resumes elsewhere when the lease runs out.
    worker_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker_waiting.notify_one();
    if tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .is_err()
    {
        tracing::warn!("the job worker did not stop in time");
    }
    // The dispatcher finishes the deliveries in flight (each bounded by its timeout).
    let limit = state_timeout + Duration::from_secs(1);
    if tokio::time::timeout(limit, dispatcher).await.is_err() {
        tracing::warn!("the webhook dispatcher did not stop in time");
    }
    result
}

/// A server on its own runtime and thread, for the CLI demo, tests and benchmarks. Stops when
/// dropped.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// Bind `addr` (port 0 for any free port) and serve `state` on a background thread with a
    /// `workers`-thread runtime.
    pub fn start(addr: SocketAddr, state: AppState, workers: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("tessera-server")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        check_credentials(addr, &state.admins)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tessera-server".into())
            .spawn(move || {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = runtime.block_on(serve(listener, state, shutdown)) {
                    tracing::error!(error = %e, "server stopped");
                }
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(RunningServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish in-flight requests, and wait for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
