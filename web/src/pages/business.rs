//! Business admin pages, all under `/t/{tenant}` and all behind [`AdminOf`]: extensions (list,
//! search, create with generated credentials, edit forwarding and DND, new password) and the
//! business's numbers (route to an extension).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use store::*;
use time::OffsetDateTime;

use super::{field_error, page_number, see_other, ticked};
use crate::AppState;
use crate::auth::{AdminOf, parse_id};
use crate::error::PageError;
use crate::reveal::{Secret, View};
use crate::views::business::*;
use crate::views::{
    ConfirmPage, FormErrors, Layout, Pager, Zone, encode_query, render, render_status,
};

pub const PER_PAGE: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/t/{tenant}/extensions",
            get(extensions).post(create_extension),
        )
        .route("/t/{tenant}/extensions/new", get(new_extension))
        .route(
            "/t/{tenant}/extensions/{ext}/dnd",
            axum::routing::post(toggle_dnd),
        )
        .route(
            "/t/{tenant}/extensions/{ext}",
            get(extension).post(update_extension),
        )
        .route(
            "/t/{tenant}/extensions/{ext}/credentials/{cred}/regenerate",
            get(regenerate_confirm).post(regenerate),
        )
        .route("/t/{tenant}/credentials/{token}", get(show_credentials))
}

/// Keeps a new password for its one view and redirects there (POST/redirect/GET): a reload
/// of the page that shows it never posts the form again.
pub(crate) fn reveal_once(state: &AppState, a: &AdminOf, secret: Secret) -> Response {
    let token = state.reveals.put(
        &a.authed.session.id_hash,
        a.tenant.id,
        secret,
        std::time::Instant::now(),
    );
    see_other(&format!("{}/credentials/{token}", base(&a.tenant)))
}

#[derive(Deserialize)]
pub struct RevealPath {
    pub token: String,
}

/// The one view of a new password; after it, "shown once" (410).
async fn show_credentials(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<RevealPath>,
) -> Result<Response, PageError> {
    let t = &a.tenant;
    let b = base(t);
    let view = state.reveals.take(
        &p.token,
        &a.authed.session.id_hash,
        t.id,
        std::time::Instant::now(),
    );
    let (back, back_label) = match view {
        View::Secret(s) => {
            return render(&CredentialsPage {
                layout: Layout::for_business(s.title, &a.authed, t, &format!("{b}/extensions")),
                intro: s.intro,
                username: s.username,
                password: s.password,
                domain: t.sip_domain.to_string(),
                registrar: registrar(&state, t),
                back: s.back,
            });
        }
        View::Shown { back } => (back, "Go to the extension".to_owned()),
        View::Unknown => (format!("{b}/extensions"), "Back to extensions".to_owned()),
    };
    render_status(
        StatusCode::GONE,
        &CredentialsShownPage {
            layout: Layout::for_business(
                "Password already shown",
                &a.authed,
                t,
                &format!("{b}/extensions"),
            ),
            back,
            back_label,
        },
    )
}

pub fn base(t: &Tenant) -> String {
    format!("/t/{}", t.id)
}

/// The SIP registrar shown to users: the configured address, or the tenant's domain.
pub fn registrar(state: &AppState, t: &Tenant) -> String {
    state
        .config
        .sip_registrar
        .clone()
        .unwrap_or_else(|| t.sip_domain.to_string())
}

#[derive(Deserialize)]
pub struct ListQuery {
    pub q: Option<String>,
    pub page: Option<u32>,
}

fn forwarding_summary(f: &Forwarding) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &f.always {
        parts.push(format!("always → {t}"));
    }
    if let Some(t) = &f.busy {
        parts.push(format!("busy → {t}"));
    }
    if let Some(t) = &f.no_answer {
        parts.push(format!("no answer → {t}"));
    }
    parts.join(", ")
}

/// Whether an extension's phones are registered, from the stored registrations.
#[derive(Clone, Copy, Debug, Default)]
struct Presence {
    online: bool,
    last: Option<OffsetDateTime>,
}

/// Presence of each extension of the business that ever registered (two queries).
async fn presence(
    state: &AppState,
    tenant: TenantId,
    now: OffsetDateTime,
) -> Result<HashMap<ExtensionId, Presence>, PageError> {
    let mut map: HashMap<ExtensionId, Presence> = HashMap::new();
    for (ext, at) in state.directory.list_last_registered(tenant).await? {
        map.entry(ext).or_default().last = Some(at);
    }
    for (_, r) in state
        .directory
        .list_tenant_registrations(tenant, now)
        .await?
    {
        map.entry(r.binding.extension_id).or_default().online = true;
    }
    Ok(map)
}

