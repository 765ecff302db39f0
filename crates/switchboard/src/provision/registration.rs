//! `switchboard registration list`: the live SIP bindings of a tenant, as the
//! registrar wrote them to the directory.

use serde_json::{Value, json};
use store::{ExtensionNumber, Registration};
use time::OffsetDateTime;

use super::{Ctx, all_pages, parse, rfc3339, store_error, tenant_by_domain};
use crate::cli::RegistrationCommand;
use crate::output::table;

pub async fn run(ctx: &Ctx, command: RegistrationCommand) -> anyhow::Result<()> {
    match command {
        RegistrationCommand::List { tenant, extension } => {
            list(ctx, &tenant, extension.as_deref()).await
        }
    }
}

async fn list(ctx: &Ctx, tenant: &str, extension: Option<&str>) -> anyhow::Result<()> {
    let wanted: Option<ExtensionNumber> = extension.map(|n| parse("--extension", n)).transpose()?;
    let tenant = tenant_by_domain(ctx.dir.as_ref(), tenant).await?;
    let extensions = all_pages(|p| ctx.dir.list_extensions(tenant.id, None, p)).await?;
    if let Some(w) = &wanted {
        if !extensions.iter().any(|e| e.number == *w) {
            anyhow::bail!(
                "--extension: {} has no extension {w} (see `switchboard extension list`)",
                tenant.sip_domain
            );
        }
    }
    let now = OffsetDateTime::now_utc();
    let mut found: Vec<(ExtensionNumber, Registration)> = Vec::new();
    for ext in extensions
        .into_iter()
        .filter(|e| wanted.as_ref().is_none_or(|w| *w == e.number))
    {
        let regs = ctx
            .dir
            .list_registrations(tenant.id, ext.id)
            .await
            .map_err(store_error)?;
        found.extend(
            regs.into_iter()
                .filter(|r| r.binding.expires_at > now)
                .map(|r| (ext.number.clone(), r)),
        );
    }
    let rows: Vec<[String; 6]> = found
        .iter()
        .map(|(number, r)| {
            let b = &r.binding;
            [
                number.to_string(),
                b.contact_uri.clone(),
                b.source_addr.to_string(),
                b.transport.to_string(),
                rfc3339(b.expires_at),
                b.user_agent.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        format!("{} has no live registrations.", tenant.sip_domain)
    } else {
        table(
            [
                "EXTENSION",
                "CONTACT",
                "SOURCE",
                "TRANSPORT",
                "EXPIRES",
                "USER AGENT",
            ],
            &rows,
        )
    };
    let body = Value::Array(found.iter().map(|(n, r)| to_json(n, r)).collect());
    ctx.out.emit(text, body);
    Ok(())
}

fn to_json(number: &ExtensionNumber, r: &Registration) -> Value {
    let b = &r.binding;
    json!({
        "extension": number.as_str(),
        "aor": b.aor,
        "contact": b.contact_uri,
        "source": b.source_addr.to_string(),
        "transport": b.transport.to_string(),
        "local": b.local_addr.map(|a| a.to_string()),
        "expires_at": rfc3339(b.expires_at),
        "call_id": b.call_id,
        "cseq": b.cseq,
        "user_agent": b.user_agent,
        "instance_id": b.instance_id,
        "updated_at": rfc3339(r.updated_at),
    })
}
