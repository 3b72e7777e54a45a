//! The merchant console's staff (issue #19): accounts the operator creates, their roles, and
//! what each role may do. The console (`/console` of the server) checks every page and action
//! with [`StaffRole::may`]; the rule lives here, with the other rules, so that it is tested once.

use serde::{Deserialize, Serialize};

/// What a member of staff does in the programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Everything, including staff, webhooks and the audit log.
    Admin,
    /// Campaigns, segments, rules, KPIs and analytics.
    Marketer,
    /// Members: lookup, history, points corrections, consent, export, erasure, conflicts.
    Support,
    /// At the counter of one shop: member lookup, consent given at the counter, the shop's
    /// KPIs.
    StoreStaff,
}

impl StaffRole {
    pub const ALL: [StaffRole; 4] = [
        StaffRole::Admin,
        StaffRole::Marketer,
        StaffRole::Support,
        StaffRole::StoreStaff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Marketer => "marketer",
            StaffRole::Support => "support",
            StaffRole::StoreStaff => "store_staff",
        }
    }

    pub fn parse(s: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role may do `action`.
    pub fn may(self, action: StaffAction) -> bool {
        use StaffAction as A;
        use StaffRole as R;
        match self {
            R::Admin => true,
            R::Marketer => matches!(action, A::ViewKpis | A::Analytics | A::Campaigns | A::Rules),
            R::Support => matches!(
                action,
                A::ViewKpis
                    | A::LookupMember
                    | A::CorrectPoints
                    | A::RecordConsent
                    | A::ExportMember
                    | A::EraseMember
                    | A::ResolveConflicts
            ),
            R::StoreStaff => matches!(action, A::ViewKpis | A::LookupMember | A::RecordConsent),
        }
    }
}

/// What the console lets staff do, each checked against the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaffAction {
    ViewKpis,
    /// RFM, segments, retention, CLV, cohorts, churn; asking for a run.
    Analytics,
    LookupMember,
    CorrectPoints,
    RecordConsent,
    ExportMember,
    EraseMember,
    ResolveConflicts,
    Campaigns,
    Rules,
    Webhooks,
    ViewAudit,
    ManageStaff,
}

impl StaffAction {
    pub const ALL: [StaffAction; 13] = [
        StaffAction::ViewKpis,
        StaffAction::Analytics,
        StaffAction::LookupMember,
        StaffAction::CorrectPoints,
        StaffAction::RecordConsent,
        StaffAction::ExportMember,
        StaffAction::EraseMember,
        StaffAction::ResolveConflicts,
        StaffAction::Campaigns,
        StaffAction::Rules,
        StaffAction::Webhooks,
        StaffAction::ViewAudit,
        StaffAction::ManageStaff,
    ];
}

/// The shortest password a staff account takes.
pub const MIN_STAFF_PASSWORD: usize = 12;
/// The longest (hashing a megabyte of password is a denial of service).
pub const MAX_STAFF_PASSWORD: usize = 256;

/// A staff account as the operator creates it (`POST /admin/v1/staff`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StaffAccountSpec {
    /// The sign-in name (an e-mail address, compared without case).
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    /// The shop of a `store_staff` account (required for that role, refused for the others).
    #[serde(default)]
    pub store_id: Option<String>,
    /// 12 to 256 characters; kept as an Argon2id hash only.
    pub password: String,
}

impl std::fmt::Debug for StaffAccountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffAccountSpec")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("store_id", &self.store_id)
            .finish_non_exhaustive()
    }
}

/// A staff account as the admin API shows it (never its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffAccount {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub store_id: Option<String>,
    /// A disabled account cannot sign in and has no session.
    #[serde(default)]
    pub disabled: bool,
    /// Two-factor sign-in (an authenticator app's code) is on.
    #[serde(default)]
    pub two_factor: bool,
}

/// A change an admin makes to an account (`PATCH /admin/v1/staff/{id}`, the console's staff
/// page): disable or enable it, set a new password, or turn its two-factor sign-in off (a lost
/// phone). Each ends the account's sessions.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StaffAccountChange {
    #[serde(default)]
    pub disabled: Option<bool>,
    /// 12 to 256 characters; kept as an Argon2id hash only.
    #[serde(default)]
    pub password: Option<String>,
    /// `false` turns two-factor sign-in off; only its owner turns it on (in the console).
    #[serde(default)]
    pub two_factor: Option<bool>,
}

impl std::fmt::Debug for StaffAccountChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffAccountChange")
            .field("disabled", &self.disabled)
            .field("two_factor", &self.two_factor)
            .finish_non_exhaustive()
    }
}

impl StaffAccountChange {
    pub fn validate(&self) -> Result<(), StaffSpecError> {
        if self.disabled.is_none() && self.password.is_none() && self.two_factor.is_none() {
            return Err(StaffSpecError::NothingToChange);
        }
        if self.two_factor == Some(true) {
            return Err(StaffSpecError::TwoFactorByOwner);
        }
        match &self.password {
            Some(p) => check_password(p),
            None => Ok(()),
        }
    }
}

