//! Sign-in, first-run setup and password pages.

use askama::Template;

use super::{FormErrors, Layout};

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub email: String,
    /// One message for the whole form: which of e-mail or password was wrong is not revealed.
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/setup.html")]
pub struct SetupPage {
    pub layout: Layout,
    pub action: String,
    pub email: String,
    pub display_name: String,
    pub errors: FormErrors,
}

#[derive(Template)]
#[template(path = "auth/password.html")]
pub struct PasswordPage {
    pub layout: Layout,
    pub errors: FormErrors,
    pub done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_keeps_the_email_and_shows_the_error() {
        let html = LoginPage {
            layout: Layout::anonymous("Sign in"),
            email: "ann@acme.test".into(),
            error: Some("Wrong e-mail address or password.".into()),
            notice: None,
        }
        .render()
        .unwrap();
        assert!(html.contains(r#"value="ann@acme.test""#), "{html}");
        assert!(html.contains("Wrong e-mail address or password."));
        assert!(html.contains(r#"type="password""#));
        assert!(!html.contains("Sign out"));
    }

    #[test]
    fn setup_shows_field_errors_beside_fields() {
        let mut errors = FormErrors::default();
        errors.add("password", "Choose a password of at least 10 characters.");
        let html = SetupPage {
            layout: Layout::anonymous("Create the operator account"),
            action: "/setup/abc".into(),
            email: "op@example.test".into(),
            display_name: "Olga".into(),
            errors,
        }
        .render()
        .unwrap();
        assert!(html.contains(r#"id="e-password""#) && html.contains("at least 10"));
        assert!(html.contains(r#"aria-invalid="true""#));
        assert!(html.contains(r#"value="Olga""#));
    }
}
