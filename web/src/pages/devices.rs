//! Devices of an extension: each is a SIP credential of its own (username `{number}-{k}`), with
//! an optional MAC address and model for phone provisioning. The password is shown once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use super::biz_numbers::page_of;
use super::business::{
    ConfirmForm, CredPath, ExtPath, base, edit_form, extension_page, load_credential, reveal_once,
};
use super::{field_error, see_other, ticked};
use crate::AppState;
use crate::auth::{AdminOf, parse_id};
use crate::error::{AppError, PageError};
use crate::service::credentials::new_credential;
use crate::views::business::{DeviceForm, ExtensionDeletePage, Link};
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

/// The delete page of an extension: a confirmation, or what blocks the delete, linked.
async fn extension_delete_page(
    state: &AppState,
    a: &AdminOf,
    e: &Extension,
    refused: Option<String>,
) -> Result<ExtensionDeletePage, PageError> {
    let b = base(&a.tenant);
    let deps = state.service.extension_dependents(a.tenant.id, e).await?;
    let mut numbers = Vec::with_capacity(deps.numbers.len());
    for n in &deps.numbers {
        let page = page_of(state, a.tenant.id, n.id).await?;
        numbers.push(Link {
            href: format!("{b}/numbers?page={page}#n-{}", n.id),
            label: n.e164.display(),
        });
    }
    let fallbacks = deps
        .fallbacks
        .iter()
        .map(|g| Link {
            href: format!("{b}/ring-groups/{}", g.id),
            label: format!("ring group {} ({})", g.number, g.settings.name),
        })
        .collect();
    let forwarders = deps
        .forwarders
        .iter()
        .map(|(f, how)| {
            (
                Link {
                    href: format!("{b}/extensions/{}", f.id),
                    label: format!("extension {} ({})", f.number, f.settings.display_name),
                },
                how.join(" and "),
            )
        })
        .collect();
    Ok(ExtensionDeletePage {
        layout: Layout::for_business(
            "Delete extension",
            &a.authed,
            &a.tenant,
            &format!("{b}/extensions"),
        ),
        extension: format!("{} ({})", e.number, e.settings.display_name),
        action: format!("{b}/extensions/{}/delete", e.id),
        cancel: format!("{b}/extensions/{}", e.id),
        numbers,
        fallbacks,
        forwarders,
        refused,
    })
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
    render(&extension_delete_page(&state, &a, &e, None).await?)
}

#[derive(Deserialize)]
pub struct DeleteExtensionForm {
    confirm: Option<String>,
    /// "yes": remove other extensions' forwards to this one, then delete it.
    clear_forwards: Option<String>,
}

async fn delete_extension(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<ExtPath>,
    Form(form): Form<DeleteExtensionForm>,
) -> Result<Response, PageError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let b = base(&a.tenant);
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("{b}/extensions/{}/delete", e.id)));
    }
    let clear = ticked(&form.clear_forwards);
    match state
        .service
        .delete_extension(a.tenant.id, e.id, clear)
        .await
    {
        Ok(()) => Ok(see_other(&format!("{b}/extensions"))),
        // Still in use: say by what, with links, on the delete page.
        Err(err @ AppError::Conflict { .. }) => {
            let page = extension_delete_page(&state, &a, &e, Some(err.public_message())).await?;
            render_status(StatusCode::CONFLICT, &page)
        }
        Err(err) => Err(err.into()),
    }
}
