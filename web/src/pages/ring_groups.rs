//! A business's ring groups (`/t/{tenant}/ring-groups`): list, create, edit (settings, members
//! and their order, fallback) and delete; plus the helpers the API and the numbers page share:
//! reading a typed extension / ring group number as a route target, and a member list.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use super::business::{ConfirmForm, base};
use super::{field_error, see_other};
use crate::AppState;
use crate::auth::{AdminOf, parse_id};
use crate::error::{AppError, PageError};
use crate::views::ring_groups::*;
use crate::views::{ConfirmPage, FormErrors, Layout, render, render_status};

pub use crate::service::ring_groups::parse_members;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/ring-groups", get(list).post(create))
        .route("/t/{tenant}/ring-groups/new", get(new_form))
        .route("/t/{tenant}/ring-groups/{group}", get(show).post(update))
        .route(
            "/t/{tenant}/ring-groups/{group}/delete",
            get(delete_confirm).post(delete),
        )
}

// ---------------------------------------------------------------- shared with the API

/// What a typed number of the business leads to, as a route target: one of its extensions or
/// ring groups (`""` → [`RouteTarget::None`]). Anything else is an `Invalid` error on `field`.
pub(crate) async fn dialable_target(
    dir: &dyn Directory,
    tenant: TenantId,
    typed: &str,
    field: &'static str,
) -> Result<RouteTarget, AppError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(RouteTarget::None);
    }
    let n: ExtensionNumber = typed
        .parse()
        .map_err(|e: ParseError| AppError::invalid(field, e.message))?;
    match dir.resolve_dialable(tenant, &n).await {
        Ok(t @ (RouteTarget::Extension(_) | RouteTarget::RingGroup(_))) => Ok(t),
        Ok(_) => Err(AppError::invalid(
            field,
            format!("{n} is an IVR menu or conference room; calls cannot be sent there yet."),
        )),
        Err(e) if e.is_not_found() => Err(AppError::invalid(
            field,
            format!("There is no extension or ring group {n}."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Every extension of the business by id (for showing members by number and name).
pub(crate) async fn extensions_by_id(
    dir: &dyn Directory,
    tenant: TenantId,
) -> Result<HashMap<ExtensionId, Extension>, AppError> {
    let mut out = HashMap::new();
    loop {
        let offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let page = dir
            .list_extensions(tenant, None, Page::new(Page::MAX_LIMIT, offset))
            .await?;
        let n = page.items.len();
        out.extend(page.items.into_iter().map(|e| (e.id, e)));
        if n == 0 || out.len() as u64 >= page.total {
            return Ok(out);
        }
    }
}

/// A member as typed in the form: the extension's number or the phone number.
pub(crate) fn member_number(m: &RingGroupMember, exts: &HashMap<ExtensionId, Extension>) -> String {
    match m {
        RingGroupMember::Extension(id) => exts
            .get(id)
            .map_or_else(|| "?".into(), |e| e.number.to_string()),
        RingGroupMember::External(e) => e.display(),
    }
}

/// A member for people: "101 Alice" or "07400 123456 (outside number)".
fn member_label(m: &RingGroupMember, exts: &HashMap<ExtensionId, Extension>) -> String {
    match m {
        RingGroupMember::Extension(id) => exts.get(id).map_or_else(
            || "(deleted extension)".into(),
            |e| format!("{} {}", e.number, e.settings.display_name),
        ),
        RingGroupMember::External(e) => format!("{} (outside number)", e.display()),
    }
}

/// The number of a route target (an extension or ring group), for forms and the API.
pub(crate) async fn target_number(
    dir: &dyn Directory,
    tenant: TenantId,
    t: RouteTarget,
) -> Result<Option<String>, AppError> {
    let found = match t {
        RouteTarget::Extension(id) => dir.get_extension(tenant, id).await.map(|e| e.number),
        RouteTarget::RingGroup(id) => dir.get_ring_group(tenant, id).await.map(|g| g.number),
        _ => return Ok(None),
    };
    match found {
        Ok(n) => Ok(Some(n.to_string())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A route target for people: "extension 101 (Alice)", "ring group 20 (Sales)".
pub(crate) async fn target_label(
    dir: &dyn Directory,
    tenant: TenantId,
    t: RouteTarget,
) -> Result<String, AppError> {
    Ok(match t {
        RouteTarget::None => "not routed".into(),
        RouteTarget::Extension(id) => match dir.get_extension(tenant, id).await {
            Ok(e) => format!("extension {} ({})", e.number, e.settings.display_name),
            Err(e) if e.is_not_found() => "extension (deleted)".into(),
            Err(e) => return Err(e.into()),
        },
        RouteTarget::RingGroup(id) => match dir.get_ring_group(tenant, id).await {
            Ok(g) => format!("ring group {} ({})", g.number, g.settings.name),
            Err(e) if e.is_not_found() => "ring group (deleted)".into(),
            Err(e) => return Err(e.into()),
        },
        RouteTarget::Ivr(_) => "an IVR menu".into(),
        RouteTarget::Conference(_) => "a conference room".into(),
    })
}

pub(crate) fn strategy_label(s: RingStrategy) -> &'static str {
    match s {
        RingStrategy::Simultaneous => "All at once",
        RingStrategy::Sequential => "One at a time, in order",
        RingStrategy::RoundRobin => "One at a time, after whoever answered last",
    }
}

// ---------------------------------------------------------------- pages

#[derive(Deserialize)]
pub struct GroupPath {
    group: String,
}

fn layout(a: &AdminOf, title: impl Into<String>) -> Layout {
    let b = base(&a.tenant);
    Layout::for_business(title, &a.authed, &a.tenant, &format!("{b}/ring-groups"))
}

fn strategies() -> Vec<(String, &'static str)> {
    RingStrategy::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), strategy_label(*s)))
        .collect()
}

async fn list(State(state): State<AppState>, a: AdminOf) -> Result<Response, PageError> {
    let t = &a.tenant;
    let b = base(t);
    let groups = state.directory.list_ring_groups(t.id).await?;
    let exts = extensions_by_id(&*state.directory, t.id).await?;
    let mut rows = Vec::with_capacity(groups.len());
    for g in &groups {
        let fallback = match g.settings.fallback {
            RouteTarget::None => "busy / unavailable".into(),
            f => target_label(&*state.directory, t.id, f).await?,
        };
        rows.push(RingGroupRow {
            href: format!("{b}/ring-groups/{}", g.id),
            number: g.number.to_string(),
            name: g.settings.name.clone(),
            strategy: strategy_label(g.settings.strategy),
            members: g
                .members
                .iter()
                .map(|m| member_label(m, &exts))
                .collect::<Vec<_>>()
                .join(", "),
            fallback,
        });
    }
    render(&RingGroupsPage {
        layout: layout(&a, "Ring groups"),
        base: b,
        rows,
    })
}

async fn new_form(a: AdminOf) -> Result<Response, PageError> {
    let defaults = RingGroupSettings::new("", RingStrategy::Simultaneous);
    let form = RingGroupForm {
        strategy: defaults.strategy.as_str().into(),
        ring_timeout_secs: defaults.ring_timeout_secs.to_string(),
        member_timeout_secs: defaults.member_timeout_secs.to_string(),
        ..RingGroupForm::default()
    };
    render(&new_page(&a, form, FormErrors::default()))
}

fn new_page(a: &AdminOf, form: RingGroupForm, errors: FormErrors) -> RingGroupPage {
    RingGroupPage {
        layout: layout(a, "Create a ring group"),
        base: base(&a.tenant),
        id: None,
        number: String::new(),
        form,
        errors,
        saved: false,
        strategies: strategies(),
        members: Vec::new(),
        next_turn: None,
    }
}

/// Checks the form; the settings and members to store when it is all valid.
async fn read_form(
    state: &AppState,
    tenant: TenantId,
    form: &RingGroupForm,
    errors: &mut FormErrors,
) -> Result<Option<(RingGroupSettings, Vec<RingGroupMember>)>, PageError> {
    let name = form.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.add("name", "Enter a name of 1 to 200 characters.");
    }
    let strategy = form
        .strategy
        .parse::<RingStrategy>()
        .map_err(|_| errors.add("strategy", "Choose how the members are rung."))
        .ok();
    let secs = |v: &str, field: &str, max: u32, errors: &mut FormErrors| match v.trim().parse() {
        Ok(n) if (5..=max).contains(&n) => n,
        _ => {
            errors.add(field, format!("Enter a number of seconds from 5 to {max}."));
            5
        }
    };
    let ring_timeout_secs = secs(&form.ring_timeout_secs, "ring_timeout_secs", 600, errors);
    let member_timeout_secs = secs(
        &form.member_timeout_secs,
        "member_timeout_secs",
        300,
        errors,
    );
    let dir = &*state.directory;
    let fallback = match dialable_target(dir, tenant, &form.fallback, "fallback").await {
        Ok(t) => t,
        Err(e) => {
            field_error(errors, e, &[])?;
            RouteTarget::None
        }
    };
    let entries: Vec<&str> = form.members.split(['\n', ',']).collect();
    let members = match parse_members(dir, tenant, &entries).await {
        Ok(m) => m,
        Err(e) => {
            field_error(errors, e, &[])?;
            Vec::new()
        }
    };
    Ok(match (strategy, errors.is_empty()) {
        (Some(strategy), true) => Some((
            RingGroupSettings {
                name,
                strategy,
                ring_timeout_secs,
                member_timeout_secs,
                fallback,
            },
            members,
        )),
        _ => None,
    })
}

async fn create(
    State(state): State<AppState>,
    a: AdminOf,
    Form(form): Form<RingGroupForm>,
) -> Result<Response, PageError> {
    let t = &a.tenant;
    let mut errors = FormErrors::default();
    let number = form
        .number
        .parse::<ExtensionNumber>()
        .map_err(|e| errors.add("number", e.message))
        .ok();
    let valid = read_form(&state, t.id, &form, &mut errors).await?;
    if let (Some(number), Some((settings, members))) = (number, valid) {
        match state
            .service
            .create_ring_group(t.id, &number, &settings, &members)
            .await
        {
            Ok(g) => {
                tracing::info!(tenant = %t.id, group = %g.number, "ring group created");
                return Ok(see_other(&format!("{}/ring-groups/{}", base(t), g.id)));
            }
            Err(e) => field_error(&mut errors, e, &[])?,
        }
    }
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &new_page(&a, form, errors),
    )
}

fn edit_form(
    g: &RingGroup,
    exts: &HashMap<ExtensionId, Extension>,
    fallback: String,
) -> RingGroupForm {
    let s = &g.settings;
    RingGroupForm {
        number: g.number.to_string(),
        name: s.name.clone(),
        strategy: s.strategy.as_str().into(),
        ring_timeout_secs: s.ring_timeout_secs.to_string(),
        member_timeout_secs: s.member_timeout_secs.to_string(),
        fallback,
        members: g
            .members
            .iter()
            .map(|m| member_number(m, exts))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

async fn group_page(
    state: &AppState,
    a: &AdminOf,
    g: &RingGroup,
    form: Option<RingGroupForm>,
    errors: FormErrors,
    saved: bool,
) -> Result<RingGroupPage, PageError> {
    let dir = &*state.directory;
    let exts = extensions_by_id(dir, a.tenant.id).await?;
    let form = match form {
        Some(f) => f,
        None => {
            let fallback = target_number(dir, a.tenant.id, g.settings.fallback)
                .await?
                .unwrap_or_default();
            edit_form(g, &exts, fallback)
        }
    };
    let next_turn = (g.settings.strategy == RingStrategy::RoundRobin && !g.members.is_empty())
        .then(|| {
            let next = g
                .last_answered_member
                .map_or(0, |p| (p as usize + 1) % g.members.len());
            member_label(&g.members[next], &exts)
        });
    Ok(RingGroupPage {
        layout: layout(a, format!("Ring group {} · {}", g.number, g.settings.name)),
        base: base(&a.tenant),
        id: Some(g.id.to_string()),
        number: g.number.to_string(),
        form,
        errors,
        saved,
        strategies: strategies(),
        members: g.members.iter().map(|m| member_label(m, &exts)).collect(),
        next_turn,
    })
}

async fn load(state: &AppState, a: &AdminOf, p: &GroupPath) -> Result<RingGroup, PageError> {
    Ok(state
        .directory
        .get_ring_group(a.tenant.id, parse_id(&p.group)?)
        .await?)
}

async fn show(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<GroupPath>,
) -> Result<Response, PageError> {
    let g = load(&state, &a, &p).await?;
    render(&group_page(&state, &a, &g, None, FormErrors::default(), false).await?)
}

async fn update(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<GroupPath>,
    Form(form): Form<RingGroupForm>,
) -> Result<Response, PageError> {
    let g = load(&state, &a, &p).await?;
    let mut errors = FormErrors::default();
    let mut current = g.clone();
    if let Some((settings, members)) = read_form(&state, a.tenant.id, &form, &mut errors).await? {
        match state
            .service
            .update_ring_group(a.tenant.id, &g, &settings, Some(&members))
            .await
        {
            Ok(updated) => current = updated,
            Err(e) => field_error(&mut errors, e, &[])?,
        }
    }
    let saved = errors.is_empty();
    let form = (!saved).then_some(form);
    let page = group_page(&state, &a, &current, form, errors, saved).await?;
    let status = if saved {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(status, &page)
}

async fn delete_confirm(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<GroupPath>,
) -> Result<Response, PageError> {
    let g = load(&state, &a, &p).await?;
    let b = base(&a.tenant);
    render(&ConfirmPage {
        layout: layout(&a, "Delete ring group"),
        question: format!("Delete ring group {} ({})?", g.number, g.settings.name),
        detail: "Its number stops ringing anyone. Numbers routed to it, and other groups falling \
                 back to it, must be changed first."
            .into(),
        action: format!("{b}/ring-groups/{}/delete", g.id),
        button: "Delete ring group".into(),
        cancel: format!("{b}/ring-groups/{}", g.id),
    })
}

async fn delete(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<GroupPath>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let g = load(&state, &a, &p).await?;
    let b = base(&a.tenant);
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("{b}/ring-groups/{}/delete", g.id)));
    }
    match state.service.delete_ring_group(a.tenant.id, g.id).await {
        Ok(()) => {
            tracing::info!(tenant = %a.tenant.id, group = %g.number, "ring group deleted");
            Ok(see_other(&format!("{b}/ring-groups")))
        }
        // Still routed to: say so on the group's page.
        Err(err @ AppError::Conflict { .. }) => {
            let mut errors = FormErrors::default();
            errors.add("delete", err.public_message());
            let page = group_page(&state, &a, &g, None, errors, false).await?;
            render_status(StatusCode::CONFLICT, &page)
        }
        Err(err) => Err(err.into()),
    }
}
