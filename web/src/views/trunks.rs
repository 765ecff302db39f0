//! Operator pages for upstream SIP trunks.

use askama::Template;
use serde::Deserialize;

use super::{FormErrors, Layout};

#[derive(Clone, Debug)]
pub struct TrunkRow {
    pub id: String,
    pub name: String,
    pub target: String,
    pub priority: i32,
    pub emergency: String,
    pub enabled: bool,
    /// Health and registration, as [`describe`] words them (empty: unknown).
    pub status: Vec<String>,
}

/// A trunk's runtime state in words for the operator: health (with the last
/// OPTIONS status and round trip) and registration (until when, or why it
/// failed).
pub fn describe(state: Option<&crate::TrunkState>) -> Vec<String> {
    let Some(s) = state else {
        return Vec::new();
    };
    let zone = super::Zone::london();
    let fmt = |t: time::OffsetDateTime| zone.second(t);
    let mut out = Vec::new();
    match s.health.as_str() {
        "up" => out.push(match (s.last_status, s.latency_ms) {
            (Some(st), Some(ms)) => format!("up: OPTIONS answered {st} in {ms} ms"),
            _ => "up".to_owned(),
        }),
        "down" => out.push("down: no answer to OPTIONS (tried last)".to_owned()),
        _ => out.push("health unknown".to_owned()),
    }
    if let Some(r) = &s.registration {
        out.push(match (r.state.as_str(), r.expires_at) {
            ("registered", Some(at)) => format!("registered until {}", fmt(at)),
            _ => format!(
                "registration failed: {}",
                r.reason.clone().unwrap_or_else(|| "unknown".into())
            ),
        });
    }
    out
}

#[derive(Template)]
#[template(path = "operator/trunks.html")]
pub struct TrunksPage {
    pub layout: Layout,
    pub rows: Vec<TrunkRow>,
}

/// The trunk form as typed. The password is never shown back: empty keeps the stored one.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TrunkForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub transport: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub from_domain: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub emergency_priority: String,
    #[serde(default)]
    pub inbound_source: String,
    pub force_wide_source: Option<String>,
    pub inbound_auth: Option<String>,
    #[serde(default)]
    pub calls_per_second: String,
    pub register: Option<String>,
    #[serde(default)]
    pub registrar: String,
    #[serde(default)]
    pub register_expires: String,
    pub enabled: Option<String>,
}

#[derive(Template)]
#[template(path = "operator/trunk_form.html")]
pub struct TrunkFormPage {
    pub layout: Layout,
    pub action: String,
    /// Set when editing: offers delete and says the password is kept when left empty.
    pub id: Option<String>,
    pub has_password: bool,
    pub form: TrunkForm,
    pub errors: FormErrors,
    pub saved: bool,
    /// The running trunk's health and registration ([`describe`]).
    pub status: Vec<String>,
}

impl TrunkFormPage {
    pub fn transports(&self) -> [(&'static str, bool); 3] {
        ["udp", "tcp", "tls"].map(|t| (t, self.form.transport == t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_rendered() {
        let html = TrunkFormPage {
            layout: Layout::anonymous("Trunk"),
            action: "/operator/trunks/x".into(),
            id: Some("x".into()),
            has_password: true,
            form: TrunkForm {
                password: "s3cret".into(),
                transport: "tls".into(),
                ..TrunkForm::default()
            },
            errors: FormErrors::default(),
            saved: false,
            status: describe(Some(&crate::TrunkState {
                health: "down".into(),
                last_status: None,
                latency_ms: None,
                checked_at: None,
                registration: Some(crate::TrunkRegistration {
                    state: "failed".into(),
                    expires_at: None,
                    status: Some(403),
                    reason: Some("403 Forbidden".into()),
                }),
            })),
        }
        .render()
        .unwrap();
        assert!(!html.contains("s3cret"));
        assert!(html.contains(r#"value="tls" selected"#), "{html}");
        assert!(html.contains("leave empty to keep"));
        assert!(html.contains("down: no answer to OPTIONS"), "{html}");
        assert!(
            html.contains("registration failed: 403 Forbidden"),
            "{html}"
        );
    }

    #[test]
    fn describe_words_health_and_registration() {
        let up = crate::TrunkState {
            health: "up".into(),
            last_status: Some(200),
            latency_ms: Some(12),
            checked_at: None,
            registration: Some(crate::TrunkRegistration {
                state: "registered".into(),
                expires_at: Some(time::macros::datetime!(2026-12-08 10:00 UTC)),
                status: None,
                reason: None,
            }),
        };
        assert_eq!(
            describe(Some(&up)),
            [
                "up: OPTIONS answered 200 in 12 ms",
                "registered until 2026-12-08 10:00:00 GMT"
            ]
        );
        assert!(describe(None).is_empty());
    }
}
