//! `switchboard user add`.

use anyhow::bail;
use serde_json::json;
use store::{Email, NewUser, Role};

use super::{Ctx, parse, read_password_line, store_error, tenant_by_domain};
use crate::cli::{RoleArg, UserCommand};
use crate::secrets::Secret;

pub async fn run(ctx: &Ctx, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            email,
            tenant,
            role,
            name,
            password_stdin,
        } => {
            add(
                ctx,
                &email,
                tenant.as_deref(),
                role,
                name.as_deref(),
                password_stdin,
            )
            .await
        }
    }
}

async fn add(
    ctx: &Ctx,
    email: &str,
    tenant: Option<&str>,
    role: RoleArg,
    name: Option<&str>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let email: Email = parse("--email", email)?;
    let role = match role {
        RoleArg::Operator => Role::Operator,
        RoleArg::Admin => Role::Admin,
        RoleArg::Member => Role::Member,
    };
    let tenant = match (role, tenant) {
        (Role::Operator, Some(_)) => {
            bail!(
                "--tenant: an operator runs the whole platform and belongs to no tenant; drop --tenant or pick --role admin|member"
            )
        }
        (Role::Operator, None) => None,
        (_, None) => bail!("--tenant: an {role} belongs to a tenant; pass --tenant DOMAIN"),
        (_, Some(domain)) => Some(tenant_by_domain(ctx.dir.as_ref(), domain).await?),
    };
    let display_name = match name.map(str::trim) {
        Some("") => bail!("--name: the display name is empty"),
        Some(n) => n.to_owned(),
        None => email
            .as_str()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    let (password, generated) = if password_stdin {
        (read_password_line(Secret::chosen_login)?, false)
    } else {
        (Secret::generate(), true)
    };
    let password_hash = web::crypto::hash_password(password.expose().to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    let new = NewUser {
        tenant_id: tenant.as_ref().map(|t| t.id),
        email,
        display_name,
        role,
        password_hash,
    };
    let user = ctx.dir.create_user(&new).await.map_err(store_error)?;

    let domain = tenant.as_ref().map(|t| t.sip_domain.to_string());
    let mut text = format!(
        "User {} ({}) created as {}{}.",
        user.email,
        user.display_name,
        user.role,
        domain
            .as_deref()
            .map(|d| format!(" of {d}"))
            .unwrap_or_default()
    );
    let mut body = json!({
        "id": user.id.to_string(),
        "email": user.email.as_str(),
        "name": user.display_name,
        "role": user.role.as_str(),
        "tenant": domain,
    });
    if generated {
        text.push_str(&format!(
            "\nPassword (shown once, store it now): {}",
            password.expose()
        ));
        body["password"] = json!(password.expose());
    }
    ctx.out.emit(text, body);
    Ok(())
}
