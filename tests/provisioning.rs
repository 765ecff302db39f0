//! The provisioning CLI end to end, on SQLite and on Postgres: what an
//! operator scripting against `switchboard` sees.

mod common;

use std::fmt::Write as _;
use std::time::Instant;

use common::{Db, cli, cli_with};
use serde_json::json;
fn add_tenant(db: &Db, name: &str, domain: &str) -> serde_json::Value {
    cli(
        db,
        &[
            "--json", "tenant", "add", "--name", name, "--domain", domain,
        ],
    )
    .json()
}

/// The HA1 pair stored for a SIP username, read straight from the directory.
fn stored_ha1(db: &Db, domain: &str, username: &str) -> (String, String) {
    common::block_on(async {
        let dir = store::connect(&db.url).await.expect("open directory");
        let domain: store::SipDomain = domain.parse().expect("domain");
        let tenant = dir.get_tenant_by_domain(&domain).await.expect("tenant");
        let username: store::SipUsername = username.parse().expect("username");
        let cred = dir
            .get_credential_by_username(tenant.id, &username)
            .await
            .expect("credential");
        dir.close().await;
        (cred.ha1_md5.to_string(), cred.ha1_sha256.to_string())
    })
}

fn tenant_add_and_list(db: Db) {
    let acme = add_tenant(&db, "Acme Widgets Ltd", "acme.pbx.example.com");
    assert_eq!(acme["slug"], "acme-widgets-ltd");
    assert_eq!(acme["domain"], "acme.pbx.example.com");
    assert_eq!(acme["name"], "Acme Widgets Ltd");
    let out = cli(
        &db,
        &[
            "tenant",
            "add",
            "--name",
            "Bravo",
            "--domain",
            "Bravo.Example.COM",
            "--slug",
            "bravo-co",
        ],
    );
    assert!(out.ok().contains("bravo.example.com"), "{out:#?}");

    let list = cli(&db, &["tenant", "list", "--json"]).json();
    let rows = list.as_array().expect("array");
    let domains: Vec<&str> = rows.iter().filter_map(|t| t["domain"].as_str()).collect();
    assert_eq!(domains.len(), 2, "{list}");
    assert!(domains.contains(&"acme.pbx.example.com") && domains.contains(&"bravo.example.com"));
    assert!(rows.iter().any(|t| t["slug"] == "bravo-co"));

    let text = cli(&db, &["tenant", "list"]);
    assert!(text.ok().contains("Acme Widgets Ltd"), "{text:#?}");
}

