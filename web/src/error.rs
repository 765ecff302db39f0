//! Errors, one type per layer: [`PageError`] renders an HTML page for the admin UI, [`ApiError`]
//! answers JSON `{"error": {"code", "message", "field"}}` for the REST API. Internal failures are
//! logged with their detail and shown to the client only as a generic message.

use std::fmt;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;
use store::StoreError;

use crate::views::ErrorPage;

/// Something went wrong on our side. The detail goes to the log, never to the client.
#[derive(Debug)]
pub struct Internal(String);

impl Internal {
    pub fn new(detail: impl Into<String>) -> Self {
        Self(detail.into())
    }
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<askama::Error> for Internal {
    fn from(e: askama::Error) -> Self {
        Internal(format!("template rendering failed: {e}"))
    }
}

/// What went wrong, independent of how it is shown.
#[derive(Debug)]
pub enum AppError {
    /// Not there, or not yours: the two are indistinguishable on purpose.
    NotFound,
    /// Signed in, but the role does not allow this.
    Forbidden,
    /// No valid session (pages redirect to the sign-in page) or API token.
    Unauthenticated,
    /// An API token that is known but no longer valid (revoked, expired, its creator disabled
    /// or demoted): 401 with the reason.
    TokenRefused(String),
    /// The request cannot be understood (e.g. a missing or stale CSRF token).
    BadRequest(String),
    /// A value is taken (409).
    Conflict {
        field: &'static str,
        message: String,
    },
    /// A value breaks a rule (422).
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Too many attempts (429).
    TooManyRequests(String),
    /// The database is not reachable right now (503).
    Unavailable(String),
    Internal(Internal),
}

impl AppError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::Unauthenticated | AppError::TokenRefused(_) => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::Forbidden => "forbidden",
            AppError::Unauthenticated => "unauthenticated",
            AppError::TokenRefused(_) => "token_refused",
            AppError::BadRequest(_) => "bad_request",
            AppError::Conflict { .. } => "conflict",
            AppError::Invalid { .. } => "invalid",
            AppError::TooManyRequests(_) => "too_many_requests",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// What the client may see.
    pub fn public_message(&self) -> String {
        match self {
            AppError::NotFound => "Not found.".into(),
            AppError::Forbidden => "You are not allowed to do this.".into(),
            AppError::Unauthenticated => "Sign in first.".into(),
            AppError::BadRequest(m)
            | AppError::TokenRefused(m)
            | AppError::Conflict { message: m, .. }
            | AppError::Invalid { message: m, .. }
            | AppError::TooManyRequests(m) => m.clone(),
            AppError::Unavailable(_) => {
                "The service is temporarily unavailable. Try again in a moment.".into()
            }
            AppError::Internal(_) => "Something went wrong on our side. It has been logged.".into(),
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            AppError::Conflict { field, .. } | AppError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Logs what the client will not see.
    fn log(&self) {
        match self {
            AppError::Internal(e) => tracing::error!(error = %e, "internal error"),
            AppError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => {}
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => AppError::NotFound,
            StoreError::Conflict { field, message } => AppError::Conflict { field, message },
            StoreError::Invalid { field, message } => AppError::Invalid { field, message },
            // A bulk action failed on one row: keep the kind of the row's error, say which row.
            StoreError::Row { index, error } => {
                let message = format!("row {}: {error}", index + 1);
                match *error {
                    StoreError::Conflict { field, .. } => AppError::Conflict { field, message },
                    StoreError::Invalid { field, .. } => AppError::Invalid { field, message },
                    other => AppError::from(other),
                }
            }
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            StoreError::Internal(m) => AppError::Internal(Internal(m)),
        }
    }
}

impl From<Internal> for AppError {
    fn from(e: Internal) -> Self {
        AppError::Internal(e)
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<store::ParseError> for AppError {
    fn from(e: store::ParseError) -> Self {
        AppError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// An [`AppError`] shown as an HTML page (or, for a missing session, a redirect to sign in).
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        e.log();
        if let AppError::Unauthenticated = e {
            return Redirect::to("/login").into_response();
        }
        let page = ErrorPage::new(e.status(), e.public_message());
        match askama::Template::render(&page) {
            Ok(html) => (e.status(), Html(html)).into_response(),
            Err(err) => {
                tracing::error!(error = %err, "error page failed to render");
                (e.status(), e.public_message()).into_response()
            }
        }
    }
}

/// An [`AppError`] as the REST API answers it.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        e.log();
        let body = json!({
            "error": {
                "code": e.code(),
                "message": e.public_message(),
                "field": e.field(),
            }
        });
        let mut res = (e.status(), Json(body)).into_response();
        match e {
            AppError::Unauthenticated => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"switchboard\""),
                );
            }
            // RFC 6750 §3.1.
            AppError::TokenRefused(_) => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static(
                        "Bearer realm=\"switchboard\", error=\"invalid_token\"",
                    ),
                );
            }
            _ => {}
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body(res: Response) -> String {
        String::from_utf8(to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn store_conflict_is_409_with_the_field() {
        let e = ApiError::from(StoreError::conflict(
            "number",
            "extension 201 already exists",
        ));
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let v: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
        assert_eq!(v["error"]["code"], "conflict");
        assert_eq!(v["error"]["field"], "number");
        assert_eq!(v["error"]["message"], "extension 201 already exists");
    }

    #[tokio::test]
    async fn internal_errors_are_hidden() {
        let secret = "connection to db.internal:5432 as admin failed";
        let res = ApiError::from(StoreError::Internal(secret.into())).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body(res).await.contains("db.internal"));
        let res = PageError::from(StoreError::Unavailable(secret.into())).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let html = body(res).await;
        assert!(
            html.contains("<html") && !html.contains("db.internal"),
            "{html}"
        );
    }

    #[tokio::test]
    async fn invalid_is_422() {
        let res = ApiError::from(StoreError::invalid("name", "too long")).into_response();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