fn last_registered(at: Option<OffsetDateTime>, zone: &Zone) -> String {
    at.map(|t| zone.minute(t)).unwrap_or_else(|| "never".into())
}

fn ext_row(base: &str, e: &Extension, p: Presence, zone: &Zone) -> ExtRow {
    ExtRow {
        id: e.id.to_string(),
        href: format!("{base}/extensions/{}", e.id),
        number: e.number.to_string(),
        name: e.settings.display_name.clone(),
        dnd: e.settings.dnd,
        forwarding: forwarding_summary(&e.settings.forwarding),
        online: p.online,
        last_registered: last_registered(p.last, zone),
    }
}

async fn extensions(
    State(state): State<AppState>,
    a: AdminOf,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let t = &a.tenant;
    let search =
        q.q.unwrap_or_default()
            .trim()
            .chars()
            .take(100)
            .collect::<String>();
    let page = page_number(q.page);
    let list = state
        .directory
        .list_extensions(
            t.id,
            (!search.is_empty()).then_some(search.as_str()),
            Page::new(PER_PAGE, (page - 1) * PER_PAGE),
        )
        .await?;
    let b = base(t);
    let zone = Zone::of(t);
    let seen = presence(&state, t.id, OffsetDateTime::now_utc()).await?;
    let rows = list
        .items
        .iter()
        .map(|e| ext_row(&b, e, seen.get(&e.id).copied().unwrap_or_default(), &zone))
        .collect();
    let qs = encode_query(&search);
    render(&ExtensionsPage {
        layout: Layout::for_business("Extensions", &a.authed, t, &format!("{b}/extensions")),
        pager: Pager::new(page, PER_PAGE, list.total, |n| {
            format!("{b}/extensions?q={qs}&page={n}")
        }),
        base: b,
        rows,
        q: search,
    })
}

async fn new_extension(a: AdminOf) -> Result<Response, PageError> {
    let b = base(&a.tenant);
    render(&ExtensionNewPage {
        layout: Layout::for_business(
            "Create an extension",
            &a.authed,
            &a.tenant,
            &format!("{b}/extensions"),
        ),
        base: b,
        form: ExtNewForm::default(),
        errors: FormErrors::default(),
    })
}

async fn create_extension(
    State(state): State<AppState>,
    a: AdminOf,
    Form(form): Form<ExtNewForm>,
) -> Result<Response, PageError> {
    let t = &a.tenant;
    let b = base(t);
    let mut errors = FormErrors::default();
    let name = form.display_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.add("display_name", "Enter a name of 1 to 200 characters.");
    }
    let number = form
        .number
        .parse::<ExtensionNumber>()
        .map_err(|e| errors.add("number", e.message))
        .ok();
    if let (Some(number), true) = (number, errors.is_empty()) {
        let new = NewExtension {
            number,
            settings: ExtensionSettings::new(name),
        };
        match state.service.create_extension(t, &new, None).await {
            Ok((ext, cred, password)) => {
                tracing::info!(tenant = %t.id, extension = %ext.number, "extension created");
                let secret = Secret {
                    title: format!("Extension {} created", ext.number),
                    intro: format!(
                        "Extension {} ({}) is ready.",
                        ext.number, ext.settings.display_name
                    ),
                    username: cred.username.to_string(),
                    password,
                    back: format!("{b}/extensions/{}", ext.id),
                };
                return Ok(reveal_once(&state, &a, secret));
            }
            Err(e) => field_error(&mut errors, e, &[("username", "number")])?,
        }
    }
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ExtensionNewPage {
            layout: Layout::for_business(
                "Create an extension",
                &a.authed,
                t,
                &format!("{b}/extensions"),
            ),
            base: b,
            form,
            errors,
        },
    )
}

#[derive(Deserialize)]
pub struct ExtPath {
    pub ext: String,
}

