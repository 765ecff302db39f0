//! Web users: a business admin manages the business's admins and members under
//! `/t/{tenant}/users`; an operator manages the operator accounts under `/operator/users`. New
//! accounts and resets get a generated one-time password, shown once. Disabling signs the user
//! out everywhere. Nobody can reset or disable their own account here (that is what the Account
//! page is for, and it avoids locking the last admin out).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use store::{Email, NewUser, Role, TenantId, User, UserId};

use super::{field_error, see_other};
use crate::AppState;
use crate::auth::{AdminOf, OperatorUser, parse_id};
use crate::crypto;
use crate::error::{AppError, PageError};
use crate::session::Authed;
use crate::views::business::{UserForm, UserRow, UsersPage};
use crate::views::operator::AdminCreatedPage;
use crate::views::{ConfirmPage, FormErrors, Layout, render, render_status};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/users", get(biz_list).post(biz_create))
        .route(
            "/t/{tenant}/users/{user}/reset",
            get(biz_reset_confirm).post(biz_reset),
        )
        .route(
            "/t/{tenant}/users/{user}/disable",
            get(biz_disable_confirm).post(biz_disable),
        )
        .route("/t/{tenant}/users/{user}/enable", post(biz_enable))
        .route(
            "/t/{tenant}/users/{user}/role",
            get(biz_role_confirm).post(biz_role),
        )
        .route("/operator/users", get(op_list).post(op_create))
        .route(
            "/operator/users/{user}/reset",
            get(op_reset_confirm).post(op_reset),
        )
        .route(
            "/operator/users/{user}/disable",
            get(op_disable_confirm).post(op_disable),
        )
        .route("/operator/users/{user}/enable", post(op_enable))
}

struct Scope<'a> {
    /// `None`: the operator accounts.
    tenant: Option<TenantId>,
    base: String,
    layout: Layout,
    me: &'a Authed,
}

fn biz(a: &AdminOf) -> Scope<'_> {
    let base = format!("/t/{}", a.tenant.id);
    Scope {
        tenant: Some(a.tenant.id),
        layout: Layout::for_business("Users", &a.authed, &a.tenant, &format!("{base}/users")),
        base,
        me: &a.authed,
    }
}

fn ops(me: &Authed) -> Scope<'_> {
    Scope {
        tenant: None,
        base: "/operator".into(),
        layout: Layout::new("Operators", me, "/operator/users"),
        me,
    }
}

async fn users_of(state: &AppState, s: &Scope<'_>) -> Result<Vec<User>, PageError> {
    Ok(match s.tenant {
        Some(t) => state.directory.list_users(t).await?,
        None => state.directory.list_operators().await?,
    })
}

async fn page(
    state: &AppState,
    s: Scope<'_>,
    form: UserForm,
    errors: FormErrors,
) -> Result<UsersPage, PageError> {
    let rows = users_of(state, &s)
        .await?
        .into_iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            is_me: u.id == s.me.user.id,
            email: u.email.to_string(),
            name: u.display_name,
            role: u.role.to_string(),
            disabled: u.disabled,
        })
        .collect();
    let roles = match s.tenant {
        Some(_) => vec![
            ("member", "Member (their own extension)"),
            ("admin", "Admin (the whole business)"),
        ],
        None => Vec::new(),
    };
    Ok(UsersPage {
        layout: s.layout,
        base: s.base,
        rows,
        roles,
        form,
        errors,
        notice: None,
    })
}

async fn list(state: &AppState, s: Scope<'_>) -> Result<Response, PageError> {
    render(
        &page(
            state,
            s,
            UserForm {
                role: "member".into(),
                ..UserForm::default()
            },
            FormErrors::default(),
        )
        .await?,
    )
}

async fn create(state: &AppState, s: Scope<'_>, form: UserForm) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    let role = match (s.tenant, form.role.as_str()) {
        (None, _) => Role::Operator,
        (Some(_), "admin") => Role::Admin,
        (Some(_), "member") => Role::Member,
        (Some(_), _) => {
            errors.add("role", "Choose member or admin.");
            Role::Member
        }
    };
    let display_name = form.display_name.trim().to_owned();
    if display_name.chars().count() > 200 {
        errors.add("display_name", "At most 200 characters.");
    }
    let email = form
        .email
        .parse::<Email>()
        .map_err(|e| errors.add("email", e.message))
        .ok();
    if let (Some(email), true) = (email, errors.is_empty()) {
        let password = crypto::generate_sip_password();
        let new = NewUser {
            tenant_id: s.tenant,
            email,
            display_name,
            role,
            password_hash: crypto::hash_password(password.clone()).await?,
        };
        match state.directory.create_user(&new).await {
            Ok(u) => {
                tracing::info!(user = %u.id, role = %u.role, "user created");
                return render(&AdminCreatedPage {
                    layout: s.layout,
                    email: u.email.to_string(),
                    password,
                    back: format!("{}/users", s.base),
                });
            }
            Err(e) => field_error(&mut errors, e, &[])?,
        }
    }
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &page(state, s, form, errors).await?,
    )
}

