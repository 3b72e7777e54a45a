//! `tessera serve`: the reference server in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tessera_server::guard::{AdminCredential, RateLimit, RateLimits};
use tessera_server::storage::Storage;
use tessera_server::storage::postgres::{PostgresOptions, PostgresStorage};
use tessera_server::storage::sqlite::SqliteStorage;
use tessera_server::{AppState, ServerConfig};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Database file (SQLite); a temporary one when absent and --database is not given.
    #[arg(long, env = "TESSERA_SERVER_DB", conflicts_with = "database")]
    db: Option<PathBuf>,
    /// A PostgreSQL database instead of SQLite, `postgres://user:password@host:port/name`:
    /// any number of server processes may share it (docs/deploy.md). Its schema is created or
    /// brought up to date at start.
    #[arg(long, env = "TESSERA_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// Connections to PostgreSQL this process keeps (transactions it runs at once).
    #[arg(long, env = "TESSERA_DATABASE_POOL", default_value_t = 16)]
    database_pool: usize,
    /// An operator credential for the admin API, `NAME:TOKEN` or `TOKEN` (16 to 256 characters;
    /// kept as its SHA-256 only); repeat for several. Without it or --admin-credentials, a
    /// loopback address uses the built-in development token `tessera-admin` and says so; any
    /// other address refuses to start.
    #[arg(
        long,
        env = "TESSERA_ADMIN_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    admin_token: Vec<String>,
    /// A file of operator credentials, one `NAME sha256:HEX` a line (digests only: print a line
    /// with `tessera admin-credential NAME`). Re-read on SIGHUP, so credentials rotate without a
    /// restart.
    #[arg(long, env = "TESSERA_ADMIN_CREDENTIALS")]
    admin_credentials: Option<PathBuf>,
    /// Requests per second allowed from one client address (0: no limit); bursts of 5×.
    #[arg(long, default_value_t = 1000)]
    rate_per_address: u32,
    /// Requests per second allowed for one member (0: no limit); bursts of 10×.
    #[arg(long, default_value_t = 100)]
    rate_per_member: u32,
    /// Requests per second allowed for one till (0: no limit); bursts of 10×.
    #[arg(long, default_value_t = 50)]
    rate_per_till: u32,
    /// A load balancer or proxy in front of the server (an address or a CIDR block; repeat for
    /// several): its requests count against the client it names in `X-Forwarded-For`.
    #[arg(long)]
    trusted_proxy: Vec<ipnet::IpNet>,
    /// On SIGTERM or Ctrl-C, keep serving this many seconds with `/ready` answering 503
    /// (`draining`) so that a load balancer stops sending requests, then finish those in flight
    /// and exit. 0 (the default) for a server alone.
    #[arg(long, env = "TESSERA_DRAIN_SECONDS", default_value_t = 0)]
    drain_seconds: u64,
    /// Campaign pushes this process sends per second at most (0: no limit).
    #[arg(long, env = "TESSERA_PUSH_RATE", default_value_t = 1000)]
    push_rate: u32,
    /// Members read per campaign batch.
    #[arg(long, default_value_t = 500)]
    campaign_batch: u32,
    /// How long a background job (a campaign) stays this process's without news; a job whose
    /// process died is resumed by another after it.
    #[arg(long, default_value_t = 30)]
    job_lease_seconds: u64,
    /// A webhook receiver that has not answered in this many milliseconds is failed (and tried
    /// again).
    #[arg(long, env = "TESSERA_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    webhook_timeout_ms: u64,
    /// The delay before a failed webhook delivery's next attempt, in milliseconds; while the
    /// endpoint fails everything, each next one is three times longer, up to 6 hours.
    #[arg(long, env = "TESSERA_WEBHOOK_FIRST_RETRY_MS", default_value_t = 5_000)]
    webhook_first_retry_ms: u64,
    /// Attempts before a webhook delivery goes to the dead-letter list (12: about a day of
    /// retries for a receiver that is down).
    #[arg(long, env = "TESSERA_WEBHOOK_ATTEMPTS", default_value_t = 12)]
    webhook_attempts: u32,
    /// Webhook deliveries in flight at once, per process.
    #[arg(long, env = "TESSERA_WEBHOOK_CONCURRENCY", default_value_t = 32)]
    webhook_concurrency: usize,
    /// Serve requests only: run no background jobs in this process.
    #[arg(long)]
    no_jobs: bool,
    /// Load the seed catalog shipped with the project (a few hundred French stores).
    #[arg(long)]
    seed: bool,
    /// Load this catalog JSON file (replaces the current catalog).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Write the server's URL to this file once it is listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// FCM project id (enables FCM HTTP v1 for campaigns, with --fcm-service-account or
    /// --fcm-token; the service account's project by default).
    #[arg(long, env = "TESSERA_FCM_PROJECT")]
    fcm_project: Option<String>,
    /// A Google service account key file (JSON): the server mints and refreshes FCM's OAuth 2
    /// access tokens from it.
    #[arg(long, env = "TESSERA_FCM_SERVICE_ACCOUNT")]
    fcm_service_account: Option<PathBuf>,
    /// A ready-made OAuth 2 access token for FCM (instead of a service account).
    #[arg(
        long,
        env = "TESSERA_FCM_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    fcm_token: Option<String>,
    #[arg(
        long,
        env = "TESSERA_FCM_URL",
        default_value = "https://fcm.googleapis.com"
    )]
    fcm_url: String,
    /// The iOS app's bundle id (enables APNs for campaigns, with --apns-key or --apns-token).
    #[arg(long, env = "TESSERA_APNS_TOPIC")]
    apns_topic: Option<String>,
    /// The APNs auth key (`AuthKey_XXXXXXXXXX.p8`): the server signs its provider tokens (ES256)
    /// and renews them within the hour; with --apns-key-id and --apns-team-id.
    #[arg(long, env = "TESSERA_APNS_KEY")]
    apns_key: Option<PathBuf>,
    #[arg(long, env = "TESSERA_APNS_KEY_ID")]
    apns_key_id: Option<String>,
    #[arg(long, env = "TESSERA_APNS_TEAM_ID")]
    apns_team_id: Option<String>,
    /// Wallet passes: a JSON file with the branding and the Apple Wallet (pass type certificate,
    /// key, WWDR, images) and Google Wallet (issuer, service account) settings; see
    /// docs/wallet.md.
    #[arg(long, env = "TESSERA_WALLET_CONFIG")]
    wallet_config: Option<PathBuf>,
    /// A ready-made APNs provider JWT (instead of --apns-key).
    #[arg(
        long,
        env = "TESSERA_APNS_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    apns_token: Option<String>,
    #[arg(
        long,
        env = "TESSERA_APNS_URL",
        default_value = "https://api.push.apple.com"
    )]
    apns_url: String,
}