pub fn edit_form(e: &Extension) -> ExtEditForm {
    let s = &e.settings;
    let show = |t: &Option<ForwardTarget>| t.as_ref().map(|t| t.to_string()).unwrap_or_default();
    ExtEditForm {
        display_name: s.display_name.clone(),
        forward_always: show(&s.forwarding.always),
        forward_busy: show(&s.forwarding.busy),
        forward_no_answer: show(&s.forwarding.no_answer),
        no_answer_timeout_secs: s.no_answer_timeout_secs.to_string(),
        max_concurrent_calls: s.max_concurrent_calls.to_string(),
        dnd: s.dnd.then(|| "on".into()),
        user: s.user_id.map(|u| u.to_string()).unwrap_or_default(),
    }
}

pub(crate) async fn extension_page(
    state: &AppState,
    a: &AdminOf,
    e: &Extension,
    form: ExtEditForm,
    errors: FormErrors,
    saved: bool,
) -> Result<ExtensionPage, PageError> {
    let b = base(&a.tenant);
    let now = OffsetDateTime::now_utc();
    // All stored bindings of the extension, expired ones included until the sweep removes
    // them (it then keeps their time as the credential's last_seen_at).
    let bindings = state
        .directory
        .list_registrations(a.tenant.id, e.id)
        .await?;
    let creds = state.directory.list_credentials(a.tenant.id, e.id).await?;
    let zone = Zone::of(&a.tenant);
    let mut failures: Vec<(OffsetDateTime, FailureRow)> = creds
        .iter()
        .flat_map(|c| {
            state
                .reg_failures
                .recent(a.tenant.id, c.id)
                .into_iter()
                .map(|f| {
                    let row = FailureRow {
                        username: c.username.to_string(),
                        at: zone.minute(f.at),
                        source: f.source.to_string(),
                        reason: f.reason,
                        count: f.count,
                    };
                    (f.at, row)
                })
        })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.0));
    let failures = failures.into_iter().map(|(_, r)| r).collect();
    let credentials = creds
        .into_iter()
        .map(|c| {
            let mine = bindings.iter().filter(|r| r.binding.credential_id == c.id);
            let online = mine.clone().filter(|r| r.binding.expires_at > now).count();
            let last = mine.map(|r| r.updated_at).chain(c.last_seen_at).max();
            CredRow {
                id: c.id.to_string(),
                username: c.username.to_string(),
                device: c.model.clone().unwrap_or_default(),
                online,
                last_registered: last_registered(last, &zone),
            }
        })
        .collect();
    let users = state
        .directory
        .list_users(a.tenant.id)
        .await?
        .into_iter()
        .map(|u| (u.id.to_string(), u.email.to_string()))
        .collect();
    Ok(ExtensionPage {
        users,
        device: DeviceForm::default(),
        device_errors: FormErrors::default(),
        layout: Layout::for_business(
            format!("Extension {} · {}", e.number, e.settings.display_name),
            &a.authed,
            &a.tenant,
            &format!("{b}/extensions"),
        ),
        base: b,
        id: e.id.to_string(),
        number: e.number.to_string(),
        form,
        errors,
        saved,
        credentials,
        failures,
    })
}

async fn extension(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<ExtPath>,
) -> Result<Response, PageError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let page = extension_page(&state, &a, &e, edit_form(&e), FormErrors::default(), false).await?;
    render(&page)
}

pub fn parse_forward(
    v: &str,
    field: &'static str,
    errors: &mut FormErrors,
) -> Option<ForwardTarget> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    v.parse()
        .map_err(|e: ParseError| errors.add(field, e.message))
        .ok()
}

