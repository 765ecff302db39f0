//! Operator pages for upstream SIP trunks: list, add, edit (priority, enable), delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use super::{field_error, see_other, ticked};
use crate::AppState;
use crate::auth::{OperatorUser, parse_id};
use crate::error::PageError;
use crate::session::Authed;
use crate::views::trunks::*;
use crate::views::{ConfirmPage, FormErrors, Layout, render, render_status};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operator/trunks", get(list).post(create))
        .route("/operator/trunks/new", get(new))
        .route("/operator/trunks/{trunk}", get(edit).post(update))
        .route(
            "/operator/trunks/{trunk}/delete",
            get(delete_confirm).post(delete),
        )
}

async fn list(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
) -> Result<Response, PageError> {
    let rows = state
        .directory
        .list_trunks()
        .await?
        .into_iter()
        .map(|t| TrunkRow {
            status: describe(state.trunk_states.state(t.id).as_ref()),
            id: t.id.to_string(),
            target: format!(
                "{}:{};transport={}",
                t.settings.host, t.settings.port, t.settings.transport
            ),
            name: t.settings.name,
            priority: t.settings.priority,
            emergency: t
                .settings
                .emergency_priority
                .map(|p| p.to_string())
                .unwrap_or_else(|| "—".into()),
            enabled: t.settings.enabled,
        })
        .collect();
    render(&TrunksPage {
        layout: Layout::new("Trunks", &me, "/operator/trunks"),
        rows,
    })
}

fn form_page(
    me: &Authed,
    id: Option<TrunkId>,
    has_password: bool,
    form: TrunkForm,
    errors: FormErrors,
    saved: bool,
) -> TrunkFormPage {
    let (title, action) = match id {
        Some(id) => (
            format!("Trunk {}", form.name),
            format!("/operator/trunks/{id}"),
        ),
        None => ("Add a trunk".to_owned(), "/operator/trunks".to_owned()),
    };
    TrunkFormPage {
        layout: Layout::new(title, me, "/operator/trunks"),
        action,
        id: id.map(|i| i.to_string()),
        has_password,
        form,
        errors,
        saved,
        status: Vec::new(),
    }
}

