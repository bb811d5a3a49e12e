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
    modifiers(&BearerAuth, &RateLimited, &JsonBodies),
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

/// Every operation may answer 429 (`rate_limit.rs`): one shared response
/// with its `Retry-After` header, referenced from each operation.
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};

        let response = problem_response(
            "over the caller's rate limit (per customer, or per client address without a token); retry after `Retry-After` seconds",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
                .description(Some("seconds until a request will be accepted again"))
                .build(),
        );
        share_response(openapi, "429", "TooManyRequests", response, |_| true);
    }
}

/// Every operation with a request body answers 415 to a body that is not
/// `application/json` (`json.rs`): one shared response, referenced.
struct JsonBodies;

impl Modify for JsonBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let response = problem_response(
            "the body is not `application/json` (send `Content-Type: application/json`)",
        );
        share_response(
            openapi,
            "415",
            "UnsupportedMediaType",
            response,
            |operation| operation.request_body.is_some(),
        );
    }
}

/// A response whose body is a problem document.
fn problem_response(description: &str) -> utoipa::openapi::response::ResponseBuilder {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::Ref;

    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

/// Adds `response` to the components as `name`, and a reference to it as
/// the `status` answer of every operation that `applies` to.
fn share_response(
    openapi: &mut utoipa::openapi::OpenApi,
    status: &str,
    name: &str,
    response: utoipa::openapi::response::ResponseBuilder,
    applies: impl Fn(&utoipa::openapi::path::Operation) -> bool,
) {
    use utoipa::openapi::{Ref, RefOr};

    if let Some(components) = openapi.components.as_mut() {
        components
            .responses
            .insert(name.to_owned(), response.build().into());
    }
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        .filter(|operation| applies(operation))
        {
            operation
                .responses
                .responses
                .insert(status.to_owned(), RefOr::Ref(Ref::from_response_name(name)));
        }
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
