//! Operator pages: businesses (create, settings, suspend, first admin).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use super::{field_error, page_number, see_other, ticked};
use crate::AppState;
use crate::auth::{OperatorUser, parse_id};
use crate::crypto;
use crate::error::PageError;
use crate::views::operator::*;
use crate::views::{ConfirmPage, FormErrors, Layout, Pager, render, render_status};

pub const PER_PAGE: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operator/tenants", get(tenants).post(create_tenant))
        .route("/operator/tenants/new", get(new_tenant))
        .route(
            "/operator/tenants/{tenant}",
            get(tenant).post(update_tenant),
        )
        .route("/operator/tenants/{tenant}/admins", post(create_admin))
        .route(
            "/operator/tenants/{tenant}/suspend",
            get(suspend_confirm).post(suspend),
        )
        .route("/operator/tenants/{tenant}/resume", post(resume))
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub unassigned: Option<String>,
    /// Numbers page: one number to look up.
    pub find: Option<String>,
    /// Numbers page: a number just assigned; the page says where it is now.
    pub changed: Option<String>,
}

async fn tenants(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let page = page_number(q.page);
    let list = state
        .directory
        .list_tenants(Page::new(PER_PAGE, (page - 1) * PER_PAGE))
        .await?;
    let rows = list
        .items
        .iter()
        .map(|t| TenantRow {
            href: format!("/operator/tenants/{}", t.id),
            name: t.settings.name.clone(),
            slug: t.slug.to_string(),
            sip_domain: t.sip_domain.to_string(),
            suspended: t.suspended,
            limits: format!(
                "{} calls, {} outside",
                t.settings.max_concurrent_calls, t.settings.max_outside_calls
            ),
        })
        .collect();
    render(&TenantsPage {
        layout: Layout::new("Businesses", &me, "/operator/tenants"),
        rows,
        pager: Pager::new(page, PER_PAGE, list.total, |n| {
            format!("/operator/tenants?page={n}")
        }),
    })
}

fn default_form() -> TenantForm {
    TenantForm {
        max_concurrent_calls: "10".into(),
        max_outside_calls: "10".into(),
        ..TenantForm::default()
    }
}

async fn new_tenant(OperatorUser(me): OperatorUser) -> Result<Response, PageError> {
    render(&TenantNewPage {
        layout: Layout::new("Create a business", &me, "/operator/tenants"),
        form: default_form(),
        errors: FormErrors::default(),
    })
}

fn parse_limit(v: &str, field: &'static str, errors: &mut FormErrors) -> u32 {
    match v.trim().parse::<u32>() {
        Ok(n) if n <= 100_000 => n,
        _ => {
            errors.add(field, "Enter a whole number from 0 to 100000.");
            0
        }
    }
}

/// The settings part of the form, validated; errors go beside the fields.
fn settings_from(form: &TenantForm, errors: &mut FormErrors) -> TenantSettings {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.add("name", "Enter a name of 1 to 200 characters.");
    }
    TenantSettings {
        name: name.to_owned(),
        max_concurrent_calls: parse_limit(
            &form.max_concurrent_calls,
            "max_concurrent_calls",
            errors,
        ),
        max_outside_calls: parse_limit(&form.max_outside_calls, "max_outside_calls", errors),
        allow_international: ticked(&form.allow_international),
        allow_premium: ticked(&form.allow_premium),
        main_number: None,
        // The business's own setting; a new one starts in Europe/London.
        time_zone: DEFAULT_TIME_ZONE.to_owned(),
    }
}

async fn create_tenant(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Form(form): Form<TenantForm>,
) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    let settings = settings_from(&form, &mut errors);
    let slug = form
        .slug
        .trim()
        .parse::<Slug>()
        .map_err(|e| errors.add("slug", e.message))
        .ok();
    let domain = form
        .sip_domain
        .trim()
        .parse::<SipDomain>()
        .map_err(|e| errors.add("sip_domain", e.message))
        .ok();
    if let (Some(slug), Some(sip_domain), true) = (slug, domain, errors.is_empty()) {
        let new = NewTenant {
            slug,
            sip_domain,
            settings,
        };
        match state.directory.create_tenant(&new).await {
            Ok(t) => return Ok(see_other(&format!("/operator/tenants/{}", t.id))),
            Err(e) => field_error(&mut errors, e, &[])?,
        }
    }
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &TenantNewPage {
            layout: Layout::new("Create a business", &me, "/operator/tenants"),
            form,
            errors,
        },
    )
}

fn form_of(t: &Tenant) -> TenantForm {
    let s = &t.settings;
    TenantForm {
        name: s.name.clone(),
        slug: t.slug.to_string(),
        sip_domain: t.sip_domain.to_string(),
        max_concurrent_calls: s.max_concurrent_calls.to_string(),
        max_outside_calls: s.max_outside_calls.to_string(),
        allow_international: s.allow_international.then(|| "on".into()),
        allow_premium: s.allow_premium.then(|| "on".into()),
    }
}

struct TenantView {
    form: TenantForm,
    errors: FormErrors,
    saved: bool,
    admin_form: AdminForm,
    admin_errors: FormErrors,
}