async fn new(OperatorUser(me): OperatorUser) -> Result<Response, PageError> {
    let form = TrunkForm {
        port: "5060".into(),
        transport: "udp".into(),
        priority: "10".into(),
        enabled: Some("on".into()),
        calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND.to_string(),
        register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES.to_string(),
        ..TrunkForm::default()
    };
    render(&form_page(
        &me,
        None,
        false,
        form,
        FormErrors::default(),
        false,
    ))
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The form, validated; `old_password` is kept when the password field is left empty.
fn settings_from(
    f: &TrunkForm,
    old_password: Option<Secret>,
    errors: &mut FormErrors,
) -> TrunkSettings {
    let port = f.port.trim().parse::<u16>().unwrap_or_else(|_| {
        errors.add("port", "Enter a port from 1 to 65535.");
        5060
    });
    let transport = match f.transport.parse::<Transport>() {
        Ok(t @ (Transport::Udp | Transport::Tcp | Transport::Tls)) => t,
        _ => {
            errors.add("transport", "Choose udp, tcp or tls.");
            Transport::Udp
        }
    };
    let priority = f.priority.trim().parse::<i32>().unwrap_or_else(|_| {
        errors.add("priority", "Enter a whole number.");
        0
    });
    let emergency_priority = match opt(&f.emergency_priority) {
        None => None,
        Some(p) => p.parse::<i32>().map(Some).unwrap_or_else(|_| {
            errors.add(
                "emergency_priority",
                "Enter a whole number, or leave empty.",
            );
            None
        }),
    };
    // empty: the default
    let calls_per_second = match opt(&f.calls_per_second) {
        None => TrunkSettings::DEFAULT_CALLS_PER_SECOND,
        Some(v) => v.parse::<u32>().unwrap_or_else(|_| {
            errors.add("calls_per_second", "Enter a whole number from 1 to 1000.");
            TrunkSettings::DEFAULT_CALLS_PER_SECOND
        }),
    };
    let register_expires = match opt(&f.register_expires) {
        None => TrunkSettings::DEFAULT_REGISTER_EXPIRES,
        Some(v) => v.parse::<u32>().unwrap_or_else(|_| {
            errors.add("register_expires", "Enter seconds from 60 to 86400.");
            TrunkSettings::DEFAULT_REGISTER_EXPIRES
        }),
    };
    let s = TrunkSettings {
        name: f.name.trim().to_owned(),
        host: f.host.trim().to_owned(),
        port,
        transport,
        username: opt(&f.username),
        password: if f.password.is_empty() {
            old_password
        } else {
            Some(Secret::new(f.password.clone()))
        },
        from_domain: opt(&f.from_domain),
        priority,
        emergency_priority,
        enabled: ticked(&f.enabled),
        inbound_source: opt(&f.inbound_source),
        force_wide_source: ticked(&f.force_wide_source),
        inbound_auth: ticked(&f.inbound_auth),
        calls_per_second,
        register: ticked(&f.register),
        registrar: opt(&f.registrar),
        register_expires,
    };
    // Everything the store would refuse, all at once (a field keeps its first message).
    for (field, message) in s.problems() {
        errors.add(field, sentence(&message));
    }
    s
}

/// A store message as a sentence: capital first letter, full stop.
fn sentence(m: &str) -> String {
    let mut chars = m.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

async fn create(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Form(form): Form<TrunkForm>,
) -> Result<Response, PageError> {
    let mut errors = FormErrors::default();
    let s = settings_from(&form, None, &mut errors);
    if errors.is_empty() {
        match state.service.create_trunk(&s).await {
            Ok(t) => return Ok(see_other(&format!("/operator/trunks/{}", t.id))),
            Err(e) => field_error(&mut errors, e, &[])?,
        }
    }
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &form_page(&me, None, false, form, errors, false),
    )
}

fn form_of(t: &Trunk) -> TrunkForm {
    let s = &t.settings;
    TrunkForm {
        name: s.name.clone(),
        host: s.host.clone(),
        port: s.port.to_string(),
        transport: s.transport.to_string(),
        username: s.username.clone().unwrap_or_default(),
        password: String::new(),
        from_domain: s.from_domain.clone().unwrap_or_default(),
        priority: s.priority.to_string(),
        emergency_priority: s
            .emergency_priority
            .map(|p| p.to_string())
            .unwrap_or_default(),
        inbound_source: s.inbound_source.clone().unwrap_or_default(),
        force_wide_source: s.force_wide_source.then(|| "on".into()),
        inbound_auth: s.inbound_auth.then(|| "on".into()),
        calls_per_second: s.calls_per_second.to_string(),
        register: s.register.then(|| "on".into()),
        registrar: s.registrar.clone().unwrap_or_default(),
        register_expires: s.register_expires.to_string(),
        enabled: s.enabled.then(|| "on".into()),
    }
}

#[derive(Deserialize)]
pub struct TrunkPath {
    trunk: String,
}

async fn edit(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<TrunkPath>,
) -> Result<Response, PageError> {
    let t = state.directory.get_trunk(parse_id(&p.trunk)?).await?;
    let mut page = form_page(
        &me,
        Some(t.id),
        t.settings.password.is_some(),
        form_of(&t),
        FormErrors::default(),
        false,
    );
    page.status = describe(state.trunk_states.state(t.id).as_ref());
    render(&page)
}

async fn update(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<TrunkPath>,
    Form(form): Form<TrunkForm>,
) -> Result<Response, PageError> {
    let t = state.directory.get_trunk(parse_id(&p.trunk)?).await?;
    let mut errors = FormErrors::default();
    let s = settings_from(&form, t.settings.password.clone(), &mut errors);
    if errors.is_empty() {
        match state.service.update_trunk(t.id, &s).await {
            Ok(t) => {
                let has = t.settings.password.is_some();
                return render(&form_page(
                    &me,
                    Some(t.id),
                    has,
                    form_of(&t),
                    FormErrors::default(),
                    true,
                ));
            }
            Err(e) => field_error(&mut errors, e, &[])?,
        }
    }
    let has = t.settings.password.is_some();
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &form_page(&me, Some(t.id), has, form, errors, false),
    )
}

async fn delete_confirm(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(p): Path<TrunkPath>,
) -> Result<Response, PageError> {
    let t = state.directory.get_trunk(parse_id(&p.trunk)?).await?;
    render(&ConfirmPage {
        layout: Layout::new("Delete trunk", &me, "/operator/trunks"),
        question: format!("Delete the trunk {}?", t.settings.name),
        detail: "Calls stop using it at once. To stop it only for a while, disable it instead."
            .into(),
        action: format!("/operator/trunks/{}/delete", t.id),
        button: "Delete trunk".into(),
        cancel: format!("/operator/trunks/{}", t.id),
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

async fn delete(
    State(state): State<AppState>,
    OperatorUser(_me): OperatorUser,
    Path(p): Path<TrunkPath>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let t = state.directory.get_trunk(parse_id(&p.trunk)?).await?;
    if f.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("/operator/trunks/{}/delete", t.id)));
    }
    state.service.delete_trunk(t.id).await?;
    Ok(see_other("/operator/trunks"))
}
