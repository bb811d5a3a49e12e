//! The walking skeleton (issue 2): a product goes in through the edge,
//! comes back at once, and its event on the stream is a proper CloudEvent;
//! every rejected request is a problem document and publishes nothing.

use std::time::Duration;

use bazaar_testkit::api::{NewProduct, Product};
use bazaar_testkit::{mint_expired_token, mint_token, Service, Shop, Streams};
use contracts::auth::Role;
use contracts::product::ProductCreatedV1;
use contracts::subjects::evt;
use contracts::Team;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn an_admin_creates_a_product_and_reads_it_back_at_once() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let admin = shop.admin_api();

    let created = admin
        .create_product(&NewProduct::sample("KB-001", 4999))
        .await
        .expect(201);
    let product: Product = created.json();
    let read = shop.api().product(product.id).await.expect(200);

    assert_eq!(
        created.header("location").as_deref(),
        Some(format!("/api/v1/products/{}", product.id).as_str())
    );
    assert_eq!(read.json::<Product>(), product, "201 body equals GET");
    assert_eq!(product.sku, "KB-001");
    assert_eq!(product.name, "Product KB-001");
    assert_eq!(product.category, "tests");
    assert_eq!(product.price.amount_minor, 4999);
    assert_eq!(product.price.currency, "EUR");
    assert_eq!(product.status, "active");
    assert_eq!(product.available, 0, "no stock was ever set");
}

