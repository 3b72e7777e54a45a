//! The rotating member code: a card a screenshot cannot replay, verified offline at the till.
//!
//! At enrolment the phone makes a device key pair (Ed25519) and the programme certifies its
//! public key: the programme's signature over the card number, the device's certificate serial,
//! the public key, the code's period and the certificate's validity ([`DeviceCertificate`]).
//! The card screen then shows a code that changes every period (30 s by default): the
//! certificate, the time step (`now / period`) and the device's signature over both
//! ([`member_code`]). A till checks it with the programme's public keys alone ([`verify`]): the
//! certificate's signature, the revocation list, the certificate's dates, the device's
//! signature, and the step within `skew` steps of its own clock. A screenshot is refused once
//! its step is past; the same device and step seen twice at one till is flagged
//! ([`SeenCodes`]).
//!
//! The code is `TM1:` and the bytes in base45 (RFC 9285): every character is one of the QR
//! code's alphanumeric set, so a QR code carries it at 5.5 bits per character.
//!
//! Layout (big-endian): the certificate's signed part — version (1), key id (length, bytes),
//! card number (length, bytes), serial (8), public key (32), period in seconds (2), not before
//! and not after in Unix seconds (4 each) — then the programme's signature (64), the step (4)
//! and the device's signature (64). Each signature covers a domain-separation prefix.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::coupon::CouponKey;

/// What every member code starts with.
pub const CODE_PREFIX: &str = "TM1:";
const VERSION: u8 = 1;
const CERT_DOMAIN: &[u8] = b"tessera-device-certificate-v1\0";
const CODE_DOMAIN: &[u8] = b"tessera-member-code-v1\0";
/// How often the code changes unless the programme says otherwise.
pub const DEFAULT_PERIOD_S: u16 = 30;
/// The shortest and longest period a programme may choose.
pub const PERIODS_S: std::ops::RangeInclusive<u16> = 5..=300;
/// How many steps a till accepts either side of its clock unless told otherwise.
pub const DEFAULT_SKEW_STEPS: u32 = 1;
/// The longest code a till reads.
pub const MAX_CODE: usize = 1024;
const MAX_KEY_ID: usize = 32;
const MAX_CARD: usize = 64;

/// The programme's word that a device key speaks for a card, for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// The programme key that signed it (a [`CouponKey`] the tills hold).
    pub key_id: String,
    /// The member's card number, as a till records a purchase under it.
    pub card_number: String,
    /// This certificate's number: what the revocation list names.
    pub serial: u64,
    /// The device's Ed25519 public key.
    pub public_key: [u8; 32],
    /// How often the code changes, in seconds.
    pub period_s: u16,
    /// Unix seconds.
    pub not_before_s: i64,
    /// Unix seconds; the phone renews it before then, at sync.
    pub not_after_s: i64,
    pub signature: [u8; 64],
}

/// Why a code is refused: each reason its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum MemberCodeError {
    /// Not a Tessera member code, or damaged.
    #[error("not a valid member code: {reason}")]
    Malformed { reason: String },
    /// Certified by a key this till does not know: refresh the keys.
    #[error("certified by an unknown key {key_id}")]
    UnknownKey { key_id: String },
    /// The programme's signature does not match: the certificate was forged or altered.
    #[error("the certificate's signature does not match: forged or altered")]
    ForgedCertificate,
    /// The device was revoked (lost phone, erased member).
    #[error("the device's certificate {serial} was revoked")]
    Revoked { serial: u64 },
    #[error("the device's certificate expired at {expired_at}")]
    CertificateExpired { expired_at: String },
    #[error("the device's certificate is not valid before {valid_from}")]
    CertificateNotYetValid { valid_from: String },
    /// The device's signature does not match: altered, or another device's code.
    #[error("the code's signature does not match: altered or copied")]
    BadSignature,
    /// Made for a time step already past: a screenshot or a replay.
    #[error("the code was made at {made_at}, too long ago: a screenshot?")]
    Stale { made_at: String },
    /// Made for a time step ahead of the till's clock (a clock far off, or forged).
    #[error("the code was made for {made_for}, ahead of this till's clock")]
    AheadOfClock { made_for: String },
    /// The till expected another member's card.
    #[error("the code is another member's")]
    WrongMember,
    /// A certificate or a code cannot be made from these values.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl MemberCodeError {
    /// A stable name for the reason (the server's problem `rule`, the till's display).
    pub fn reason(&self) -> &'static str {
        match self {
            MemberCodeError::Malformed { .. } => "malformed",
            MemberCodeError::UnknownKey { .. } => "unknown_key",
            MemberCodeError::ForgedCertificate => "forged_certificate",
            MemberCodeError::Revoked { .. } => "revoked",
            MemberCodeError::CertificateExpired { .. } => "certificate_expired",
            MemberCodeError::CertificateNotYetValid { .. } => "certificate_not_yet_valid",
            MemberCodeError::BadSignature => "bad_signature",
            MemberCodeError::Stale { .. } => "stale",
            MemberCodeError::AheadOfClock { .. } => "ahead_of_clock",
            MemberCodeError::WrongMember => "wrong_member",
            MemberCodeError::Invalid { .. } => "invalid",
        }
    }
}