/// The push services from the arguments: credentials minted from the operator's keys, or
/// given ready-made.
fn push_config(args: &ServeArgs) -> Result<tessera_server::push::PushConfig> {
    use std::sync::Arc;
    use tessera_server::credentials::{
        ApnsTokens, FCM_SCOPE, ServiceAccount, ServiceAccountTokens,
    };
    use tessera_server::push::{ApnsConfig, FcmConfig, PushConfig, StaticToken, TokenSource};
    let mut fcm = None;
    let account = match &args.fcm_service_account {
        Some(path) => Some(
            ServiceAccount::from_json(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("the service account in {}", path.display()))?,
        ),
        None => None,
    };
    let project = args
        .fcm_project
        .clone()
        .or_else(|| account.as_ref().and_then(|a| a.project_id.clone()));
    let credential: Option<Arc<dyn TokenSource>> = match (account, &args.fcm_token) {
        (Some(account), _) => Some(Arc::new(ServiceAccountTokens::new(account, FCM_SCOPE))),
        (None, Some(token)) => Some(Arc::new(StaticToken(token.clone()))),
        (None, None) => None,
    };
    if let (Some(project_id), Some(credential)) = (project, credential) {
        fcm = Some(FcmConfig {
            base_url: args.fcm_url.clone(),
            project_id,
            credential,
        });
    }
    let credential: Option<Arc<dyn TokenSource>> = match (&args.apns_key, &args.apns_token) {
        (Some(path), _) => {
            let (Some(key_id), Some(team_id)) = (&args.apns_key_id, &args.apns_team_id) else {
                anyhow::bail!("--apns-key needs --apns-key-id and --apns-team-id");
            };
            let p8 = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(Arc::new(
                ApnsTokens::new(&p8, key_id, team_id)
                    .with_context(|| format!("the APNs key in {}", path.display()))?,
            ))
        }
        (None, Some(token)) => Some(Arc::new(StaticToken(token.clone()))),
        (None, None) => None,
    };
    let apns = args
        .apns_topic
        .clone()
        .zip(credential)
        .map(|(topic, credential)| ApnsConfig {
            base_url: args.apns_url.clone(),
            topic,
            credential,
        });
    Ok(PushConfig { fcm, apns })
}

