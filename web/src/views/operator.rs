//! Operator pages: businesses and the number inventory.

use askama::Template;
use serde::Deserialize;

use super::{FormErrors, Layout, Pager};

/// The business form, as typed (kept after a failed submit).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TenantForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub sip_domain: String,
    #[serde(default)]
    pub max_concurrent_calls: String,
    #[serde(default)]
    pub max_outside_calls: String,
    pub allow_international: Option<String>,
    pub allow_premium: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TenantRow {
    pub href: String,
    pub name: String,
    pub slug: String,
    pub sip_domain: String,
    pub suspended: bool,
    pub limits: String,
}

#[derive(Template)]
#[template(path = "operator/tenants.html")]
pub struct TenantsPage {
    pub layout: Layout,
    pub rows: Vec<TenantRow>,
    pub pager: Pager,
}

#[derive(Template)]
#[template(path = "operator/tenant_new.html")]
pub struct TenantNewPage {
    pub layout: Layout,
    pub form: TenantForm,
    pub errors: FormErrors,
}

#[derive(Clone, Debug)]
pub struct AdminRow {
    pub email: String,
    pub name: String,
    pub role: String,
    pub disabled: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AdminForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
}

#[derive(Template)]
#[template(path = "operator/tenant.html")]
pub struct TenantPage {
    pub layout: Layout,
    pub id: String,
    pub slug: String,
    pub sip_domain: String,
    pub suspended: bool,
    pub form: TenantForm,
    pub errors: FormErrors,
    pub saved: bool,
    pub users: Vec<AdminRow>,
    pub admin_form: AdminForm,
    pub admin_errors: FormErrors,
}

/// A new account's one-time password, shown once.
#[derive(Template)]
#[template(path = "operator/admin_created.html")]
pub struct AdminCreatedPage {
    pub layout: Layout,
    pub email: String,
    pub password: String,
    pub back: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NumberAddForm {
    #[serde(default)]
    pub first: String,
    #[serde(default)]
    pub last: String,
    /// Give the new numbers straight to this business ("" = inventory).
    #[serde(default)]
    pub tenant: String,
}

#[derive(Clone, Debug)]
pub struct NumberRow {
    pub id: String,
    pub display: String,
    pub e164: String,
    pub kind: String,
    /// The business's name, or empty for inventory.
    pub tenant: String,
    /// The business's SIP domain, shown beside its name.
    pub tenant_domain: String,
}

#[derive(Clone, Debug)]
pub struct TenantOption {
    pub id: String,
    pub name: String,
    pub domain: String,
}

#[derive(Template)]
#[template(path = "operator/numbers.html")]
pub struct NumbersPage {
    pub layout: Layout,
    pub rows: Vec<NumberRow>,
    pub tenants: Vec<TenantOption>,
    pub pager: Pager,
    pub unassigned_only: bool,
    pub form: NumberAddForm,
    pub errors: FormErrors,
    pub notice: Option<String>,
    /// The number looked up, and why nothing was found.
    pub find: String,
    pub find_error: Option<String>,
    /// The assign form as sent (kept after an error): the ticked numbers' ids and the
    /// business chosen ("inventory", a business id, or "").
    pub ticked: Vec<String>,
    pub assign_tenant: String,
    pub assign_errors: FormErrors,
}

impl NumbersPage {
    /// The number was ticked in the assign form as sent.
    pub fn is_ticked(&self, id: &str) -> bool {
        self.ticked.iter().any(|t| t == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_page_lists_types_and_offers_assignment() {
        let html = NumbersPage {
            layout: Layout::anonymous("Numbers"),
            rows: vec![NumberRow {
                id: "n1".into(),
                display: "0113 496 0000".into(),
                e164: "+441134960000".into(),
                kind: "geographic".into(),
                tenant: String::new(),
                tenant_domain: String::new(),
            }],
            tenants: vec![TenantOption {
                id: "t1".into(),
                name: "Acme & Co".into(),
                domain: "acme.pbx.test".into(),
            }],
            pager: Pager::new(1, 50, 1, |n| format!("?page={n}")),
            unassigned_only: false,
            form: NumberAddForm {
                first: "0113 496 0000".into(),
                last: "bad".into(),
                tenant: String::new(),
            },
            errors: {
                let mut e = FormErrors::default();
                e.add("last", "not a number");
                e
            },
            notice: None,
            find: String::new(),
            find_error: None,
            ticked: vec!["n1".into()],
            assign_tenant: "t1".into(),
            assign_errors: FormErrors::default(),
        }
        .render()
        .unwrap();
        assert!(html.contains("0113 496 0000") && html.contains("geographic"));
        assert!(
            html.contains("Acme &amp; Co") || html.contains("Acme &#38; Co"),
            "{html}"
        );
        // Picked from a list by name, with the SIP domain beside it; the choice is kept.
        assert!(html.contains(r#"action="/operator/numbers/assign""#));
        assert!(html.contains(r#"<option value="t1" selected>"#), "{html}");
        assert!(html.contains("acme.pbx.test"));
        assert!(
            html.contains(r#"name="number" value="n1" checked"#),
            "{html}"
        );
        assert!(html.contains("not a number") && html.contains(r#"value="bad""#));
    }
}
