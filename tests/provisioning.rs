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

fn numbers_in_uk_forms(db: Db) {
    add_tenant(&db, "Acme", "acme.example.com");
    cli(
        &db,
        &[
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
    .ok();
    let forms = [
        ("020 7946 0123", "+442079460123"),
        ("+44 20 7946 0124", "+442079460124"),
        ("0044 20 7946 0125", "+442079460125"),
        ("+44 (0)113 496 0001", "+441134960001"),
        ("01134960002", "+441134960002"),
    ];
    for (input, e164) in forms {
        let out = cli(&db, &["--json", "number", "add", input]).json();
        assert_eq!(out["number"], e164, "{input}");
        assert_eq!(out["type"], "geographic", "{input}");
    }
    let routed = cli(
        &db,
        &[
            "number",
            "add",
            "020 7946 0999",
            "--tenant",
            "acme.example.com",
            "--route",
            "ext:101",
        ],
    );
    let text = routed.ok();
    assert!(
        text.contains("+442079460999") && text.contains("ext:101"),
        "{text}"
    );

    let mine = cli(
        &db,
        &["--json", "number", "list", "--tenant", "acme.example.com"],
    )
    .json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine[0]["route"], "ext:101");
    let all = cli(&db, &["--json", "number", "list"]).json();
    assert_eq!(all.as_array().map(Vec::len), Some(6), "{all}");

    let dup = cli(&db, &["number", "add", "+442079460123"]);
    assert!(
        !dup.success() && dup.stderr.contains("+442079460123"),
        "{dup:#?}"
    );
    for bad in ["12345", "020 7946", "call me", "01632 960000"] {
        let out = cli(&db, &["number", "add", bad]);
        assert!(!out.success(), "{bad} accepted: {out:#?}");
        assert!(
            out.stderr.contains("not a valid phone number"),
            "{bad}: {}",
            out.stderr
        );
    }
    let no_ext = cli(
        &db,
        &[
            "number",
            "add",
            "020 7946 0998",
            "--tenant",
            "acme.example.com",
            "--route",
            "ext:555",
        ],
    );
    assert!(
        !no_ext.success() && no_ext.stderr.contains("555"),
        "{no_ext:#?}"
    );
    let bad_route = cli(
        &db,
        &[
            "number",
            "add",
            "020 7946 0997",
            "--tenant",
            "acme.example.com",
            "--route",
            "101",
        ],
    );
    assert!(
        !bad_route.success() && bad_route.stderr.contains("ext:"),
        "{bad_route:#?}"
    );
}

fn users_and_roles(db: Db) {
    add_tenant(&db, "Acme", "acme.example.com");
    let op = cli(
        &db,
        &[
            "--json",
            "user",
            "add",
            "--email",
            "Ops@Example.com",
            "--role",
            "operator",
        ],
    )
    .json();
    assert_eq!(op["email"], "ops@example.com");
    assert_eq!(op["tenant"], serde_json::Value::Null);
    let pw = op["password"]
        .as_str()
        .expect("generated password shown once");
    assert!(pw.len() >= 20, "{pw}");

    let admin = cli_with(
        &db,
        &[
            "user",
            "add",
            "--email",
            "boss@acme.example.com",
            "--tenant",
            "acme.example.com",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &[],
        Some("a long chosen password\n"),
    );
    let text = admin.ok();
    assert!(
        !text.contains("a long chosen password"),
        "chosen password echoed:\n{text}"
    );

    let no_tenant = cli(
        &db,
        &["user", "add", "--email", "m@x.com", "--role", "member"],
    );
    assert!(
        !no_tenant.success() && no_tenant.stderr.contains("--tenant"),
        "{no_tenant:#?}"
    );
    let op_with_tenant = cli(
        &db,
        &[
            "user",
            "add",
            "--email",
            "o@x.com",
            "--role",
            "operator",
            "--tenant",
            "acme.example.com",
        ],
    );
    assert!(
        !op_with_tenant.success() && op_with_tenant.stderr.contains("operator"),
        "{op_with_tenant:#?}"
    );
    let dup = cli(
        &db,
        &[
            "user",
            "add",
            "--email",
            "ops@example.com",
            "--role",
            "operator",
        ],
    );
    assert!(
        !dup.success() && dup.stderr.contains("ops@example.com"),
        "{dup:#?}"
    );
    let bad = cli(
        &db,
        &[
            "user",
            "add",
            "--email",
            "not-an-email",
            "--role",
            "operator",
        ],
    );
    assert!(!bad.success() && bad.stderr.contains("e-mail"), "{bad:#?}");
}

crate::both_backends!(
    tenant_add_and_list,
    duplicate_domain_is_refused,
    extension_add_prints_credentials_once,
    import_thousand_rows,
    import_with_bad_row_writes_nothing,
    numbers_in_uk_forms,
    users_and_roles,
);