/// The operator credentials from the arguments; the development one on loopback only.
fn credentials(args: &ServeArgs) -> Result<Vec<AdminCredential>> {
    let mut list = Vec::new();
    for arg in &args.admin_token {
        list.push(AdminCredential::from_arg(arg).context("--admin-token")?);
    }
    if let Some(path) = &args.admin_credentials {
        list.extend(read_credentials(path)?);
    }
    if list.is_empty() {
        if !args.addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve on {} without an operator credential: set --admin-token or \
                 --admin-credentials (the built-in development token is for loopback only)",
                args.addr
            );
        }
        eprintln!(
            "warning: development run: the admin API accepts the built-in token `{}` (loopback \
             only; set --admin-token or --admin-credentials for anything else)",
            tessera_server::guard::DEVELOPMENT_TOKEN
        );
        list.push(AdminCredential::development());
    }
    Ok(list)
}

fn read_credentials(path: &std::path::Path) -> Result<Vec<AdminCredential>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    tessera_server::guard::parse_credentials(&text)
        .with_context(|| format!("the credentials in {}", path.display()))
}

fn limit(per_second: u32, burst_factor: u32) -> Option<RateLimit> {
    (per_second > 0).then(|| RateLimit {
        per_second,
        burst: per_second.saturating_mul(burst_factor),
    })
}

/// `tessera admin-credential NAME`: a fresh operator token (on stderr), and its line for a
/// credentials file (on stdout).
pub fn new_credential(name: &str) -> Result<()> {
    let token = tessera_server::auth::random_token()
        .map_err(|_| anyhow::anyhow!("no randomness available"))?;
    let credential = AdminCredential::from_token(name, &token)?;
    // The file line on stdout (`tessera admin-credential NAME >> operators.txt`), the token on
    // stderr: the terminal shows it once, the file never holds it.
    eprintln!("token for {name} (give it to the operator; it is not stored): {token}");
    println!("{}", credential.file_line());
    Ok(())
}

