//! Who may call the admin API, and how often anyone may call at all.
//!
//! **Operator credentials** are named and kept as SHA-256 digests only (the server never holds
//! an operator's token in memory or on disk after start). Several may be valid at once, so a new
//! one is rolled out before the old one is retired; `tessera serve --admin-credentials FILE`
//! re-reads its file on SIGHUP. The one built-in credential (`tessera-admin`) exists for a
//! development run on a loopback address only: [`crate::serve`] refuses to listen anywhere else
//! with it.
//!
//! **Rate limits** (GCRA, `governor`) per client address before anything else, per member
//! after the access token is checked, per till after its token is checked. A refused request
//! gets 429 `rate_limited` with `Retry-After`. The counters live in the process (a deployment
//! of several processes gives each its own budget).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use tessera_domain::api::codes;

use crate::problem::ApiError;

/// The development credential's token: accepted only by a server listening on loopback.
pub const DEVELOPMENT_TOKEN: &str = "tessera-admin";

/// A named operator credential: the SHA-256 of its token.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredential {
    pub name: String,
    digest: [u8; 32],
    /// The built-in development credential.
    pub built_in: bool,
}

impl std::fmt::Debug for AdminCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredential")
            .field("name", &self.name)
            .field("built_in", &self.built_in)
            .finish_non_exhaustive()
    }
}

/// Why a credential is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("credential {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("no operator credential: set --admin-token or --admin-credentials")]
    None,
    #[error("credential names must be unique: {0:?} is given twice")]
    Duplicate(String),
}

/// Tokens shorter than this are refused: an operator credential guards every member's data.
pub const MIN_TOKEN_LEN: usize = 16;

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("a name is 1 to 64 of A-Z a-z 0-9 . _ -".into());
    }
    Ok(())
}

impl AdminCredential {
    /// A credential from its token (kept only as its digest).
    pub fn from_token(name: &str, token: &str) -> Result<Self, CredentialError> {
        let invalid = |reason: String| CredentialError::Invalid {
            name: name.to_owned(),
            reason,
        };
        check_name(name).map_err(invalid)?;
        if token.len() < MIN_TOKEN_LEN || token.len() > 256 {
            return Err(invalid(format!(
                "a token is {MIN_TOKEN_LEN} to 256 characters"
            )));
        }
        if token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(invalid("a token is printable ASCII without spaces".into()));
        }
        Ok(AdminCredential {
            name: name.to_owned(),
            digest: Sha256::digest(token.as_bytes()).into(),
            built_in: false,
        })
    }

    /// The built-in development credential ([`DEVELOPMENT_TOKEN`]), for loopback only.
    pub fn development() -> Self {
        AdminCredential {
            name: "development".to_owned(),
            digest: Sha256::digest(DEVELOPMENT_TOKEN.as_bytes()).into(),
            built_in: true,
        }
    }

    /// `NAME:TOKEN`, or a bare `TOKEN` (named `operator`).
    pub fn from_arg(arg: &str) -> Result<Self, CredentialError> {
        match arg.split_once(':') {
            Some((name, token)) if check_name(name).is_ok() => Self::from_token(name, token),
            _ => Self::from_token("operator", arg),
        }
    }

    /// The line for a credentials file: `NAME sha256:HEX`.
    pub fn file_line(&self) -> String {
        let hex: String = self.digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{} sha256:{hex}", self.name)
    }

    /// Whether `token` is this credential's: digests compared without an early exit.
    fn matches(&self, given: &[u8; 32]) -> bool {
        self.digest
            .iter()
            .zip(given.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Parses a credentials file: one `NAME sha256:HEX` a line; `#` starts a comment.
pub fn parse_credentials(text: &str) -> Result<Vec<AdminCredential>, CredentialError> {
    let mut out: Vec<AdminCredential> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: &str| CredentialError::Line {
            line: i + 1,
            reason: reason.to_owned(),
        };
        let mut parts = line.split_whitespace();
        let (Some(name), Some(digest), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err("expected NAME sha256:HEX"));
        };
        check_name(name).map_err(|r| err(&r))?;
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64)
            .ok_or_else(|| err("expected sha256: and 64 hex digits"))?;
        let mut bytes = [0u8; 32];
        for (k, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * k..2 * k + 2], 16)
                .map_err(|_| err("expected sha256: and 64 hex digits"))?;
        }
        if out.iter().any(|c| c.name == name) {
            return Err(CredentialError::Duplicate(name.to_owned()));
        }
        out.push(AdminCredential {
            name: name.to_owned(),
            digest: bytes,
            built_in: false,
        });
    }
    if out.is_empty() {
        return Err(CredentialError::None);
    }
    Ok(out)
}

