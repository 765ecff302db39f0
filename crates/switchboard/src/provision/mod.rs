//! The provisioning CLI: tenants, users, extensions and numbers. Input is
//! validated through the store's newtypes before anything is written, and
//! every failure is an error naming the input and what was expected.

mod extension;
mod number;
mod registration;
mod tenant;
mod trunk;
mod user;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::anyhow;
use store::{Directory, Page, Paged, SipDomain, StoreError, Tenant, TenantId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{Command, Settings};
use crate::output::Output;
use crate::secrets::Secret;

/// What every provisioning command gets.
pub struct Ctx {
    pub dir: Arc<dyn Directory>,
    pub out: Output,
    pub settings: Settings,
}

/// Runs one provisioning command. `command` must be a provisioning one.
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Tenant(c) => tenant::run(ctx, c).await,
        Command::User(c) => user::run(ctx, c).await,
        Command::Extension(c) => extension::run(ctx, c).await,
        Command::Number(c) => number::run(ctx, c).await,
        Command::Registration(c) => registration::run(ctx, c).await,
        Command::Trunk(c) => trunk::run(ctx, c).await,
        Command::Serve | Command::Migrate | Command::Healthcheck => {
            Err(anyhow!("not a provisioning command"))
        }
    }
}

/// Parses a value with the store's newtype; the error names the flag.
fn parse<T>(flag: &str, value: &str) -> anyhow::Result<T>
where
    T: std::str::FromStr<Err = store::ParseError>,
{
    value.parse::<T>().map_err(|e| anyhow!("{flag}: {e}"))
}

/// A store error as the operator should read it.
fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Unavailable(why) => anyhow!("the database is unavailable: {why}"),
        other => anyhow!("{other}"),
    }
}

async fn tenant_by_domain(dir: &dyn Directory, domain: &str) -> anyhow::Result<Tenant> {
    let domain: SipDomain = parse("--tenant", domain)?;
    match dir.get_tenant_by_domain(&domain).await {
        Ok(t) => Ok(t),
        Err(StoreError::NotFound { .. }) => Err(anyhow!(
            "--tenant: no tenant has the SIP domain {domain} (see `switchboard tenant list`)"
        )),
        Err(e) => Err(store_error(e)),
    }
}

/// Collects every page of a paged listing.
async fn all_pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(Page) -> Fut,
    Fut: std::future::Future<Output = store::Result<Paged<T>>>,
{
    let mut items = Vec::new();
    loop {
        let offset = u32::try_from(items.len()).map_err(|_| anyhow!("too many rows to list"))?;
        let page = fetch(Page::new(Page::MAX_LIMIT, offset))
            .await
            .map_err(store_error)?;
        let got = page.items.len();
        items.extend(page.items);
        if got == 0 || items.len() as u64 >= page.total {
            return Ok(items);
        }
    }
}

/// Tenant id → SIP domain, for listings that span tenants.
async fn tenant_domains(dir: &dyn Directory) -> anyhow::Result<Vec<(TenantId, SipDomain)>> {
    let tenants = all_pages(|p| dir.list_tenants(p)).await?;
    Ok(tenants.into_iter().map(|t| (t.id, t.sip_domain)).collect())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Where phones should send REGISTER: the public address when set, else the
/// SIP listen address, else (listening on all interfaces) the tenant domain.
fn registrar(settings: &Settings, domain: &SipDomain) -> String {
    let port = settings.sip_addr.port();
    match (&settings.public_addr, settings.sip_addr) {
        (Some(public), _) => format!("{public}:{port}"),
        (None, addr) if !addr.ip().is_unspecified() => SocketAddr::new(addr.ip(), port).to_string(),
        (None, _) => format!("{domain}:{port}"),
    }
}

/// Reads the first line of standard input as the password.
fn read_password_line() -> anyhow::Result<Secret> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| anyhow!("--password-stdin: cannot read standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(anyhow!(
            "--password-stdin: standard input is empty; expected the password on the first line"
        ));
    }
    Secret::chosen(password).map_err(|e| anyhow!("--password-stdin: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::Cli;

    fn settings(args: &[&str]) -> Settings {
        let mut argv = vec!["switchboard"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().settings
    }

    #[test]
    fn registrar_prefers_public_then_listen_then_domain() {
        let domain: SipDomain = "acme.example.com".parse().unwrap();
        let public = settings(&[
            "--public-addr",
            "pbx.example.net",
            "--sip-addr",
            "0.0.0.0:5070",
        ]);
        assert_eq!(registrar(&public, &domain), "pbx.example.net:5070");
        let local = settings(&["--sip-addr", "192.0.2.5:5060"]);
        assert_eq!(registrar(&local, &domain), "192.0.2.5:5060");
        let wildcard = settings(&["--sip-addr", "0.0.0.0:5060"]);
        assert_eq!(registrar(&wildcard, &domain), "acme.example.com:5060");
    }
}
