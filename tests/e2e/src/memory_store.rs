//! A secret store in memory, standing in for the Android Keystore and the iOS Keychain.

use std::collections::HashMap;
use std::sync::Mutex;

use tessera_core::sync::{SecretStore, SecretStoreError};

/// A store in memory, as the Kotlin and Python tests have; `fail` makes every call fail.
#[derive(Debug, Default)]
pub struct Memory {
    pub items: Mutex<HashMap<String, String>>,
    pub fail: Mutex<bool>,
}

impl Memory {
    fn check(&self) -> Result<(), SecretStoreError> {
        if *self.fail.lock().unwrap() {
            return Err(SecretStoreError::Unavailable {
                reason: "locked".into(),
            });
        }
        Ok(())
    }

    pub fn snapshot(&self) -> HashMap<String, String> {
        self.items.lock().unwrap().clone()
    }
}

impl SecretStore for Memory {
    fn get(&self, key: &str) -> Result<Option<String>, SecretStoreError> {
        self.check()?;
        Ok(self.items.lock().unwrap().get(key).cloned())
    }

    fn set(&self, key: &str, value: &str) -> Result<(), SecretStoreError> {
        self.check()?;
        self.items
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        self.check()?;
        self.items.lock().unwrap().remove(key);
        Ok(())
    }
}
