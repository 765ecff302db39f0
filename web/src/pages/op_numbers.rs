//! The operator's number inventory: add one number or a range (all or nothing), list with type,
//! assign to a business, delete from the inventory. Taking a routed number from its business
//! stops it ringing, so that is confirmed first; every assignment is reported back.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use super::operator::{ConfirmForm, PER_PAGE, PageQuery};
use super::ring_groups::target_label;
use super::{field_error, page_number, see_other};
use crate::AppState;
use crate::auth::{OperatorUser, parse_id};
use crate::error::{AppError, PageError};
use crate::views::operator::*;
use crate::views::{
    ConfirmChangePage, ConfirmPage, FormErrors, Layout, Pager, encode_query, render, render_status,
};

/// Most numbers one add action may create.
pub const MAX_RANGE: u64 = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operator/numbers", get(numbers).post(add_numbers))
        .route("/operator/numbers/{number}/assign", post(assign_number))
        .route(
            "/operator/numbers/{number}/delete",
            get(delete_number_confirm).post(delete_number),
        )
}

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

/// Which part of the inventory the page lists.
#[derive(Default)]
struct Listing<'a> {
    page: u32,
    unassigned_only: bool,
    /// One number to look up instead of a list.
    find: Option<&'a str>,
}

async fn numbers_page(
    state: &AppState,
    me: &crate::session::Authed,
    listing: Listing<'_>,
    form: NumberAddForm,
    errors: FormErrors,
    notice: Option<String>,
) -> Result<NumbersPage, PageError> {
    let Listing {
        page,
        unassigned_only,
        find,
    } = listing;
    let scope = if unassigned_only {
        NumberScope::Unassigned
    } else {
        NumberScope::All
    };
    let find = find.map(str::trim).filter(|f| !f.is_empty());
    let none = || Paged {
        items: Vec::new(),
        total: 0,
    };
    let (list, find_error) = match find {
        None => (
            state
                .directory
                .list_numbers(scope, Page::new(PER_PAGE, (page - 1) * PER_PAGE))
                .await?,
            None,
        ),
        // One number, in any common form.
        Some(f) => match f.parse::<E164>() {
            Ok(e) => match state.directory.get_number_by_e164(&e).await {
                Ok(n) => (
                    Paged {
                        items: vec![n],
                        total: 1,
                    },
                    None,
                ),
                Err(err) if err.is_not_found() => (
                    none(),
                    Some(format!("{} is not on the platform.", e.display())),
                ),
                Err(err) => return Err(err.into()),
            },
            Err(err) => (none(), Some(err.message)),
        },
    };
    let mut tenants = state
        .directory
        .list_tenants(Page::first(Page::MAX_LIMIT))
        .await?
        .items;
    // Past the first thousand businesses, load the few this page's numbers belong to.
    let offered = tenants.len();
    for id in list.items.iter().filter_map(|n| n.tenant_id) {
        if !tenants.iter().any(|t| t.id == id) {
            tenants.push(state.directory.get_tenant(id).await?);
        }
    }
    let tenant_of = |id: Option<TenantId>| id.and_then(|id| tenants.iter().find(|t| t.id == id));
    let name_of = |id| {
        tenant_of(id)
            .map(|t| t.settings.name.clone())
            .unwrap_or_default()
    };
    let domain_of = |id| {
        tenant_of(id)
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
        tenants: tenants[..offered]
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
        find: find.unwrap_or_default().to_owned(),
        find_error,
    })
}

async fn numbers(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let unassigned = super::ticked(&q.unassigned);
    let listing = Listing {
        page: page_number(q.page),
        unassigned_only: unassigned,
        find: q.find.as_deref(),
    };
    let notice = match q.changed.as_deref().map(str::parse::<NumberId>) {
        Some(Ok(id)) => match state.directory.get_number(NumberScope::All, id).await {
            Ok(n) => Some(assignment_notice(&state, &n).await?),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    let page = numbers_page(
        &state,
        &me,
        listing,
        NumberAddForm::default(),
        FormErrors::default(),
        notice,
    )
    .await?;
    render(&page)
}

/// Where a number is now and what its calls do, after an assignment.
async fn assignment_notice(state: &AppState, n: &Number) -> Result<String, PageError> {
    let num = n.e164.display();
    let Some(t) = n.tenant_id else {
        return Ok(format!(
            "{num} is in the inventory: calls to it do not ring anywhere."
        ));
    };
    let name = state.directory.get_tenant(t).await?.settings.name;
    Ok(match n.route {
        RouteTarget::None => format!(
            "{num} belongs to {name}. It is not routed yet: calls to it do not ring anywhere \
             until {name} routes it on their Numbers page."
        ),
        r => format!(
            "{num} belongs to {name}; its calls go to {}.",
            target_label(&*state.directory, t, r).await?
        ),
    })
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
                    .service
                    .add_number(&first, tenant)
                    .await
                    .map(|n| vec![n])
            } else {
                state.service.add_number_range(&first, count, tenant).await
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
        Listing {
            page: 1,
            ..Listing::default()
        },
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
    /// "yes" once the operator has confirmed that a routed number stops ringing.
    confirm: Option<String>,
}

async fn assign_number(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Path(id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Result<Response, PageError> {
    let id: NumberId = parse_id(&id)?;
    let number = state.directory.get_number(NumberScope::All, id).await?;
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
    let done = format!(
        "/operator/numbers?find={}&changed={id}",
        encode_query(number.e164.as_str())
    );
    // Assigning a number clears its route: the same business again changes nothing.
    if tenant == number.tenant_id {
        return Ok(see_other(&done));
    }
    // A routed number of a business would stop ringing: ask first.
    let confirmed = form.confirm.as_deref() == Some("yes");
    if let (Some(from), false) = (
        number.tenant_id,
        number.route == RouteTarget::None || confirmed,
    ) {
        let from_name = state.directory.get_tenant(from).await?.settings.name;
        let now = target_label(&*state.directory, from, number.route).await?;
        let num = number.e164.display();
        let (question, button) = match tenant {
            None => (
                format!("Take {num} from {from_name} back to the inventory?"),
                "Return to inventory".to_owned(),
            ),
            Some(to) => {
                let to_name = state.directory.get_tenant(to).await?.settings.name;
                (
                    format!("Move {num} from {from_name} to {to_name}?"),
                    format!("Move to {to_name}"),
                )
            }
        };
        return render(&ConfirmChangePage {
            layout: Layout::new("Number in use", &me, "/operator/numbers"),
            question,
            detail: format!(
                "{num} is in use: its calls go to {now} at {from_name}. Afterwards calls to it \
                 will not ring anywhere until it is routed again."
            ),
            action: format!("/operator/numbers/{id}/assign"),
            hidden: vec![("tenant".into(), form.tenant.trim().to_owned())],
            button,
            cancel: "/operator/numbers".into(),
        });
    }
    state.service.assign_number(id, tenant).await?;
    Ok(see_other(&done))
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
    state.service.delete_number(&n).await?;
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
