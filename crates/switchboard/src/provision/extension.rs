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

use super::{Ctx, all_pages, parse, read_password_line, registrar, store_error, tenant_by_domain};
use crate::cli::ExtensionCommand;
use crate::csv_rows;
use crate::output::table;
use crate::secrets::{Ha1, Secret};

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
                Some(read_password_line()?)
            } else {
                password
            };
            add(ctx, &tenant, &number, &name, password).await
        }
        ExtensionCommand::Import { tenant, file } => import(ctx, &tenant, &file).await,
        ExtensionCommand::List { tenant } => list(ctx, &tenant).await,
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
    let ha1 = Ha1::compute(username.as_str(), realm.as_str(), password);
    Ok(NewCredential {
        username,
        ha1_md5: ha1.md5.parse().map_err(|e| anyhow!("MD5 HA1: {e}"))?,
        ha1_sha256: ha1
            .sha256
            .parse()
            .map_err(|e| anyhow!("SHA-256 HA1: {e}"))?,
        mac_address: None,
        model: None,
    })
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
    let password = password.unwrap_or_else(Secret::generate);
    let tenant = tenant_by_domain(ctx.dir.as_ref(), tenant).await?;
    let cred = credential(&number, &tenant.sip_domain, &password)?;
    let new = NewExtension {
        number,
        settings: ExtensionSettings::new(name),
    };
    let (ext, cred) = ctx
        .dir
        .create_extension(tenant.id, &new, Some(&cred))
        .await
        .map_err(store_error)?;
    let username = cred
        .map(|c| c.username.to_string())
        .unwrap_or_else(|| ext.number.to_string());
    let registrar = registrar(&ctx.settings, &tenant.sip_domain);
    let text = format!(
        "Extension {} ({}) created for {}.\n\
         SIP account (the password is shown once, store it now):\n  \
         username:  {username}\n  password:  {}\n  domain:    {}\n  registrar: {registrar}",
        ext.number,
        ext.settings.display_name,
        tenant.sip_domain,
        password.expose(),
        tenant.sip_domain,
    );
    let body = json!({
        "id": ext.id.to_string(),
        "tenant": tenant.sip_domain.as_str(),
        "number": ext.number.as_str(),
        "name": ext.settings.display_name,
        "sip": {
            "username": username,
            "password": password.expose(),
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
    let rows = csv_rows::parse(BufReader::new(file), |s| {
        s.parse::<ExtensionNumber>().map_err(|e| e.to_string())
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
    let written = match ctx.dir.import_extensions(tenant.id, &imports).await {
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
