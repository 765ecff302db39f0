//! Sign-in, sign-out, password change and the first-run setup link.

use axum::Extension;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use store::{Email, NewUser, NewWebSession, Role};
use time::OffsetDateTime;

use super::see_other;
use crate::AppState;
use crate::crypto;
use crate::error::{AppError, PageError};
use crate::session::{self, Authed, ClientInfo};
use crate::throttle;
use crate::views::auth::{LoginPage, PasswordPage, SetupPage};
use crate::views::{FormErrors, Layout, render, render_status};

const BAD_LOGIN: &str = "Wrong e-mail address or password.";

/// Where a user lands after signing in.
pub fn home_of(a: &Authed) -> String {
    match (a.user.role, a.user.tenant_id) {
        (Role::Operator, _) => "/operator".into(),
        (Role::Admin, Some(t)) => format!("/t/{t}"),
        (Role::Member, Some(_)) => "/account/extension".into(),
        _ => "/account/password".into(),
    }
}

pub async fn root(authed: Option<Authed>) -> Response {
    match authed {
        Some(a) => see_other(&home_of(&a)),
        None => see_other("/login"),
    }
}

pub async fn login_page(authed: Option<Authed>) -> Result<Response, PageError> {
    if let Some(a) = authed {
        return Ok(see_other(&home_of(&a)));
    }
    render(&LoginPage {
        layout: Layout::anonymous("Sign in"),
        email: String::new(),
        error: None,
        notice: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    old: Option<Authed>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let email_text = form.email.trim().to_owned();
    let failed = |status: StatusCode, msg: String| {
        render_status(
            status,
            &LoginPage {
                layout: Layout::anonymous("Sign in"),
                email: email_text.clone(),
                error: Some(msg),
                notice: None,
            },
        )
    };
    // Reserved before the password is checked, so parallel guesses cannot overrun the limit.
    let attempt = match throttle::begin(&*state.directory, &client.ip, &email_text).await? {
        Ok(a) => a,
        Err(wait) => {
            tracing::warn!(ip = %client.ip, "login throttled");
            metrics::counter!("web_login_failures_total", "reason" => "throttled").increment(1);
            return failed(StatusCode::TOO_MANY_REQUESTS, throttle::wait_message(wait));
        }
    };
    let user = match email_text.parse::<Email>() {
        Ok(email) => match state.directory.get_user_by_email(&email).await {
            Ok(u) => Some(u),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    // Verify against a decoy when there is no such user, so timing does not tell.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = crypto::verify_password_or_decoy(form.password, hash).await?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            // `attempt` is dropped unredeemed: it stays counted as a failure.
            metrics::counter!("web_login_failures_total", "reason" => "credentials").increment(1);
            tracing::info!(ip = %client.ip, "login failed");
            return failed(StatusCode::UNAUTHORIZED, BAD_LOGIN.into());
        }
    };
    if let Some(t) = user.tenant_id {
        if state.directory.get_tenant(t).await?.suspended {
            return failed(
                StatusCode::FORBIDDEN,
                "This business is suspended. Contact your provider.".into(),
            );
        }
    }
    attempt.succeeded(&*state.directory).await?;
    // Housekeeping on a path that is rare and already slow: drop sessions that have expired,
    // and sign-in counts whose window has ended.
    if let Err(e) = throttle::sweep(&*state.directory).await {
        tracing::warn!(error = %e, "could not delete stale sign-in counts");
    }
    if let Err(e) = state
        .directory
        .delete_expired_web_sessions(OffsetDateTime::now_utc())
        .await
    {
        tracing::warn!(error = %e, "could not delete expired sessions");
    }
    // A fresh session id on every sign-in (no fixation); the old session, if any, ends.
    if let Some(old) = old {
        state
            .directory
            .delete_web_session(&old.session.id_hash)
            .await?;
    }
    let token = crypto::random_token();
    let now = OffsetDateTime::now_utc();
    state
        .directory
        .create_web_session(&NewWebSession {
            id_hash: crypto::token_hash(&token),
            user_id: user.id,
            csrf_token: crypto::random_token(),
            expires_at: session::expiry(&state, now),
            ip: Some(client.ip.clone()),
            user_agent: client.user_agent.clone(),
        })
        .await?;
    tracing::info!(user = %user.id, role = %user.role, "signed in");
    let mut res = see_other("/");
    res.headers_mut().insert(
        header::SET_COOKIE,
        session::session_cookie(&state, &client, Some(&token)),
    );
    Ok(res)
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    authed: Option<Authed>,
) -> Result<Response, PageError> {
    if let Some(a) = authed {
        state
            .directory
            .delete_web_session(&a.session.id_hash)
            .await?;
    }
    let mut res = see_other("/login");
    res.headers_mut().insert(
        header::SET_COOKIE,
        session::session_cookie(&state, &client, None),
    );
    Ok(res)
}

pub async fn password_page(authed: Authed) -> Result<Response, PageError> {
    render(&PasswordPage {
        layout: Layout::new("Account", &authed, "/account/password"),
        errors: FormErrors::default(),
        done: false,
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    authed: Authed,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    let account = authed.user.email.to_string();
    match throttle::begin(&*state.directory, &client.ip, &account).await? {
        Err(wait) => errors.add("current", throttle::wait_message(wait)),
        Ok(attempt) => {
            if crypto::verify_password(form.current, authed.user.password_hash.clone()).await? {
                attempt.succeeded(&*state.directory).await?;
            } else {
                // Dropped unredeemed: counted as a failure.
                errors.add("current", "This is not your current password.");
            }
        }
    }
    if let Err(m) = crypto::check_new_password(&form.new_password) {
        errors.add("new_password", m);
    }
    if form.new_password != form.confirm {
        errors.add("confirm", "The two new passwords are not the same.");
    }
    let layout = Layout::new("Account", &authed, "/account/password");
    if !errors.is_empty() {
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PasswordPage {
                layout,
                errors,
                done: false,
            },
        );
    }
    let hash = crypto::hash_password(form.new_password).await?;
    state
        .directory
        .set_user_password_hash(authed.user.tenant_id, authed.user.id, &hash)
        .await?;
    // Everyone who had the old password is signed out, except this browser.
    state
        .directory
        .delete_user_web_sessions(authed.user.id, Some(&authed.session.id_hash))
        .await?;
    render(&PasswordPage {
        layout,
        errors: FormErrors::default(),
        done: true,
    })
}

// ------------------------------------------------------------------ first-run setup

/// If no operator exists, stores a fresh one-time setup token and returns the link to print
/// (`{base_url}/setup/{token}`); `None` when an operator exists. Call it at start-up.
pub async fn ensure_setup_link(
    directory: &dyn store::Directory,
    base_url: &str,
    ttl: std::time::Duration,
) -> Result<Option<String>, store::StoreError> {
    if !directory.list_operators().await?.is_empty() {
        return Ok(None);
    }
    let token = crypto::random_token();
    let expires = OffsetDateTime::now_utc() + ttl;
    directory
        .create_setup_token(&crypto::token_hash(&token), expires)
        .await?;
    Ok(Some(format!(
        "{}/setup/{token}",
        base_url.trim_end_matches('/')
    )))
}

fn setup_page(token: &str, email: String, display_name: String, errors: FormErrors) -> SetupPage {
    SetupPage {
        layout: Layout::anonymous("Create the operator account"),
        action: format!("/setup/{token}"),
        email,
        display_name,
        errors,
    }
}

fn setup_gone() -> PageError {
    PageError(AppError::NotFound)
}

pub async fn setup_form(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let valid = state
        .directory
        .setup_token_valid(&crypto::token_hash(&token), OffsetDateTime::now_utc())
        .await?;
    if !valid {
        return Err(setup_gone());
    }
    render(&setup_page(
        &token,
        String::new(),
        String::new(),
        FormErrors::default(),
    ))
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

pub async fn setup_submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    let hash = crypto::token_hash(&token);
    if !state
        .directory
        .setup_token_valid(&hash, OffsetDateTime::now_utc())
        .await?
    {
        return Err(setup_gone());
    }
    let mut errors = FormErrors::default();
    let email = match form.email.parse::<Email>() {
        Ok(e) => Some(e),
        Err(e) => {
            errors.add("email", e.message);
            None
        }
    };
    if let Err(m) = crypto::check_new_password(&form.password) {
        errors.add("password", m);
    }
    let display_name = form.display_name.trim().to_owned();
    if display_name.chars().count() > 200 {
        errors.add("display_name", "At most 200 characters.");
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &setup_page(&token, form.email, form.display_name, errors),
        );
    };
    let password_hash = crypto::hash_password(form.password).await?;
    let new = NewUser {
        tenant_id: None,
        email,
        display_name,
        role: Role::Operator,
        password_hash,
    };
    match state
        .directory
        .redeem_setup_token(&hash, OffsetDateTime::now_utc(), &new)
        .await
    {
        Ok(user) => {
            tracing::info!(user = %user.id, "first operator created through the setup link");
            render(&LoginPage {
                layout: Layout::anonymous("Sign in"),
                email: user.email.to_string(),
                error: None,
                notice: Some("Your operator account is ready. Sign in to continue.".into()),
            })
        }
        Err(e) if e.is_not_found() => Err(setup_gone()),
        Err(e) => {
            let e = AppError::from(e);
            let Some(field) = e.field() else {
                return Err(PageError(e));
            };
            let mut errors = FormErrors::default();
            errors.add(field, e.public_message());
            render_status(
                e.status(),
                &setup_page(&token, form.email, form.display_name, errors),
            )
        }
    }
}