fn malformed(reason: &str) -> MemberCodeError {
    MemberCodeError::Malformed {
        reason: reason.into(),
    }
}

fn invalid(field: &str, reason: &str) -> MemberCodeError {
    MemberCodeError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn rfc3339(s: i64) -> String {
    crate::rfc3339_ms(s.saturating_mul(1000))
}

/// A code that passed: whose card it is, from which device, for which step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCode {
    pub card_number: String,
    pub serial: u64,
    pub step: u32,
    /// How often the device's code changes, in seconds.
    pub period_s: u16,
    /// When the step began (Unix seconds).
    pub made_at_s: i64,
    /// When the certificate ends (Unix seconds).
    pub certificate_until_s: i64,
}

impl DeviceCertificate {
    /// The bytes the programme signs.
    pub fn signed_part(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.card_number.len());
        out.push(VERSION);
        out.push(self.key_id.len() as u8);
        out.extend_from_slice(self.key_id.as_bytes());
        out.push(self.card_number.len() as u8);
        out.extend_from_slice(self.card_number.as_bytes());
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.period_s.to_be_bytes());
        out.extend_from_slice(&(self.not_before_s as u32).to_be_bytes());
        out.extend_from_slice(&(self.not_after_s as u32).to_be_bytes());
        out
    }

    /// The certificate as it travels (to the phone, inside each code).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_part();
        out.extend_from_slice(&self.signature);
        out
    }

    /// A certificate from its bytes, and how many bytes it took.
    pub fn from_bytes(bytes: &[u8]) -> Result<(DeviceCertificate, usize), MemberCodeError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(1)?[0] != VERSION {
            return Err(malformed("another version"));
        }
        let key_id = r.text()?;
        let card_number = r.text()?;
        let serial = u64::from_be_bytes(r.array()?);
        let public_key = r.array()?;
        let period_s = u16::from_be_bytes(r.array()?);
        let not_before_s = i64::from(u32::from_be_bytes(r.array()?));
        let not_after_s = i64::from(u32::from_be_bytes(r.array()?));
        let signature = r.array()?;
        Ok((
            DeviceCertificate {
                key_id,
                card_number,
                serial,
                public_key,
                period_s,
                not_before_s,
                not_after_s,
                signature,
            },
            r.at,
        ))
    }

    /// The time step a code made at `now_s` is for.
    pub fn step_at(&self, now_s: i64) -> u32 {
        (now_s.max(0) / i64::from(self.period_s.max(1))) as u32
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MemberCodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| malformed("too short"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MemberCodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn text(&mut self) -> Result<String, MemberCodeError> {
        let n = self.take(1)?[0] as usize;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed("text is not UTF-8"))
    }
}

/// What the programme certifies, before it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    pub card_number: String,
    pub serial: u64,
    pub public_key: [u8; 32],
    pub period_s: u16,
    pub not_before_s: i64,
    pub not_after_s: i64,
}

