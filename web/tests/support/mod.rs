//! In-process test harness: the real router over a fresh database (SQLite file, or a fresh
//! PostgreSQL database on the server at `SWITCHBOARD_TEST_PG_URL` (crates/testkit), dropped
//! afterwards; each noted in the run ledger `cargo xtask test` counts), driven with
//! `tower::ServiceExt::oneshot`, and a small "browser" that keeps the session cookie and the
//! page's CSRF token.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use sqlx::Connection;
use store::*;
use tower::ServiceExt;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The tests' Postgres server, database `postgres` (crates/testkit: `SWITCHBOARD_TEST_PG_URL`).
pub fn admin_url() -> String {
    testkit::pg_admin_url()
}

/// The call engine as the web app sees it, with calls a test puts in. It answers the tenant
/// filter honestly unless `leaky` is set, when it returns every call whatever it is asked (the
/// worst a bridge could do: the web side must still show each business only its own).
#[derive(Default)]
pub struct FakeCalls {
    calls: Mutex<Vec<web::ActiveCall>>,
    pub leaky: AtomicBool,
}

impl FakeCalls {
    pub fn set(&self, calls: Vec<web::ActiveCall>) {
        *self.calls.lock().unwrap() = calls;
    }

    pub fn set_leaky(&self, leaky: bool) {
        self.leaky.store(leaky, Ordering::Relaxed);
    }
}

impl web::LiveCalls for FakeCalls {
    fn active_calls(&self, tenant: Option<TenantId>) -> Vec<web::ActiveCall> {
        let leaky = self.leaky.load(Ordering::Relaxed);
        let mut calls = self.calls.lock().unwrap().clone();
        if let (Some(t), false) = (tenant, leaky) {
            calls.retain(|c| c.tenant == t);
        }
        calls
    }
}

/// Trunk states as the engine would report them, set by a test.
#[derive(Default)]
pub struct FakeTrunks {
    states: Mutex<Vec<(TrunkId, web::TrunkState)>>,
}

impl FakeTrunks {
    pub fn set(&self, trunk: TrunkId, state: web::TrunkState) {
        self.states.lock().unwrap().push((trunk, state));
    }
}

impl web::TrunkStates for FakeTrunks {
    fn state(&self, trunk: TrunkId) -> Option<web::TrunkState> {
        let states = self.states.lock().unwrap();
        states
            .iter()
            .rev()
            .find(|(t, _)| *t == trunk)
            .map(|(_, s)| s.clone())
    }
}

/// The SIP service's failed registrations as the web app sees them, with entries a test puts
/// in. Like the real one it answers only for the credential's own business.
#[derive(Default)]
pub struct FakeFailures {
    entries: Mutex<Vec<(TenantId, CredentialId, web::RegistrationFailure)>>,
}

impl FakeFailures {
    pub fn add(&self, tenant: TenantId, credential: CredentialId, f: web::RegistrationFailure) {
        self.entries.lock().unwrap().push((tenant, credential, f));
    }
}

impl web::RegistrationFailures for FakeFailures {
    fn recent(&self, tenant: TenantId, credential: CredentialId) -> Vec<web::RegistrationFailure> {
        let mut out: Vec<_> = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, c, _)| *t == tenant && *c == credential)
            .map(|(_, _, f)| f.clone())
            .collect();
        out.reverse();
        out
    }
}

/// A call of `tenant` from `caller` to `callee`; answered `talking` seconds ago, or ringing.
pub fn active_call(
    id: u64,
    tenant: TenantId,
    caller: &str,
    callee: &str,
    talking: Option<i64>,
) -> web::ActiveCall {
    let now = time::OffsetDateTime::now_utc();
    web::ActiveCall {
        id,
        tenant,
        caller: caller.into(),
        dialled: callee.into(),
        callee: callee.into(),
        state: if talking.is_some() {
            web::CallState::Connected
        } else {
            web::CallState::Ringing
        },
        started_at: now - time::Duration::seconds(talking.unwrap_or(0) + 10),
        answered_at: talking.map(|s| now - time::Duration::seconds(s)),
    }
}

pub struct App {
    pub router: Router,
    pub dir: Arc<dyn Directory>,
    /// Calls in progress, as the pages and the API see them.
    pub live: Arc<FakeCalls>,
    /// Failed registrations, as the extension page sees them.
    pub failures: Arc<FakeFailures>,
    /// Trunk states, as the operator's pages see them.
    pub trunks: Arc<FakeTrunks>,
    pg_name: Option<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl App {
    pub async fn new(b: Backend) -> App {
        let (dir, pg_name, tmp) = match b {
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!("sb_webtest_{}", Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("{}", testkit::pg_unreachable(&admin, &e)));
                sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let _ = conn.close().await;
                let dir = store::connect(&testkit::with_database(&admin, &name))
                    .await
                    .unwrap();
                testkit::ledger::opened(testkit::Backend::Postgres);
                (dir, Some(name), None)
            }
            Backend::Sqlite => {
                let tmp = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", tmp.path().join("d.db").display());
                let dir = store::connect(&url).await.unwrap();
                testkit::ledger::opened(testkit::Backend::Sqlite);
                (dir, None, Some(tmp))
            }
        };
        dir.migrate().await.unwrap();
        let live = Arc::new(FakeCalls::default());
        let failures = Arc::new(FakeFailures::default());
        let trunks = Arc::new(FakeTrunks::default());
        let state = web::AppState::with_config(
            dir.clone(),
            web::WebConfig {
                sip_registrar: Some("sip.switchboard.test:5060".into()),
                ..web::WebConfig::default()
            },
        )
        .with_live_calls(live.clone())
        .with_registration_failures(failures.clone())
        .with_trunk_states(trunks.clone());
        App {
            router: web::router(state),
            dir,
            live,
            failures,
            trunks,
            pg_name,
            _tmp: tmp,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = to_bytes(res.into_body(), 16 << 20).await.unwrap();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookie: None,
            csrf: None,
        }
    }

