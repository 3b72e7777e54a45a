//! The rotating member code on the phone (issue #18, ADR 0025): this device's Ed25519 key, made
//! on first use and kept with the session's tokens (the app's `SecretStore`, or the file for the
//! CLI); the programme's certificate of it, fetched after enrolment and renewed at sync a week
//! before it ends; and the code the card screen shows, made offline for the current step.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rusqlite::{Connection, OptionalExtension, params};

use crate::barcode::{BarcodeMatrix, Symbology};
use crate::db::StorageError;
use crate::member_code::{DeviceCertificate, member_code};

/// A certificate ending within this is renewed at sync.
pub const RENEW_BEFORE_MS: i64 = 7 * 86_400_000;

/// What the card screen draws: the code for the current step, as a QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MemberCodeView {
    /// What a till's imager reads.
    pub code: String,
    pub matrix: BarcodeMatrix,
    /// Draw the next code then (RFC 3339): the step's end.
    pub changes_at: String,
    /// How long until then, in milliseconds.
    pub changes_in_ms: u64,
}

/// Why there is no rotating code to show (the static card number still is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum MemberCodeUnavailable {
    #[error("no member is enrolled on this device")]
    NotEnrolled,
    /// The device has not reached the server since enrolment: the certificate comes at sync.
    #[error("this device has no certificate yet: it comes with the next sync")]
    NotCertified,
    /// Offline for longer than the certificate lasts: sync to renew it.
    #[error("this device's certificate ended at {ended_at}: sync to renew it")]
    Expired { ended_at: String },
    /// The key is gone from the app's secret store (an app restored without its Keystore).
    #[error("this device's key is missing: {reason}")]
    KeyMissing { reason: String },
    /// The stored certificate cannot be read (should not happen: it was checked on arrival).
    #[error("the device's certificate is damaged: {reason}")]
    Damaged { reason: String },
    /// The database could not be read.
    #[error("storage: {reason}")]
    Storage { reason: String },
}

impl From<StorageError> for MemberCodeUnavailable {
    fn from(e: StorageError) -> Self {
        MemberCodeUnavailable::Storage {
            reason: e.to_string(),
        }
    }
}

/// The device's key row: what the file keeps of the key ('' when in the store), the
/// certificate's bytes and end, if fetched.
pub(crate) struct KeyRow {
    pub pkcs8_in_file: String,
    pub certificate: Option<Vec<u8>>,
    pub not_after_ms: Option<i64>,
}

pub(crate) fn key_row(c: &Connection) -> Result<Option<KeyRow>, StorageError> {
    Ok(c.query_row(
        "SELECT pkcs8, certificate, not_after FROM device_key WHERE id = 1",
        [],
        |r| {
            Ok(KeyRow {
                pkcs8_in_file: r.get(0)?,
                certificate: r.get(1)?,
                not_after_ms: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// A new key pair: its PKCS#8 document, base64url.
pub(crate) fn new_key() -> Result<String, String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| e.to_string())?;
    Ok(B64.encode(pkcs8.as_ref()))
}

pub(crate) fn key_pair(pkcs8_b64: &str) -> Result<Ed25519KeyPair, String> {
    let bytes = B64.decode(pkcs8_b64).map_err(|e| e.to_string())?;
    Ed25519KeyPair::from_pkcs8(&bytes).map_err(|e| e.to_string())
}

pub(crate) fn public_key(pair: &Ed25519KeyPair) -> String {
    B64.encode(pair.public_key().as_ref())
}

pub(crate) fn store_key(
    tx: &rusqlite::Transaction<'_>,
    pkcs8_in_file: &str,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO device_key (id, pkcs8) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET pkcs8 = excluded.pkcs8, certificate = NULL,
           serial = NULL, not_after = NULL",
        [pkcs8_in_file],
    )?;
    Ok(())
}

pub(crate) fn store_certificate(
    tx: &rusqlite::Transaction<'_>,
    certificate: &[u8],
    serial: u64,
    not_after_ms: i64,
) -> Result<(), StorageError> {
    tx.execute(
        "UPDATE device_key SET certificate = ?1, serial = ?2, not_after = ?3 WHERE id = 1",
        params![certificate, serial as i64, not_after_ms],
    )?;
    Ok(())
}

/// The code for `now_ms` from the certificate and the device's key.
pub(crate) fn view(
    certificate: &[u8],
    pair: &Ed25519KeyPair,
    now_ms: i64,
) -> Result<MemberCodeView, MemberCodeUnavailable> {
    let damaged = |reason: String| MemberCodeUnavailable::Damaged { reason };
    let (cert, _) =
        DeviceCertificate::from_bytes(certificate).map_err(|e| damaged(e.to_string()))?;
    let now_s = now_ms.div_euclid(1000);
    if now_s > cert.not_after_s {
        return Err(MemberCodeUnavailable::Expired {
            ended_at: crate::rfc3339_ms(cert.not_after_s * 1000),
        });
    }
    let code = member_code(&cert, pair, now_s).map_err(|e| damaged(e.to_string()))?;
    let matrix = BarcodeMatrix::encode(Symbology::Qr, &code).map_err(|e| damaged(e.to_string()))?;
    // Checked on arrival (5 to 300 s); never a division by zero from a damaged file.
    let period_ms = i64::from(cert.period_s.max(1)) * 1000;
    let changes_at = (now_ms.div_euclid(period_ms) + 1) * period_ms;
    Ok(MemberCodeView {
        code,
        matrix,
        changes_at: crate::rfc3339_ms(changes_at),
        changes_in_ms: (changes_at - now_ms) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored certificate with a period of 0 (a damaged file, a bad server's): the card screen
    /// still draws, it does not divide by zero; past its end, `Expired`.
    #[test]
    fn a_zero_period_in_a_stored_certificate_does_not_panic() {
        let pair = key_pair(&new_key().unwrap()).unwrap();
        let mut public_key = [0; 32];
        public_key.copy_from_slice(pair.public_key().as_ref());
        let cert = DeviceCertificate {
            key_id: "k1".into(),
            card_number: "4000".into(),
            serial: 1,
            public_key,
            period_s: 0,
            not_before_s: 0,
            not_after_s: 4_000_000_000,
            signature: [0; 64],
        };
        let shown = view(&cert.to_bytes(), &pair, 1_796_000_000_000).unwrap();
        assert!(shown.code.starts_with("TM1:"));
        assert!(shown.changes_in_ms <= 1000);
        let ended = view(&cert.to_bytes(), &pair, 4_000_000_001_000).unwrap_err();
        assert!(
            matches!(ended, MemberCodeUnavailable::Expired { .. }),
            "{ended:?}"
        );
    }
}
