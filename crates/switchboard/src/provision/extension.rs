//! `switchboard extension add|import|list`.

use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use store::{
    Extension, ExtensionNumber, ExtensionSettings, ImportExtension, NewCredential, NewExtension,
    SipDomain, SipUsername, StoreError,
};

use super::{
    Ctx, all_pages, parse, read_password_line, registrar, service_error, store_error,
    tenant_by_domain,
};
use crate::cli::ExtensionCommand;
use crate::csv_rows;
use crate::output::table;
use crate::secrets::Secret;
use web::service::credentials::new_credential;

pub async fn run(ctx: &Ctx, command: ExtensionCommand) -> anyhow::Result<()> {
    match command {
        ExtensionCommand::Add {
            tenant,
            number,
            name,
            password,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password_line(Secret::chosen)?)
            } else {
                password
            };
            add(ctx, &tenant, &number, &name, password).await
        }
        ExtensionCommand::Import { tenant, file } => import(ctx, &tenant, &file).await,
        ExtensionCommand::List { tenant } => list(ctx, &tenant).await,
        ExtensionCommand::Delete { tenant, number } => delete(ctx, &tenant, &number).await,
        ExtensionCommand::Password { tenant, number } => password(ctx, &tenant, &number).await,
    }
}

/// The extension's first SIP credential: username = the extension number,
/// HA1s over realm = the tenant's SIP domain.
fn credential(
    number: &ExtensionNumber,
    realm: &SipDomain,
    password: &Secret,
) -> anyhow::Result<NewCredential> {
    let username: SipUsername = number
        .as_str()
        .parse()
        .map_err(|e| anyhow!("extension number {number} is not a SIP username: {e}"))?;
    Ok(new_credential(realm, username, Some(password.expose())).0)
}

fn display_name(name: &str) -> anyhow::Result<String> {
    match name.trim() {
        "" => bail!("--name: the display name is empty; expected e.g. \"Alice Smith\""),
        n => Ok(n.to_owned()),
    }
}

async fn add(
    ctx: &Ctx,
    tenant: &str,
    number: &str,
    name: &str,
    password: Option<Secret>,
) -> anyhow::Result<()> {
    let number: ExtensionNumber = parse("--number", number)?;
    let name = display_name(name)?;
    let tenant = tenant_by_domain(ctx.dir.as_ref(), tenant).await?;
    let new = NewExtension {
        number,
        settings: ExtensionSettings::new(name),
    };
    let (ext, cred, password) = ctx
        .service
        .create_extension(&tenant, &new, password.as_ref().map(Secret::expose))
        .await
        .map_err(service_error)?;
    let username = cred.username.to_string();
    let registrar = registrar(&ctx.settings, &tenant.sip_domain);
    let text = format!(
        "Extension {} ({}) created for {}.\n\
         SIP account (the password is shown once, store it now):\n  \
         username:  {username}\n  password:  {}\n  domain:    {}\n  registrar: {registrar}",
        ext.number, ext.settings.display_name, tenant.sip_domain, password, tenant.sip_domain,
    );
    let body = json!({
        "id": ext.id.to_string(),
        "tenant": tenant.sip_domain.as_str(),
        "number": ext.number.as_str(),
        "name": ext.settings.display_name,
        "sip": {
            "username": username,
            "password": password,
            "domain": tenant.sip_domain.as_str(),
            "registrar": registrar,
        },
    });
    ctx.out.emit(text, body);
    Ok(())
}

async fn import(ctx: &Ctx, tenant: &str, path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // Every row against the same rules the store applies, so all bad lines are reported at once.
    let rows = csv_rows::parse(BufReader::new(file), |s| {
        s.parse::<ExtensionNumber>()
            .and_then(|n| n.check_new().map(|()| n))
            .map_err(|e| e.to_string())
    })?;
    let tenant = tenant_by_domain(ctx.dir.as_ref(), tenant).await?;

    let mut imports = Vec::with_capacity(rows.len());
    let mut generated = Vec::new();
    for row in &rows {
        let password = match &row.password {
            Some(p) => p.clone(),
            None => {
                let p = Secret::generate();
                generated.push((row.number.clone(), p.clone()));
                p
            }
        };
        let cred = credential(&row.number, &tenant.sip_domain, &password)?;
        imports.push(ImportExtension {
            extension: NewExtension {
                number: row.number.clone(),
                settings: ExtensionSettings::new(row.name.clone()),
            },
            credential: Some(cred),
        });
    }
    let written = match ctx.service.import_extensions(tenant.id, &imports).await {
        Ok(w) => w,
        Err(StoreError::Row { index, error }) => {
            let line = rows.get(index).map_or(0, |r| r.line);
            bail!("line {line}: {error}; nothing was imported");
        }
        Err(e) => return Err(store_error(e).context("nothing was imported")),
    };
    let elapsed = started.elapsed();

    let mut text = format!(
        "Imported {} extensions into {} in {:.2} s.",
        written.len(),
        tenant.sip_domain,
        elapsed.as_secs_f64()
    );
    if !generated.is_empty() {
        let rows: Vec<[String; 3]> = generated
            .iter()
            .map(|(n, p)| [n.to_string(), n.to_string(), p.expose().to_owned()])
            .collect();
        text.push_str("\nGenerated SIP passwords (shown once, store them now):\n");
        text.push_str(&table(["NUMBER", "USERNAME", "PASSWORD"], &rows));
    }
    let body = json!({
        "imported": written.len(),
        "tenant": tenant.sip_domain.as_str(),
        "elapsed_ms": elapsed.as_millis(),
        "generated": generated
            .iter()
            .map(|(n, p)| json!({"number": n.as_str(), "username": n.as_str(), "password": p.expose()}))
            .collect::<Vec<_>>(),
    });
    ctx.out.emit(text, body);
    Ok(())
}

