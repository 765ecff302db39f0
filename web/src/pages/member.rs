//! A business user's own extension (the one an admin linked to them): DND and forwarding.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use store::{CdrQuery, Extension, ForwardTarget, Forwarding, Page, Role};

use super::activity::duration;
use super::business::{edit_form, parse_forward};
use super::{live_calls, ticked};
use crate::AppState;
use crate::error::{AppError, PageError};
use crate::session::Authed;
use crate::views::Zone;
use crate::views::activity::CallRow;
use crate::views::business::{ExtEditForm, MyExtensionPage};
use crate::views::{FormErrors, Layout, render, render_status};

pub fn routes() -> Router<AppState> {
    Router::new().route("/account/extension", get(show).post(update))
}

/// The signed-in user's extension; 404 for operators and users without one.
async fn mine(state: &AppState, a: &Authed) -> Result<Extension, PageError> {
    let tenant = a.user.tenant_id.ok_or(PageError(AppError::NotFound))?;
    if state.directory.get_tenant(tenant).await?.suspended {
        return Err(PageError(AppError::Forbidden));
    }
    let id = state
        .directory
        .find_user_extension(tenant, a.user.id)
        .await?
        .ok_or(PageError(AppError::NotFound))?;
    Ok(state.directory.get_extension(tenant, id).await?)
}

/// How many recent calls the page shows.
const RECENT: usize = 50;

/// The extension's recent calls: the store matches a substring of caller, callee or dialled;
/// only calls where the extension itself is a party are kept.
/// The business's time zone comes with them: the page shows its times in it.
async fn recent_calls(state: &AppState, e: &Extension) -> Result<(Vec<CallRow>, Zone), PageError> {
    let q = CdrQuery {
        party: Some(e.number.to_string()),
        page: Page::first(Page::MAX_LIMIT),
        ..CdrQuery::default()
    };
    let list = state.directory.list_cdrs(e.tenant_id, &q).await?;
    let zone = zone_of(state, e).await?;
    let n = e.number.as_str();
    let rows = list
        .items
        .iter()
        .filter(|c| c.record.caller == n || c.record.callee == n)
        .take(RECENT)
        .map(|c| (&c.record, c.trunk_name.clone().unwrap_or_default()))
        .map(|(r, trunk)| CallRow {
            started: zone.second(r.started_at),
            direction: r.direction.to_string(),
            caller: r.caller.clone(),
            callee: r.callee.clone(),
            caller_name: None,
            callee_name: None,
            trunk,
            disposition: r.disposition.to_string().replace('_', " "),
            duration: duration(r.duration_secs),
        })
        .collect();
    Ok((rows, zone))
}

async fn zone_of(state: &AppState, e: &Extension) -> Result<Zone, PageError> {
    Ok(Zone::of(&state.directory.get_tenant(e.tenant_id).await?))
}

/// The page's own address: its calls-in-progress list polls it.
const HREF: &str = "/account/extension";

fn page(
    state: &AppState,
    a: &Authed,
    e: &Extension,
    form: ExtEditForm,
    errors: FormErrors,
    saved: bool,
    (calls, zone): (Vec<CallRow>, Zone),
) -> MyExtensionPage {
    MyExtensionPage {
        calls,
        table: live_calls::extension_table(state, e, HREF, &zone),
        layout: Layout::new("My extension", a, HREF),
        number: e.number.to_string(),
        name: e.settings.display_name.clone(),
        form,
        errors,
        saved,
    }
}

async fn show(
    State(state): State<AppState>,
    a: Authed,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let e = match mine(&state, &a).await {
        Ok(e) => e,
        // Nothing linked yet: the account page is all they have.
        Err(PageError(AppError::NotFound)) => return Ok(super::see_other("/account/password")),
        Err(e) => return Err(e),
    };
    if live_calls::is_poll(&headers) {
        let zone = zone_of(&state, &e).await?;
        return live_calls::list(live_calls::extension_table(&state, &e, HREF, &zone));
    }
    let calls = recent_calls(&state, &e).await?;
    let p = page(
        &state,
        &a,
        &e,
        edit_form(&e),
        FormErrors::default(),
        false,
        calls,
    );
    Ok(live_calls::vary(render(&p)?))
}

async fn update(
    State(state): State<AppState>,
    a: Authed,
    Form(form): Form<ExtEditForm>,
) -> Result<Response, PageError> {
    let e = mine(&state, &a).await?;
    let tenant = e.tenant_id;
    let mut errors = FormErrors::default();
    let forwarding = Forwarding {
        always: parse_forward(&form.forward_always, "forward_always", &mut errors),
        busy: parse_forward(&form.forward_busy, "forward_busy", &mut errors),
        no_answer: parse_forward(&form.forward_no_answer, "forward_no_answer", &mut errors),
    };
    if a.user.role == Role::Member {
        outside_forwards_stay_with_admins(&e.settings.forwarding, &forwarding, &mut errors);
    }
    if !errors.is_empty() {
        let calls = recent_calls(&state, &e).await?;
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &a, &e, form, errors, false, calls),
        );
    }
    // Only DND and forwarding are theirs to change; everything else stays as the admin set it.
    let mut settings = e.settings.clone();
    settings.forwarding = forwarding;
    settings.dnd = ticked(&form.dnd);
    match state
        .service
        .update_extension(tenant, e.id, &settings)
        .await
    {
        Ok(updated) => {
            let calls = recent_calls(&state, &updated).await?;
            let p = page(
                &state,
                &a,
                &updated,
                edit_form(&updated),
                FormErrors::default(),
                true,
                calls,
            );
            render(&p)
        }
        Err(err) => {
            super::field_error(&mut errors, err, &[("forward", "forward_always")])?;
            let calls = recent_calls(&state, &e).await?;
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(&state, &a, &e, form, errors, false, calls),
            )
        }
    }
}

/// A forward to an outside number is an outside call the business pays for,
/// so only its admins set one: a member may keep or clear a forward an admin
/// set, and forward to any extension, but not point a forward outside.
fn outside_forwards_stay_with_admins(
    current: &Forwarding,
    wanted: &Forwarding,
    errors: &mut FormErrors,
) {
    for (field, now, new) in [
        ("forward_always", &current.always, &wanted.always),
        ("forward_busy", &current.busy, &wanted.busy),
        ("forward_no_answer", &current.no_answer, &wanted.no_answer),
    ] {
        if matches!(new, Some(ForwardTarget::External(_))) && new != now {
            errors.add(
                field,
                "Only an admin of your business can forward calls to an outside number. \
                 Forward to an extension, or ask an admin.",
            );
        }
    }
}