/// The programme's certificate for a device key, signed with its key `key_id` (`signer`, an
/// Ed25519 key pair). Refused: a key id or card number too long or not printable ASCII, a
/// period outside [`PERIODS_S`], dates outside 1970–2106 or not in order.
pub fn certify(
    request: &CertificateRequest,
    key_id: &str,
    signer: &Ed25519KeyPair,
) -> Result<DeviceCertificate, MemberCodeError> {
    let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID || !printable(key_id) {
        return Err(invalid("key_id", "1 to 32 printable ASCII characters"));
    }
    let card = &request.card_number;
    if card.is_empty() || card.len() > MAX_CARD || !printable(card) {
        return Err(invalid("card_number", "1 to 64 printable ASCII characters"));
    }
    if !PERIODS_S.contains(&request.period_s) {
        return Err(invalid("period_s", "5 to 300 seconds"));
    }
    let in_range = |s: i64| (0..=i64::from(u32::MAX)).contains(&s);
    if !in_range(request.not_before_s)
        || !in_range(request.not_after_s)
        || request.not_after_s <= request.not_before_s
    {
        return Err(invalid(
            "not_after_s",
            "after not_before_s, both between 1970 and 2106",
        ));
    }
    let mut cert = DeviceCertificate {
        key_id: key_id.to_owned(),
        card_number: card.clone(),
        serial: request.serial,
        public_key: request.public_key,
        period_s: request.period_s,
        not_before_s: request.not_before_s,
        not_after_s: request.not_after_s,
        signature: [0; 64],
    };
    let signature = signer.sign(&[CERT_DOMAIN, &cert.signed_part()].concat());
    cert.signature.copy_from_slice(signature.as_ref());
    Ok(cert)
}

/// The code the card screen shows at `now_s`: the certificate, the step and the device's
/// signature (`device`: the key pair the certificate names). Refused if the key pair is not the
/// certificate's.
pub fn member_code(
    cert: &DeviceCertificate,
    device: &Ed25519KeyPair,
    now_s: i64,
) -> Result<String, MemberCodeError> {
    if device.public_key().as_ref() != cert.public_key {
        return Err(invalid("device", "not the key pair the certificate names"));
    }
    let mut payload = cert.to_bytes();
    payload.extend_from_slice(&cert.step_at(now_s).to_be_bytes());
    let signature = device.sign(&[CODE_DOMAIN, &payload].concat());
    payload.extend_from_slice(signature.as_ref());
    Ok(format!("{CODE_PREFIX}{}", base45::encode(&payload)))
}

/// What a till checks a member code against.
#[derive(Debug, Clone, Copy)]
pub struct TillCheck<'a> {
    /// The programme's public keys (the coupon keys: one key set for tills).
    pub keys: &'a [CouponKey],
    /// Revoked certificate serials, sorted.
    pub revoked: &'a [u64],
    /// The till's clock, Unix seconds.
    pub now_s: i64,
    /// Steps accepted either side of the till's clock.
    pub skew_steps: u32,
    /// The card the till expects, if it expects one.
    pub expected_card: Option<&'a str>,
}

