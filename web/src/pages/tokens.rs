//! API tokens in the UI: a business admin manages the business's tokens under
//! `/t/{tenant}/tokens`, an operator the platform tokens under `/operator/tokens`. A token is
//! shown once at creation; only its SHA-256 is stored.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use store::{ApiTokenId, NewApiToken, TenantId};
use time::OffsetDateTime;

use super::{field_error, see_other};
use crate::AppState;
use crate::auth::api::{TOKEN_PREFIX, TokenRefusal};
use crate::auth::{AdminOf, OperatorUser, parse_id};
use crate::crypto;
use crate::error::PageError;
use crate::session::Authed;
use crate::views::business::{TokenRow, TokensPage};
use crate::views::{ConfirmPage, FormErrors, Layout, Zone, render, render_status};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/tokens", get(biz_list).post(biz_create))
        .route(
            "/t/{tenant}/tokens/{token}/revoke",
            get(biz_revoke_confirm).post(biz_revoke),
        )
        .route("/operator/tokens", get(op_list).post(op_create))
        .route(
            "/operator/tokens/{token}/revoke",
            get(op_revoke_confirm).post(op_revoke),
        )
}

/// Whose tokens, and how the page looks.
struct Scope<'a> {
    tenant: Option<TenantId>,
    base: String,
    layout: Layout,
    authed: &'a Authed,
    /// The business's zone (Europe/London for the operator's tokens).
    zone: Zone,
}

fn biz_scope(a: &AdminOf) -> Scope<'_> {
    let base = format!("/t/{}", a.tenant.id);
    Scope {
        tenant: Some(a.tenant.id),
        layout: Layout::for_business(
            "API tokens",
            &a.authed,
            &a.tenant,
            &format!("{base}/tokens"),
        ),
        base,
        authed: &a.authed,
        zone: Zone::of(&a.tenant),
    }
}

fn op_scope(me: &Authed) -> Scope<'_> {
    Scope {
        tenant: None,
        base: "/operator".into(),
        layout: Layout::new("API tokens", me, "/operator/tokens"),
        authed: me,
        zone: Zone::london(),
    }
}

/// Longest expiry the form accepts.
const MAX_EXPIRY_DAYS: i64 = 5 * 366;

/// The optional expiry date of the form: the token stops working at 00:00 that day in the
/// business's zone; the date must be after today (there) and within about five years.
fn parse_expiry(
    s: &str,
    now: OffsetDateTime,
    zone: &Zone,
) -> Result<Option<OffsetDateTime>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let f = time::macros::format_description!("[year]-[month]-[day]");
    let date =
        time::Date::parse(s, &f).map_err(|_| format!("{s:?} is not a date like 2027-01-31."))?;
    let today = zone
        .date(now)
        .unwrap_or_else(|| now.to_offset(time::UtcOffset::UTC).date());
    if date <= today {
        return Err("Choose a date after today.".into());
    }
    if date > today + time::Duration::days(MAX_EXPIRY_DAYS) {
        return Err("Choose a date within five years.".into());
    }
    zone.start_of(date)
        .map(Some)
        .ok_or_else(|| format!("{s:?} is not a date like 2027-01-31."))
}

/// The form's values, kept when it is shown again.
struct Typed {
    name: String,
    expires: String,
}

async fn page(
    state: &AppState,
    s: Scope<'_>,
    typed: Typed,
    errors: FormErrors,
    created: Option<String>,
) -> Result<TokensPage, PageError> {
    let now = OffsetDateTime::now_utc();
    let rows = state
        .directory
        .list_api_tokens(s.tenant)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            refused: TokenRefusal::of(&t, now).map(|r| r.reason().to_owned()),
            id: t.id.to_string(),
            name: t.name,
            prefix: t.prefix,
            created: s.zone.day(t.created_at),
            last_used: t
                .last_used_at
                .map(|at| s.zone.minute(at))
                .unwrap_or_else(|| "never".into()),
            // The date chosen: the token stops at its start, as the form's hint says.
            expires: t
                .expires_at
                .map(|at| s.zone.day(at))
                .unwrap_or_else(|| "never".into()),
            revoked: t.revoked_at.is_some(),
        })
        .collect();
    Ok(TokensPage {
        layout: s.layout,
        base: s.base,
        rows,
        token_name: typed.name,
        expires: typed.expires,
        min_expiry: s.zone.day(now + time::Duration::days(1)),
        zone_name: s.zone.name().to_owned(),
        errors,
        created,
    })
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    /// YYYY-MM-DD, or empty for no expiry.
    #[serde(default)]
    expires: String,
}

fn blank() -> Typed {
    Typed {
        name: String::new(),
        expires: String::new(),
    }
}