/// The user, if it is in scope and not the signed-in user.
async fn target(state: &AppState, s: &Scope<'_>, id: &str) -> Result<User, PageError> {
    let id: UserId = parse_id(id)?;
    let user = users_of(state, s)
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or(PageError(AppError::NotFound))?;
    if user.id == s.me.user.id {
        return Err(PageError(AppError::BadRequest(
            "Change your own password on the Account page.".into(),
        )));
    }
    Ok(user)
}

async fn reset_confirm(state: &AppState, s: Scope<'_>, id: &str) -> Result<Response, PageError> {
    let u = target(state, &s, id).await?;
    render(&ConfirmPage {
        question: format!("Reset the password of {}?", u.email),
        detail: "Their current password stops working and they are signed out everywhere. You \
                 get a one-time password to give them."
            .into(),
        action: format!("{}/users/{}/reset", s.base, u.id),
        button: "Reset password".into(),
        cancel: format!("{}/users", s.base),
        layout: s.layout,
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

async fn reset(
    state: &AppState,
    s: Scope<'_>,
    id: &str,
    confirm: Option<String>,
) -> Result<Response, PageError> {
    let u = target(state, &s, id).await?;
    if confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("{}/users/{}/reset", s.base, u.id)));
    }
    let password = crypto::generate_sip_password();
    let hash = crypto::hash_password(password.clone()).await?;
    state
        .directory
        .set_user_password_hash(s.tenant, u.id, &hash)
        .await?;
    state.directory.delete_user_web_sessions(u.id, None).await?;
    render(&AdminCreatedPage {
        layout: s.layout,
        email: u.email.to_string(),
        password,
        back: format!("{}/users", s.base),
    })
}

async fn disable_confirm(state: &AppState, s: Scope<'_>, id: &str) -> Result<Response, PageError> {
    let u = target(state, &s, id).await?;
    render(&ConfirmPage {
        question: format!("Disable {}?", u.email),
        detail: "They are signed out at once and cannot sign in until enabled again.".into(),
        action: format!("{}/users/{}/disable", s.base, u.id),
        button: "Disable user".into(),
        cancel: format!("{}/users", s.base),
        layout: s.layout,
    })
}

async fn set_disabled(
    state: &AppState,
    s: Scope<'_>,
    id: &str,
    disabled: bool,
) -> Result<Response, PageError> {
    let u = target(state, &s, id).await?;
    state
        .directory
        .set_user_disabled(s.tenant, u.id, disabled)
        .await?;
    if disabled {
        state.directory.delete_user_web_sessions(u.id, None).await?;
    }
    Ok(see_other(&format!("{}/users", s.base)))
}

#[derive(Deserialize)]
pub struct UserPath {
    user: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// A user whose role was just changed: the page says what they are now.
    role_changed: Option<String>,
}

async fn biz_list(
    State(st): State<AppState>,
    a: AdminOf,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let s = biz(&a);
    let Some(id) = q
        .role_changed
        .as_deref()
        .and_then(|id| id.parse::<UserId>().ok())
    else {
        return list(&st, s).await;
    };
    let users = users_of(&st, &s).await?;
    let mut p = page(
        &st,
        s,
        UserForm {
            role: "member".into(),
            ..UserForm::default()
        },
        FormErrors::default(),
    )
    .await?;
    // Said from what is stored now, so a reload or a stale link never claims a change.
    p.notice = users
        .iter()
        .find(|u| u.id == id)
        .map(|u| format!("{} is now {}.", u.email, role_phrase(u.role)));
    render(&p)
}