/// Check a member code offline: the certificate, then the device's signature, then the time.
pub fn verify(code: &str, check: &TillCheck<'_>) -> Result<MemberCode, MemberCodeError> {
    let code = code.trim();
    if code.len() > MAX_CODE {
        return Err(malformed("too long"));
    }
    let text = code
        .strip_prefix(CODE_PREFIX)
        .ok_or_else(|| malformed("not a Tessera member code"))?;
    let payload = base45::decode(text).map_err(|_| malformed("not base45"))?;
    let (cert, used) = DeviceCertificate::from_bytes(&payload)?;
    let rest = &payload[used..];
    if rest.len() != 4 + 64 {
        return Err(malformed(
            "not one step and one signature after the certificate",
        ));
    }
    let key = check
        .keys
        .iter()
        .find(|k| k.key_id == cert.key_id)
        .ok_or_else(|| MemberCodeError::UnknownKey {
            key_id: cert.key_id.clone(),
        })?;
    let public = B64
        .decode(&key.public_key)
        .map_err(|_| malformed("the till's key is not base64url"))?;
    UnparsedPublicKey::new(&ED25519, public)
        .verify(
            &[CERT_DOMAIN, &cert.signed_part()].concat(),
            &cert.signature,
        )
        .map_err(|_| MemberCodeError::ForgedCertificate)?;
    if check.revoked.binary_search(&cert.serial).is_ok() {
        return Err(MemberCodeError::Revoked {
            serial: cert.serial,
        });
    }
    if check.now_s > cert.not_after_s {
        return Err(MemberCodeError::CertificateExpired {
            expired_at: rfc3339(cert.not_after_s),
        });
    }
    if check.now_s < cert.not_before_s {
        return Err(MemberCodeError::CertificateNotYetValid {
            valid_from: rfc3339(cert.not_before_s),
        });
    }
    let signed = &payload[..used + 4];
    UnparsedPublicKey::new(&ED25519, cert.public_key)
        .verify(&[CODE_DOMAIN, signed].concat(), &rest[4..])
        .map_err(|_| MemberCodeError::BadSignature)?;
    let step = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let period = i64::from(cert.period_s.max(1));
    let now_step = i64::from(cert.step_at(check.now_s));
    let skew = i64::from(check.skew_steps);
    if i64::from(step) < now_step - skew {
        return Err(MemberCodeError::Stale {
            made_at: rfc3339(i64::from(step) * period),
        });
    }
    if i64::from(step) > now_step + skew {
        return Err(MemberCodeError::AheadOfClock {
            made_for: rfc3339(i64::from(step) * period),
        });
    }
    if check
        .expected_card
        .is_some_and(|card| card != cert.card_number)
    {
        return Err(MemberCodeError::WrongMember);
    }
    Ok(MemberCode {
        card_number: cert.card_number,
        serial: cert.serial,
        step,
        period_s: cert.period_s,
        made_at_s: i64::from(step) * period,
        certificate_until_s: cert.not_after_s,
    })
}

/// The codes one till has seen within the window: the same device and step twice is flagged
/// (one screen shown twice is fine; a copy used at once elsewhere in the queue is not).
#[derive(Debug, Clone, Default)]
pub struct SeenCodes {
    /// (serial, step, when the step's window closes in Unix seconds). A till scans a few codes a
    /// minute and forgets each after its window: a short list, searched in order (no hash table
    /// in the phone library for it).
    seen: Vec<(u64, u32, i64)>,
}

