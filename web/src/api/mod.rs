//! The REST API under `/api/v1`: businesses (operator tokens), numbers and extensions, with
//! bearer API tokens. Routes and the OpenAPI document come from the same `#[utoipa::path]`
//! annotations through `utoipa_axum`, so the document at `/api/v1/openapi.json` lists exactly
//! the routes that exist (and a test calls every one of them).

mod activity;
pub mod dto;
mod extensions;
mod live;
mod numbers;
mod ring_groups;
mod tenants;
mod tokens;
mod trunks;
mod users;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::de::DeserializeOwned;
use store::Page;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, AppError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        version = "1",
        description = "Provision businesses, +44 numbers, extensions and ring groups, and see \
                       registrations and calls. Authenticate with \
                       `Authorization: Bearer <token>`; tokens are created in the web admin. A \
                       business token reaches only its own business (anything else answers 404); \
                       an operator token reaches the whole platform."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(dto::ErrorBody, dto::ErrorDetail))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes (paths include `/api/v1`) and their OpenAPI document.
pub fn router_and_doc() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::get_one, tenants::patch))
        .routes(routes!(numbers::list_all, numbers::add))
        .routes(routes!(numbers::assign))
        .routes(routes!(numbers::list_tenant))
        .routes(routes!(numbers::route))
        .routes(routes!(extensions::list, extensions::create))
        .routes(routes!(
            extensions::get_one,
            extensions::patch,
            extensions::delete
        ))
        .routes(routes!(extensions::new_password))
        .routes(routes!(ring_groups::list, ring_groups::create))
        .routes(routes!(
            ring_groups::get_one,
            ring_groups::patch,
            ring_groups::delete
        ))
        .routes(routes!(activity::registrations))
        .routes(routes!(activity::calls))
        .routes(routes!(live::active))
        .routes(routes!(tokens::current))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::patch))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::list_devices, users::add_device))
        .routes(routes!(users::delete_device))
        .routes(routes!(trunks::list, trunks::create))
        .routes(routes!(trunks::get_one, trunks::patch, trunks::delete));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts()
}

/// The API routes, the document at `/api/v1/openapi.json`, and JSON 404s for the rest of
/// `/api/`.
pub fn routes() -> axum::Router<AppState> {
    let (router, doc) = router_and_doc();
    let doc = std::sync::Arc::new(doc);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/api/{*rest}", axum::routing::any(not_found))
}

async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}

/// `Json<T>` whose rejections are API errors (`bad_request` / `invalid` JSON bodies).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError(AppError::invalid(
                "body",
                format!("The JSON body does not match: {}", e.body_text()),
            ))),
            Err(e) => Err(ApiError(AppError::BadRequest(e.body_text()))),
        }
    }
}

fn page(p: &dto::ListParams) -> Page {
    Page::new(
        p.limit.unwrap_or(50).clamp(1, Page::MAX_LIMIT),
        p.offset.unwrap_or(0),
    )
}

/// 201 Created with a JSON body.
fn created(body: impl serde::Serialize) -> Response {
    (axum::http::StatusCode::CREATED, Json(body)).into_response()
}
