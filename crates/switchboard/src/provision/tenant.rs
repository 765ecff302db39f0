//! `switchboard tenant add|list`.

use serde_json::{Value, json};
use store::{NewTenant, SipDomain, Slug, Tenant, TenantSettings};

use super::{Ctx, all_pages, parse, rfc3339, store_error};
use crate::cli::TenantCommand;
use crate::output::table;

pub async fn run(ctx: &Ctx, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Add { name, domain, slug } => {
            add(ctx, &name, &domain, slug.as_deref()).await
        }
        TenantCommand::List => list(ctx).await,
    }
}

async fn add(ctx: &Ctx, name: &str, domain: &str, slug: Option<&str>) -> anyhow::Result<()> {
    let name = name.trim();
    if name.is_empty() {
        anyhow::bail!(
            "--name: the tenant name is empty; expected the business name, e.g. \"Acme Ltd\""
        );
    }
    let sip_domain: SipDomain = parse("--domain", domain)?;
    let slug: Slug = match slug {
        Some(s) => parse("--slug", s)?,
        None => slugify(name).parse().map_err(|e| {
            anyhow::anyhow!("cannot derive a slug from the name {name:?} ({e}); pass --slug")
        })?,
    };
    let new = NewTenant {
        slug,
        sip_domain,
        settings: TenantSettings::new(name),
    };
    let tenant = ctx.dir.create_tenant(&new).await.map_err(store_error)?;
    let text = format!(
        "Tenant {:?} created: SIP domain {}, slug {}, id {}",
        tenant.settings.name, tenant.sip_domain, tenant.slug, tenant.id
    );
    ctx.out.emit(text, to_json(&tenant));
    Ok(())
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let tenants = all_pages(|p| ctx.dir.list_tenants(p)).await?;
    let rows: Vec<[String; 4]> = tenants
        .iter()
        .map(|t| {
            [
                t.settings.name.clone(),
                t.sip_domain.to_string(),
                t.slug.to_string(),
                if t.suspended { "suspended" } else { "active" }.to_owned(),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        "No tenants yet. Add one with `switchboard tenant add --name NAME --domain DOMAIN`."
            .to_owned()
    } else {
        table(["NAME", "DOMAIN", "SLUG", "STATE"], &rows)
    };
    ctx.out
        .emit(text, Value::Array(tenants.iter().map(to_json).collect()));
    Ok(())
}

fn to_json(t: &Tenant) -> Value {
    json!({
        "id": t.id.to_string(),
        "name": t.settings.name,
        "slug": t.slug.as_str(),
        "domain": t.sip_domain.as_str(),
        "suspended": t.suspended,
        "max_concurrent_calls": t.settings.max_concurrent_calls,
        "allow_international": t.settings.allow_international,
        "allow_premium": t.settings.allow_premium,
        "created_at": rfc3339(t.created_at),
    })
}

/// "Acme Widgets Ltd." → "acme-widgets-ltd": ASCII letters and digits kept
/// (lowercased), every other run of characters becomes one '-', at most 63.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(63);
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slugify("Acme Widgets Ltd."), "acme-widgets-ltd");
        assert_eq!(slugify("  Smith & Sons (UK) "), "smith-sons-uk");
        assert_eq!(slugify("Café 42"), "caf-42");
        assert_eq!(slugify("***"), "");
        assert_eq!(slugify(&"x".repeat(80)).len(), 63);
    }
}