/// Every way a request can be refused, each asserted to be problem+json
/// with the right status; afterwards no stream holds a new message.
#[tokio::test]
async fn rejected_requests_answer_problem_json_and_publish_nothing() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let streams = shop.streams().await;
    let admin = shop.admin_api();
    let existing: Product = admin
        .create_product(&NewProduct::sample("EXISTING-1", 100))
        .await
        .expect(201)
        .json();
    let before = counts(&streams).await;
    let valid = NewProduct::sample("VALID-1", 1999);
    let anonymous = shop.api();
    let customer = shop.customer_api("alice");

    // 401: no token, garbage, another signer, expired.
    let problem = anonymous.create_product(&valid).await.expect(401).problem();
    assert!(problem.detail.contains("Bearer"), "{problem:?}");
    for token in [
        "not-a-jwt".to_owned(),
        mint_token(
            "another-secret-another-secret-another-secret",
            "admin",
            Role::Admin,
            Duration::from_secs(3600),
        ),
        mint_expired_token(
            shop.jwt_secret(),
            "admin",
            Role::Admin,
            Duration::from_secs(300),
        ),
    ] {
        anonymous
            .with_token(token)
            .create_product(&valid)
            .await
            .expect(401)
            .problem();
    }
    let basic = anonymous
        .request(Method::POST, "/api/v1/products")
        .header("Authorization", "Basic YWRtaW46YWRtaW4=")
        .json(&valid);
    anonymous.send(basic).await.expect(401).problem();

    // 403: a customer on admin routes.
    customer.create_product(&valid).await.expect(403).problem();
    customer
        .patch(
            &format!("/api/v1/products/{}", existing.id),
            &json!({"name": "Mine now"}),
        )
        .await
        .expect(403)
        .problem();
    customer
        .set_stock(existing.id, 5)
        .await
        .expect(403)
        .problem();
    // 403: an admin token on a customer's basket and orders (DESIGN §7:
    // they need a customer token).
    let refused = admin.basket().await.expect(403);
    refused.problem();
    assert_eq!(refused.header("cache-control").as_deref(), Some("no-store"));
    admin.get("/api/v1/orders").await.expect(403).problem();
    // 405 on the health routes is problem+json too.
    for path in ["/healthz", "/readyz", "/metrics"] {
        anonymous
            .send(anonymous.request(Method::POST, path))
            .await
            .expect(405)
            .problem();
    }

    // 422: invalid values, with the fields named.
    let mut invalid = valid.clone();
    invalid.sku = String::new();
    invalid.price.amount_minor = -5;
    let problem = admin.create_product(&invalid).await.expect(422).problem();
    let fields = fields_named(&problem);
    assert!(fields.contains(&"sku"), "{problem:?}");
    assert!(fields.contains(&"price.amount_minor"), "{problem:?}");

    // 422: every missing or ill-typed field at once, not only the first.
    for (body, wanted) in [
        (json!({}), vec!["sku", "name", "category", "price"]),
        (
            json!({"sku": 1, "name": ["x"], "category": "c", "price": "9.99"}),
            vec!["sku", "name", "price"],
        ),
    ] {
        let request = admin.request(Method::POST, "/api/v1/products").json(&body);
        let problem = admin.send(request).await.expect(422).problem();
        let mut named = fields_named(&problem);
        named.sort_unstable();
        let mut wanted = wanted;
        wanted.sort_unstable();
        assert_eq!(named, wanted, "{body}: {problem:?}");
    }
    assert!(
        problem
            .errors
            .iter()
            .flatten()
            .all(|e| !e.message.is_empty()),
        "{problem:?}"
    );

    // 422: unknown fields, at the top and nested.
    let mut body = serde_json::to_value(&valid).expect("json");
    body["colour"] = json!("red");
    let problem = admin
        .post("/api/v1/products", &body)
        .await
        .expect(422)
        .problem();
    assert_names(&problem, "colour");
    let mut body = serde_json::to_value(&valid).expect("json");
    body["price"]["cents"] = json!(5);
    let problem = admin
        .post("/api/v1/products", &body)
        .await
        .expect(422)
        .problem();
    assert_names(&problem, "cents");
    // … a missing field, a wrong type, and not JSON at all.
    let problem = admin
        .post("/api/v1/products", &json!({"sku": "X-1"}))
        .await
        .expect(422)
        .problem();
    assert!(!problem.errors.unwrap_or_default().is_empty());
    // A price given as an array (serde would read a struct's fields from it).
    let mut body = serde_json::to_value(&valid).expect("json");
    body["price"] = json!([1999, "EUR"]);
    let problem = admin
        .post("/api/v1/products", &body)
        .await
        .expect(422)
        .problem();
    assert_names(&problem, "price");
    let mut body = serde_json::to_value(&valid).expect("json");
    body["price"]["amount_minor"] = json!("12.50");
    admin
        .post("/api/v1/products", &body)
        .await
        .expect(422)
        .problem();
    let broken = admin
        .request(Method::POST, "/api/v1/products")
        .header("Content-Type", "application/json")
        .body("{\"sku\": ");
    admin.send(broken).await.expect(422).problem();
    admin
        .patch(&format!("/api/v1/products/{}", existing.id), &json!({}))
        .await
        .expect(422)
        .problem();
    admin.set_stock(existing.id, -1).await.expect(422).problem();

    // 413: a body over 64 KiB.
    let mut huge = valid.clone();
    huge.description = "x".repeat(65 * 1024);
    let too_large = admin.create_product(&huge).await.expect(413);
    too_large.problem();
    // The body was not read: the client is told the connection closes.
    assert_eq!(too_large.header("connection").as_deref(), Some("close"));

    // 404: unknown ids and routes.
    let unknown = Uuid::now_v7();
    anonymous.product(unknown).await.expect(404).problem();
    anonymous
        .get("/api/v1/products/not-a-uuid")
        .await
        .expect(404)
        .problem();
    admin
        .patch(
            &format!("/api/v1/products/{unknown}"),
            &json!({"name": "Ghost"}),
        )
        .await
        .expect(404)
        .problem();
    admin.set_stock(unknown, 3).await.expect(404).problem();
    anonymous
        .get("/api/v1/nothing-here")
        .await
        .expect(404)
        .problem();
    customer.order(unknown).await.expect(404).problem();

    // 400: a path that is not UTF-8 is a problem too, not plain text.
    anonymous
        .get("/api/v1/products/%FF")
        .await
        .expect(400)
        .problem();
    customer
        .get("/api/v1/orders/%FF")
        .await
        .expect(400)
        .problem();

    // Nothing was published: not now, and not later by an outbox that held
    // a row back (the relay publishes in order, so the next accepted write
    // would carry it out too).
    assert_eq!(
        counts(&streams).await,
        before,
        "a rejected request published"
    );
    admin.create_product(&valid).await.expect(201);
    let after: Vec<_> = before
        .iter()
        .map(|&(stream, n)| (stream, n + u64::from(stream == Team::Product.stream())))
        .collect();
    assert_eq!(
        counts(&streams).await,
        after,
        "only the accepted write published"
    );
}