fn duplicate_domain_is_refused(db: Db) {
    add_tenant(&db, "Acme", "acme.example.com");
    let out = cli(
        &db,
        &[
            "tenant",
            "add",
            "--name",
            "Other",
            "--domain",
            "acme.example.com",
        ],
    );
    assert!(!out.success(), "{out:#?}");
    let stderr = out.stderr.trim();
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(
        stderr.contains("acme.example.com") || stderr.contains("domain"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let list = cli(&db, &["--json", "tenant", "list"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}

fn extension_add_prints_credentials_once(db: Db) {
    add_tenant(&db, "Acme", "acme.example.com");
    let out = cli(
        &db,
        &[
            "--json",
            "extension",
            "add",
            "--tenant",
            "acme.example.com",
            "--number",
            "101",
            "--name",
            "Alice",
        ],
    )
    .json();
    assert_eq!(out["number"], "101");
    let sip = &out["sip"];
    assert_eq!(sip["username"], "101");
    assert_eq!(sip["domain"], "acme.example.com");
    let password = sip["password"].as_str().expect("generated password");
    assert!(
        password.len() >= 20 && password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password}"
    );
    // The registrar will check digests against what was stored: HA1 over
    // realm = the tenant's SIP domain, for MD5 and SHA-256.
    let (md5, sha256) = stored_ha1(&db, "acme.example.com", "101");
    let input = format!("101:acme.example.com:{password}");
    assert_eq!(
        md5,
        hex::encode(<md5::Md5 as sha2::Digest>::digest(input.as_bytes()))
    );
    assert_eq!(
        sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(input.as_bytes()))
    );

    let text = cli(
        &db,
        &[
            "extension",
            "add",
            "--tenant",
            "acme.example.com",
            "--number",
            "102",
            "--name",
            "Bob",
            "--password",
            "Correct-Horse-9",
        ],
    );
    let text = text.ok();
    for want in ["102", "Correct-Horse-9", "acme.example.com", "username"] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    // Listing never shows passwords.
    let list = cli(
        &db,
        &[
            "extension",
            "list",
            "--tenant",
            "acme.example.com",
            "--json",
        ],
    );
    let listed = list.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert!(!list.stdout.contains(password) && !list.stdout.contains("Correct-Horse-9"));

    let dup = cli(
        &db,
        &[
            "extension",
            "add",
            "--tenant",
            "acme.example.com",
            "--number",
            "101",
            "--name",
            "Again",
        ],
    );
    assert!(!dup.success() && dup.stderr.contains("101"), "{dup:#?}");
    let bad = cli(
        &db,
        &[
            "extension",
            "add",
            "--tenant",
            "acme.example.com",
            "--number",
            "1a",
            "--name",
            "X",
        ],
    );
    assert!(
        !bad.success() && bad.stderr.contains("2 to 6 digits"),
        "{bad:#?}"
    );
    let unknown = cli(
        &db,
        &[
            "extension",
            "add",
            "--tenant",
            "nope.example.com",
            "--number",
            "103",
            "--name",
            "X",
        ],
    );
    assert!(
        !unknown.success() && unknown.stderr.contains("nope.example.com"),
        "{unknown:#?}"
    );
}

fn extension_password_from_stdin(db: Db) {
    add_tenant(&db, "Acme", "acme.example.com");
    let args = [
        "extension",
        "add",
        "--tenant",
        "acme.example.com",
        "--number",
        "103",
        "--name",
        "Carol",
        "--password-stdin",
    ];
    let out = cli_with(&db, &args, &[], Some("Piped-Passw0rd\n"));
    assert!(out.ok().contains("Piped-Passw0rd"), "{out:#?}");
    let (md5, _) = stored_ha1(&db, "acme.example.com", "103");
    let input = "103:acme.example.com:Piped-Passw0rd";
    assert_eq!(
        md5,
        hex::encode(<md5::Md5 as sha2::Digest>::digest(input.as_bytes()))
    );
    let empty = cli_with(&db, &args, &[], Some(""));
    assert!(
        !empty.success() && empty.stderr.contains("standard input is empty"),
        "{empty:#?}"
    );
}

fn import_thousand_rows(db: Db) {
    add_tenant(&db, "Big Co", "big.example.com");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extensions.csv");
    let mut csv = String::from("number,name,password\n");
    for i in 0..1000 {
        let number = 2000 + i;
        // Every tenth row leaves the password empty: it is generated.
        let password = if i % 10 == 0 {
            String::new()
        } else {
            format!("pw-{number}-secret")
        };
        let _ = writeln!(csv, "{number},User {number},{password}");
    }
    std::fs::write(&path, csv).unwrap();

    let started = Instant::now();
    let out = cli(
        &db,
        &[
            "--json",
            "extension",
            "import",
            "--tenant",
            "big.example.com",
            path.to_str().unwrap(),
        ],
    );
    let elapsed = started.elapsed();
    let backend = if db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let report = out.json();
    println!(
        "import of 1,000 extensions on {backend}: {elapsed:?} for the whole CLI run, {} ms reported by the command",
        report["elapsed_ms"]
    );
    assert_eq!(report["imported"], 1000, "{report}");
    let generated = report["generated"]
        .as_array()
        .expect("generated passwords listed");
    assert_eq!(generated.len(), 100);
    assert!(
        generated
            .iter()
            .all(|g| g["password"].as_str().is_some_and(|p| p.len() >= 20))
    );

    let list = cli(
        &db,
        &["--json", "extension", "list", "--tenant", "big.example.com"],
    )
    .json();
    assert_eq!(list.as_array().map(Vec::len), Some(1000));
}

fn import_with_bad_row_writes_nothing(db: Db) {
    add_tenant(&db, "Acme", "acme.example.com");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    // Line 1 is the header; line 7 has a letter in the number.
    let csv = "number,name,password\n201,A,\n202,B,\n203,C,\n204,D,\n205,E,\n2x6,F,\n207,G,\n";
    std::fs::write(&path, csv).unwrap();
    let out = cli(
        &db,
        &[
            "extension",
            "import",
            "--tenant",
            "acme.example.com",
            path.to_str().unwrap(),
        ],
    );
    assert!(!out.success(), "{out:#?}");
    assert!(out.stderr.contains("line 7"), "{}", out.stderr);
    assert!(out.stderr.contains("2x6"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("line 6") && !out.stderr.contains("line 8"),
        "{}",
        out.stderr
    );
    let list = cli(
        &db,
        &[
            "--json",
            "extension",
            "list",
            "--tenant",
            "acme.example.com",
        ],
    )
    .json();
    assert_eq!(list, json!([]), "nothing may be written");

    // A clash with an existing extension is only found by the store: still all or nothing.
    cli(
        &db,
        &[
            "extension",
            "add",
            "--tenant",
            "acme.example.com",
            "--number",
            "203",
            "--name",
            "Existing",
        ],
    )
    .ok();
    let clean = csv.replace("2x6", "206");
    std::fs::write(&path, clean).unwrap();
    let out = cli(
        &db,
        &[
            "extension",
            "import",
            "--tenant",
            "acme.example.com",
            path.to_str().unwrap(),
        ],
    );
    assert!(!out.success(), "{out:#?}");
    assert!(
        out.stderr.contains("line 4") && out.stderr.contains("203"),
        "{}",
        out.stderr
    );
    let list = cli(
        &db,
        &[
            "--json",
            "extension",
            "list",
            "--tenant",
            "acme.example.com",
        ],
    )
    .json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

crate::both_backends!(
    tenant_add_and_list,
    duplicate_domain_is_refused,
    extension_add_prints_credentials_once,
    extension_password_from_stdin,
    import_thousand_rows,
    import_with_bad_row_writes_nothing,
);
