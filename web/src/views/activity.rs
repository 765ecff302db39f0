//! Live registrations and call history of a business.

use askama::Template;

use super::{FormErrors, Layout, Pager};

#[derive(Clone, Debug)]
pub struct RegRow {
    pub extension: String,
    pub device: String,
    pub source: String,
    pub transport: String,
    pub expires_in: String,
}

/// Refreshed every few seconds by htmx (`hx-select` of `#regs`); a plain reload without JS.
#[derive(Template)]
#[template(path = "business/registrations.html")]
pub struct RegistrationsPage {
    pub layout: Layout,
    pub base: String,
    pub rows: Vec<RegRow>,
}

impl RegistrationsPage {
    pub fn count_label(&self) -> String {
        super::count(self.rows.len() as u64, "registration")
    }
}

#[derive(Clone, Debug)]
pub struct CallRow {
    pub started: String,
    pub direction: String,
    pub caller: String,
    pub callee: String,
    /// The display name of the business's extension with that number, if it is one.
    pub caller_name: Option<String>,
    pub callee_name: Option<String>,
    /// The trunk's name, empty for calls that used none.
    pub trunk: String,
    pub disposition: String,
    pub duration: String,
}

impl CallRow {
    /// A small arrow for the direction; the word is shown beside it (the text alternative).
    pub fn direction_icon(&self) -> &'static str {
        match self.direction.as_str() {
            "inbound" => "↙",
            "outbound" => "↗",
            "internal" => "↔",
            "emergency" => "⚠",
            _ => "",
        }
    }
}

#[derive(Template)]
#[template(path = "business/calls.html")]
pub struct CallsPage {
    pub layout: Layout,
    pub base: String,
    pub from: String,
    pub to: String,
    pub party: String,
    /// Only missed calls (inbound or internal, not answered).
    pub missed: bool,
    /// Beside the field they are about.
    pub errors: FormErrors,
    pub rows: Vec<CallRow>,
    pub pager: Pager,
    pub csv_href: String,
}

impl AllRegistrationsPage {
    pub fn count_label(&self) -> String {
        super::count(self.total as u64, "registration")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_poll_and_escape() {
        let html = RegistrationsPage {
            layout: Layout::anonymous("Registrations"),
            base: "/t/x".into(),
            rows: vec![RegRow {
                extension: "201".into(),
                device: "<img src=x>".into(),
                source: "192.0.2.7:5060".into(),
                transport: "udp".into(),
                expires_in: "3 min".into(),
            }],
        }
        .render()
        .unwrap();
        assert!(html.contains(r#"hx-trigger="every 5s""#));
        assert!(html.contains("192.0.2.7:5060") && !html.contains("<img src=x>"));
    }
}

/// The operator's view of every registration on the platform.
#[derive(Template)]
#[template(path = "operator/registrations.html")]
pub struct AllRegistrationsPage {
    pub layout: Layout,
    /// (business, AOR, row)
    pub rows: Vec<(String, String, RegRow)>,
    pub total: usize,
    pub shown: usize,
}
