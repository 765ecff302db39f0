//! Operator pages: businesses (create, settings, suspend, first admin) and the number inventory.

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
use crate::error::{AppError, PageError};
use crate::views::operator::*;
use crate::views::{ConfirmPage, FormErrors, Layout, Pager, render, render_status};

pub const PER_PAGE: u32 = 50;
/// Most numbers one add action may create.
pub const MAX_RANGE: u64 = 10_000;

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
        .route("/operator/numbers", get(numbers).post(add_numbers))
        .route("/operator/numbers/{number}/assign", post(assign_number))
        .route(
            "/operator/numbers/{number}/delete",
            get(delete_number_confirm).post(delete_number),
        )
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<u32>,
    unassigned: Option<String>,
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
    let mut current = t.clone();
    if errors.is_empty() {
        match state.directory.update_tenant(t.id, &settings).await {
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
    confirm: Option<String>,
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
    state.directory.set_tenant_suspended(t.id, true).await?;
    tracing::info!(tenant = %t.id, "business suspended");
    Ok(see_other(&format!("/operator/tenants/{}", t.id)))
}

async fn resume(
    State(state): State<AppState>,
    OperatorUser(_me): OperatorUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let t = load_tenant(&state, &id).await?;
    state.directory.set_tenant_suspended(t.id, false).await?;
    Ok(see_other(&format!("/operator/tenants/{}", t.id)))
}

// ------------------------------------------------------------------ numbers

/// Parses "first" and optional "last" into the first number and a count (1 for a single
/// number). Errors are keyed by the form field.
pub fn parse_range(first: &str, last: &str) -> Result<(E164, u32), (&'static str, String)> {
    let a: E164 = first
        .parse()
        .map_err(|e: ParseError| ("first", e.message))?;
    if last.trim().is_empty() {
        return Ok((a, 1));
    }
    let b: E164 = last.parse().map_err(|e: ParseError| ("last", e.message))?;
    let (x, y) = (a.digits(), b.digits());
    let (Ok(xn), Ok(yn)) = (x.parse::<u64>(), y.parse::<u64>()) else {
        return Err(("last", "The range cannot be read as numbers.".into()));
    };
    if x.len() != y.len() || yn < xn {
        return Err((
            "last",
            format!(
                "The last number must be at or above {} and the same length.",
                a.display()
            ),
        ));
    }
    let count = yn - xn + 1;
    if count > MAX_RANGE {
        return Err((
            "last",
            format!("That is {count} numbers; add at most {MAX_RANGE} at a time."),
        ));
    }
    Ok((a, count as u32))
}

async fn numbers_page(
    state: &AppState,
    me: &crate::session::Authed,
    page: u32,
    unassigned_only: bool,
    form: NumberAddForm,
    errors: FormErrors,
    notice: Option<String>,
) -> Result<NumbersPage, PageError> {
    let scope = if unassigned_only {
        NumberScope::Unassigned
    } else {
        NumberScope::All
    };
    let list = state
        .directory
        .list_numbers(scope, Page::new(PER_PAGE, (page - 1) * PER_PAGE))
        .await?;
    let tenants = state
        .directory
        .list_tenants(Page::first(Page::MAX_LIMIT))
        .await?
        .items;
    let find = |id: Option<TenantId>| id.and_then(|id| tenants.iter().find(|t| t.id == id));
    let name_of = |id| {
        find(id)
            .map(|t| t.settings.name.clone())
            .unwrap_or_default()
    };
    let domain_of = |id| {
        find(id)
            .map(|t| t.sip_domain.to_string())
            .unwrap_or_default()
    };
    let rows = list
        .items
        .iter()
        .map(|n| NumberRow {
            id: n.id.to_string(),
            display: n.e164.display(),
            e164: n.e164.to_string(),
            kind: n.number_type.to_string().replace('_', "-"),
            tenant: name_of(n.tenant_id),
            tenant_domain: domain_of(n.tenant_id),
        })
        .collect();
    let filter = if unassigned_only { "unassigned=1&" } else { "" };
    Ok(NumbersPage {
        layout: Layout::new("Numbers", me, "/operator/numbers"),
        rows,
        tenants: tenants
            .iter()
            .map(|t| TenantOption {
                id: t.id.to_string(),
                name: t.settings.name.clone(),
                domain: t.sip_domain.to_string(),
            })
            .collect(),
        pager: Pager::new(page, PER_PAGE, list.total, |n| {
            format!("/operator/numbers?{filter}page={n}")
        }),
        unassigned_only,
        form,
        errors,
        notice,
    })
}

async fn numbers(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let unassigned = super::ticked(&q.unassigned);
    let page = numbers_page(
        &state,
        &me,
        page_number(q.page),
        unassigned,
        NumberAddForm::default(),
        FormErrors::default(),
        None,
    )
    .await?;
    render(&page)
}

async fn add_numbers(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Form(form): Form<NumberAddForm>,
) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    let mut notice = None;
    let tenant = match form.tenant.trim() {
        "" => Ok(None),
        t => t.parse::<TenantId>().map(Some).map_err(|_| ()),
    };
    match (parse_range(&form.first, &form.last), tenant) {
        (_, Err(())) => errors.add("tenant", "Choose a business from the list."),
        (Err((field, msg)), _) => errors.add(field, msg),
        (Ok((first, count)), Ok(tenant)) => {
            let result = if count == 1 {
                state
                    .directory
                    .add_number(&first, tenant)
                    .await
                    .map(|n| vec![n])
            } else {
                state
                    .directory
                    .add_number_range(&first, count, tenant)
                    .await
            };
            match result {
                Ok(added) => {
                    notice = Some(match added.as_slice() {
                        [one] => format!("Added {}.", one.e164.display()),
                        many => format!("Added {} numbers.", many.len()),
                    })
                }
                Err(e) => field_error(
                    &mut errors,
                    e,
                    &[
                        ("e164", "first"),
                        ("count", "last"),
                        ("tenant_id", "tenant"),
                    ],
                )?,
            }
        }
    }
    let ok = errors.is_empty();
    let page = numbers_page(
        &state,
        &me,
        1,
        false,
        if ok { NumberAddForm::default() } else { form },
        errors,
        notice,
    )
    .await?;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(status, &page)
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    tenant: String,
}