fn role_phrase(role: Role) -> &'static str {
    match role {
        Role::Admin => "an admin",
        Role::Member => "a member",
        Role::Operator => "an operator",
    }
}
async fn biz_create(
    State(st): State<AppState>,
    a: AdminOf,
    Form(f): Form<UserForm>,
) -> Result<Response, PageError> {
    create(&st, biz(&a), f).await
}
async fn biz_reset_confirm(
    State(st): State<AppState>,
    a: AdminOf,
    Path(p): Path<UserPath>,
) -> Result<Response, PageError> {
    reset_confirm(&st, biz(&a), &p.user).await
}
async fn biz_reset(
    State(st): State<AppState>,
    a: AdminOf,
    Path(p): Path<UserPath>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    reset(&st, biz(&a), &p.user, f.confirm).await
}
async fn biz_disable_confirm(
    State(st): State<AppState>,
    a: AdminOf,
    Path(p): Path<UserPath>,
) -> Result<Response, PageError> {
    disable_confirm(&st, biz(&a), &p.user).await
}
async fn biz_disable(
    State(st): State<AppState>,
    a: AdminOf,
    Path(p): Path<UserPath>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    if f.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!(
            "/t/{}/users/{}/disable",
            a.tenant.id, p.user
        )));
    }
    set_disabled(&st, biz(&a), &p.user, true).await
}
async fn biz_enable(
    State(st): State<AppState>,
    a: AdminOf,
    Path(p): Path<UserPath>,
) -> Result<Response, PageError> {
    set_disabled(&st, biz(&a), &p.user, false).await
}
async fn op_list(
    State(st): State<AppState>,
    OperatorUser(me): OperatorUser,
) -> Result<Response, PageError> {
    list(&st, ops(&me)).await
}
async fn op_create(
    State(st): State<AppState>,
    OperatorUser(me): OperatorUser,
    Form(f): Form<UserForm>,
) -> Result<Response, PageError> {
    create(&st, ops(&me), f).await
}
async fn op_reset_confirm(
    State(st): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<UserPath>,
) -> Result<Response, PageError> {
    reset_confirm(&st, ops(&me), &p.user).await
}
async fn op_reset(
    State(st): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<UserPath>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    reset(&st, ops(&me), &p.user, f.confirm).await
}
async fn op_disable_confirm(
    State(st): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<UserPath>,
) -> Result<Response, PageError> {
    disable_confirm(&st, ops(&me), &p.user).await
}
async fn op_disable(
    State(st): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<UserPath>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    if f.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("/operator/users/{}/disable", p.user)));
    }
    set_disabled(&st, ops(&me), &p.user, true).await
}
async fn op_enable(
    State(st): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<UserPath>,
) -> Result<Response, PageError> {
    set_disabled(&st, ops(&me), &p.user, false).await
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
    confirm: Option<String>,
}

fn parse_role(s: &str) -> Result<Role, PageError> {
    match s {
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        _ => Err(PageError(AppError::invalid(
            "role",
            "Choose member or admin.",
        ))),
    }
}

#[derive(Deserialize)]
pub struct RoleQuery {
    #[serde(default)]
    role: String,
}

/// "Make admin…" and "Make member…" ask first, saying what the change means.
async fn biz_role_confirm(
    State(st): State<AppState>,
    a: AdminOf,
    Path(p): Path<UserPath>,
    Query(q): Query<RoleQuery>,
) -> Result<Response, PageError> {
    let s = biz(&a);
    let u = target(&st, &s, &p.user).await?;
    let role = parse_role(&q.role)?;
    let (question, detail, button) = match role {
        Role::Admin => (
            format!("Make {} an admin?", u.email),
            "Admins manage the whole business: extensions, numbers and their routes, users \
             and API tokens.",
            "Make admin",
        ),
        _ => (
            format!("Make {} a member?", u.email),
            "Members manage only their own extension. API tokens they created stop working.",
            "Make member",
        ),
    };
    render(&ConfirmPage {
        question,
        detail: detail.into(),
        action: format!("{}/users/{}/role?role={}", s.base, u.id, role),
        button: button.into(),
        cancel: format!("{}/users", s.base),
        layout: s.layout,
    })
}

async fn biz_role(
    State(st): State<AppState>,
    a: AdminOf,
    Path(p): Path<UserPath>,
    Query(q): Query<RoleQuery>,
    Form(f): Form<RoleForm>,
) -> Result<Response, PageError> {
    let s = biz(&a);
    let u = target(&st, &s, &p.user).await?;
    // The role comes from the confirm page's address, or from a form that posts it.
    let role = parse_role(if f.role.is_empty() { &q.role } else { &f.role })?;
    if f.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!(
            "{}/users/{}/role?role={role}",
            s.base, u.id
        )));
    }
    st.directory.set_user_role(a.tenant.id, u.id, role).await?;
    tracing::info!(user = %u.id, %role, "role changed");
    Ok(see_other(&format!(
        "{}/users?role_changed={}",
        s.base, u.id
    )))
}