async fn tenant_page(
    state: &AppState,
    me: &crate::session::Authed,
    t: &Tenant,
    v: TenantView,
) -> Result<TenantPage, PageError> {
    let users = state
        .directory
        .list_users(t.id)
        .await?
        .into_iter()
        .map(|u| AdminRow {
            email: u.email.to_string(),
            name: u.display_name,
            role: u.role.to_string(),
            disabled: u.disabled,
        })
        .collect();
    Ok(TenantPage {
        layout: Layout::new(t.settings.name.clone(), me, "/operator/tenants"),
        id: t.id.to_string(),
        slug: t.slug.to_string(),
        sip_domain: t.sip_domain.to_string(),
        suspended: t.suspended,
        form: v.form,
        errors: v.errors,
        saved: v.saved,
        users,
        admin_form: v.admin_form,
        admin_errors: v.admin_errors,
    })
}

async fn load_tenant(state: &AppState, id: &str) -> Result<Tenant, PageError> {
    Ok(state.directory.get_tenant(parse_id(id)?).await?)
}

async fn tenant(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let t = load_tenant(&state, &id).await?;
    let v = TenantView {
        form: form_of(&t),
        errors: FormErrors::default(),
        saved: false,
        admin_form: AdminForm::default(),
        admin_errors: FormErrors::default(),
    };
    render(&tenant_page(&state, &me, &t, v).await?)
}

async fn update_tenant(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(id): Path<String>,
    Form(form): Form<TenantForm>,
) -> Result<Response, PageError> {
    let t = load_tenant(&state, &id).await?;
    let mut errors = FormErrors::default();
    let mut settings = settings_from(&form, &mut errors);
    settings.main_number = t.settings.main_number.clone();
    settings.time_zone = t.settings.time_zone.clone();
    let mut current = t.clone();
    if errors.is_empty() {
        match state.service.update_tenant(t.id, &settings).await {
            Ok(updated) => current = updated,
            Err(e) => field_error(&mut errors, e, &[])?,
        }
    }
    let saved = errors.is_empty();
    let v = TenantView {
        form: if saved { form_of(&current) } else { form },
        saved,
        errors,
        admin_form: AdminForm::default(),
        admin_errors: FormErrors::default(),
    };
    let status = if saved {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(status, &tenant_page(&state, &me, &current, v).await?)
}

async fn create_admin(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(id): Path<String>,
    Form(form): Form<AdminForm>,
) -> Result<Response, PageError> {
    let t = load_tenant(&state, &id).await?;
    let mut errors = FormErrors::default();
    let display_name = form.display_name.trim().to_owned();
    if display_name.chars().count() > 200 {
        errors.add("display_name", "At most 200 characters.");
    }
    match form.email.parse::<Email>() {
        Ok(email) if errors.is_empty() => {
            let password = crypto::generate_sip_password();
            let new = NewUser {
                tenant_id: Some(t.id),
                email,
                display_name,
                role: Role::Admin,
                password_hash: crypto::hash_password(password.clone()).await?,
            };
            match state.directory.create_user(&new).await {
                Ok(u) => {
                    return render(&AdminCreatedPage {
                        layout: Layout::new("Admin created", &me, "/operator/tenants"),
                        email: u.email.to_string(),
                        password,
                        back: format!("/operator/tenants/{}", t.id),
                    });
                }
                Err(e) => field_error(&mut errors, e, &[])?,
            }
        }
        Ok(_) => {}
        Err(e) => errors.add("email", e.message),
    }
    let v = TenantView {
        form: form_of(&t),
        errors: FormErrors::default(),
        saved: false,
        admin_form: form,
        admin_errors: errors,
    };
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &tenant_page(&state, &me, &t, v).await?,
    )
}

async fn suspend_confirm(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let t = load_tenant(&state, &id).await?;
    render(&ConfirmPage {
        layout: Layout::new("Suspend business", &me, "/operator/tenants"),
        question: format!("Suspend {}?", t.settings.name),
        detail: "Its users can no longer sign in, its API tokens stop working and its phones \
                 stop being served. Nothing is deleted; you can resume it later."
            .into(),
        action: format!("/operator/tenants/{}/suspend", t.id),
        button: "Suspend".into(),
        cancel: format!("/operator/tenants/{}", t.id),
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    pub confirm: Option<String>,
}

async fn suspend(
    State(state): State<AppState>,
    OperatorUser(_me): OperatorUser,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let t = load_tenant(&state, &id).await?;
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("/operator/tenants/{}/suspend", t.id)));
    }
    state.service.set_tenant_suspended(t.id, true).await?;
    tracing::info!(tenant = %t.id, "business suspended");
    Ok(see_other(&format!("/operator/tenants/{}", t.id)))
}

async fn resume(
    State(state): State<AppState>,
    OperatorUser(_me): OperatorUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let t = load_tenant(&state, &id).await?;
    state.service.set_tenant_suspended(t.id, false).await?;
    Ok(see_other(&format!("/operator/tenants/{}", t.id)))
}