impl SeenCodes {
    /// Note a verified code at `now_s`: `true` if this device and step were seen already.
    /// Entries past their window are forgotten (`window_s`: how long a step stays acceptable).
    pub fn note(&mut self, code: &MemberCode, now_s: i64, window_s: i64) -> bool {
        self.seen.retain(|&(_, _, until)| until >= now_s);
        let until = now_s + window_s;
        match self
            .seen
            .iter_mut()
            .find(|(serial, step, _)| *serial == code.serial && *step == code.step)
        {
            Some(entry) => {
                entry.2 = until;
                true
            }
            None => {
                self.seen.push((code.serial, code.step, until));
                false
            }
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_796_000_000; // 2026-11-29T...Z
    const DAY: i64 = 86_400;

    fn pair(seed: u8) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
    }

    fn programme_keys(programme: &Ed25519KeyPair) -> Vec<CouponKey> {
        vec![CouponKey {
            key_id: "k1".into(),
            public_key: B64.encode(programme.public_key().as_ref()),
        }]
    }

    fn certificate(
        programme: &Ed25519KeyPair,
        device: &Ed25519KeyPair,
        card: &str,
    ) -> DeviceCertificate {
        let mut public_key = [0; 32];
        public_key.copy_from_slice(device.public_key().as_ref());
        certify(
            &CertificateRequest {
                card_number: card.into(),
                serial: 42,
                public_key,
                period_s: DEFAULT_PERIOD_S,
                not_before_s: NOW - DAY,
                not_after_s: NOW + 30 * DAY,
            },
            "k1",
            programme,
        )
        .unwrap()
    }

    fn till<'a>(keys: &'a [CouponKey], revoked: &'a [u64], now_s: i64) -> TillCheck<'a> {
        TillCheck {
            keys,
            revoked,
            now_s,
            skew_steps: DEFAULT_SKEW_STEPS,
            expected_card: None,
        }
    }

    #[test]
    fn a_fresh_code_passes_and_says_whose_card_it_is() {
        let (programme, device) = (pair(1), pair(2));
        let cert = certificate(&programme, &device, "4000123412341234");
        let code = member_code(&cert, &device, NOW).unwrap();
        assert!(code.starts_with(CODE_PREFIX));
        assert!(
            code[CODE_PREFIX.len()..]
                .bytes()
                .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)),
            "QR alphanumeric only: {code}"
        );
        let keys = programme_keys(&programme);
        let ok = verify(&code, &till(&keys, &[], NOW + 10)).unwrap();
        assert_eq!(ok.card_number, "4000123412341234");
        assert_eq!(ok.serial, 42);
        assert_eq!(ok.step, cert.step_at(NOW));
    }

    #[test]
    fn each_refusal_has_its_own_reason() {
        let (programme, device) = (pair(1), pair(2));
        let cert = certificate(&programme, &device, "4000123412341234");
        let keys = programme_keys(&programme);
        let code = member_code(&cert, &device, NOW).unwrap();
        let check = |code: &str, c: TillCheck| verify(code, &c).unwrap_err();
        // A screenshot shown two periods later.
        assert!(matches!(
            check(&code, till(&keys, &[], NOW + 61)),
            MemberCodeError::Stale { .. }
        ));
        assert!(matches!(
            check(&code, till(&keys, &[], NOW - 61)),
            MemberCodeError::AheadOfClock { .. }
        ));
        assert_eq!(
            check(&code, till(&keys, &[7, 42], NOW)),
            MemberCodeError::Revoked { serial: 42 }
        );
        assert!(matches!(
            check(&code, till(&keys, &[], NOW + 31 * DAY)),
            MemberCodeError::CertificateExpired { .. }
        ));
        assert!(matches!(
            check(&code, till(&keys, &[], NOW - 2 * DAY)),
            MemberCodeError::CertificateNotYetValid { .. }
        ));
        let other_keys = programme_keys(&pair(9));
        assert_eq!(
            check(&code, till(&other_keys, &[], NOW)),
            MemberCodeError::ForgedCertificate
        );
        let unknown = vec![CouponKey {
            key_id: "k2".into(),
            ..keys[0].clone()
        }];
        assert_eq!(
            check(&code, till(&unknown, &[], NOW)),
            MemberCodeError::UnknownKey {
                key_id: "k1".into()
            }
        );
        // Another member's certificate with this device's signature: not this device's code.
        let theirs = certificate(&programme, &pair(3), "4000999999999999");
        let mut payload = base45::decode(&code[CODE_PREFIX.len()..]).unwrap();
        let cut = cert.to_bytes().len();
        payload.splice(..cut, theirs.to_bytes());
        let swapped = format!("{CODE_PREFIX}{}", base45::encode(&payload));
        assert_eq!(
            check(&swapped, till(&keys, &[], NOW)),
            MemberCodeError::BadSignature
        );
        let expecting = TillCheck {
            expected_card: Some("4000555555555555"),
            ..till(&keys, &[], NOW)
        };
        assert_eq!(check(&code, expecting), MemberCodeError::WrongMember);
        for bad in ["", "TM1:", "TC1.abc", "TM1:!!", &"TM1:".repeat(300)] {
            assert!(
                matches!(
                    check(bad, till(&keys, &[], NOW)),
                    MemberCodeError::Malformed { .. }
                ),
                "{bad}"
            );
        }
        // Made with a key pair the certificate does not name.
        assert!(matches!(
            member_code(&cert, &pair(3), NOW),
            Err(MemberCodeError::Invalid { .. })
        ));
    }

    #[test]
    fn certificates_refuse_values_that_do_not_fit() {
        let (programme, device) = (pair(1), pair(2));
        let mut public_key = [0; 32];
        public_key.copy_from_slice(device.public_key().as_ref());
        let good = CertificateRequest {
            card_number: "4000".into(),
            serial: 1,
            public_key,
            period_s: 30,
            not_before_s: NOW,
            not_after_s: NOW + DAY,
        };
        assert!(certify(&good, "k1", &programme).is_ok());
        for (request, key) in [
            (
                CertificateRequest {
                    period_s: 4,
                    ..good.clone()
                },
                "k1",
            ),
            (
                CertificateRequest {
                    period_s: 301,
                    ..good.clone()
                },
                "k1",
            ),
            (
                CertificateRequest {
                    not_after_s: NOW,
                    ..good.clone()
                },
                "k1",
            ),
            (
                CertificateRequest {
                    not_after_s: 1 << 33,
                    ..good.clone()
                },
                "k1",
            ),
            (
                CertificateRequest {
                    card_number: String::new(),
                    ..good.clone()
                },
                "k1",
            ),
            (
                CertificateRequest {
                    card_number: "x".repeat(65),
                    ..good.clone()
                },
                "k1",
            ),
            (
                CertificateRequest {
                    card_number: "é".into(),
                    ..good.clone()
                },
                "k1",
            ),
            (good.clone(), ""),
            (good.clone(), &"k".repeat(33)),
        ] {
            assert!(
                matches!(
                    certify(&request, key, &programme),
                    Err(MemberCodeError::Invalid { .. })
                ),
                "{request:?} {key}"
            );
        }
    }

    #[test]
    fn a_till_flags_the_same_device_and_step_twice_within_the_window() {
        let (programme, device) = (pair(1), pair(2));
        let cert = certificate(&programme, &device, "4000123412341234");
        let keys = programme_keys(&programme);
        let mut seen = SeenCodes::default();
        let window = 3 * i64::from(DEFAULT_PERIOD_S);
        let first = verify(
            &member_code(&cert, &device, NOW).unwrap(),
            &till(&keys, &[], NOW),
        )
        .unwrap();
        assert!(!seen.note(&first, NOW, window));
        assert!(seen.note(&first, NOW + 5, window), "the same step again");
        let next = verify(
            &member_code(&cert, &device, NOW + 30).unwrap(),
            &till(&keys, &[], NOW + 30),
        )
        .unwrap();
        assert!(!seen.note(&next, NOW + 30, window), "a new step");
        seen.note(&next, NOW + 10 * window, window);
        assert_eq!(seen.len(), 1, "old steps forgotten");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random keys, members, clocks and alterations: only a genuine code within the window
        /// passes, and then it names its card.
        #[test]
        fn only_genuine_codes_within_the_window_pass(
            programme_seed in any::<[u8; 32]>(),
            device_seed in any::<[u8; 32]>(),
            card in "[0-9]{8,19}",
            serial in any::<u64>(),
            period in 5u16..=300,
            made in 0i64..(40 * DAY),
            scanned_after in -700i64..700,
            alter in proptest::option::of((any::<prop::sample::Index>(), 1u8..=255)),
        ) {
            let programme = Ed25519KeyPair::from_seed_unchecked(&programme_seed).unwrap();
            let device = Ed25519KeyPair::from_seed_unchecked(&device_seed).unwrap();
            let mut public_key = [0; 32];
            public_key.copy_from_slice(device.public_key().as_ref());
            let cert = certify(&CertificateRequest {
                card_number: card.clone(), serial, public_key, period_s: period,
                not_before_s: NOW, not_after_s: NOW + 30 * DAY,
            }, "k1", &programme).unwrap();
            let made_at = NOW + made;
            let code = member_code(&cert, &device, made_at).unwrap();
            let mut payload = base45::decode(&code[CODE_PREFIX.len()..]).unwrap();
            if let Some((at, x)) = &alter {
                let i = at.index(payload.len());
                payload[i] ^= x;
            }
            let code = format!("{CODE_PREFIX}{}", base45::encode(&payload));
            let keys = programme_keys(&programme);
            let now = made_at + scanned_after;
            let result = verify(&code, &till(&keys, &[], now));
            let step = |t: i64| t.div_euclid(i64::from(period));
            let in_window = (step(now) - step(made_at)).abs() <= 1;
            let valid = (NOW..=NOW + 30 * DAY).contains(&now);
            match result {
                Ok(ok) => {
                    prop_assert!(alter.is_none(), "an altered code passed");
                    prop_assert!(in_window && valid);
                    prop_assert_eq!(ok.card_number, card);
                }
                Err(e) => prop_assert!(
                    alter.is_some() || !in_window || !valid,
                    "a genuine code in its window refused: {e}"
                ),
            }
        }
    }
}
