//! The demo's own server, on loopback with the seed catalog.

use std::sync::Arc;

use anyhow::Result;
use tessera_server::storage::Storage;
use tessera_server::storage::sqlite::SqliteStorage;
use tessera_server::{AppState, RunningServer, ServerConfig};

/// A reference server on loopback; stopped and started again on the same port and database to
/// play the network going away and coming back.
pub(super) struct LocalServer {
    pub(super) storage: SqliteStorage,
    pub(super) addr: std::net::SocketAddr,
    pub(super) running: Option<RunningServer>,
}

impl LocalServer {
    pub(super) fn start(path: &std::path::Path) -> Result<Self> {
        let storage = SqliteStorage::open(path)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(storage.load_catalog(tessera_server::seed::catalog()?))?;
        let mut server = LocalServer {
            storage,
            addr: "127.0.0.1:0".parse()?,
            running: None,
        };
        server.resume()?;
        Ok(server)
    }

    pub(super) fn resume(&mut self) -> Result<()> {
        let state = AppState::new(Arc::new(self.storage.clone()), ServerConfig::default());
        let running = RunningServer::start(self.addr, state, 2)?;
        self.addr = running.addr;
        self.running = Some(running);
        Ok(())
    }

    pub(super) fn pause(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }

    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
