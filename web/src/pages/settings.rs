//! A business's own settings (`/t/{tenant}/settings`): the caller ID shown on outside calls
//! from extensions without a number of their own, and the time zone the admin shows its
//! times in. Limits and calling permissions are the
//! operator's, on the business page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use crate::AppState;
use crate::auth::AdminOf;
use crate::error::PageError;
use crate::views::business::SettingsPage;
use crate::views::{FormErrors, Layout, render, render_status};

pub fn routes() -> Router<AppState> {
    Router::new().route("/t/{tenant}/settings", get(show).post(update))
}

async fn page(
    state: &AppState,
    a: &AdminOf,
    tenant: &Tenant,
    selected: String,
    zone: String,
    errors: FormErrors,
    saved: bool,
) -> Result<SettingsPage, PageError> {
    let numbers = state
        .directory
        .list_numbers(NumberScope::Tenant(tenant.id), Page::first(Page::MAX_LIMIT))
        .await?
        .items
        .into_iter()
        .map(|n| (n.e164.to_string(), n.e164.display()))
        .collect();
    let base = format!("/t/{}", tenant.id);
    Ok(SettingsPage {
        layout: Layout::for_business("Settings", &a.authed, tenant, &format!("{base}/settings")),
        base,
        name: tenant.settings.name.clone(),
        limits: format!(
            "{} calls at once, {} of them outside; international calls {}, premium-rate calls {}.",
            tenant.settings.max_concurrent_calls,
            tenant.settings.max_outside_calls,
            if tenant.settings.allow_international {
                "allowed"
            } else {
                "barred"
            },
            if tenant.settings.allow_premium {
                "allowed"
            } else {
                "barred"
            },
        ),
        numbers,
        selected,
        zones: zone_names(),
        zone,
        errors,
        saved,
    })
}

/// Every zone of the tz database by its IANA name ("Europe/London"), for the picker; the
/// legacy aliases without a region ("GB", "EST5EDT") are left out.
fn zone_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .filter(|n| n.contains('/') && !n.starts_with("Etc/") && !n.starts_with("SystemV/"))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn selected(t: &Tenant) -> String {
    t.settings
        .main_number
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

async fn show(State(state): State<AppState>, a: AdminOf) -> Result<Response, PageError> {
    let t = a.tenant.clone();
    let zone = t.settings.time_zone.clone();
    render(
        &page(
            &state,
            &a,
            &t,
            selected(&t),
            zone,
            FormErrors::default(),
            false,
        )
        .await?,
    )
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    main_number: String,
    /// An IANA name; absent keeps the current zone.
    #[serde(default)]
    time_zone: String,
}

async fn update(
    State(state): State<AppState>,
    a: AdminOf,
    Form(form): Form<SettingsForm>,
) -> Result<Response, PageError> {
    let t = a.tenant.clone();
    let mut errors = FormErrors::default();
    let main_number = match form.main_number.trim() {
        "" => None,
        n => match n.parse::<E164>() {
            // Only a number the business holds can be its caller ID.
            Ok(e) => match state.directory.get_number_by_e164(&e).await {
                Ok(num) if num.tenant_id == Some(t.id) => Some(e),
                Ok(_) => {
                    errors.add("main_number", "Choose one of your numbers.");
                    None
                }
                Err(err) if err.is_not_found() => {
                    errors.add("main_number", "Choose one of your numbers.");
                    None
                }
                Err(err) => return Err(err.into()),
            },
            Err(e) => {
                errors.add("main_number", e.message);
                None
            }
        },
    };
    let time_zone = match form.time_zone.trim() {
        "" => t.settings.time_zone.clone(),
        z => {
            if let Err(e) = check_time_zone(z) {
                errors.add("time_zone", e.to_string());
            }
            z.to_owned()
        }
    };
    if !errors.is_empty() {
        let p = page(&state, &a, &t, form.main_number, time_zone, errors, false).await?;
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &p);
    }
    let settings = TenantSettings {
        main_number,
        time_zone,
        ..t.settings.clone()
    };
    let t = state.service.update_tenant(t.id, &settings).await?;
    let zone = t.settings.time_zone.clone();
    render(
        &page(
            &state,
            &a,
            &t,
            selected(&t),
            zone,
            FormErrors::default(),
            true,
        )
        .await?,
    )
}
