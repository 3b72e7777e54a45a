//! The session's tokens out of the database file (docs/adr/0017): an app gives a
//! [`SecretStore`] (Android Keystore, iOS Keychain); the tokens live there under keys of a
//! namespace of this database, and the `session` row keeps '' and the namespace. Without one
//! (the CLI, desktop tools) they stay in the file, as before.

use std::sync::Arc;

use rusqlite::Transaction;

use super::SyncError;
use super::local::{self, Session};
use crate::db::{Db, StorageError};

/// Why the app's secret store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretStoreError {
    /// Not usable now (the device is locked before its first unlock, the Keystore is busy…).
    #[error("the secret store is unavailable: {reason}")]
    Unavailable { reason: String },
}

/// Where the app keeps secrets: small strings under string keys, encrypted at rest by the
/// platform. Called on the thread running the sync; keep it synchronous.
pub trait SecretStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<String>, SecretStoreError>;
    fn set(&self, key: &str, value: &str) -> Result<(), SecretStoreError>;
    fn delete(&self, key: &str) -> Result<(), SecretStoreError>;
}

fn failed(e: SecretStoreError) -> SyncError {
    SyncError::SecretStoreFailed {
        reason: e.to_string(),
    }
}

fn keys(namespace: &str) -> (String, String) {
    (
        format!("{namespace}/access_token"),
        format!("{namespace}/refresh_token"),
    )
}

/// The tokens' home: the app's store, or the file.
#[derive(Clone, Default)]
pub(crate) struct Vault(pub(crate) Option<Arc<dyn SecretStore>>);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Vault").field(&self.0.is_some()).finish()
    }
}

impl Vault {
    /// The session with its tokens. Tokens kept in a store that this device no longer has (an
    /// app restored from a backup without its Keystore) mean signing in again: `SignedOut`.
    pub(crate) fn load(&self, db: &Db) -> Result<Option<Session>, SyncError> {
        let Some(mut session) = db.read(local::session)? else {
            return Ok(None);
        };
        let Some(namespace) = session.secrets.clone() else {
            return Ok(Some(session));
        };
        let store = self.0.as_ref().ok_or(SyncError::NoSecretStore)?;
        let (access, refresh) = keys(&namespace);
        match (
            store.get(&access).map_err(failed)?,
            store.get(&refresh).map_err(failed)?,
        ) {
            (Some(a), Some(r)) => {
                session.access_token = a;
                session.refresh_token = r;
                Ok(Some(session))
            }
            _ => Err(SyncError::SignedOut),
        }
    }

    /// Write the session in `tx`: its tokens to the store when there is one (under a new
    /// namespace for a new session), '' in the file.
    pub(crate) fn save(&self, tx: &Transaction<'_>, session: &Session) -> Result<(), SyncError> {
        let Some(store) = &self.0 else {
            if session.secrets.is_some() {
                return Err(SyncError::NoSecretStore);
            }
            return Ok(local::write_session(tx, session)?);
        };
        let namespace = session
            .secrets
            .clone()
            .unwrap_or_else(|| format!("tessera-{}", uuid::Uuid::new_v4().simple()));
        let (access, refresh) = keys(&namespace);
        store.set(&access, &session.access_token).map_err(failed)?;
        store
            .set(&refresh, &session.refresh_token)
            .map_err(failed)?;
        let kept = Session {
            access_token: String::new(),
            refresh_token: String::new(),
            secrets: Some(namespace),
            ..session.clone()
        };
        Ok(local::write_session(tx, &kept)?)
    }

    /// Move tokens kept in the file into the store, and leave no copy of them in the file or
    /// its WAL. Nothing to do without a session, or when they are in a store already.
    pub(crate) fn adopt(&self, db: &Db) -> Result<bool, SyncError> {
        let Some(session) = db.read(local::session)? else {
            return Ok(false);
        };
        if session.secrets.is_some() || self.0.is_none() {
            return Ok(false);
        }
        db.write(|tx| -> Result<(), SyncError> {
            self.save(tx, &session)?;
            // The device's key (the rotating member code) goes with them.
            let namespace = local::session(tx)?.and_then(|s| s.secrets);
            if let Some(row) = crate::card_code::key_row(tx)?
                && !row.pkcs8_in_file.is_empty()
            {
                let kept = self.keep_device_key(namespace.as_deref(), &row.pkcs8_in_file)?;
                tx.execute("UPDATE device_key SET pkcs8 = ?1 WHERE id = 1", [kept])
                    .map_err(StorageError::from)?;
            }
            Ok(())
        })?;
        db.checkpoint_truncate()?;
        Ok(true)
    }

    /// Forget the tokens of `namespace` (sign-out, erasure). Best effort: the file no longer
    /// points at them.
    pub(crate) fn forget(&self, namespace: Option<&str>) {
        if let (Some(store), Some(ns)) = (&self.0, namespace) {
            let (access, refresh) = keys(ns);
            for key in [access, refresh, format!("{ns}/device_key")] {
                if let Err(e) = store.delete(&key) {
                    tracing::warn!(error = %e, "a token could not be deleted from the secret store");
                }
            }
        }
    }
}

impl Vault {
    /// Keep the device's private key (PKCS#8) beside the tokens: in the store under the
    /// session's namespace when the tokens are there (the file keeps ''), else in the file.
    /// Returns what the file keeps.
    pub(crate) fn keep_device_key(
        &self,
        namespace: Option<&str>,
        pkcs8_b64: &str,
    ) -> Result<String, SyncError> {
        match (&self.0, namespace) {
            (Some(store), Some(ns)) => {
                store
                    .set(&format!("{ns}/device_key"), pkcs8_b64)
                    .map_err(failed)?;
                Ok(String::new())
            }
            (None, Some(_)) => Err(SyncError::NoSecretStore),
            (_, None) => Ok(pkcs8_b64.to_owned()),
        }
    }

    /// The device's private key: from the file, or the store when the file keeps ''.
    pub(crate) fn device_key(
        &self,
        namespace: Option<&str>,
        in_file: &str,
    ) -> Result<Option<String>, SyncError> {
        if !in_file.is_empty() {
            return Ok(Some(in_file.to_owned()));
        }
        match (&self.0, namespace) {
            (Some(store), Some(ns)) => store.get(&format!("{ns}/device_key")).map_err(failed),
            (None, Some(_)) => Err(SyncError::NoSecretStore),
            (_, None) => Ok(None),
        }
    }
}

/// The namespace of the session's tokens, if they are in a store.
pub(crate) fn namespace(db: &Db) -> Result<Option<String>, StorageError> {
    Ok(db.read(local::session)?.and_then(|s| s.secrets))
}