    pub async fn tenant(&self, slug: &str) -> Tenant {
        self.dir
            .create_tenant(&NewTenant {
                slug: slug.parse().unwrap(),
                sip_domain: format!("{slug}.pbx.test").parse().unwrap(),
                settings: TenantSettings::new(format!("{slug} Ltd")),
            })
            .await
            .unwrap()
    }

    /// A plain extension (no password, default settings) named `name`.
    pub async fn extension(&self, tenant: TenantId, number: &str, name: &str) -> Extension {
        self.dir
            .create_extension(
                tenant,
                &NewExtension {
                    number: number.parse().unwrap(),
                    settings: ExtensionSettings::new(name),
                },
                None,
            )
            .await
            .unwrap()
            .0
    }

    pub async fn user(&self, tenant: Option<TenantId>, role: Role, email: &str) -> User {
        self.dir
            .create_user(&NewUser {
                tenant_id: tenant,
                email: email.parse().unwrap(),
                display_name: "Test".into(),
                role,
                password_hash: web::crypto::hash_password(PASSWORD.into()).await.unwrap(),
            })
            .await
            .unwrap()
    }

    /// A signed-in browser of a new user.
    pub async fn signed_in(
        &self,
        tenant: Option<TenantId>,
        role: Role,
        email: &str,
    ) -> Browser<'_> {
        self.user(tenant, role, email).await;
        let mut b = self.browser();
        b.login(email, PASSWORD).await.assert(StatusCode::SEE_OTHER);
        b
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = admin_url();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    #[track_caller]
    pub fn assert(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub struct Browser<'a> {
    pub app: &'a App,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Browser<'_> {
    fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "pbx.test");
        if let Some(c) = &self.cookie {
            r = r.header(header::COOKIE, format!("sb_session={c}"));
        }
        r
    }

    fn remember(&mut self, resp: &Resp) {
        if let Some(v) = resp
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            let value = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim_start_matches("sb_session=");
            self.cookie = (!value.is_empty()).then(|| value.to_owned());
        }
        if let Some(t) = csrf_in(&resp.body) {
            self.csrf = Some(t);
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let req = self.request(Method::GET, path).body(Body::empty()).unwrap();
        let resp = self.app.send(req).await;
        self.remember(&resp);
        resp
    }

    /// A GET as htmx sends it (`HX-Request: true`), e.g. a live list's poll.
    pub async fn htmx_get(&mut self, path: &str) -> Resp {
        let req = self
            .request(Method::GET, path)
            .header("hx-request", "true")
            .body(Body::empty())
            .unwrap();
        let resp = self.app.send(req).await;
        self.remember(&resp);
        resp
    }

    /// Posts a form with the page's CSRF token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all: Vec<(&str, String)> =
            fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if let Some(t) = &self.csrf {
            all.push(("csrf_token", t.clone()));
        }
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, String)]) -> Resp {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let resp = self.app.send(req).await;
        self.remember(&resp);
        resp
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Resp {
        let r = self
            .post_raw(
                "/login",
                &[("email", email.into()), ("password", password.into())],
            )
            .await;
        if r.status == StatusCode::SEE_OTHER {
            // Load a page to learn the session's CSRF token.
            self.get("/account/password").await.assert(StatusCode::OK);
        }
        r
    }
}

/// The text between `start` and the next `end` (panics if absent).
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in {html}"))
        + start.len();
    let j = html[i..].find(end).unwrap() + i;
    &html[i..j]
}

/// The CSRF token a page embeds in its forms.
pub fn csrf_in(html: &str) -> Option<String> {
    let i = html.find(r#"name="csrf_token" value=""#)? + r#"name="csrf_token" value=""#.len();
    let rest = &html[i..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Generates `mod postgres { #[tokio::test] fn name() }` and `mod sqlite { ... }` for each
/// `async fn name(b: Backend)`. A Postgres test returns at once, counted as skipped, when the
/// run has no Postgres (`testkit::skip_postgres`).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if testkit::skip_postgres(concat!(module_path!(), "::", stringify!($name))) {
                        return;
                    }
                    super::$name($crate::support::Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
            )*
        }
    };
}
