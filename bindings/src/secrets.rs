//! The app's secret store, as a foreign trait (docs/adr/0017): the session's tokens live there,
//! not in the database file. The packages ship one each (`KeystoreSecretStore` on Android,
//! `KeychainSecretStore` on iOS).

use std::sync::Arc;

/// Why the app's secret store could not answer. Anything else it throws is read as
/// `Unavailable`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SecretStoreError {
    /// Not usable now (locked before the first unlock, the Keystore busy…).
    #[error("the secret store is unavailable: {reason}")]
    Unavailable { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SecretStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SecretStoreError::Unavailable { reason: e.reason }
    }
}

/// Small secrets under string keys, encrypted at rest by the platform (Android Keystore, iOS
/// Keychain). Called on the thread running the sync; answer synchronously.
#[uniffi::export(with_foreign)]
pub trait SecretStore: Send + Sync {
    fn get(&self, key: String) -> Result<Option<String>, SecretStoreError>;
    fn set(&self, key: String, value: String) -> Result<(), SecretStoreError>;
    fn delete(&self, key: String) -> Result<(), SecretStoreError>;
}

/// The app's store, as the core's.
pub(crate) struct Foreign(pub(crate) Arc<dyn SecretStore>);

fn core_error(e: SecretStoreError) -> tessera_core::sync::SecretStoreError {
    match e {
        SecretStoreError::Unavailable { reason } => {
            tessera_core::sync::SecretStoreError::Unavailable { reason }
        }
    }
}

impl tessera_core::sync::SecretStore for Foreign {
    fn get(&self, key: &str) -> Result<Option<String>, tessera_core::sync::SecretStoreError> {
        self.0.get(key.to_owned()).map_err(core_error)
    }

    fn set(&self, key: &str, value: &str) -> Result<(), tessera_core::sync::SecretStoreError> {
        self.0
            .set(key.to_owned(), value.to_owned())
            .map_err(core_error)
    }

    fn delete(&self, key: &str) -> Result<(), tessera_core::sync::SecretStoreError> {
        self.0.delete(key.to_owned()).map_err(core_error)
    }
}
