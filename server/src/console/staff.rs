//! The console's staff accounts (issue #19): admins list, create, disable and enable accounts
//! and set their passwords; everyone changes their own password, proving the current one.
//! Disabling an account or setting its password ends its sessions; changing one's own ends
//! one's other sessions. Everyone may turn two-factor sign-in (TOTP) on and off, proving their
//! password and a code; an admin turns it off for someone who lost their phone. All audited.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tessera_domain::api::{StaffAccountChange, StaffAccountSpec, StaffAction, StaffRole};

use super::{ConsoleError, CsrfForm, Done, Page, allowed, audit, check_form, pages, session};
use crate::service::staff::{NotCreated, StaffServices, TwoFactor, new_totp_secret, otpauth_url};
use crate::{AppState, now_ms};

pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::ManageStaff).await?;
    let accounts = state.storage.staff_accounts().await?;
    Ok(pages::staff(&s, &accounts, q.done.as_deref()).into_response())
}

/// Every field defaults: the session and the role are checked before what the form holds.
#[derive(Deserialize)]
pub(super) struct NewAccount {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    store_id: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewAccount>,
) -> Page {
    let s = allowed(&state, &headers, StaffAction::ManageStaff).await?;
    check_form(&headers, &s, &form.csrf)?;
    let role = StaffRole::parse(&form.role).ok_or_else(|| {
        ConsoleError::Invalid("Role: admin, marketer, support or store_staff.".into())
    })?;
    let shop = form.store_id.trim();
    let spec = StaffAccountSpec {
        email: form.email,
        name: form.name,
        role,
        store_id: (!shop.is_empty()).then(|| shop.to_owned()),
        password: form.password,
    };
    let email = spec
        .validate()
        .map_err(|e| ConsoleError::Invalid(format!("The account was not created: {e}.")))?;
    let account = match state.storage.create_staff(email, spec, now_ms()).await? {
        Ok(a) => a,
        Err(NotCreated::Exists) => {
            return Err(ConsoleError::Invalid(
                "An account has this e-mail address.".into(),
            ));
        }
        Err(NotCreated::NoShop) => {
            return Err(ConsoleError::Invalid("There is no such shop.".into()));
        }
    };
    let detail = match &account.store_id {
        Some(shop) => format!("{} at {shop}", role.as_str()),
        None => role.as_str().to_owned(),
    };
    audit(&state, &s, "staff_created", &account.email, &detail).await?;
    Ok(Redirect::to("/console/staff?done=created").into_response())
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// Disable, enable or set the password of another account.
async fn change(
    state: &AppState,
    headers: &HeaderMap,
    id: String,
    csrf: &str,
    change: StaffAccountChange,
    done: &str,
) -> Page {
    let s = allowed(state, headers, StaffAction::ManageStaff).await?;
    check_form(headers, &s, csrf)?;
    if id == s.staff_id {
        return Err(ConsoleError::Invalid(
            "Not your own account: change your password on the Password page, turn two-factor \
             sign-in off on the Two-factor page; another admin disables an admin."
                .into(),
        ));
    }
    change
        .validate()
        .map_err(|e| ConsoleError::Invalid(format!("Not changed: {e}.")))?;
    state
        .storage
        .change_staff(id, change, s.email.clone(), now_ms())
        .await?
        .ok_or(ConsoleError::NotFound("staff account"))?;
    Ok(Redirect::to(&format!("/console/staff?done={done}")).into_response())
}

/// A button of the staff page: disable, enable, or turn two-factor sign-in off.
pub(super) async fn button(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, which)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    let (to, done) = match which.as_str() {
        "disable" => (
            StaffAccountChange {
                disabled: Some(true),
                ..Default::default()
            },
            "disabled",
        ),
        "enable" => (
            StaffAccountChange {
                disabled: Some(false),
                ..Default::default()
            },
            "enabled",
        ),
        "two-factor-off" => (
            StaffAccountChange {
                two_factor: Some(false),
                ..Default::default()
            },
            "two-factor-off",
        ),
        _ => {
            // Signed in, and allowed, before being told there is no such button.
            allowed(&state, &headers, StaffAction::ManageStaff).await?;
            return Err(ConsoleError::NotFound("button"));
        }
    };
    change(&state, &headers, id, &form.csrf, to, done).await
}

pub(super) async fn set_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Page {
    let to = StaffAccountChange {
        password: Some(form.password),
        ..StaffAccountChange::default()
    };
    change(&state, &headers, id, &form.csrf, to, "password").await
}

pub(super) async fn own_password_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Page {
    let s = session(&state, &headers).await?;
    Ok(pages::own_password(&s, q.done.as_deref()).into_response())
}

#[derive(Deserialize)]
pub(super) struct OwnPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

pub(super) async fn change_own_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<OwnPasswordForm>,
) -> Page {
    let s = session(&state, &headers).await?;
    check_form(&headers, &s, &form.csrf)?;
    tessera_domain::api::check_password(&form.new)
        .map_err(|e| ConsoleError::Invalid(format!("Not changed: {e}.")))?;
    if form.new != form.repeat {
        return Err(ConsoleError::Invalid(
            "Not changed: the new password and its repetition differ.".into(),
        ));
    }
    if !state
        .storage
        .change_own_password(s, form.current, form.new, now_ms())
        .await?
    {
        return Err(ConsoleError::Invalid(
            "Not changed: the current password is not that.".into(),
        ));
    }
    Ok(Redirect::to("/console/password?done=changed").into_response())
}

pub(super) async fn two_factor_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Page {
    let s = session(&state, &headers).await?;
    show_two_factor(&s, None, None, q.done.as_deref(), StatusCode::OK)
}

/// The page as the account stands (read with the session): on, or off with a secret to scan
/// (`shown`, the one a refused attempt was made with, or a new one).
fn show_two_factor(
    s: &crate::service::staff::Session,
    shown: Option<String>,
    error: Option<&str>,
    done: Option<&str>,
    status: StatusCode,
) -> Page {
    let secret = match (s.two_factor, shown) {
        (true, _) => None,
        (false, Some(shown)) => Some(shown),
        (false, None) => Some(new_totp_secret()?),
    };
    let url = match &secret {
        Some(secret) => otpauth_url(secret, &s.email),
        None => None,
    };
    let fresh = secret.as_deref().zip(url.as_deref());
    let page = pages::two_factor(s, s.two_factor, fresh, error, done);
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub(super) struct TwoFactorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn set_two_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TwoFactorForm>,
) -> Page {
    let s = session(&state, &headers).await?;
    check_form(&headers, &s, &form.csrf)?;
    let secret = match form.action.as_str() {
        "on" if otpauth_url(&form.secret, &s.email).is_some() => Some(form.secret),
        "on" => return Err(ConsoleError::Invalid("Not a key this page made.".into())),
        "off" => None,
        _ => return Err(ConsoleError::Invalid("Turn it on or off.".into())),
    };
    let done = if secret.is_some() { "on" } else { "off" };
    let shown = secret.clone();
    let outcome = state
        .storage
        .set_two_factor(s.clone(), form.password, secret, form.code, now_ms())
        .await?;
    let why = match outcome {
        TwoFactor::Done => {
            return Ok(Redirect::to(&format!("/console/two-factor?done={done}")).into_response());
        }
        TwoFactor::WrongPassword => "Not changed: that is not your password.",
        TwoFactor::WrongCode => {
            "Not changed: that is not the code your authenticator app shows now (or it was used already)."
        }
        TwoFactor::Unchanged => "Not changed: it already was.",
    };
    // The same key again: the app that scanned it keeps its codes.
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    show_two_factor(&s, shown, Some(why), None, status)
}
