//! What operators and API clients find without reading the code: health,
//! readiness and Prometheus metrics on every process, the OpenAPI document
//! and the pages.

use bazaar_testkit::api::NewProduct;
use std::time::{Duration, Instant};

use bazaar_testkit::{wait_until, Api, Service, Shop};
use contracts::Team;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn every_process_serves_health_readiness_and_prometheus_metrics() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    // Some traffic, so that the metrics have something to count.
    shop.admin_api()
        .create_product(&NewProduct::sample("METRICS-1", 100))
        .await
        .expect(201);

    for instance in shop.instances() {
        let api = Api::new(shop.health_url(instance));
        let health = api.get("/healthz").await.expect(200);
        assert_eq!(health.content_type(), "application/json", "{instance}");
        let ready = api.get("/readyz").await.expect(200);
        assert_eq!(ready.value()["status"], "ready", "{instance}");
        let metrics = api.get("/metrics").await.expect(200);
        assert_eq!(metrics.content_type(), "text/plain", "{instance}");
        if !instance.starts_with("edge-api") {
            // Gauges such as the outbox backlog are sampled by the relay
            // (about once a second), so an idle service shows them soon
            // after start-up rather than at once.
            let what = format!("{instance} exports bazaar_outbox_backlog");
            wait_until(Duration::from_secs(10), &what, || async {
                api.get("/metrics")
                    .await
                    .text()
                    .contains("bazaar_outbox_backlog")
            })
            .await;
        }
        assert_prometheus(instance, &api.get("/metrics").await.text());
    }

    let edge = shop.api();
    let health = edge.get("/healthz").await.expect(200);
    assert_eq!(health.header("x-frame-options").as_deref(), Some("DENY"));
    edge.get("/readyz").await.expect(200);
    // Anyone may send made-up methods; each must not become a series.
    for made_up in ["FOOBAR1", "FOOBAR2"] {
        let method = Method::from_bytes(made_up.as_bytes()).expect("a method token");
        edge.send(edge.request(method, "/api/v1/products"))
            .await
            .expect(405);
    }
    let metrics = edge.get("/metrics").await.expect(200).text();
    assert!(
        metrics.contains("bazaar_http_requests_total"),
        "the edge counts requests:\n{metrics}"
    );
    assert!(
        !metrics.contains("FOOBAR") && metrics.contains("method=\"other\""),
        "made-up methods are counted as one label, \"other\":\n{metrics}"
    );
    let product_svc = Api::new(shop.health_url("product-svc-0"));
    let metrics = product_svc.get("/metrics").await.text();
    assert!(
        metrics.contains("bazaar_commands_total"),
        "product-svc counts commands:\n{metrics}"
    );
}

#[tokio::test]
async fn every_process_writes_plain_text_to_a_log_file() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    for instance in shop.instances() {
        // Each logs as it starts; its stderr is a file, not a terminal, so
        // nothing there may be a colour code.
        let log = shop.log_of(instance);
        assert!(
            log.contains("INFO"),
            "{instance} logged nothing at INFO (is RUST_LOG set above info?):\n{log}"
        );
        assert!(
            !log.contains('\u{1b}'),
            "{instance} wrote terminal escape codes to its log file:\n{log}"
        );
    }
}

/// Prometheus text exposition: `# TYPE` lines and samples `name{labels} value`,
/// with Bazaar's own metrics among them.
#[track_caller]
fn assert_prometheus(instance: &str, text: &str) {
    let mut samples = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# TYPE ") || line.starts_with("# HELP "),
                "{instance}: {line}"
            );
            continue;
        }
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{instance}: not a sample: {line}"
        );
        samples += 1;
    }
    assert!(samples > 0, "{instance}: no samples:\n{text}");
    assert!(
        text.lines().any(|l| l.starts_with("bazaar_")),
        "{instance}: no bazaar_ metrics:\n{text}"
    );
}

