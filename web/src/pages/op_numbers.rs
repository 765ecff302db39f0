//! The operator's number inventory: add one number or a range (all or nothing), list with type,
//! assign to a business, delete from the inventory. Taking a routed number from its business
//! stops it ringing, so that is confirmed first; every assignment is reported back.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use store::*;

use super::operator::{ConfirmForm, PER_PAGE, PageQuery};
use super::ring_groups::target_label;
use super::{field_error, page_number, see_other};
use crate::AppState;
use crate::auth::{OperatorUser, parse_id};
use crate::error::PageError;
use crate::views::operator::*;
use crate::views::{
    ConfirmChangePage, ConfirmPage, FormErrors, Layout, Pager, encode_query, render, render_status,
};

/// Most numbers one add action may create.
pub const MAX_RANGE: u64 = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operator/numbers", get(numbers).post(add_numbers))
        .route("/operator/numbers/assign", post(assign_numbers))
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

impl Listing<'_> {
    /// The page's address, with `extra` query parameters ("name=value&…") added.
    fn href(&self, extra: &str) -> String {
        let mut q = Vec::new();
        if self.unassigned_only {
            q.push("unassigned=1".to_owned());
        }
        if let Some(f) = self.find.map(str::trim).filter(|f| !f.is_empty()) {
            q.push(format!("find={}", encode_query(f)));
        }
        if self.page > 1 {
            q.push(format!("page={}", self.page));
        }
        if !extra.is_empty() {
            q.push(extra.to_owned());
        }
        if q.is_empty() {
            "/operator/numbers".into()
        } else {
            format!("/operator/numbers?{}", q.join("&"))
        }
    }
}

/// The assign form as sent, to show again with its errors.
#[derive(Default)]
struct Picked {
    ticked: Vec<String>,
    tenant: String,
    errors: FormErrors,
}

