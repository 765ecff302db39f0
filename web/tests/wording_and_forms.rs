//! The UI says "business" (never "tenant"), headings and buttons are in sentence case, and the
//! trunk, ring-group and password forms report every mistake at once.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend, PASSWORD};

/// What a person reads on a page: the text between tags, and the attributes that are shown
/// (title, placeholder, aria-label, alt).
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        out.push(' ');
        let Some(j) = rest[i..].find('>') else { break };
        let tag = &rest[i..i + j];
        for attr in ["title=\"", "placeholder=\"", "aria-label=\"", "alt=\""] {
            if let Some(k) = tag.find(attr) {
                let v = &tag[k + attr.len()..];
                out.push_str(&v[..v.find('"').unwrap_or(v.len())]);
                out.push(' ');
            }
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

/// Every template, as its source text.
fn templates() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates"
    ))];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }
    assert!(out.len() > 20);
    out
}

/// Template source without its `{{ }}`, `{% %}` and `{# #}` parts; a `{% %}` becomes "|", so
/// the branches of an `if` stay apart.
fn template_text(src: &str) -> String {
    let mut s = src.to_owned();
    for (open, close, with) in [("{#", "#}", " "), ("{%", "%}", "|"), ("{{", "}}", " ")] {
        while let Some(i) = s.find(open) {
            let j = s[i..].find(close).map_or(s.len(), |j| i + j + close.len());
            s.replace_range(i..j, with);
        }
    }
    s
}

#[test]
fn templates_say_business_not_tenant() {
    for (path, src) in templates() {
        let text = visible(&template_text(&src)).to_lowercase();
        assert!(!text.contains("tenant"), "{path} shows \"tenant\": {text}");
    }
}

/// Headings, buttons, table headers and legends: a capital only on the first word, acronyms
/// (SIP, DND, …) and the product name aside.
#[test]
fn headings_and_buttons_are_in_sentence_case() {
    let tags = [
        "h1", "h2", "h3", "button", "th", "legend", "caption", "title",
    ];
    let mut bad = Vec::new();
    for (path, src) in templates() {
        let text_src = template_text(&src);
        for tag in tags {
            let open = format!("<{tag}");
            let mut rest = text_src.as_str();
            while let Some(i) = rest.find(&open) {
                let after = &rest[i + open.len()..];
                if !after.starts_with(['>', ' ']) {
                    rest = after;
                    continue;
                }
                let Some(gt) = after.find('>') else { break };
                let body = &after[gt + 1..];
                let end = body.find('<').unwrap_or(body.len());
                let text = body[..end].trim();
                for word in text.split('|').flat_map(|t| t.split_whitespace().skip(1)) {
                    let letters: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
                    let acronym = letters.len() > 1
                        && letters
                            .chars()
                            .all(|c| c.is_uppercase() || c.is_ascii_digit());
                    let first_upper = letters.chars().next().is_some_and(char::is_uppercase);
                    if first_upper && !acronym && !matches!(letters.as_str(), "Switchboard") {
                        bad.push(format!("{path}: <{tag}> {text:?}"));
                    }
                }
                rest = &body[end..];
            }
        }
    }
    assert!(bad.is_empty(), "not in sentence case:\n{}", bad.join("\n"));
}

async fn store_messages_say_business(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let other = app.tenant("bravo").await;
    let stranger = app
        .user(Some(other.id), Role::Member, "sam@bravo.test")
        .await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let (e, _) = app
        .dir
        .create_extension(
            t.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Desk"),
            },
            None,
        )
        .await
        .unwrap();
    // Another business's user as the owner: refused by the store, in its words.
    let r = adm
        .post(
            &format!("/t/{}/extensions/{}", t.id, e.id),
            &[
                ("display_name", "Desk"),
                ("no_answer_timeout_secs", "20"),
                ("user", &stranger.id.to_string()),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    let text = visible(&r.body);
    assert!(text.contains("no such user in this business"), "{text}");
    assert!(!text.to_lowercase().contains("tenant"), "{text}");
}

async fn trunk_form_reports_every_mistake(b: Backend) {
    let app = App::new(b).await;
    let mut op = app
        .signed_in(None, Role::Operator, "op@platform.test")
        .await;
    let r = op
        .post(
            "/operator/trunks",
            &[
                ("name", ""),
                ("host", "bad host"),
                ("port", "5060"),
                ("transport", "udp"),
                ("priority", "x"),
                ("calls_per_second", "5000"),
                ("register", "on"),
                ("register_expires", "10"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    for field in [
        "name",
        "host",
        "priority",
        "calls_per_second",
        "register_expires",
    ] {
        assert!(
            r.body.contains(&format!(r#"id="e-{field}""#)),
            "no error beside {field}: {}",
            r.body
        );
    }
    assert!(
        r.body.contains("Registering to the provider needs"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Calls per second must be 1 to 1000."));
    assert!(app.dir.list_trunks().await.unwrap().is_empty());
}

async fn ring_group_members_all_reported(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    app.dir
        .create_extension(
            t.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Desk"),
            },
            None,
        )
        .await
        .unwrap();
    let r = adm
        .post(
            &format!("/t/{}/ring-groups", t.id),
            &[
                ("number", "20"),
                ("name", "Sales"),
                ("strategy", "sequential"),
                ("ring_timeout_secs", "30"),
                ("member_timeout_secs", "15"),
                ("members", "201\nhello\n299\n201"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    for m in [
        "Member 2: “hello” is neither an extension number nor a phone number.",
        "Member 3: there is no extension 299.",
        "Member 4: 201 is listed twice.",
    ] {
        assert!(r.body.contains(m), "{m} missing: {}", r.body);
    }
}

async fn password_change_reports_every_mistake(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let r = adm
        .post(
            "/account/password",
            &[
                ("current", "not my password"),
                ("new_password", "short"),
                ("confirm", "different"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["current", "new_password", "confirm"] {
        assert!(
            r.body.contains(&format!(r#"id="e-{field}""#)),
            "no error beside {field}: {}",
            r.body
        );
    }
    // Still the old password.
    let mut again = app.browser();
    again
        .login("ann@acme.test", PASSWORD)
        .await
        .assert(StatusCode::SEE_OTHER);
}

both_backends!(
    store_messages_say_business,
    trunk_form_reports_every_mistake,
    ring_group_members_all_reported,
    password_change_reports_every_mistake
);