/// The routes of DESIGN §7 that the edge serves, each with its method.
const DESIGNED: [(&str, &str); 21] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/docs"),
    ("get", "/"),
    ("get", "/api/v1/categories"),
    ("post", "/api/v1/products"),
    ("get", "/api/v1/products"),
    ("patch", "/api/v1/products/{id}"),
    ("get", "/api/v1/products/{id}"),
    ("put", "/api/v1/products/{id}/stock"),
    ("get", "/api/v1/basket"),
    ("put", "/api/v1/basket/items/{product_id}"),
    ("delete", "/api/v1/basket/items/{product_id}"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{id}"),
    ("get", "/api/v1/orders/{id}/updates"),
    ("post", "/api/v1/orders/{id}/cancel"),
    ("get", "/api/v1/orders/{id}/invoice"),
];

#[tokio::test]
async fn the_openapi_document_describes_every_route_the_edge_serves() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let api = shop.admin_api();

    let answer = api.get("/api/openapi.json").await.expect(200);
    assert_eq!(answer.content_type(), "application/json");
    let doc = answer.value();

    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi {version:?}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in DESIGNED {
        // A route counts as served unless the router does not know it
        // (405 for the method, or its catch-all 404).
        let probe_path = path
            .replace("{id}", &uuid::Uuid::nil().to_string())
            .replace("{product_id}", &uuid::Uuid::nil().to_string());
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let probe = api
            .send(api.request(m, &probe_path).json(&Value::Null))
            .await;
        let unrouted = probe.status() == 405
            || (probe.status() == 404 && probe.text().contains("no such resource"));
        if unrouted {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_none(),
                "{method} {path} is documented but not served"
            );
            continue;
        }
        let operation = paths
            .get(path)
            .and_then(|p| p.get(method))
            .unwrap_or_else(|| panic!("{method} {path} is served but not documented"));
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} documents no responses"
        );
    }
    // Every product and order route is served today (search may follow).
    for required in [
        "/api/v1/products/{id}",
        "/api/v1/orders",
        "/api/v1/orders/{id}/invoice",
    ] {
        assert!(paths.contains_key(required), "{required} missing");
    }
    assert!(
        doc["components"]["securitySchemes"]
            .as_object()
            .is_some_and(|s| !s.is_empty()),
        "the bearer scheme is documented"
    );

    let docs = api.get("/docs").await.expect(200);
    assert_eq!(docs.content_type(), "text/html");
    let home = api.get("/").await.expect(200);
    assert_eq!(home.content_type(), "text/html");
    // Not to be framed by another site, nor sniffed as another type.
    for answer in [&home, &docs, &answer] {
        assert_eq!(answer.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            answer.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        let policy = answer.header("content-security-policy").unwrap_or_default();
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "scripts only from the shop's files: {policy:?}"
        );
    }
}

/// A service started before the team whose stream it consumes is ready at
/// once (there is nothing to take), but once that stream exists it is ready
/// only after it declared its consumer there: "ready" never hides a missing
/// consumer (`bazaar streams apply --dry-run` would name it).
#[tokio::test]
async fn a_consumer_of_a_stream_created_later_is_ready_only_once_declared() {
    let shop = Shop::builder().services([Service::Warehouse]).start().await;
    let _logs = shop.logs_on_failure();
    let warehouse = Api::new(shop.health_url("warehouse-svc-0"));
    let js = async_nats::jetstream::new(shop.nats().connect().await);
    let checkout = Team::Checkout.stream();
    assert!(js.get_stream(checkout).await.is_err(), "no checkout yet");
    warehouse.get("/readyz").await.expect(200);

    platform::streams::ensure(&js, platform::streams::event_stream(Team::Checkout, 1))
        .await
        .expect("checkout's stream declared");

    // Readiness first, then the consumer: a 200 before the consumer exists
    // is the lie this test is about.
    let durable = Service::Warehouse.name();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answers = Vec::new();
    loop {
        let ready = warehouse.get("/readyz").await;
        let status = ready.status();
        let declared = match js.get_stream(checkout).await {
            Ok(stream) => stream.consumer_info(durable).await.is_ok(),
            Err(error) => panic!("{checkout}: {error}"),
        };
        answers.push((status, declared));
        assert!(
            status != 200 || declared,
            "readyz answered 200 while {durable} had no consumer on {checkout}: {}",
            ready.text()
        );
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready again within 15 s: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
