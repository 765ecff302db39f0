//! The store contract: the same tests against PostgreSQL and SQLite.

#[macro_use]
mod support;

use store::*;

// ------------------------------------------------------------------ fixtures

pub(crate) const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

pub(crate) fn new_tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: slug.parse().unwrap(),
        sip_domain: format!("{slug}.pbx.test").parse().unwrap(),
        settings: TenantSettings::new(format!("{slug} Ltd")),
    }
}

pub(crate) async fn tenant(d: &dyn Directory, slug: &str) -> Tenant {
    d.create_tenant(&new_tenant(slug)).await.unwrap()
}

pub(crate) fn new_ext(number: &str) -> NewExtension {
    NewExtension {
        number: number.parse().unwrap(),
        settings: ExtensionSettings::new(format!("Desk {number}")),
    }
}

pub(crate) fn new_cred(username: &str) -> NewCredential {
    NewCredential {
        username: username.parse().unwrap(),
        ha1_md5: "5f4dcc3b5aa765d61d8327deb882cf99".parse().unwrap(),
        ha1_sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
            .parse()
            .unwrap(),
        mac_address: None,
        model: None,
    }
}

pub(crate) async fn ext(d: &dyn Directory, t: TenantId, number: &str) -> Extension {
    d.create_extension(t, &new_ext(number), None)
        .await
        .unwrap()
        .0
}

pub(crate) fn e164(s: &str) -> E164 {
    s.parse().unwrap()
}

pub(crate) fn field(
    r: Result<impl std::fmt::Debug, StoreError>,
) -> (&'static str, Option<&'static str>) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e @ StoreError::Conflict { .. }) => ("conflict", e.field()),
        Err(e @ StoreError::Invalid { .. }) => ("invalid", e.field()),
        Err(StoreError::NotFound { .. }) => ("not_found", None),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

#[path = "contract/changes.rs"]
mod changes;
#[path = "contract/columns.rs"]
mod columns;
#[path = "contract/extensions.rs"]
mod extensions;
#[path = "contract/operations.rs"]
mod operations;
#[path = "contract/routing.rs"]
mod routing;
#[path = "contract/schema.rs"]
mod schema;
#[path = "contract/tenants.rs"]
mod tenants;
#[path = "contract/web.rs"]
mod web;
use columns::*;
use extensions::*;
use operations::*;
use routing::*;
use schema::*;
use tenants::*;
use web::*;

contract_tests!(
    health_before_and_after_migrate,
    tenants_and_users,
    extensions_and_credentials,
    list_search_and_pagination,
    one_number_one_target,
    import_is_all_or_nothing,
    import_a_thousand_rows,
    list_ten_thousand,
    concurrent_writers,
    numbers_and_routes,
    last_registered_outlives_bindings,
    ring_groups,
    trunks,
    cidr_slash_zero_trunk_is_refused,
    trunk_interop_settings,
    schema_refuses_bad_rows,
    schema_checks_each_column,
    registrations,
    registration_batches,
    cdrs,
    cdr_batches,
    call_summary_and_missed_calls,
    web_sessions,
    web_api_tokens,
    web_login_attempts,
    web_setup_tokens,
    web_user_extension,
    web_user_roles,
    web_audit_log,
);

/// With nothing listening, the store says `Unavailable` (what the engine buffers CDRs on) and
/// `health()` says unreachable, instead of failing in some other way.
#[tokio::test]
async fn postgres_down_is_unavailable() {
    let fast = ConnectOptions {
        acquire_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let d = store::connect_with("postgres://postgres@127.0.0.1:1/nothing", &fast)
        .await
        .unwrap();
    let h = d.health().await;
    assert!(!h.reachable && !h.is_ok(), "{h:?}");
    let err = d.get_tenant(TenantId::new()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

/// A SQLite file that cannot be opened is `Unavailable`, not a panic or an internal error.
#[tokio::test]
async fn sqlite_unopenable_is_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        tmp.path().join("missing/dir/directory.db").display()
    );
    match store::connect(&url).await {
        Err(e) => assert!(e.is_unavailable(), "{e:?}"),
        Ok(_) => panic!("opened a file in a missing directory"),
    }
}

/// `sqlite::memory:` keeps its one connection, so what is written stays readable.
#[tokio::test]
async fn sqlite_in_memory_works() {
    let d = store::connect("sqlite::memory:").await.unwrap();
    d.migrate().await.unwrap();
    assert!(d.health().await.is_ok());
    let t = tenant(&*d, "acme").await;
    let e = ext(&*d, t.id, "201").await;
    assert_eq!(d.get_extension(t.id, e.id).await.unwrap(), e);
}

/// The SQLite file holds SIP credentials and password hashes: a new one (and its WAL and
/// shared-memory files) is readable by its owner only, whatever the umask.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_file_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("directory.db");
    let d = store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    d.migrate().await.unwrap();
    tenant(&*d, "acme").await;
    for suffix in ["", "-wal", "-shm"] {
        let file = tmp.path().join(format!("directory.db{suffix}"));
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{} has mode {:o}",
            file.display(),
            mode & 0o777
        );
    }
}