async fn create(state: &AppState, s: Scope<'_>, form: CreateForm) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    let expires_at = match parse_expiry(&form.expires, OffsetDateTime::now_utc(), &s.zone) {
        Ok(e) => e,
        Err(m) => {
            errors.add("expires", m);
            None
        }
    };
    let typed = Typed {
        name: form.name.clone(),
        expires: form.expires.clone(),
    };
    if !errors.is_empty() {
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(state, s, typed, errors, None).await?,
        );
    }
    let token = format!("{TOKEN_PREFIX}{}", crypto::random_token());
    let new = NewApiToken {
        tenant_id: s.tenant,
        name: form.name.trim().to_owned(),
        token_hash: crypto::token_hash(&token),
        prefix: token.chars().take(10).collect(),
        created_by: Some(s.authed.user.id),
        expires_at,
    };
    match state.directory.create_api_token(&new).await {
        Ok(t) => {
            tracing::info!(token = %t.id, tenant = ?t.tenant_id, expires = ?t.expires_at, "API token created");
            render(&page(state, s, blank(), errors, Some(token)).await?)
        }
        Err(e) => {
            field_error(&mut errors, e, &[])?;
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(state, s, typed, errors, None).await?,
            )
        }
    }
}

async fn revoke_confirm(state: &AppState, s: Scope<'_>, id: &str) -> Result<Response, PageError> {
    let id: ApiTokenId = parse_id(id)?;
    let t = state
        .directory
        .list_api_tokens(s.tenant)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(PageError(crate::error::AppError::NotFound))?;
    render(&ConfirmPage {
        layout: s.layout,
        question: format!("Revoke the token “{}”?", t.name),
        detail: "Anything using it loses access at once. This cannot be undone.".into(),
        action: format!("{}/tokens/{}/revoke", s.base, t.id),
        button: "Revoke token".into(),
        cancel: format!("{}/tokens", s.base),
    })
}

async fn revoke(
    state: &AppState,
    s: Scope<'_>,
    id: &str,
    confirm: Option<String>,
) -> Result<Response, PageError> {
    let id: ApiTokenId = parse_id(id)?;
    if confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("{}/tokens/{id}/revoke", s.base)));
    }
    state
        .directory
        .revoke_api_token(s.tenant, id, OffsetDateTime::now_utc())
        .await?;
    Ok(see_other(&format!("{}/tokens", s.base)))
}

#[derive(Deserialize)]
pub struct TokenPath {
    token: String,
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

async fn biz_list(State(state): State<AppState>, a: AdminOf) -> Result<Response, PageError> {
    render(&page(&state, biz_scope(&a), blank(), FormErrors::default(), None).await?)
}

async fn biz_create(
    State(state): State<AppState>,
    a: AdminOf,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    create(&state, biz_scope(&a), form).await
}

async fn biz_revoke_confirm(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<TokenPath>,
) -> Result<Response, PageError> {
    revoke_confirm(&state, biz_scope(&a), &p.token).await
}

async fn biz_revoke(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<TokenPath>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    revoke(&state, biz_scope(&a), &p.token, f.confirm).await
}

async fn op_list(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
) -> Result<Response, PageError> {
    render(&page(&state, op_scope(&me), blank(), FormErrors::default(), None).await?)
}

async fn op_create(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    create(&state, op_scope(&me), form).await
}

async fn op_revoke_confirm(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<TokenPath>,
) -> Result<Response, PageError> {
    revoke_confirm(&state, op_scope(&me), &p.token).await
}

async fn op_revoke(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<TokenPath>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    revoke(&state, op_scope(&me), &p.token, f.confirm).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates() {
        let now = time::macros::datetime!(2026-12-08 10:00 UTC);
        let london = Zone::london();
        let parse_expiry = |s: &str, now| parse_expiry(s, now, &london);
        assert_eq!(parse_expiry(" ", now), Ok(None));
        assert_eq!(
            parse_expiry("2027-01-31", now),
            Ok(Some(time::macros::datetime!(2027-01-31 0:00 UTC)))
        );
        // In summer London midnight is 23:00 UTC the day before.
        assert_eq!(
            parse_expiry("2027-07-31", now),
            Ok(Some(time::macros::datetime!(2027-07-30 23:00 UTC)))
        );
        // "Today" is London's: at 23:30 UTC on 1 July it is already 2 July there.
        assert!(
            parse_expiry("2027-07-02", time::macros::datetime!(2027-07-01 23:30 UTC))
                .unwrap_err()
                .contains("after today")
        );
        assert!(
            parse_expiry("2026-12-08", now)
                .unwrap_err()
                .contains("after today")
        );
        assert!(
            parse_expiry("2040-01-01", now)
                .unwrap_err()
                .contains("five years")
        );
        assert!(
            parse_expiry("next week", now)
                .unwrap_err()
                .contains("2027-01-31")
        );
    }
}
