//! The console's staff (issue #19): accounts with Argon2id password hashes, sessions held by a
//! random token (stored as its SHA-256) with a CSRF token each, ending after an idle time and
//! at the latest after an absolute one, and the audit log. See docs/adr/0028.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use tessera_domain::api::{StaffAccount, StaffAccountChange, StaffAccountSpec, StaffRole};
use tessera_domain::member_code::MemberCodeError;

use crate::storage::repo::{AuditRow, SessionRow, StaffRow};
use crate::storage::{Storage, StorageError, read, write};

/// How long a console session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ended after this long without a request.
    pub idle: std::time::Duration,
    /// Ended this long after sign-in, however busy.
    pub absolute: std::time::Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: std::time::Duration::from_secs(30 * 60),
            absolute: std::time::Duration::from_secs(12 * 3600),
        }
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A random token: 32 bytes, base64url.
pub fn random_token() -> Result<String, StorageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(StorageError::backend)?;
    Ok(B64.encode(bytes))
}

/// The SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    B64.encode(sha2::Sha256::digest(token.as_bytes()))
}

/// An Argon2id hash of `password` (the crate's defaults: 19 MiB, 2 passes), as a PHC string.
pub fn hash_password(password: &str) -> Result<String, StorageError> {
    use argon2::PasswordHasher;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(StorageError::backend)?;
    let salt =
        argon2::password_hash::SaltString::encode_b64(&salt).map_err(StorageError::backend)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(StorageError::backend)
}

/// Whether `password` matches the stored hash (a hash that does not parse matches nothing).
pub fn password_matches(password: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::password_hash::PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password matches, checked for an unknown address so that a sign-in takes the same
/// time whether or not the account exists.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("no account has this password").unwrap_or_default())
}

/// A signed-in member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub staff_id: String,
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub store_id: Option<String>,
    pub csrf: String,
    /// Two-factor sign-in is on for the account (as read with the session).
    pub two_factor: bool,
}

fn account(row: &StaffRow) -> Option<StaffAccount> {
    Some(StaffAccount {
        id: row.id.clone(),
        email: row.email.clone(),
        name: row.name.clone(),
        role: StaffRole::parse(&row.role)?,
        store_id: row.store_id.clone(),
        disabled: row.disabled,
        two_factor: row.totp_secret.is_some(),
    })
}

/// The issuer authenticator apps show next to the account.
pub const TOTP_ISSUER: &str = "Tessera console";

/// A new TOTP secret: 20 random bytes (RFC 4226's recommended 160 bits), base32.
pub fn new_totp_secret() -> Result<String, StorageError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(StorageError::backend)?;
    Ok(totp_rs::Secret::from(bytes.to_vec()).to_base32())
}

/// The TOTP of a base32 secret (SHA-1, 6 digits, 30 s, a step of skew either side: what every
/// authenticator app does), named for `email`; `None` for a secret that does not parse or is
/// too short.
fn totp(secret: &str, email: &str) -> Option<totp_rs::Totp> {
    let secret = totp_rs::Secret::try_from_base32(secret).ok()?;
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(email.replace(':', ""))
        .with_issuer(Some(TOTP_ISSUER))
        .build()
        .ok()
}

/// The `otpauth://` link an authenticator app scans (shown as a QR code).
pub fn otpauth_url(secret: &str, email: &str) -> Option<String> {
    totp(secret, email)?.to_url().ok()
}

/// The time step `code` is valid for at `now_ms` under `secret` (spaces ignored), if it is.
pub fn totp_step(secret: &str, code: &str, now_ms: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let now_s = u64::try_from(now_ms.div_euclid(1000)).ok()?;
    totp(secret, "")?
        .check(&code, now_s)
        .and_then(|step| i64::try_from(step).ok())
}

/// What turning two-factor sign-in on or off came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactor {
    Done,
    WrongPassword,
    /// The code is not the app's for now (or was used already).
    WrongCode,
    /// On already (turning on), or off already (turning off).
    Unchanged,
}

