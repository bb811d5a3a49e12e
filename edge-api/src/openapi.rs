//! The OpenAPI 3.1 document, generated from the route annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Bazaar API", description = "The shop's REST entry point. Amounts are Money objects in minor units; errors are application/problem+json (RFC 9457)."),
    paths(
        crate::routes::products::create,
        crate::routes::products::update,
        crate::routes::products::get,
        crate::routes::search::list,
        crate::routes::stock::put,
        crate::routes::basket::get,
        crate::routes::basket::put_item,
        crate::routes::basket::delete_item,
        crate::routes::orders::place,
        crate::routes::orders::list,
        crate::routes::orders::get,
        crate::routes::orders::cancel,
        crate::routes::orders::invoice,
        crate::routes::orders::updates,
    ),
    components(schemas(crate::dto::Money, crate::dto::Problem, crate::dto::FieldProblem)),
    modifiers(&BearerAuth),
    tags(
        (name = "products", description = "The catalog and its stock"),
        (name = "basket", description = "The caller's basket"),
        (name = "orders", description = "The caller's orders"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some("HS256 JWT with `sub`, `role` (customer|admin), `exp`; mint one with `bazaar token`"))
                        .build(),
                ),
            );
        }
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
