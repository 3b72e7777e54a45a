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

/// How long after it was shown a scanned member code may reach the server with a purchase: the
/// till checked the tight window when it scanned; the basket may take minutes to ring up.
pub const SCAN_TO_PURCHASE_S: i64 = 600;

/// The card a scanned member code speaks for, checked again at the server (a till is trusted
/// with nothing): the programme's signature, the device's signature, the time step within
/// [`SCAN_TO_PURCHASE_S`] of the purchase's time, the card the till named (if any), and the
/// certificate not revoked before the purchase (an offline purchase made before a revocation
/// still counts).
pub(crate) fn scanned_card(
    repo: &mut dyn Repo,
    code: &str,
    named_card: Option<&str>,
    occurred_ms: i64,
) -> RepoResult<Result<String, tessera_domain::member_code::MemberCodeError>> {
    use tessera_domain::member_code::{MemberCodeError, TillCheck, verify};
    let keys = repo.public_keys()?;
    let at_s = occurred_ms.div_euclid(1000);
    let check = |skew_steps| TillCheck {
        keys: &keys,
        revoked: &[],
        now_s: at_s,
        skew_steps,
        expected_card: named_card,
    };
    // The till held the code to a step either side of its clock; here the code may be up to
    // SCAN_TO_PURCHASE_S older than the purchase (a step ahead, as at a till).
    let code = match verify(code, &check(u32::MAX / 2)) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let period = i64::from(code.period_s.max(1));
    if code.made_at_s + period < at_s - SCAN_TO_PURCHASE_S {
        return Ok(Err(MemberCodeError::Stale {
            made_at: tessera_domain::rfc3339_ms(code.made_at_s * 1000),
        }));
    }
    if code.made_at_s > at_s + period {
        return Ok(Err(MemberCodeError::AheadOfClock {
            made_for: tessera_domain::rfc3339_ms(code.made_at_s * 1000),
        }));
    }
    match repo.certificate_revoked_at(code.serial as i64)? {
        Some(Some(revoked_ms)) if revoked_ms <= occurred_ms => Ok(Err(MemberCodeError::Revoked {
            serial: code.serial,
        })),
        _ => Ok(Ok(code.card_number)),
    }
}

/// The member whose rotating code is shown at the counter (scanned into the console's lookup):
/// checked as a till checks it when it scans — the programme's signature, the certificate's
/// dates, the device's signature, the step within [`DEFAULT_SKEW_STEPS`] of now, so a screenshot
/// of a minute ago is refused — and the certificate not revoked by now. `Ok(None)`: a valid
/// code whose card no member holds any more.
///
/// [`DEFAULT_SKEW_STEPS`]: tessera_domain::member_code::DEFAULT_SKEW_STEPS
pub(crate) fn presented_member(
    repo: &mut dyn Repo,
    code: &str,
    now_ms: i64,
) -> RepoResult<Result<Option<String>, tessera_domain::member_code::MemberCodeError>> {
    use tessera_domain::member_code::{DEFAULT_SKEW_STEPS, MemberCodeError, TillCheck, verify};
    let keys = repo.public_keys()?;
    let check = TillCheck {
        keys: &keys,
        revoked: &[],
        now_s: now_ms.div_euclid(1000),
        skew_steps: DEFAULT_SKEW_STEPS,
        expected_card: None,
    };
    let code = match verify(code, &check) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(Some(_)) = repo.certificate_revoked_at(code.serial as i64)? {
        return Ok(Err(MemberCodeError::Revoked {
            serial: code.serial,
        }));
    }
    Ok(Ok(repo.member_by_card(&code.card_number)?))
}