async fn numbers_page(
    state: &AppState,
    me: &crate::session::Authed,
    listing: Listing<'_>,
    form: NumberAddForm,
    errors: FormErrors,
    notice: Option<String>,
    picked: Picked,
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
        ticked: picked.ticked,
        assign_tenant: picked.tenant,
        assign_errors: picked.errors,
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
    let mut changed = Vec::new();
    for id in q.changed.as_deref().unwrap_or("").split(',') {
        let Ok(id) = id.parse::<NumberId>() else {
            continue;
        };
        match state.directory.get_number(NumberScope::All, id).await {
            Ok(n) => changed.push(n),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let notice = match changed.as_slice() {
        [] => None,
        [one] => Some(assignment_notice(&state, one).await?),
        many => Some(assignments_notice(&state, many).await?),
    };
    let page = numbers_page(
        &state,
        &me,
        listing,
        NumberAddForm::default(),
        FormErrors::default(),
        notice,
        Picked::default(),
    )
    .await?;
    render(&page)
}

/// Where several numbers are now, after an assignment.
async fn assignments_notice(state: &AppState, ns: &[Number]) -> Result<String, PageError> {
    let k = ns.len();
    let first = ns[0].tenant_id;
    if ns.iter().any(|n| n.tenant_id != first) {
        return Ok(format!("{k} numbers assigned."));
    }
    let Some(t) = first else {
        return Ok(format!(
            "{k} numbers are in the inventory: calls to them do not ring anywhere."
        ));
    };
    let name = state.directory.get_tenant(t).await?.settings.name;
    let unrouted = ns.iter().filter(|n| n.route == RouteTarget::None).count();
    Ok(match unrouted {
        0 => format!("{k} numbers belong to {name}."),
        u if u == k => format!(
            "{k} numbers belong to {name}. They are not routed yet: calls to them do not ring \
             anywhere until {name} routes them on their Numbers page."
        ),
        u => format!(
            "{k} numbers belong to {name}; {u} of them are not routed yet, so calls to those \
             do not ring anywhere."
        ),
    })
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
        Picked::default(),
    )
    .await?;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(status, &page)
}

/// Assigns the ticked numbers (`number`, repeated) to the business chosen from the list
/// (`tenant`: its id, or "inventory"). Numbers that already belong there are left as they are
/// (assigning clears a number's route). Taking routed numbers from their business stops them
/// ringing: that is confirmed first. Errors come back on the numbers page, the ticks and the
/// choice kept; `page`, `unassigned` and `find` say which listing the form was on.
async fn assign_numbers(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let ticked: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "number")
        .map(|(_, v)| v.clone())
        .collect();
    let chosen = value("tenant").trim().to_owned();
    let confirmed = value("confirm") == "yes";
    let listing = Listing {
        page: page_number(value("page").parse().ok()),
        unassigned_only: !value("unassigned").is_empty(),
        find: Some(value("find")),
    };

    let mut assign_errors = FormErrors::default();
    let mut numbers = Vec::with_capacity(ticked.len());
    for raw in &ticked {
        numbers.push(
            state
                .directory
                .get_number(NumberScope::All, parse_id(raw)?)
                .await?,
        );
    }
    if numbers.is_empty() {
        assign_errors.add("number", "Tick the numbers to assign first.");
    }
    let target = match chosen.as_str() {
        "" => {
            assign_errors.add("tenant", "Choose a business, or the inventory.");
            None
        }
        "inventory" => Some(None),
        t => match t.parse::<TenantId>() {
            Ok(id) => match state.directory.get_tenant(id).await {
                Ok(t) => Some(Some(t.id)),
                Err(e) if e.is_not_found() => {
                    assign_errors.add("tenant", "That business is gone; choose another.");
                    None
                }
                Err(e) => return Err(e.into()),
            },
            Err(_) => {
                assign_errors.add("tenant", "Choose a business from the list.");
                None
            }
        },
    };
    let (Some(target), true) = (target, assign_errors.is_empty()) else {
        let page = numbers_page(
            &state,
            &me,
            listing,
            NumberAddForm::default(),
            FormErrors::default(),
            None,
            Picked {
                ticked,
                tenant: chosen,
                errors: assign_errors,
            },
        )
        .await?;
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };

    let moving: Vec<&Number> = numbers.iter().filter(|n| n.tenant_id != target).collect();
    let live: Vec<&Number> = moving
        .iter()
        .copied()
        .filter(|n| n.tenant_id.is_some() && n.route != RouteTarget::None)
        .collect();
    if !live.is_empty() && !confirmed {
        let mut uses = Vec::with_capacity(live.len());
        for n in &live {
            let from = n
                .tenant_id
                .unwrap_or_else(|| unreachable!("filtered above"));
            let from_name = state.directory.get_tenant(from).await?.settings.name;
            let now = target_label(&*state.directory, from, n.route).await?;
            uses.push((n.e164.display(), from_name, now));
        }
        let to_name = match target {
            Some(t) => Some(state.directory.get_tenant(t).await?.settings.name),
            None => None,
        };
        let (question, button) = match (moving.as_slice(), &uses[..], &to_name) {
            ([_], [(num, from, _)], None) => (
                format!("Take {num} from {from} back to the inventory?"),
                "Return to inventory".to_owned(),
            ),
            ([_], [(num, from, _)], Some(to)) => (
                format!("Move {num} from {from} to {to}?"),
                format!("Move to {to}"),
            ),
            (all, _, None) => (
                format!("Take {} numbers back to the inventory?", all.len()),
                "Return to inventory".to_owned(),
            ),
            (all, _, Some(to)) => (
                format!("Move {} numbers to {to}?", all.len()),
                format!("Move to {to}"),
            ),
        };
        let detail = match &uses[..] {
            [(num, from, now)] => format!(
                "{num} is in use: its calls go to {now} at {from}. Afterwards calls to it will \
                 not ring anywhere until it is routed again."
            ),
            all => format!(
                "These numbers are in use: {}. Afterwards calls to them will not ring anywhere \
                 until they are routed again.",
                all.iter()
                    .map(|(num, from, now)| format!("{num} (calls go to {now} at {from})"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        let mut hidden: Vec<(String, String)> = ticked
            .iter()
            .map(|id| ("number".to_owned(), id.clone()))
            .collect();
        hidden.push(("tenant".into(), chosen.clone()));
        if listing.unassigned_only {
            hidden.push(("unassigned".into(), "1".into()));
        }
        hidden.push(("find".into(), value("find").to_owned()));
        hidden.push(("page".into(), listing.page.to_string()));
        return render(&ConfirmChangePage {
            layout: Layout::new("Numbers in use", &me, "/operator/numbers"),
            question,
            detail,
            action: "/operator/numbers/assign".into(),
            hidden,
            button,
            cancel: listing.href(""),
        });
    }
    for n in &moving {
        state.service.assign_number(n.id, target).await?;
    }
    let ids: Vec<String> = numbers.iter().map(|n| n.id.to_string()).collect();
    Ok(see_other(
        &listing.href(&format!("changed={}", ids.join(","))),
    ))
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