pub fn run(args: ServeArgs) -> Result<()> {
    let admin_credentials = credentials(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let storage: Arc<dyn Storage> = match (&args.database, &args.db) {
            (Some(url), _) => {
                let options = PostgresOptions {
                    pool_size: args.database_pool,
                    ..PostgresOptions::default()
                };
                // The error does not repeat the URL: it may hold a password.
                Arc::new(
                    PostgresStorage::connect(url, options)
                        .await
                        .context("connecting to PostgreSQL (--database)")?,
                )
            }
            (None, Some(path)) => Arc::new(
                SqliteStorage::open(path).with_context(|| format!("opening {}", path.display()))?,
            ),
            (None, None) => {
                Arc::new(SqliteStorage::temporary().context("creating a temporary database")?)
            }
        };
        if args.seed {
            let catalog = tessera_server::seed::catalog().context("the seed catalog")?;
            let counts = storage.load_catalog(catalog).await?;
            println!(
                "seed catalog: {} stores, {} offers",
                counts.stores, counts.offers
            );
        }
        if let Some(path) = &args.catalog {
            // Read one entity at a time, like the admin API's import: any size, bounded memory.
            let file =
                std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
            let counts = storage
                .import_catalog(file)
                .await?
                .with_context(|| format!("the catalog in {}", path.display()))?;
            println!(
                "catalog: {} stores, {} offers",
                counts.stores, counts.offers
            );
        }
        let push = push_config(&args)?;
        let wallet = match &args.wallet_config {
            None => None,
            Some(path) => Some(std::sync::Arc::new(
                tessera_server::wallet::WalletConfig::from_file(path)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("the wallet settings in {}", path.display()))?,
            )),
        };
        let config = ServerConfig {
            admin_credentials,
            rate_limits: RateLimits {
                per_address: limit(args.rate_per_address, 5),
                per_member: limit(args.rate_per_member, 10),
                per_till: limit(args.rate_per_till, 10),
            },
            trusted_proxies: args.trusted_proxy.clone(),
            push,
            wallet,
            drain_delay: std::time::Duration::from_secs(args.drain_seconds),
            jobs: tessera_server::jobs::JobConfig {
                enabled: !args.no_jobs,
                push_rate: args.push_rate,
                batch_members: args.campaign_batch.max(1),
                lease: std::time::Duration::from_secs(args.job_lease_seconds.max(1)),
                ..tessera_server::jobs::JobConfig::default()
            },
            webhooks: webhook_config(&args),
            ..ServerConfig::default()
        };
        let state = AppState::new(storage, config);
        if let Some(path) = args.admin_credentials.clone() {
            // SIGHUP: read the credentials again (rotation); a bad file keeps the old set.
            let admins = state.admins.clone();
            let extra: Vec<AdminCredential> = args
                .admin_token
                .iter()
                .filter_map(|a| AdminCredential::from_arg(a).ok())
                .collect();
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("listening for SIGHUP")?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match read_credentials(&path) {
                        Ok(list) => {
                            let list: Vec<_> = extra.iter().cloned().chain(list).collect();
                            match admins.replace(list) {
                                Ok(()) => {
                                    eprintln!("admin credentials reloaded: {:?}", admins.names())
                                }
                                Err(e) => eprintln!("admin credentials not reloaded: {e}"),
                            }
                        }
                        Err(e) => eprintln!("admin credentials not reloaded: {e:#}"),
                    }
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let url = format!("http://{}", listener.local_addr()?);
        println!("listening on {url} (OpenAPI at {url}/openapi.json); Ctrl-C or SIGTERM stops");
        if let Some(path) = &args.ready_file {
            // Written aside then renamed, so a watcher never reads half a URL.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, &url)
                .and_then(|()| std::fs::rename(&partial, path))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            match term.as_mut() {
                Ok(term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        tessera_server::serve(listener, state, shutdown).await?;
        anyhow::Ok(())
    })
}

/// The webhook dispatcher's settings from the flags (each at least 1; the lease outlives the
/// timeout, so that a delivery in flight is never claimed by another process).
fn webhook_config(args: &ServeArgs) -> tessera_server::webhooks::WebhookConfig {
    use std::time::Duration;
    let timeout = Duration::from_millis(args.webhook_timeout_ms.max(1));
    let defaults = tessera_server::webhooks::WebhookConfig::default();
    tessera_server::webhooks::WebhookConfig {
        timeout,
        lease: defaults.lease.max(timeout * 2 + Duration::from_secs(5)),
        first_delay: Duration::from_millis(args.webhook_first_retry_ms.max(1)),
        max_attempts: args.webhook_attempts.max(1),
        concurrency: args.webhook_concurrency.max(1),
        ..defaults
    }
}
