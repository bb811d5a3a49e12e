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
        crate::routes::categories::list,
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
    modifiers(&BearerAuth, &RateLimited, &Unavailable, &JsonBodies, &Idempotent, &Operations),
    tags(
        (name = "products", description = "The catalog and its stock"),
        (name = "basket", description = "The caller's basket"),
        (name = "orders", description = "The caller's orders"),
        (name = "operations", description = "Health, metrics, the pages and this document"),
    )
)]
struct ApiDoc;

mod operations;

/// Added last, so the API's shared answers (429, 503, …) stay off them.
struct Operations;

impl Modify for Operations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.paths.paths.extend(operations::paths().paths);
    }
}

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

/// Any operation may answer 503 with `Retry-After: 1` (`problem.rs`): a
/// write is a command to the team's service that owns what it changes and
/// a search asks the shards, which may not answer in time (stopped,
/// restarting, overloaded), and every request is cut off after 30 s
/// (the timeout layer in `routes/mod.rs`). One shared response, referenced.
struct Unavailable;

impl Modify for Unavailable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};

        let response = problem_response(
            "the shop could not answer in time (for a write, the service that owns it; for a \
             search, every shard; or the request took over 30 s); retry after `Retry-After` \
             seconds. A write retried with the same Idempotency-Key happens at most once",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("seconds to wait before retrying"))
                .build(),
        );
        share_response(openapi, "503", "ServiceUnavailable", response, |_| true);
    }
}

/// Every operation with a request body answers 415 to a body that is not
/// `application/json` and 413 to one over 64 KiB (`json.rs`): shared
/// responses, referenced.
struct JsonBodies;

impl Modify for JsonBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let has_body =
            |operation: &utoipa::openapi::path::Operation| operation.request_body.is_some();
        let response = problem_response(
            "the body is not `application/json` (send `Content-Type: application/json`)",
        );
        share_response(openapi, "415", "UnsupportedMediaType", response, has_body);
        let response =
            problem_response(&format!("the body is over {} bytes", crate::MAX_BODY_BYTES));
        share_response(openapi, "413", "PayloadTooLarge", response, has_body);
    }
}

/// Every write (POST, PUT, PATCH, DELETE) takes an `Idempotency-Key`
/// (`routes::command_id`); the operations that describe it themselves keep
/// their own words, with the bounds every key is held to.
struct Idempotent;

impl Modify for Idempotent {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};

        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .description(Some("repeat the request safely: the same key with the same request returns the first outcome and changes nothing; with a different request it is refused (422). 1 to 200 visible ASCII characters, sent once (two are refused, 422)"))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(200)),
            ))
            .build();
        for (method, operation) in operations(openapi) {
            if method == "get" {
                continue;
            }
            let parameters = operation.parameters.get_or_insert_with(Vec::new);
            match parameters.iter_mut().find(|p| p.name == "Idempotency-Key") {
                // Its own words, and the bounds every key is held to.
                Some(own) => {
                    own.schema.clone_from(&parameter.schema);
                    if let Some(words) = own.description.as_mut() {
                        words.push_str(
                            ". 1 to 200 visible ASCII characters, sent once (two are refused, 422)",
                        );
                    }
                }
                None => parameters.push(parameter.clone()),
            }
        }
    }
}

/// Every operation of the document, with its method.
fn operations(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ]
        .into_iter()
        .filter_map(|(method, operation)| operation.as_mut().map(|o| (method, o)))
    })
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
    for (_, operation) in operations(openapi) {
        if applies(operation) {
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