async fn assign_number(
    State(state): State<AppState>,
    OperatorUser(_me): OperatorUser,
    Path(id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Result<Response, PageError> {
    let id: NumberId = parse_id(&id)?;
    // The business by its SIP domain (what the field offers) or its id; empty: inventory.
    let unknown = || AppError::invalid("tenant", "No business has that SIP domain.");
    let tenant = match form.tenant.trim() {
        "" => None,
        t => match t.parse::<TenantId>() {
            Ok(id) => Some(id),
            Err(_) => {
                let domain: SipDomain = t.to_lowercase().parse().map_err(|_| unknown())?;
                match state.directory.get_tenant_by_domain(&domain).await {
                    Ok(t) => Some(t.id),
                    Err(e) if e.is_not_found() => return Err(unknown().into()),
                    Err(e) => return Err(e.into()),
                }
            }
        },
    };
    state.directory.assign_number(id, tenant).await?;
    Ok(see_other("/operator/numbers"))
}

/// The number, if it is in the inventory (a business's number is taken back first).
async fn inventory_number(state: &AppState, id: &str) -> Result<Number, PageError> {
    let id: NumberId = parse_id(id)?;
    Ok(state
        .directory
        .get_number(NumberScope::Unassigned, id)
        .await?)
}

async fn delete_number_confirm(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let n = inventory_number(&state, &id).await?;
    render(&ConfirmPage {
        layout: Layout::new("Delete number", &me, "/operator/numbers"),
        question: format!("Delete {} from the inventory?", n.e164.display()),
        detail: "It disappears from the platform; add it again to bring it back.".into(),
        action: format!("/operator/numbers/{}/delete", n.id),
        button: "Delete number".into(),
        cancel: "/operator/numbers".into(),
    })
}

async fn delete_number(
    State(state): State<AppState>,
    OperatorUser(_me): OperatorUser,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let n = inventory_number(&state, &id).await?;
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("/operator/numbers/{}/delete", n.id)));
    }
    state.directory.delete_number(n.id).await?;
    Ok(see_other("/operator/numbers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let (first, n) = parse_range("0113 496 0000", "0113 496 0099").unwrap();
        assert_eq!((first.as_str(), n), ("+441134960000", 100));
        assert_eq!(parse_range("+44 (0)20 7946 0018", "").unwrap().1, 1);
        assert_eq!(
            parse_range("0113 496 0099", "0113 496 0000").unwrap_err().0,
            "last"
        );
        assert_eq!(parse_range("nonsense", "").unwrap_err().0, "first");
        let e = parse_range("0113 496 0000", "0113 497 0000").unwrap_err();
        assert!(e.1.contains("at most 10000"), "{e:?}");
    }
}