/// The operator credentials in force, replaceable while serving (rotation).
#[derive(Debug)]
pub struct AdminCredentials(RwLock<Vec<AdminCredential>>);

impl AdminCredentials {
    pub fn new(list: Vec<AdminCredential>) -> Self {
        AdminCredentials(RwLock::new(list))
    }

    /// Replace the whole set (a rotation); refused when empty or with duplicate names.
    pub fn replace(&self, list: Vec<AdminCredential>) -> Result<(), CredentialError> {
        if list.is_empty() {
            return Err(CredentialError::None);
        }
        for (i, c) in list.iter().enumerate() {
            if list[..i].iter().any(|o| o.name == c.name) {
                return Err(CredentialError::Duplicate(c.name.clone()));
            }
        }
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = list;
        Ok(())
    }

    /// The name of the credential `token` belongs to.
    pub fn check(&self, token: &str) -> Option<String> {
        let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let list = self.0.read().unwrap_or_else(|p| p.into_inner());
        // Every credential is compared, whichever matches: no timing hint of which.
        let mut found = None;
        for c in list.iter() {
            if c.matches(&given) && found.is_none() {
                found = Some(c.name.clone());
            }
        }
        found
    }

    /// Whether the built-in development credential is among them.
    pub fn has_built_in(&self) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|c| c.built_in)
    }

    pub fn names(&self) -> Vec<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }
}

/// A sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// The limits a server applies; `None`: no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Every request, by client address (before authentication). Generous: phones behind a
    /// carrier's NAT and a shop's tills share addresses.
    pub per_address: Option<RateLimit>,
    /// Requests with a member's access token, by member.
    pub per_member: Option<RateLimit>,
    /// Requests with a till's token, by till.
    pub per_till: Option<RateLimit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_address: Some(RateLimit {
                per_second: 1000,
                burst: 5000,
            }),
            // A first sync pulls hundreds of catalog pages in a few seconds.
            per_member: Some(RateLimit {
                per_second: 100,
                burst: 1000,
            }),
            per_till: Some(RateLimit {
                per_second: 50,
                burst: 500,
            }),
        }
    }
}

