//! The rotating member code on the server (issue #18): device keys certified with the
//! programme's signing key (the one coupons are signed with, so tills hold one key set), and
//! the revocation list tills fetch with their keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use tessera_domain::api::DeviceCertificateAnswer;
use tessera_domain::member_code::{CertificateRequest, DEFAULT_PERIOD_S, certify};

use super::coupons::signing_key;
use crate::storage::repo::{NewCertificate, RepoResult};
use crate::storage::{Repo, StorageError};

/// How long a certificate is valid: the phone renews it at sync well before.
pub const CERTIFICATE_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// A random serial below 2^53 (exact in every JSON reader), never 0.
fn serial() -> Result<i64, StorageError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StorageError::Backend(e.to_string()))?;
    Ok((u64::from_be_bytes(bytes) & ((1 << 53) - 1)).max(1) as i64)
}

/// Certify `public_key` for the member's device: `None` for an unknown member.
pub(crate) fn certify_device(
    repo: &mut dyn Repo,
    member_id: &str,
    device_id: &str,
    public_key: [u8; 32],
    now_ms: i64,
) -> RepoResult<Option<DeviceCertificateAnswer>> {
    let Some(member) = repo.member(member_id)? else {
        return Ok(None);
    };
    let (key_id, signer) = signing_key(repo, now_ms)?;
    let not_after_ms = now_ms + CERTIFICATE_DAYS * DAY_MS;
    let serial = serial()?;
    let request = CertificateRequest {
        card_number: member.card_number,
        serial: serial as u64,
        public_key,
        period_s: DEFAULT_PERIOD_S,
        // A till's clock a few minutes behind still accepts a new certificate.
        not_before_s: now_ms.div_euclid(1000) - 600,
        not_after_s: not_after_ms.div_euclid(1000),
    };
    let cert = certify(&request, &key_id, &signer).map_err(StorageError::backend)?;
    let public = B64.encode(public_key);
    repo.insert_certificate(&NewCertificate {
        serial,
        member_id,
        device_id,
        public_key: &public,
        issued_ms: now_ms,
        not_after_ms,
    })?;
    Ok(Some(DeviceCertificateAnswer {
        certificate: B64.encode(cert.to_bytes()),
        serial: serial as u64,
        key_id,
        period_s: cert.period_s,
        not_after: tessera_domain::rfc3339_ms(not_after_ms),
    }))
}

/// Revoke the member's device certificates (one device's, or all): how many were live; `None`
/// for an unknown member.
pub(crate) fn revoke_devices(
    repo: &mut dyn Repo,
    member_id: &str,
    device_id: Option<&str>,
    now_ms: i64,
) -> RepoResult<Option<u64>> {
    if repo.member(member_id)?.is_none() {
        return Ok(None);
    }
    repo.revoke_certificates(member_id, device_id, now_ms)
        .map(Some)
}
