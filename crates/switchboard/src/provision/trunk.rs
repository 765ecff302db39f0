//! `switchboard trunk add|list`: the platform's trunks to SIP providers.

use std::io::BufRead as _;

use anyhow::anyhow;
use serde_json::{Value, json};
use store::{StoreError, Transport, Trunk, TrunkSettings};

use super::{Ctx, store_error};
use crate::cli::{TrunkAdd, TrunkCommand};
use crate::output::table;

pub async fn run(ctx: &Ctx, command: TrunkCommand) -> anyhow::Result<()> {
    match command {
        TrunkCommand::Add(a) => add(ctx, a).await,
        TrunkCommand::List => list(ctx).await,
    }
}

/// A store refusal as the operator reads it: the flag, then the reason.
fn trunk_error(e: StoreError) -> anyhow::Error {
    match e.field() {
        Some(field) if matches!(e, StoreError::Invalid { .. }) => {
            anyhow!("--{}: {e}", field.replace('_', "-"))
        }
        _ => store_error(e),
    }
}

async fn add(ctx: &Ctx, a: TrunkAdd) -> anyhow::Result<()> {
    let transport = match a.transport.as_str() {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        other => anyhow::bail!(
            "--transport: {other:?} is not a trunk transport; expected udp, tcp or tls"
        ),
    };
    let password = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| anyhow!("--password-stdin: cannot read standard input: {e}"))?;
        let p = line.trim_end_matches(['\r', '\n']);
        if p.is_empty() {
            anyhow::bail!(
                "--password-stdin: standard input is empty; expected the password on the first line"
            );
        }
        Some(store::Secret::new(p))
    } else {
        None
    };
    let settings = TrunkSettings {
        transport,
        username: a.username,
        password,
        from_domain: a.from_domain,
        priority: a.priority,
        emergency_priority: a.emergency_priority,
        inbound_source: a.inbound_source,
        force_wide_source: a.force_wide_source,
        inbound_auth: a.inbound_auth,
        calls_per_second: a.calls_per_second,
        register: a.register,
        registrar: a.registrar,
        register_expires: a.register_expires,
        ..TrunkSettings::new(&a.name, &a.host, a.port)
    };
    let t = ctx.dir.create_trunk(&settings).await.map_err(trunk_error)?;
    let text = format!(
        "Trunk {:?} created: {}:{} over {}, priority {}, id {}",
        t.settings.name,
        t.settings.host,
        t.settings.port,
        t.settings.transport,
        t.settings.priority,
        t.id
    );
    ctx.out.emit(text, to_json(&t));
    Ok(())
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let trunks = ctx.dir.list_trunks().await.map_err(store_error)?;
    let rows: Vec<[String; 5]> = trunks
        .iter()
        .map(|t| {
            let s = &t.settings;
            [
                s.name.clone(),
                format!("{}:{};transport={}", s.host, s.port, s.transport),
                s.priority.to_string(),
                s.inbound_source.clone().unwrap_or_else(|| "—".into()),
                if s.enabled { "enabled" } else { "disabled" }.to_owned(),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        "No trunks yet. Add one with `switchboard trunk add --name NAME --host HOST`.".to_owned()
    } else {
        table(
            ["NAME", "TARGET", "PRIORITY", "INBOUND SOURCE", "STATE"],
            &rows,
        )
    };
    ctx.out
        .emit(text, Value::Array(trunks.iter().map(to_json).collect()));
    Ok(())
}

fn to_json(t: &Trunk) -> Value {
    let s = &t.settings;
    json!({
        "id": t.id.to_string(),
        "name": s.name,
        "host": s.host,
        "port": s.port,
        "transport": s.transport.to_string(),
        "username": s.username,
        "has_password": s.password.is_some(),
        "priority": s.priority,
        "emergency_priority": s.emergency_priority,
        "enabled": s.enabled,
        "inbound_source": s.inbound_source,
        "force_wide_source": s.force_wide_source,
        "inbound_auth": s.inbound_auth,
        "calls_per_second": s.calls_per_second,
        "register": s.register,
        "registrar": s.registrar,
        "register_expires": s.register_expires,
    })
}
