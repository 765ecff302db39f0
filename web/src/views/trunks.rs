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
        }
        .render()
        .unwrap();
        assert!(!html.contains("s3cret"));
        assert!(html.contains(r#"value="tls" selected"#), "{html}");
        assert!(html.contains("leave empty to keep"));
    }
}
