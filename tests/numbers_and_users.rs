//! The provisioning CLI end to end, continued: UK numbers and web users, on
//! SQLite and on Postgres.

mod common;

use common::{Db, cli, cli_with};

fn add_tenant(db: &Db, name: &str, domain: &str) -> serde_json::Value {
    cli(
        db,
        &[
            "--json", "tenant", "add", "--name", name, "--domain", domain,
        ],
    )
    .json()
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

crate::both_backends!(numbers_in_uk_forms, users_and_roles);