impl RateLimits {
    /// No limits (load benchmarks).
    pub fn off() -> Self {
        RateLimits {
            per_address: None,
            per_member: None,
            per_till: None,
        }
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    limit: Option<RateLimit>,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let limit = limit?;
    let rate = NonZeroU32::new(limit.per_second)?;
    let burst = NonZeroU32::new(limit.burst.max(1))?;
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// The client behind a request from `peer`: the peer itself, unless it is one of the `trusted`
/// proxies; then the nearest address in `X-Forwarded-For` (read right to left) that is not a
/// trusted proxy. A malformed entry ends the walk (the last good hop counts): a client cannot
/// choose its address by writing the header itself, since only what trusted proxies appended is
/// read.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a axum::http::HeaderValue>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut last = peer;
    for value in forwarded.rev() {
        let Ok(text) = value.to_str() else {
            return last;
        };
        for hop in text.rsplit(',') {
            let hop = hop.trim();
            let hop = hop
                .strip_prefix('[')
                .and_then(|h| h.split_once(']').map(|(ip, _)| ip))
                .unwrap_or(hop);
            let Ok(ip) = hop.parse::<IpAddr>() else {
                return last;
            };
            if !is_trusted(&ip) {
                return ip;
            }
            last = ip;
        }
    }
    last
}

/// The rate limiters of one server process. With several processes on one database each
/// allows its share of every limit (`set_share`: the number of live processes, from their
/// heartbeats), so that behind a load balancer that spreads requests evenly the limits hold for
/// the whole deployment without a database write per request (docs/adr/0022).
pub struct Limiters {
    limits: RateLimits,
    current: RwLock<Arc<LimiterSet>>,
}

struct LimiterSet {
    share: u32,
    address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    member: Option<DefaultKeyedRateLimiter<String>>,
    till: Option<DefaultKeyedRateLimiter<String>>,
}

/// `limit` shared among `share` processes: each allows its part, rounded up, at least 1.
fn part(limit: Option<RateLimit>, share: u32) -> Option<RateLimit> {
    let limit = limit?;
    let share = share.max(1);
    Some(RateLimit {
        per_second: limit.per_second.div_ceil(share).max(1),
        burst: limit.burst.div_ceil(share).max(1),
    })
}

impl LimiterSet {
    fn new(limits: &RateLimits, share: u32) -> Self {
        LimiterSet {
            share,
            address: limiter(part(limits.per_address, share)),
            member: limiter(part(limits.per_member, share)),
            till: limiter(part(limits.per_till, share)),
        }
    }
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("share", &self.share())
            .finish_non_exhaustive()
    }
}

fn too_many(wait: Duration, what: &str) -> ApiError {
    // Whole seconds, rounded up, at least one.
    let secs = wait.as_millis().div_ceil(1000).max(1) as u64;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::RATE_LIMITED,
        "Too many requests",
        Some(format!(
            "too many requests from this {what}: retry after {secs} s"
        )),
    )
    .with_retry_after(secs)
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &Option<DefaultKeyedRateLimiter<K>>,
    key: &K,
    what: &str,
) -> Result<(), ApiError> {
    let Some(l) = limiter else {
        return Ok(());
    };
    l.check_key(key).map_err(|not_until| {
        too_many(
            not_until.wait_time_from(DefaultClock::default().now()),
            what,
        )
    })
}

impl Limiters {
    pub fn new(limits: &RateLimits) -> Self {
        Limiters {
            limits: *limits,
            current: RwLock::new(Arc::new(LimiterSet::new(limits, 1))),
        }
    }

    fn set(&self) -> Arc<LimiterSet> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many processes share the limits.
    pub fn share(&self) -> u32 {
        self.set().share
    }

