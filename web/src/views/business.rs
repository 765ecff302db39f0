//! Business admin pages: extensions, credentials, numbers, API tokens.

use askama::Template;
use serde::Deserialize;

use super::{FormErrors, Layout, Pager};

#[derive(Clone, Debug)]
pub struct ExtRow {
    pub id: String,
    pub href: String,
    pub number: String,
    pub name: String,
    pub dnd: bool,
    pub forwarding: String,
    /// Some phone of it holds an unexpired registration.
    pub online: bool,
    /// When it last registered ("never", or a time with its zone).
    pub last_registered: String,
}

/// One row of the extensions table: what the inline DND toggle (htmx) swaps in.
#[derive(Template)]
#[template(path = "business/ext_row.html")]
pub struct ExtRowPartial {
    pub layout: Layout,
    pub e: ExtRow,
}

#[derive(Template)]
#[template(path = "business/extensions.html")]
pub struct ExtensionsPage {
    pub layout: Layout,
    pub base: String,
    pub rows: Vec<ExtRow>,
    pub q: String,
    pub pager: Pager,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExtNewForm {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub display_name: String,
}

#[derive(Template)]
#[template(path = "business/extension_new.html")]
pub struct ExtensionNewPage {
    pub layout: Layout,
    pub base: String,
    pub form: ExtNewForm,
    pub errors: FormErrors,
}

/// SIP credentials, shown once, with a softphone configuration block.
#[derive(Template)]
#[template(path = "business/credentials.html")]
pub struct CredentialsPage {
    pub layout: Layout,
    pub intro: String,
    pub username: String,
    pub password: String,
    pub domain: String,
    pub registrar: String,
    pub back: String,
}

impl CredentialsPage {
    /// The ready-to-paste block: what any softphone's account screen asks for.
    pub fn config_block(&self) -> String {
        format!(
            "Username:        {u}\nPassword:        {p}\nDomain / realm:  {d}\nRegistrar/proxy: {r}\nSIP URI:         sip:{u}@{d}\nTransport:       UDP or TCP",
            u = self.username,
            p = self.password,
            d = self.domain,
            r = self.registrar,
        )
    }
}

/// A one-time credentials view that was already used (or is unknown): no password, only how
/// to get a new one.
#[derive(Template)]
#[template(path = "business/credentials_shown.html")]
pub struct CredentialsShownPage {
    pub layout: Layout,
    pub back: String,
    pub back_label: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExtEditForm {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub forward_always: String,
    #[serde(default)]
    pub forward_busy: String,
    #[serde(default)]
    pub forward_no_answer: String,
    #[serde(default)]
    pub no_answer_timeout_secs: String,
    /// Empty (an older form): the limit is left as it is.
    #[serde(default)]
    pub max_concurrent_calls: String,
    pub dnd: Option<String>,
    /// The user id this extension belongs to, or "" for nobody.
    #[serde(default)]
    pub user: String,
}

#[derive(Clone, Debug)]
pub struct CredRow {
    pub id: String,
    pub username: String,
    pub device: String,
    /// Unexpired registrations (phones registered with it now); 0 is offline.
    pub online: usize,
    /// When it last registered ("never", or a time with its zone).
    pub last_registered: String,
}

/// A failed registration of one of the extension's credentials, for its page.
#[derive(Clone, Debug)]
pub struct FailureRow {
    pub username: String,
    pub at: String,
    pub source: String,
    pub reason: String,
    pub count: u32,
}

#[derive(Template)]
#[template(path = "business/extension.html")]
pub struct ExtensionPage {
    pub layout: Layout,
    pub base: String,
    pub id: String,
    pub number: String,
    pub form: ExtEditForm,
    pub errors: FormErrors,
    pub saved: bool,
    pub credentials: Vec<CredRow>,
    /// Recent failed registrations of its credentials, newest first.
    pub failures: Vec<FailureRow>,
    /// (id, e-mail) of the business's users, for the owner select.
    pub users: Vec<(String, String)>,
    /// The add-a-device form, as typed, and its errors.
    pub device: DeviceForm,
    pub device_errors: FormErrors,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    pub mac_address: String,
    #[serde(default)]
    pub model: String,
}

/// A member's own extension: DND and forwarding only.
#[derive(Template)]
#[template(path = "business/my_extension.html")]
pub struct MyExtensionPage {
    pub layout: Layout,
    pub number: String,
    pub name: String,
    pub form: ExtEditForm,
    pub errors: FormErrors,
    pub saved: bool,
    /// Their recent calls, newest first.
    pub calls: Vec<super::activity::CallRow>,
    /// Their calls in progress (refreshed by htmx).
    pub table: super::live::LiveTable,
}

#[derive(Clone, Debug)]
pub struct BizNumberRow {
    pub id: String,
    pub display: String,
    pub kind: String,
    pub route: String,
    /// What the route form holds: the number the route goes to now, or what was typed
    /// (kept after an error).
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "business/numbers.html")]
pub struct BizNumbersPage {
    pub layout: Layout,
    pub base: String,
    pub rows: Vec<BizNumberRow>,
    pub pager: Pager,
    /// What the last change did.
    pub notice: Option<String>,
}

/// A link to something, as the delete page lists it.
#[derive(Clone, Debug)]
pub struct Link {
    pub href: String,
    pub label: String,
}

/// Deleting an extension: a confirmation, or why it cannot be deleted yet, naming (and
/// linking) what still sends calls to it; extensions forwarding to it can be cleared with it.
#[derive(Template)]
#[template(path = "business/extension_delete.html")]
pub struct ExtensionDeletePage {
    pub layout: Layout,
    /// "201 (Reception)".
    pub extension: String,
    pub action: String,
    pub cancel: String,
    /// Numbers routed to it and ring groups falling back to it: it cannot be deleted.
    pub numbers: Vec<Link>,
    pub fallbacks: Vec<Link>,
    /// Extensions forwarding to it, with which forwards.
    pub forwarders: Vec<(Link, String)>,
    /// Why a delete just failed.
    pub refused: Option<String>,
}

impl ExtensionDeletePage {
    pub fn blocked(&self) -> bool {
        !self.numbers.is_empty() || !self.fallbacks.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    /// "never" or the date (UTC) it stops working.
    pub expires: String,
    pub revoked: bool,
    /// Why it no longer works (expired, creator disabled, …); `None` while it works.
    pub refused: Option<String>,
}

/// API tokens of a business (or the operator's): list, create (shown once), revoke.
#[derive(Template)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    pub layout: Layout,
    pub base: String,
    pub rows: Vec<TokenRow>,
    /// What was typed in the name field. Not `name`: inside the field macro that would be the
    /// macro's own `name` parameter, and the box would show the literal text "name".
    pub token_name: String,
    /// What was typed in the expiry field (YYYY-MM-DD).
    pub expires: String,
    /// First day an expiry may be set to, for the date picker.
    pub min_expiry: String,
    /// The zone the dates are in ("Europe/London").
    pub zone_name: String,
    pub errors: FormErrors,
    pub created: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_page_shows_the_password_once_with_a_config_block() {
        let page = CredentialsPage {
            layout: Layout::anonymous("Extension 201 created"),
            intro: "x".into(),
            username: "201".into(),
            password: "Pw3xYz".into(),
            domain: "acme.pbx.test".into(),
            registrar: "sip.example.test:5060".into(),
            back: "/t/1/extensions".into(),
        };
        let html = page.render().unwrap();
        assert!(html.contains("Pw3xYz"));
        assert!(html.contains("Registrar/proxy: sip.example.test:5060"));
        assert!(html.contains("sip:201@acme.pbx.test"));
        assert!(html.contains("Copy"));
    }

