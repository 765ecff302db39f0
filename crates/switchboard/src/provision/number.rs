//! `switchboard number add|list`.

use std::collections::HashMap;

use anyhow::{anyhow, bail};
use serde_json::{Value, json};
use store::{E164, ExtensionNumber, Number, NumberScope, RouteTarget, StoreError, TenantId};

use super::{Ctx, all_pages, parse, service_error, store_error, tenant_by_domain, tenant_domains};
use crate::cli::NumberCommand;
use crate::output::table;

pub async fn run(ctx: &Ctx, command: NumberCommand) -> anyhow::Result<()> {
    match command {
        NumberCommand::Add {
            number,
            tenant,
            route,
        } => add(ctx, &number, tenant.as_deref(), route.as_deref()).await,
        NumberCommand::List { tenant } => list(ctx, tenant.as_deref()).await,
    }
}

/// `--route ext:101`: the only target the CLI offers so far.
fn parse_route(route: &str) -> anyhow::Result<ExtensionNumber> {
    let expected = "expected ext:NUMBER, e.g. ext:101";
    match route.trim().split_once(':') {
        Some((kind, number)) if kind.eq_ignore_ascii_case("ext") => number
            .parse()
            .map_err(|e| anyhow!("--route: {e}; {expected}")),
        _ => bail!("--route: {route:?} is not a route target; {expected}"),
    }
}

async fn add(
    ctx: &Ctx,
    number: &str,
    tenant: Option<&str>,
    route: Option<&str>,
) -> anyhow::Result<()> {
    let e164: E164 = parse("NUMBER", number)?;
    let route = route.map(parse_route).transpose()?;
    let tenant = match tenant {
        Some(domain) => Some(tenant_by_domain(ctx.dir.as_ref(), domain).await?),
        None => None,
    };
    // Check the route target before writing anything.
    let target = match (&route, &tenant) {
        (None, _) => None,
        (Some(_), None) => bail!("--route needs --tenant: a number routes only inside its tenant"),
        (Some(ext), Some(t)) => match ctx.dir.get_extension_by_number(t.id, ext).await {
            Ok(e) => Some(e),
            Err(StoreError::NotFound { .. }) => {
                bail!("--route: {} has no extension {ext}", t.sip_domain)
            }
            Err(e) => return Err(store_error(e)),
        },
    };
    let mut added = ctx
        .service
        .add_number(&e164, tenant.as_ref().map(|t| t.id))
        .await
        .map_err(service_error)?;
    if let (Some(t), Some(ext)) = (&tenant, &target) {
        match ctx
            .service
            .set_number_route(t.id, added.id, RouteTarget::Extension(ext.id))
            .await
        {
            Ok(n) => added = n,
            Err(e) => {
                // Undo the add so a failed command leaves nothing behind.
                let undo = async {
                    let n = ctx.service.assign_number(added.id, None).await?;
                    ctx.service.delete_number(&n).await
                };
                if let Err(undo_err) = undo.await {
                    tracing::error!(number = %e164, "could not undo the number add: {}", service_error(undo_err));
                }
                return Err(
                    service_error(e).context(format!("cannot route {e164} to ext:{}", ext.number))
                );
            }
        }
    }
    let domain = tenant.as_ref().map(|t| t.sip_domain.to_string());
    let route_text = target.as_ref().map(|e| format!("ext:{}", e.number));
    let text = format!(
        "Number {} ({}, {}) added {}{}.",
        added.e164.display(),
        added.e164,
        added.number_type,
        domain
            .as_deref()
            .map_or("to the operator inventory".to_owned(), |d| format!(
                "to {d}"
            )),
        route_text
            .as_deref()
            .map(|r| format!(", routed to {r}"))
            .unwrap_or_default(),
    );
    ctx.out.emit(
        text,
        to_json(&added, domain.as_deref(), route_text.as_deref()),
    );
    Ok(())
}

async fn list(ctx: &Ctx, tenant: Option<&str>) -> anyhow::Result<()> {
    let scope = match tenant {
        Some(domain) => NumberScope::Tenant(tenant_by_domain(ctx.dir.as_ref(), domain).await?.id),
        None => NumberScope::All,
    };
    let numbers = all_pages(|p| ctx.dir.list_numbers(scope, p)).await?;
    let domains: HashMap<TenantId, String> = tenant_domains(ctx.dir.as_ref())
        .await?
        .into_iter()
        .map(|(id, d)| (id, d.to_string()))
        .collect();
    let mut json_rows = Vec::with_capacity(numbers.len());
    let mut rows = Vec::with_capacity(numbers.len());
    for n in &numbers {
        let domain = n.tenant_id.and_then(|t| domains.get(&t).cloned());
        let route = describe_route(ctx, n).await?;
        rows.push([
            n.e164.to_string(),
            n.number_type.to_string(),
            domain.clone().unwrap_or_else(|| "(inventory)".to_owned()),
            route.clone().unwrap_or_default(),
        ]);
        json_rows.push(to_json(n, domain.as_deref(), route.as_deref()));
    }
    let text = if rows.is_empty() {
        "No numbers yet. Add one with `switchboard number add NUMBER`.".to_owned()
    } else {
        table(["NUMBER", "TYPE", "TENANT", "ROUTE"], &rows)
    };
    ctx.out.emit(text, Value::Array(json_rows));
    Ok(())
}

/// `ext:101` for an extension route, `KIND:ID` for the others.
async fn describe_route(ctx: &Ctx, n: &Number) -> anyhow::Result<Option<String>> {
    Ok(match (n.route, n.tenant_id) {
        (RouteTarget::None, _) => None,
        (RouteTarget::Extension(id), Some(tenant)) => {
            let ext = ctx
                .dir
                .get_extension(tenant, id)
                .await
                .map_err(store_error)?;
            Some(format!("ext:{}", ext.number))
        }
        (RouteTarget::Extension(id), None) => Some(format!("extension:{id}")),
        (RouteTarget::RingGroup(id), _) => Some(format!("ring_group:{id}")),
        (RouteTarget::Ivr(id), _) => Some(format!("ivr:{id}")),
        (RouteTarget::Conference(id), _) => Some(format!("conference:{id}")),
    })
}

fn to_json(n: &Number, tenant: Option<&str>, route: Option<&str>) -> Value {
    json!({
        "id": n.id.to_string(),
        "number": n.e164.as_str(),
        "display": n.e164.display(),
        "type": n.number_type.as_str(),
        "tenant": tenant,
        "route": route,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_route;

    #[test]
    fn routes_parse() {
        assert_eq!(parse_route("ext:101").unwrap().as_str(), "101");
        assert_eq!(parse_route("EXT:2001").unwrap().as_str(), "2001");
        let err = parse_route("101").unwrap_err().to_string();
        assert!(err.contains("expected ext:NUMBER"), "{err}");
        let err = parse_route("ext:1").unwrap_err().to_string();
        assert!(err.contains("2 to 6 digits"), "{err}");
    }
}
