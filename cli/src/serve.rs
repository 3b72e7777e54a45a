//! `tessera serve`: the reference server in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tessera_server::storage::Storage;
use tessera_server::storage::sqlite::SqliteStorage;
use tessera_server::{AppState, ServerConfig};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Database file; a temporary one when absent.
    #[arg(long, env = "TESSERA_SERVER_DB")]
    db: Option<PathBuf>,
    /// Bearer token of the admin API.
    #[arg(long, env = "TESSERA_ADMIN_TOKEN", default_value = "tessera-admin")]
    admin_token: String,
    /// Load the seed catalog shipped with the project (a few hundred French stores).
    #[arg(long)]
    seed: bool,
    /// Load this catalog JSON file (replaces the current catalog).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Write the server's URL to this file once it is listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// FCM project id (enables FCM HTTP v1 for campaigns, with --fcm-token).
    #[arg(long, env = "TESSERA_FCM_PROJECT")]
    fcm_project: Option<String>,
    /// OAuth 2 access token for FCM.
    #[arg(long, env = "TESSERA_FCM_TOKEN", hide_env_values = true)]
    fcm_token: Option<String>,
    #[arg(
        long,
        env = "TESSERA_FCM_URL",
        default_value = "https://fcm.googleapis.com"
    )]
    fcm_url: String,
    /// The iOS app's bundle id (enables APNs for campaigns, with --apns-token).
    #[arg(long, env = "TESSERA_APNS_TOPIC")]
    apns_topic: Option<String>,
    /// APNs provider JWT.
    #[arg(long, env = "TESSERA_APNS_TOKEN", hide_env_values = true)]
    apns_token: Option<String>,
    #[arg(
        long,
        env = "TESSERA_APNS_URL",
        default_value = "https://api.push.apple.com"
    )]
    apns_url: String,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let storage = match &args.db {
        Some(path) => {
            SqliteStorage::open(path).with_context(|| format!("opening {}", path.display()))?
        }
        None => SqliteStorage::temporary().context("creating a temporary database")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        if args.seed {
            let catalog = tessera_server::seed::catalog().context("the seed catalog")?;
            let counts = storage.load_catalog(catalog).await?;
            println!(
                "seed catalog: {} stores, {} offers",
                counts.stores, counts.offers
            );
        }
        if let Some(path) = &args.catalog {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let catalog: tessera_core::catalog::Catalog = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            catalog.validate().context("the catalog breaks a rule")?;
            let counts = storage.load_catalog(catalog).await?;
            println!(
                "catalog: {} stores, {} offers",
                counts.stores, counts.offers
            );
        }
        let push = tessera_server::push::PushConfig {
            fcm: args.fcm_project.clone().zip(args.fcm_token.clone()).map(
                |(project_id, access_token)| tessera_server::push::FcmConfig {
                    base_url: args.fcm_url.clone(),
                    project_id,
                    access_token,
                },
            ),
            apns: args.apns_topic.clone().zip(args.apns_token.clone()).map(
                |(topic, auth_token)| tessera_server::push::ApnsConfig {
                    base_url: args.apns_url.clone(),
                    topic,
                    auth_token,
                },
            ),
        };
        let config = ServerConfig {
            admin_token: args.admin_token.clone(),
            push,
            ..ServerConfig::default()
        };
        let state = AppState::new(Arc::new(storage), config);
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
