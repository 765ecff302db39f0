//! Latency of the extensions list with 10,000 extensions in one business, through the real
//! router in process (session lookup, store query, template), on SQLite or PostgreSQL.
//!
//! ```text
//! cargo run --release -p web --example bench_extensions -- sqlite
//! cargo run --release -p web --example bench_extensions -- postgres   # SWITCHBOARD_TEST_PG_URL
//! ```
//! Prints p50 / p99 / max for the first page, a broad search and a narrow search.

use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use sqlx::Connection;
use store::*;
use tower::ServiceExt;

const EXTENSIONS: usize = 10_000;
const RUNS: usize = 300;

#[tokio::main]
async fn main() {
    let backend = std::env::args().nth(1).unwrap_or_else(|| "sqlite".into());
    let tmp = tempfile::tempdir().unwrap();
    let (url, pg_name) = match backend.as_str() {
        "postgres" => {
            let admin = testkit::pg_admin_url();
            let name = format!("sb_bench_{}", uuid::Uuid::now_v7().simple());
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut c)
                .await
                .unwrap();
            (testkit::with_database(&admin, &name), Some((admin, name)))
        }
        _ => (
            format!("sqlite://{}", tmp.path().join("bench.db").display()),
            None,
        ),
    };
    let dir = store::connect(&url).await.unwrap();
    dir.migrate().await.unwrap();
    let t = dir
        .create_tenant(&NewTenant {
            slug: "bench".parse().unwrap(),
            sip_domain: "bench.pbx.test".parse().unwrap(),
            settings: TenantSettings::new("Bench Ltd"),
        })
        .await
        .unwrap();
    let rows: Vec<ImportExtension> = (0..EXTENSIONS)
        .map(|i| ImportExtension {
            extension: NewExtension {
                number: format!("{}", 100_000 + i).parse().unwrap(),
                settings: ExtensionSettings::new(format!("Desk {i}")),
            },
            credential: None,
        })
        .collect();
    let started = Instant::now();
    dir.import_extensions(t.id, &rows).await.unwrap();
    println!(
        "{backend}: imported {EXTENSIONS} extensions in {:?}",
        started.elapsed()
    );
    let password = "bench password 123";
    dir.create_user(&NewUser {
        tenant_id: Some(t.id),
        email: "admin@bench.test".parse().unwrap(),
        display_name: "Admin".into(),
        role: Role::Admin,
        password_hash: web::crypto::hash_password(password.into()).await.unwrap(),
    })
    .await
    .unwrap();

    let app = web::router(web::AppState::new(dir.clone()));
    let login = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "email=admin%40bench.test&password={}",
            password.replace(' ', "+")
        )))
        .unwrap();
    let res = app.clone().oneshot(login).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    for (label, query) in [
        ("first page", String::new()),
        ("search 'desk 7' (1,111 hits)", "?q=desk+7".to_owned()),
        ("search '109876' (1 hit)", "?q=109876".to_owned()),
        ("page 150", "?page=150".to_owned()),
    ] {
        let uri = format!("/t/{}/extensions{query}", t.id);
        let mut times = Vec::with_capacity(RUNS);
        for i in 0..RUNS + 20 {
            let req = Request::get(&uri)
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap();
            let t0 = Instant::now();
            let res = app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let body = to_bytes(res.into_body(), 1 << 24).await.unwrap();
            let dt = t0.elapsed();
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            if i >= 20 {
                times.push(dt);
            }
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{backend}: {label:<32} p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms  ({RUNS} requests)",
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(*times.last().unwrap())
        );
    }
    dir.close().await;
    if let Some((admin, name)) = pg_name {
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut c)
            .await;
    }
}
