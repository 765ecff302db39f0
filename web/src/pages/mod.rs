//! HTML page handlers.

pub mod activity;
pub mod auth;
pub mod biz_numbers;
pub mod business;
pub mod dashboard;
pub mod devices;
pub mod live_calls;
pub mod member;
pub mod op_numbers;
pub mod operator;
pub mod ring_groups;
pub mod settings;
pub mod tokens;
pub mod trunks;
pub mod users;

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// 303 See Other: after a successful POST the browser GETs the next page (no resubmission).
pub fn see_other(to: &str) -> Response {
    (
        axum::http::StatusCode::SEE_OTHER,
        [(header::LOCATION, to.to_owned())],
    )
        .into_response()
}

/// Form checkboxes are absent when unticked and "on" (or any value) when ticked.
pub fn ticked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty())
}

use crate::error::{AppError, PageError};
use crate::views::FormErrors;

/// A store error about a field goes beside that field (renamed by `rename` to the form's field
/// name); anything else is a page error.
pub fn field_error(
    errors: &mut FormErrors,
    e: impl Into<AppError>,
    rename: &[(&str, &str)],
) -> Result<(), PageError> {
    let e = e.into();
    match e.field() {
        Some(field) => {
            let name = rename
                .iter()
                .find(|(from, _)| *from == field)
                .map_or(field, |(_, to)| *to);
            errors.add(name, e.public_message());
            Ok(())
        }
        None => Err(PageError(e)),
    }
}

/// 1-based page number from a query string value; anything odd is page 1.
pub fn page_number(p: Option<u32>) -> u32 {
    p.unwrap_or(1).clamp(1, 1_000_000)
}