/// Why an account was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCreated {
    /// An account has the e-mail address.
    Exists,
    /// The shop of a store staff account is not in the catalog.
    NoShop,
}

/// What a sign-in came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// The cookie's token, and the session.
    Signed(String, Session),
    /// Unknown address, wrong password or disabled account (not told apart).
    Refused,
    /// Too many refused sign-ins of this address lately ([`MAX_FAILED_SIGN_INS`] in
    /// [`SIGN_IN_WINDOW_MS`], since its last sign-in): no password is checked until the
    /// oldest of them is that old, in `retry_after_s`. Known or not, an address is throttled
    /// the same way.
    Throttled { retry_after_s: u64 },
}

/// Refused sign-ins of one address that throttle it…
pub const MAX_FAILED_SIGN_INS: usize = 5;
/// …within this long.
pub const SIGN_IN_WINDOW_MS: i64 = 15 * 60_000;

#[async_trait]
pub trait StaffServices {
    /// A new account (the password hashed), or why not.
    async fn create_staff(
        &self,
        email: String,
        spec: StaffAccountSpec,
        now_ms: i64,
    ) -> Result<Result<StaffAccount, NotCreated>, StorageError>;
    async fn staff_accounts(&self) -> Result<Vec<StaffAccount>, StorageError>;
    /// Disable or enable an account, set its password or turn its two-factor sign-in off
    /// (checked already: `change.validate`), as `by` (audited); each ends the account's
    /// sessions. `None`: no such account.
    async fn change_staff(
        &self,
        id: String,
        change: StaffAccountChange,
        by: String,
        now_ms: i64,
    ) -> Result<Option<StaffAccount>, StorageError>;
    /// The signed-in member of staff changes their own password (checked already), proving
    /// the current one: false if it does not match. Their other sessions end; this one stays.
    async fn change_own_password(
        &self,
        session: Session,
        current: String,
        new: String,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
    /// Check the password and open a session; audited either way. With the app's code when
    /// two-factor sign-in is on (a code is accepted once); a wrong code is refused as a wrong
    /// password is.
    async fn sign_in(
        &self,
        email: String,
        password: String,
        code: String,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<SignIn, StorageError>;
    /// Turn two-factor sign-in on with `secret` (the one shown), proving the password and a
    /// code of the app that scanned it; or off (`secret`: `None`), proving the password and a
    /// current code. The other sessions end. Audited.
    async fn set_two_factor(
        &self,
        session: Session,
        password: String,
        secret: Option<String>,
        code: String,
        now_ms: i64,
    ) -> Result<TwoFactor, StorageError>;
    /// The session a cookie's token holds, if it has not ended (it is then kept alive).
    async fn session(
        &self,
        token: String,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<Option<Session>, StorageError>;
    async fn sign_out(&self, session: Session, now_ms: i64) -> Result<(), StorageError>;
    /// Write an entry of the audit log.
    async fn audit(
        &self,
        staff: String,
        action: String,
        subject: String,
        detail: String,
        now_ms: i64,
    ) -> Result<(), StorageError>;
    /// The newest entries before `before`.
    async fn audit_log(&self, before: i64, limit: u32) -> Result<Vec<AuditRow>, StorageError>;
    /// The member with this card number (spaces ignored) or id.
    async fn find_member(&self, query: String) -> Result<Option<String>, StorageError>;
    /// The member whose rotating code (`TM1:…`) is shown at the counter, checked as a till
    /// checks it and not revoked: their id (`None`: no member holds the card any more), or why
    /// the code is refused.
    async fn member_by_code(
        &self,
        code: String,
        now_ms: i64,
    ) -> Result<Result<Option<String>, MemberCodeError>, StorageError>;
    /// Decide a redemption conflict (audited): false if there is no such conflict or it was
    /// decided.
    async fn resolve_conflict(
        &self,
        event_id: u64,
        outcome: tessera_domain::api::ConflictOutcome,
        note: String,
        staff: String,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
}

#[async_trait]
impl<S: Storage + ?Sized> StaffServices for S {
    async fn create_staff(
        &self,
        email: String,
        spec: StaffAccountSpec,
        now_ms: i64,
    ) -> Result<Result<StaffAccount, NotCreated>, StorageError> {
        let password = spec.password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(StorageError::backend)??;
        let row = StaffRow {
            id: format!("staff_{}", uuid::Uuid::new_v4().simple()),
            email,
            name: spec.name.trim().to_owned(),
            role: spec.role.as_str().to_owned(),
            store_id: spec.store_id,
            password_hash: hash,
            disabled: false,
            totp_secret: None,
        };
        write(self, move |repo| {
            if let Some(shop) = &row.store_id
                && !repo.store_exists(shop)?
            {
                return Ok(Err(NotCreated::NoShop));
            }
            if !repo.insert_staff(&row, now_ms)? {
                return Ok(Err(NotCreated::Exists));
            }
            account(&row)
                .ok_or(StorageError::Backend("a role that does not parse".into()))
                .map(Ok)
        })
        .await
    }

    async fn staff_accounts(&self) -> Result<Vec<StaffAccount>, StorageError> {
        read(self, |repo| {
            Ok(repo.staff_accounts()?.iter().filter_map(account).collect())
        })
        .await
    }

    async fn change_staff(
        &self,
        id: String,
        change: StaffAccountChange,
        by: String,
        now_ms: i64,
    ) -> Result<Option<StaffAccount>, StorageError> {
        let hash = match change.password {
            Some(password) => Some(
                tokio::task::spawn_blocking(move || hash_password(&password))
                    .await
                    .map_err(StorageError::backend)??,
            ),
            None => None,
        };
        write(self, move |repo| {
            if !repo.update_staff(&id, change.disabled, hash.as_deref())? {
                return Ok(None);
            }
            if change.two_factor == Some(false) {
                repo.set_staff_totp(&id, None)?;
            }
            let ended = repo.end_staff_sessions(&id, "")?;
            let Some(row) = repo.staff_by_id(&id)? else {
                return Ok(None);
            };
            let sessions = format!("{ended} sessions ended");
            match change.disabled {
                Some(true) => repo.audit(now_ms, &by, "staff_disabled", &row.email, &sessions)?,
                Some(false) => repo.audit(now_ms, &by, "staff_enabled", &row.email, &sessions)?,
                None => {}
            }
            if hash.is_some() {
                repo.audit(now_ms, &by, "staff_password_set", &row.email, &sessions)?;
            }
            if change.two_factor == Some(false) {
                repo.audit(now_ms, &by, "two_factor_reset", &row.email, &sessions)?;
            }
            Ok(account(&row))
        })
        .await
    }

    async fn change_own_password(
        &self,
        session: Session,
        current: String,
        new: String,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let email = session.email.clone();
        let Some(row) = read(self, move |repo| repo.staff_by_email(&email)).await? else {
            return Ok(false);
        };
        let stored = row.password_hash;
        let (matches, hash) = tokio::task::spawn_blocking(move || {
            let matches = password_matches(&current, &stored);
            (matches, matches.then(|| hash_password(&new)))
        })
        .await
        .map_err(StorageError::backend)?;
        let Some(hash) = hash.transpose()? else {
            self.audit(
                session.email,
                "password_change_refused".into(),
                String::new(),
                String::new(),
                now_ms,
            )
            .await?;
            return Ok(matches);
        };
        write(self, move |repo| {
            repo.update_staff(&session.staff_id, None, Some(&hash))?;
            let ended = repo.end_staff_sessions(&session.staff_id, &session.token_hash)?;
            let detail = format!("{ended} other sessions ended");
            repo.audit(now_ms, &session.email, "password_changed", "", &detail)
        })
        .await?;
        Ok(true)
    }

    async fn set_two_factor(
        &self,
        session: Session,
        password: String,
        secret: Option<String>,
        code: String,
        now_ms: i64,
    ) -> Result<TwoFactor, StorageError> {
        let email = session.email.clone();
        let Some(row) = read(self, move |repo| repo.staff_by_email(&email)).await? else {
            return Ok(TwoFactor::WrongPassword);
        };
        if row.totp_secret.is_some() == secret.is_some() {
            return Ok(TwoFactor::Unchanged);
        }
        let stored = row.password_hash.clone();
        let matches = tokio::task::spawn_blocking(move || password_matches(&password, &stored))
            .await
            .map_err(StorageError::backend)?;
        let action = if secret.is_some() {
            "two_factor_on"
        } else {
            "two_factor_off"
        };
        let refused = |why: &'static str| {
            let (email, action) = (session.email.clone(), format!("{action}_refused"));
            async move {
                self.audit(email, action, String::new(), why.into(), now_ms)
                    .await
            }
        };
        if !matches {
            refused("password").await?;
            return Ok(TwoFactor::WrongPassword);
        }
        let checked_against = secret
            .as_deref()
            .or(row.totp_secret.as_deref())
            .unwrap_or("");
        let Some(step) = totp_step(checked_against, &code, now_ms) else {
            refused("code").await?;
            return Ok(TwoFactor::WrongCode);
        };
        let done = write(self, move |repo| {
            repo.set_staff_totp(&session.staff_id, secret.as_deref())?;
            // The code just used may not sign in again.
            if secret.is_some() {
                repo.use_totp_step(&session.staff_id, step)?;
            }
            let ended = repo.end_staff_sessions(&session.staff_id, &session.token_hash)?;
            let detail = format!("{ended} other sessions ended");
            repo.audit(now_ms, &session.email, action, "", &detail)
        })
        .await;
        done.map(|()| TwoFactor::Done)
    }

    async fn sign_in(
        &self,
        email: String,
        password: String,
        code: String,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<SignIn, StorageError> {
        let email = email.trim().to_lowercase();
        let who = email.clone();
        let (row, failures) = read(self, move |repo| {
            Ok((
                repo.staff_by_email(&who)?,
                repo.failed_sign_ins(&who, now_ms - SIGN_IN_WINDOW_MS)?,
            ))
        })
        .await?;
        if failures.len() >= MAX_FAILED_SIGN_INS {
            let oldest = failures[failures.len() - MAX_FAILED_SIGN_INS];
            let retry_after_s = ((oldest + SIGN_IN_WINDOW_MS - now_ms).max(1000) / 1000) as u64;
            self.audit(
                email,
                "sign_in_throttled".into(),
                String::new(),
                String::new(),
                now_ms,
            )
            .await?;
            return Ok(SignIn::Throttled { retry_after_s });
        }
        let hash = row
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |r| r.password_hash.clone());
        let checking = std::time::Instant::now();
        let matches = tokio::task::spawn_blocking(move || password_matches(&password, &hash))
            .await
            .map_err(StorageError::backend)?;
        // The session starts once the check is over (Argon2 takes a while; on a slow machine,
        // longer than a short idle timeout).
        let now_ms = now_ms.saturating_add(checking.elapsed().as_millis() as i64);
        let Some(row) = row.filter(|r| matches && !r.disabled) else {
            self.audit(
                email,
                "sign_in_refused".into(),
                String::new(),
                String::new(),
                now_ms,
            )
            .await?;
            return Ok(SignIn::Refused);
        };
        if let Some(secret) = &row.totp_secret {
            let accepted = match totp_step(secret, &code, now_ms) {
                Some(step) => {
                    let id = row.id.clone();
                    write(self, move |repo| repo.use_totp_step(&id, step)).await?
                }
                None => false,
            };
            if !accepted {
                self.audit(
                    email,
                    "sign_in_refused".into(),
                    String::new(),
                    "two-factor code".into(),
                    now_ms,
                )
                .await?;
                return Ok(SignIn::Refused);
            }
        }
        let Some(role) = StaffRole::parse(&row.role) else {
            return Ok(SignIn::Refused);
        };
        let (token, csrf) = (random_token()?, random_token()?);
        let session = Session {
            token_hash: token_hash(&token),
            staff_id: row.id.clone(),
            email: row.email.clone(),
            name: row.name.clone(),
            role,
            store_id: row.store_id.clone(),
            csrf,
            two_factor: row.totp_secret.is_some(),
        };
        let (s, expires) = (session.clone(), now_ms.saturating_add(ms(limits.absolute)));
        write(self, move |repo| {
            repo.purge_sessions(now_ms.saturating_sub(ms(limits.idle)), now_ms)?;
            repo.insert_session(&s.token_hash, &s.staff_id, &s.csrf, now_ms, expires)?;
            repo.audit(now_ms, &s.email, "sign_in", "", "")
        })
        .await?;
        Ok(SignIn::Signed(token, session))
    }

    async fn session(
        &self,
        token: String,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<Option<Session>, StorageError> {
        let hash = token_hash(&token);
        let h = hash.clone();
        let Some(row): Option<SessionRow> = read(self, move |repo| repo.session(&h)).await? else {
            return Ok(None);
        };
        let idle_end = row.last_seen_ms.saturating_add(ms(limits.idle));
        if now_ms >= row.expires_ms || now_ms >= idle_end || row.staff.disabled {
            let h = hash.clone();
            write(self, move |repo| repo.delete_session(&h)).await?;
            return Ok(None);
        }
        // Kept alive, written at most once a minute (or a tenth of the idle time).
        if now_ms - row.last_seen_ms >= ms(limits.idle / 10).min(60_000) {
            let h = hash.clone();
            write(self, move |repo| repo.touch_session(&h, now_ms)).await?;
        }
        let Some(role) = StaffRole::parse(&row.staff.role) else {
            return Ok(None);
        };
        Ok(Some(Session {
            token_hash: hash,
            staff_id: row.staff.id,
            email: row.staff.email,
            name: row.staff.name,
            role,
            store_id: row.staff.store_id,
            csrf: row.csrf,
            two_factor: row.staff.totp_secret.is_some(),
        }))
    }

    async fn sign_out(&self, session: Session, now_ms: i64) -> Result<(), StorageError> {
        write(self, move |repo| {
            repo.delete_session(&session.token_hash)?;
            repo.audit(now_ms, &session.email, "sign_out", "", "")
        })
        .await
    }

    async fn audit(
        &self,
        staff: String,
        action: String,
        subject: String,
        detail: String,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| {
            repo.audit(now_ms, &staff, &action, &subject, &detail)
        })
        .await
    }

    async fn audit_log(&self, before: i64, limit: u32) -> Result<Vec<AuditRow>, StorageError> {
        read(self, move |repo| repo.audit_log(before, limit)).await
    }

    async fn resolve_conflict(
        &self,
        event_id: u64,
        outcome: tessera_domain::api::ConflictOutcome,
        note: String,
        staff: String,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let id = crate::storage::to_i64(event_id);
        write(self, move |repo| {
            let done = repo.resolve_conflict(id, outcome.as_str(), &note, &staff, now_ms)?;
            if done {
                let detail = format!("{}: {note}", outcome.as_str());
                repo.audit(
                    now_ms,
                    &staff,
                    "conflict_resolved",
                    &event_id.to_string(),
                    &detail,
                )?;
            }
            Ok(done)
        })
        .await
    }

    async fn find_member(&self, query: String) -> Result<Option<String>, StorageError> {
        read(self, move |repo| {
            let card: String = query.chars().filter(|c| !c.is_whitespace()).collect();
            if let Some(id) = repo.member_by_card(&card)? {
                return Ok(Some(id));
            }
            Ok(repo.member(&query)?.map(|_| query.clone()))
        })
        .await
    }

    async fn member_by_code(
        &self,
        code: String,
        now_ms: i64,
    ) -> Result<Result<Option<String>, MemberCodeError>, StorageError> {
        read(self, move |repo| {
            super::member_codes::presented_member(repo, &code, now_ms)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_with_argon2id_and_salted() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a new salt each time");
        assert!(password_matches("correct horse battery", &a));
        assert!(!password_matches("correct horse batterx", &a));
        assert!(!password_matches("anything", "not a hash"));
        assert!(!password_matches(
            "no account has this password ",
            decoy_hash()
        ));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