    #[test]
    fn extension_list_renders_search_and_rows() {
        let html = ExtensionsPage {
            layout: Layout::anonymous("Extensions"),
            base: "/t/1".into(),
            rows: vec![ExtRow {
                id: "e".into(),
                href: "/t/1/extensions/e".into(),
                number: "201".into(),
                name: "Reception <desk>".into(),
                dnd: true,
                forwarding: String::new(),
                online: true,
                last_registered: "2026-12-08 14:05 UTC".into(),
            }],
            q: "rec".into(),
            pager: Pager::new(1, 50, 1, |n| format!("?page={n}")),
        }
        .render()
        .unwrap();
        assert!(html.contains(r#"value="rec""#) && html.contains("201"));
        assert!(!html.contains("<desk>"), "names are escaped");
        assert!(html.contains("hx-get"));
        assert!(html.contains("online") && html.contains("2026-12-08 14:05 UTC"));
    }
}

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub disabled: bool,
    pub is_me: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub role: String,
}

/// The web users of a business (admins and members), or the platform operators.
#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub layout: Layout,
    pub base: String,
    pub rows: Vec<UserRow>,
    /// Business pages offer a role choice; the operator list has one role.
    pub roles: Vec<(&'static str, &'static str)>,
    pub form: UserForm,
    pub errors: FormErrors,
    /// What the last action did ("mia@bravo.test is now an admin."), after its redirect.
    pub notice: Option<String>,
}

/// The business's settings: caller ID (main number), and the limits set by the operator.
#[derive(Template)]
#[template(path = "business/settings.html")]
pub struct SettingsPage {
    pub layout: Layout,
    pub base: String,
    pub name: String,
    pub limits: String,
    /// (E.164, display) of the business's numbers.
    pub numbers: Vec<(String, String)>,
    pub selected: String,
    /// IANA names to choose from, and the chosen one.
    pub zones: Vec<String>,
    pub zone: String,
    pub errors: FormErrors,
    pub saved: bool,
}