/// The fields a 422 names, in its order.
fn fields_named(problem: &bazaar_testkit::api::Problem) -> Vec<&str> {
    problem
        .errors
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|e| e.field.as_str())
        .collect()
}

/// The message counts of every team's stream.
async fn counts(streams: &Streams) -> Vec<(&'static str, u64)> {
    let mut counts = Vec::new();
    for team in Team::ALL {
        counts.push((team.stream(), streams.message_count(team.stream()).await));
    }
    counts
}

#[track_caller]
fn assert_names(problem: &bazaar_testkit::api::Problem, field: &str) {
    let errors = problem.errors.clone().unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|e| e.field.contains(field) || e.message.contains(field)),
        "the problem does not name {field:?}: {problem:?}"
    );
}

#[tokio::test]
async fn a_product_event_is_a_valid_cloud_event_with_dedup_and_trace_headers() {
    let shop = Shop::builder()
        .services([Service::Product, Service::Edge])
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let started = chrono::Utc::now();
    let product: Product = shop
        .admin_api()
        .create_product(&NewProduct::sample("EVT-1", 2500))
        .await
        .expect(201)
        .json();

    let events = shop.streams().await.events(Team::Product.stream()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let stored = &events[0];
    let envelope = stored.envelope();

    assert_eq!(stored.subject, evt::PRODUCT_CREATED_V1);
    assert_eq!(envelope.specversion, "1.0");
    assert_eq!(envelope.id.get_version_num(), 7, "id is a UUID v7");
    assert_eq!(envelope.source, "/product-svc");
    assert_eq!(envelope.event_type, "bazaar.product.product.created.v1");
    assert_eq!(envelope.subject, product.id.to_string());
    let age = envelope.time - started;
    assert!(
        age >= chrono::Duration::seconds(-1) && age < chrono::Duration::seconds(30),
        "time {} is not when the product was created ({started})",
        envelope.time
    );
    assert_eq!(envelope.datacontenttype, "application/json");
    assert_eq!(
        envelope.dataschema,
        "urn:bazaar:schema:evt.product.product.created.v1"
    );
    assert!(!envelope.correlationid.is_empty() && !envelope.causationid.is_empty());
    let data = envelope
        .clone()
        .decode::<ProductCreatedV1>()
        .expect("typed");
    assert_eq!(data.data.product_id, product.id);
    assert_eq!(data.data.sku, "EVT-1");
    assert_eq!(data.data.price.amount_minor, 2500);

    assert_eq!(
        stored.header("Nats-Msg-Id"),
        Some(envelope.id.to_string()),
        "the broker de-duplicates by event id"
    );
    let traceparent = stored.header("traceparent").expect("a traceparent header");
    assert!(is_traceparent(&traceparent), "{traceparent:?}");
    if let Some(in_envelope) = &envelope.traceparent {
        assert_eq!(in_envelope, &traceparent, "header and envelope agree");
    }
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, ids not all zero.
fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0')
}

#[tokio::test]
async fn an_admin_changes_a_product_and_the_change_is_visible_at_once() {
    let shop = Shop::builder()
        .services([Service::Product, Service::Edge])
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let admin = shop.admin_api();
    let product: Product = admin
        .create_product(&NewProduct::sample("PATCH-1", 1000))
        .await
        .expect(201)
        .json();

    let changed: Product = admin
        .patch(
            &format!("/api/v1/products/{}", product.id),
            &json!({"name": "Renamed", "price": {"amount_minor": 1200, "currency": "EUR"}}),
        )
        .await
        .expect(200)
        .json();

    assert_eq!(changed.name, "Renamed");
    assert_eq!(changed.price.amount_minor, 1200);
    assert_eq!(changed.sku, "PATCH-1");
    assert_eq!(
        shop.api().product(product.id).await.json::<Product>(),
        changed
    );
    let subjects: Vec<String> = shop
        .streams()
        .await
        .events(Team::Product.stream())
        .await
        .into_iter()
        .map(|e| e.subject)
        .collect();
    assert!(
        subjects.contains(&evt::PRODUCT_PRICE_CHANGED_V1.to_owned()),
        "{subjects:?}"
    );
}