async fn list(ctx: &Ctx, tenant: &str) -> anyhow::Result<()> {
    let tenant = tenant_by_domain(ctx.dir.as_ref(), tenant).await?;
    let exts = all_pages(|p| ctx.dir.list_extensions(tenant.id, None, p)).await?;
    let rows: Vec<[String; 3]> = exts
        .iter()
        .map(|e| {
            [
                e.number.to_string(),
                e.settings.display_name.clone(),
                if e.settings.dnd { "dnd" } else { "" }.to_owned(),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        format!("{} has no extensions yet.", tenant.sip_domain)
    } else {
        table(["NUMBER", "NAME", "STATE"], &rows)
    };
    ctx.out
        .emit(text, Value::Array(exts.iter().map(to_json).collect()));
    Ok(())
}

fn to_json(e: &Extension) -> Value {
    json!({
        "id": e.id.to_string(),
        "number": e.number.as_str(),
        "name": e.settings.display_name,
        "dnd": e.settings.dnd,
        "no_answer_timeout_secs": e.settings.no_answer_timeout_secs,
    })
}

/// The extension `number` of the tenant, or an error naming both.
async fn extension_of(
    ctx: &Ctx,
    tenant: &store::Tenant,
    number: &str,
) -> anyhow::Result<Extension> {
    let number: ExtensionNumber = parse("--number", number)?;
    match ctx.dir.get_extension_by_number(tenant.id, &number).await {
        Ok(e) => Ok(e),
        Err(StoreError::NotFound { .. }) => Err(anyhow!(
            "--number: {} has no extension {number} (see `switchboard extension list`)",
            tenant.sip_domain
        )),
        Err(e) => Err(store_error(e)),
    }
}

/// Deletes an extension; running servers stop ringing its phones at once.
async fn delete(ctx: &Ctx, tenant: &str, number: &str) -> anyhow::Result<()> {
    let tenant = tenant_by_domain(ctx.dir.as_ref(), tenant).await?;
    let ext = extension_of(ctx, &tenant, number).await?;
    ctx.service
        .delete_extension(tenant.id, ext.id, false)
        .await
        .map_err(service_error)?;
    ctx.out.emit(
        format!(
            "Extension {} ({}) deleted from {}; its phones are signed off.",
            ext.number, ext.settings.display_name, tenant.sip_domain
        ),
        json!({"deleted": ext.id.to_string(), "number": ext.number.as_str()}),
    );
    Ok(())
}

/// Gives the extension's SIP account a new generated password; the old one fails at once.
async fn password(ctx: &Ctx, tenant: &str, number: &str) -> anyhow::Result<()> {
    let tenant = tenant_by_domain(ctx.dir.as_ref(), tenant).await?;
    let ext = extension_of(ctx, &tenant, number).await?;
    let creds = ctx
        .dir
        .list_credentials(tenant.id, ext.id)
        .await
        .map_err(store_error)?;
    let Some(cred) = creds
        .iter()
        .find(|c| c.username.as_str() == ext.number.as_str())
    else {
        bail!(
            "extension {} has no SIP account named {}",
            ext.number,
            ext.number
        );
    };
    let password = ctx
        .service
        .regenerate_credential(&tenant, cred)
        .await
        .map_err(service_error)?;
    ctx.out.emit(
        format!(
            "New SIP password for {} (shown once, store it now): {password}\n\
             The old password stopped working and its phones were signed off.",
            cred.username
        ),
        json!({"username": cred.username.as_str(), "password": password, "domain": tenant.sip_domain.as_str()}),
    );
    Ok(())
}
