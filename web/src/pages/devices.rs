//! Devices of an extension: each is a SIP credential of its own (username `{number}-{k}`), with
//! an optional MAC address and model for phone provisioning. The password is shown once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use store::*;

use super::business::{
    ConfirmForm, CredPath, ExtPath, base, edit_form, extension_page, load_credential, reveal_once,
};
use super::{field_error, see_other};
use crate::AppState;
use crate::auth::{AdminOf, parse_id};
use crate::error::{AppError, PageError};
use crate::service::credentials::new_credential;
use crate::views::business::DeviceForm;
use crate::views::{ConfirmPage, FormErrors, Layout, render, render_status};

/// Most credentials one extension may have.
pub const MAX_DEVICES: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/extensions/{ext}/devices", post(add))
        .route(
            "/t/{tenant}/extensions/{ext}/credentials/{cred}/delete",
            get(delete_confirm).post(delete),
        )
        .route(
            "/t/{tenant}/extensions/{ext}/delete",
            get(delete_extension_confirm).post(delete_extension),
        )
}

async fn add(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<ExtPath>,
    Form(form): Form<DeviceForm>,
) -> Result<Response, PageError> {
    let t = &a.tenant;
    let e = state
        .directory
        .get_extension(t.id, parse_id(&p.ext)?)
        .await?;
    let existing = state.directory.list_credentials(t.id, e.id).await?;
    let mut errors = FormErrors::default();
    let mac = match form.mac_address.trim() {
        "" => None,
        m => m
            .parse::<MacAddress>()
            .map_err(|err| errors.add("mac_address", err.message))
            .ok(),
    };
    let model = form.model.trim();
    if model.chars().count() > 100 {
        errors.add("model", "At most 100 characters.");
    }
    if existing.len() >= MAX_DEVICES {
        errors.add(
            "mac_address",
            format!("An extension can have at most {MAX_DEVICES} devices."),
        );
    }
    if errors.is_empty() {
        // The first free `{number}-{k}`.
        let username = (2..)
            .map(|k| format!("{}-{k}", e.number))
            .find(|u| !existing.iter().any(|c| c.username.as_str() == u))
            .unwrap_or_default();
        let (mut cred, password) = new_credential(&t.sip_domain, username.parse()?, None);
        cred.mac_address = mac;
        cred.model = (!model.is_empty()).then(|| model.to_owned());
        match state.service.add_credential(t.id, e.id, &cred).await {
            Ok(c) => {
                let b = base(t);
                let secret = crate::reveal::Secret {
                    title: format!("Device added to {}", e.number),
                    intro: format!(
                        "A new device of extension {} can sign in with these.",
                        e.number
                    ),
                    username: c.username.to_string(),
                    password,
                    back: format!("{b}/extensions/{}", e.id),
                };
                return Ok(reveal_once(&state, &a, secret));
            }
            Err(err) => field_error(&mut errors, err, &[("mac_address", "mac_address")])?,
        }
    }
    let mut page =
        extension_page(&state, &a, &e, edit_form(&e), FormErrors::default(), false).await?;
    page.device = form;
    page.device_errors = errors;
    render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

async fn delete_confirm(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<CredPath>,
) -> Result<Response, PageError> {
    let (e, c) = load_credential(&state, &a, &p).await?;
    let b = base(&a.tenant);
    render(&ConfirmPage {
        layout: Layout::for_business(
            "Delete device",
            &a.authed,
            &a.tenant,
            &format!("{b}/extensions"),
        ),
        question: format!("Delete the credentials {}?", c.username),
        detail: format!(
            "A phone using them is signed off at once and can no longer register to extension {}.",
            e.number
        ),
        action: format!("{b}/extensions/{}/credentials/{}/delete", e.id, c.id),
        button: "Delete".into(),
        cancel: format!("{b}/extensions/{}", e.id),
    })
}

async fn delete(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<CredPath>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let (e, c) = load_credential(&state, &a, &p).await?;
    let b = base(&a.tenant);
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!(
            "{b}/extensions/{}/credentials/{}/delete",
            e.id, c.id
        )));
    }
    state.service.delete_credential(a.tenant.id, &c).await?;
    Ok(see_other(&format!("{b}/extensions/{}", e.id)))
}

async fn delete_extension_confirm(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<ExtPath>,
) -> Result<Response, PageError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let b = base(&a.tenant);
    render(&ConfirmPage {
        layout: Layout::for_business(
            "Delete extension",
            &a.authed,
            &a.tenant,
            &format!("{b}/extensions"),
        ),
        question: format!(
            "Delete extension {} ({})?",
            e.number, e.settings.display_name
        ),
        detail: "Its phones are signed off, its SIP credentials deleted, and it leaves every ring \
                 group. Numbers routed to it must be routed elsewhere first."
            .into(),
        action: format!("{b}/extensions/{}/delete", e.id),
        button: "Delete extension".into(),
        cancel: format!("{b}/extensions/{}", e.id),
    })
}

async fn delete_extension(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<ExtPath>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let b = base(&a.tenant);
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("{b}/extensions/{}/delete", e.id)));
    }
    match state.service.delete_extension(a.tenant.id, e.id).await {
        Ok(()) => Ok(see_other(&format!("{b}/extensions"))),
        // Still routed to: say so on the extension's page, where the admin can act on it.
        Err(err @ AppError::Conflict { .. }) => {
            let mut errors = FormErrors::default();
            errors.add("delete", err.public_message());
            let page = extension_page(&state, &a, &e, edit_form(&e), errors, false).await?;
            render_status(StatusCode::CONFLICT, &page)
        }
        Err(err) => Err(err.into()),
    }
}