async fn update_extension(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<ExtPath>,
    Form(form): Form<ExtEditForm>,
) -> Result<Response, PageError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let mut errors = FormErrors::default();
    let name = form.display_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.add("display_name", "Enter a name of 1 to 200 characters.");
    }
    let timeout = match form.no_answer_timeout_secs.trim().parse::<u32>() {
        Ok(n) if (5..=300).contains(&n) => n,
        _ => {
            errors.add(
                "no_answer_timeout_secs",
                "Enter a number of seconds from 5 to 300.",
            );
            25
        }
    };
    let call_limit = match form.max_concurrent_calls.trim() {
        "" => e.settings.max_concurrent_calls,
        v => match v.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.add(
                    "max_concurrent_calls",
                    "Enter a number of calls from 1 to 1000.",
                );
                e.settings.max_concurrent_calls
            }
        },
    };
    let forwarding = Forwarding {
        always: parse_forward(&form.forward_always, "forward_always", &mut errors),
        busy: parse_forward(&form.forward_busy, "forward_busy", &mut errors),
        no_answer: parse_forward(&form.forward_no_answer, "forward_no_answer", &mut errors),
    };
    let user_id = match form.user.trim() {
        "" => None,
        u => u
            .parse::<UserId>()
            .map_err(|_| errors.add("user", "Choose a user from the list."))
            .ok(),
    };
    let mut current = e.clone();
    if errors.is_empty() {
        let settings = ExtensionSettings {
            display_name: name,
            user_id,
            no_answer_timeout_secs: timeout,
            forwarding,
            dnd: ticked(&form.dnd),
            max_concurrent_calls: call_limit,
        };
        match state
            .service
            .update_extension(a.tenant.id, e.id, &settings)
            .await
        {
            Ok(updated) => current = updated,
            Err(err) => field_error(
                &mut errors,
                err,
                &[("forward", "forward_always"), ("user_id", "user")],
            )?,
        }
    }
    let saved = errors.is_empty();
    let form = if saved { edit_form(&current) } else { form };
    let page = extension_page(&state, &a, &current, form, errors, saved).await?;
    let status = if saved {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(status, &page)
}

#[derive(Deserialize)]
pub struct CredPath {
    pub ext: String,
    pub cred: String,
}

/// The credential, checked to belong to this tenant and this extension.
pub(crate) async fn load_credential(
    state: &AppState,
    a: &AdminOf,
    p: &CredPath,
) -> Result<(Extension, SipCredential), PageError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let c = state
        .directory
        .get_credential(a.tenant.id, parse_id(&p.cred)?)
        .await?;
    if c.extension_id != e.id {
        return Err(PageError(crate::error::AppError::NotFound));
    }
    Ok((e, c))
}

async fn regenerate_confirm(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<CredPath>,
) -> Result<Response, PageError> {
    let (e, c) = load_credential(&state, &a, &p).await?;
    let b = base(&a.tenant);
    render(&ConfirmPage {
        layout: Layout::for_business(
            "New SIP password",
            &a.authed,
            &a.tenant,
            &format!("{b}/extensions"),
        ),
        question: format!("Give {} a new SIP password?", c.username),
        detail: format!(
            "The current password of extension {} stops working at once and phones using it are \
             signed off until they are given the new one.",
            e.number
        ),
        action: format!("{b}/extensions/{}/credentials/{}/regenerate", e.id, c.id),
        button: "Generate a new password".into(),
        cancel: format!("{b}/extensions/{}", e.id),
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    pub confirm: Option<String>,
}

async fn regenerate(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<CredPath>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let (e, c) = load_credential(&state, &a, &p).await?;
    let b = base(&a.tenant);
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!(
            "{b}/extensions/{}/credentials/{}/regenerate",
            e.id, c.id
        )));
    }
    let password = state.service.regenerate_credential(&a.tenant, &c).await?;
    tracing::info!(tenant = %a.tenant.id, extension = %e.number, "SIP password regenerated");
    let secret = Secret {
        title: format!("New password for {}", e.number),
        intro: format!("Extension {} has a new SIP password.", e.number),
        username: c.username.to_string(),
        password,
        back: format!("{b}/extensions/{}", e.id),
    };
    Ok(reveal_once(&state, &a, secret))
}

#[derive(Deserialize)]
pub struct DndForm {
    #[serde(default)]
    dnd: String,
}

/// The inline DND switch of the extensions list: htmx gets the new row back, a plain form post
/// goes back to the list.
async fn toggle_dnd(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<ExtPath>,
    headers: axum::http::HeaderMap,
    Form(form): Form<DndForm>,
) -> Result<Response, PageError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let mut settings = e.settings.clone();
    settings.dnd = form.dnd == "on";
    let e = state
        .service
        .update_extension(a.tenant.id, e.id, &settings)
        .await?;
    let b = base(&a.tenant);
    if headers.get("hx-request").is_some() {
        let seen = presence(&state, a.tenant.id, OffsetDateTime::now_utc()).await?;
        return render(&ExtRowPartial {
            layout: Layout::for_business("Extensions", &a.authed, &a.tenant, ""),
            e: ext_row(
                &b,
                &e,
                seen.get(&e.id).copied().unwrap_or_default(),
                &Zone::of(&a.tenant),
            ),
        });
    }
    Ok(see_other(&format!("{b}/extensions")))
}
