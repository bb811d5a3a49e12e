//! The OpenAPI document is committed (`edge-api/openapi.json`) so that a
//! change to the REST contract shows in review and CI can validate it with
//! an independent validator (openapi-spec-validator). This test keeps the
//! committed file equal to what the code serves at /api/openapi.json.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = serde_json::to_string_pretty(&edge_api::openapi::document())
        .expect("the document serialises")
        + "\n";
    if std::env::var("BAZAAR_BLESS").as_deref() == Ok("1") {
        std::fs::write(committed_path(), &generated).expect("writing edge-api/openapi.json");
        println!("wrote edge-api/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "edge-api/openapi.json differs from the API the code serves: review the REST change, then run \
         `BAZAAR_BLESS=1 cargo test -p edge-api --test openapi` to update it"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_the_design_paths_and_bearer_security() {
    let doc = serde_json::to_value(edge_api::openapi::document()).expect("the document serialises");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/products/{id}/stock",
        "/api/v1/basket",
        "/api/v1/basket/items/{product_id}",
        "/api/v1/orders",
        "/api/v1/orders/{id}",
        "/api/v1/orders/{id}/cancel",
        "/api/v1/orders/{id}/invoice",
        "/api/v1/orders/{id}/updates",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "the document lacks {path}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