/// A password a staff account takes: [`MIN_STAFF_PASSWORD`] to [`MAX_STAFF_PASSWORD`]
/// characters.
pub fn check_password(password: &str) -> Result<(), StaffSpecError> {
    match (MIN_STAFF_PASSWORD..=MAX_STAFF_PASSWORD).contains(&password.chars().count()) {
        true => Ok(()),
        false => Err(StaffSpecError::Password),
    }
}

/// Why an account is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffSpecError {
    #[error("the e-mail address is not one (1 to 254 characters, one @)")]
    Email,
    #[error("the name is 1 to 100 characters")]
    Name,
    #[error("the password is {MIN_STAFF_PASSWORD} to {MAX_STAFF_PASSWORD} characters")]
    Password,
    #[error("a store_staff account names its shop (store_id)")]
    ShopMissing,
    #[error("only a store_staff account has a shop")]
    ShopNotAllowed,
    #[error("the change names nothing to change (disabled, password, two_factor)")]
    NothingToChange,
    #[error("two-factor sign-in is turned on by the account's owner, in the console")]
    TwoFactorByOwner,
}

impl StaffAccountSpec {
    /// Check the account; its e-mail address as compared (lower case).
    pub fn validate(&self) -> Result<String, StaffSpecError> {
        let email = self.email.trim().to_lowercase();
        let ok_email = (3..=254).contains(&email.len())
            && email.matches('@').count() == 1
            && !email.starts_with('@')
            && !email.ends_with('@')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok_email {
            return Err(StaffSpecError::Email);
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(StaffSpecError::Name);
        }
        check_password(&self.password)?;
        match (self.role, &self.store_id) {
            (StaffRole::StoreStaff, None) => Err(StaffSpecError::ShopMissing),
            (StaffRole::StoreStaff, Some(_)) => Ok(email),
            (_, Some(_)) => Err(StaffSpecError::ShopNotAllowed),
            (_, None) => Ok(email),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_may_do_what_it_is_for() {
        use StaffAction as A;
        let allowed = |r: StaffRole| -> Vec<StaffAction> {
            StaffAction::ALL.into_iter().filter(|a| r.may(*a)).collect()
        };
        assert_eq!(allowed(StaffRole::Admin), StaffAction::ALL);
        assert_eq!(
            allowed(StaffRole::Marketer),
            [A::ViewKpis, A::Analytics, A::Campaigns, A::Rules]
        );
        assert_eq!(
            allowed(StaffRole::Support),
            [
                A::ViewKpis,
                A::LookupMember,
                A::CorrectPoints,
                A::RecordConsent,
                A::ExportMember,
                A::EraseMember,
                A::ResolveConflicts
            ]
        );
        assert_eq!(
            allowed(StaffRole::StoreStaff),
            [A::ViewKpis, A::LookupMember, A::RecordConsent]
        );
        for r in StaffRole::ALL {
            assert_eq!(StaffRole::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn accounts_are_checked() {
        let spec = |email: &str, role, shop: Option<&str>, password: &str| StaffAccountSpec {
            email: email.into(),
            name: "Ada".into(),
            role,
            store_id: shop.map(str::to_owned),
            password: password.into(),
        };
        let pw = "correct horse battery";
        assert_eq!(
            spec(" Ada@Shop.example ", StaffRole::Support, None, pw).validate(),
            Ok("ada@shop.example".into())
        );
        for bad in ["ada", "@shop", "ada@", "a@b@c", "a b@c"] {
            assert_eq!(
                spec(bad, StaffRole::Support, None, pw).validate(),
                Err(StaffSpecError::Email),
                "{bad}"
            );
        }
        assert_eq!(
            spec("a@b", StaffRole::Support, None, "short").validate(),
            Err(StaffSpecError::Password)
        );
        assert_eq!(
            spec("a@b", StaffRole::StoreStaff, None, pw).validate(),
            Err(StaffSpecError::ShopMissing)
        );
        assert_eq!(
            spec("a@b", StaffRole::Marketer, Some("st-1"), pw).validate(),
            Err(StaffSpecError::ShopNotAllowed)
        );
        assert!(
            !format!("{:?}", spec("a@b", StaffRole::Admin, None, pw)).contains(pw),
            "a password is never printed"
        );
    }

    #[test]
    fn account_changes_are_checked() {
        let change = |disabled, password: Option<&str>| StaffAccountChange {
            disabled,
            password: password.map(str::to_owned),
            two_factor: None,
        };
        assert_eq!(
            change(None, None).validate(),
            Err(StaffSpecError::NothingToChange)
        );
        assert_eq!(
            change(None, Some("eleven char")).validate(),
            Err(StaffSpecError::Password)
        );
        assert_eq!(change(Some(true), None).validate(), Ok(()));
        let pw = "twelve chars";
        assert_eq!(change(None, Some(pw)).validate(), Ok(()));
        assert!(!format!("{:?}", change(None, Some(pw))).contains(pw));
        let two_factor = |on| StaffAccountChange {
            two_factor: Some(on),
            ..StaffAccountChange::default()
        };
        assert_eq!(two_factor(false).validate(), Ok(()));
        assert_eq!(
            two_factor(true).validate(),
            Err(StaffSpecError::TwoFactorByOwner)
        );
    }
}