    /// Share the limits among `processes` (counters start afresh when the number changes).
    pub fn set_share(&self, processes: u32) {
        let processes = processes.max(1);
        if self.share() == processes {
            return;
        }
        let fresh = Arc::new(LimiterSet::new(&self.limits, processes));
        match self.current.write() {
            Ok(mut s) => *s = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    pub fn address(&self, ip: IpAddr) -> Result<(), ApiError> {
        check(&self.set().address, &ip, "address")
    }

    pub fn member(&self, member_id: &str) -> Result<(), ApiError> {
        check(&self.set().member, &member_id.to_owned(), "member")
    }

    pub fn till(&self, till_id: &str) -> Result<(), ApiError> {
        check(&self.set().till, &till_id.to_owned(), "till")
    }

    /// Forget keys whose budget is full again (memory stays bounded by recent callers).
    pub fn forget_idle(&self) {
        let set = self.set();
        if let Some(l) = &set.address {
            l.retain_recent();
        }
        if let Some(l) = &set.member {
            l.retain_recent();
        }
        if let Some(l) = &set.till {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_named_digests_and_rotate() {
        let a = AdminCredential::from_token("alice", "a-long-enough-token-1").unwrap();
        let line = a.file_line();
        assert!(line.starts_with("alice sha256:"), "{line}");
        assert!(!line.contains("a-long-enough-token-1"));
        let parsed = parse_credentials(&format!("# operators\n{line}\n\n")).unwrap();
        assert_eq!(parsed, vec![a.clone()]);
        let set = AdminCredentials::new(parsed);
        assert_eq!(set.check("a-long-enough-token-1").as_deref(), Some("alice"));
        assert_eq!(set.check("a-long-enough-token-2"), None);
        // Rotation: bob is added, then alice retired.
        let b = AdminCredential::from_token("bob", "b-long-enough-token-1").unwrap();
        set.replace(vec![a, b.clone()]).unwrap();
        assert_eq!(set.check("b-long-enough-token-1").as_deref(), Some("bob"));
        set.replace(vec![b]).unwrap();
        assert_eq!(set.check("a-long-enough-token-1"), None);
        assert!(set.replace(vec![]).is_err());
    }

    #[test]
    fn bad_credentials_are_refused_with_the_reason() {
        assert!(AdminCredential::from_token("x", "short").is_err());
        assert!(AdminCredential::from_token("bad name", "a-long-enough-token-1").is_err());
        assert!(AdminCredential::from_token("x", "has a space in the token").is_err());
        assert_eq!(
            AdminCredential::from_arg("ops:a-long-enough-token-1")
                .unwrap()
                .name,
            "ops"
        );
        assert_eq!(
            AdminCredential::from_arg("a-long-enough-token-1")
                .unwrap()
                .name,
            "operator"
        );
        assert!(matches!(
            parse_credentials("alice sha256:abc"),
            Err(CredentialError::Line { line: 1, .. })
        ));
        assert_eq!(parse_credentials("# nothing\n"), Err(CredentialError::None));
        let l = AdminCredential::from_token("a", "a-long-enough-token-1")
            .unwrap()
            .file_line();
        assert!(matches!(
            parse_credentials(&format!("{l}\n{l}\n")),
            Err(CredentialError::Duplicate(_))
        ));
    }

    #[test]
    fn the_client_behind_trusted_proxies_is_the_nearest_untrusted_hop() {
        use axum::http::HeaderValue;
        let lb: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let h = |s: &'static str| HeaderValue::from_static(s);
        let headers = [h("203.0.113.9, 198.51.100.7"), h("10.1.1.1")];
        // A peer that is not a proxy: the header is the client's own words, ignored.
        assert_eq!(
            client_address(ip("198.51.100.1"), headers.iter(), &[lb]),
            ip("198.51.100.1")
        );
        // Through the balancer: the nearest hop it did not add itself.
        assert_eq!(
            client_address(ip("10.0.0.2"), headers.iter(), &[lb]),
            ip("198.51.100.7")
        );
        // A forged leftmost entry is never reached; a malformed one stops the walk.
        let bad = [h("1.2.3.4, not-an-ip, 10.9.9.9")];
        assert_eq!(
            client_address(ip("10.0.0.2"), bad.iter(), &[lb]),
            ip("10.9.9.9")
        );
        let v6 = [h("[2001:db8::1]:4711")];
        assert_eq!(
            client_address(ip("10.0.0.2"), v6.iter(), &[lb]),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), std::iter::empty(), &[lb]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_burst_is_allowed_then_429_with_retry_after() {
        let l = Limiters::new(&RateLimits {
            per_address: None,
            per_member: Some(RateLimit {
                per_second: 1,
                burst: 3,
            }),
            per_till: None,
        });
        for _ in 0..3 {
            l.member("m1").unwrap();
        }
        let e = l.member("m1").unwrap_err();
        assert_eq!(e.problem.status, 429);
        assert_eq!(e.problem.code, codes::RATE_LIMITED);
        assert_eq!(e.retry_after, Some(1));
        // Another member has its own budget.
        l.member("m2").unwrap();
    }
}
