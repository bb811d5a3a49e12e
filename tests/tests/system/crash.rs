//! The outbox (DESIGN §4): a service that dies between committing a command
//! and publishing its event publishes it once it is back, exactly once.

use std::time::Duration;

use bazaar_testkit::api::{NewProduct, Product};
use bazaar_testkit::{wait_for, wait_until, Service, Shop};
use contracts::subjects::evt;
use contracts::Team;
use platform::fault::OUTBOX_AFTER_COMMIT;
use reqwest::Method;
use uuid::Uuid;

#[tokio::test]
async fn a_crash_between_commit_and_publish_still_publishes_the_event_exactly_once() {
    let mut shop = Shop::builder()
        .services([Service::Product, Service::Edge])
        .env_for(Service::Product, "BAZAAR_FAULTS", OUTBOX_AFTER_COMMIT)
        .env_for(Service::Edge, "BAZAAR_COMMAND_TIMEOUT_MS", "1500")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let streams = shop.streams().await;
    let admin = shop.admin_api();
    let new = NewProduct::sample("CRASH-1", 1234);
    let create = || {
        admin
            .request(Method::POST, "/api/v1/products")
            .header("Idempotency-Key", "crash-test-1")
            .json(&new)
    };

    // The command commits, then product-svc aborts before publishing.
    let failed = admin.send(create()).await;
    assert!(
        failed.status.is_server_error(),
        "expected a 5xx, got {}: {}",
        failed.status,
        failed.text()
    );
    failed.problem();
    wait_until(Duration::from_secs(10), "product-svc has aborted", || {
        let running = shop.is_running(Service::Product);
        async move { !running }
    })
    .await;
    assert_eq!(
        streams.message_count(Team::Product.stream()).await,
        0,
        "the fault fires before anything is published"
    );

    // Back without the fault: the relay publishes what was committed.
    shop.set_env(Service::Product, "BAZAAR_FAULTS", None);
    shop.start(Service::Product).await;
    let product_id = wait_for(
        Duration::from_secs(20),
        "the committed product.created is published",
        || async {
            streams
                .events(Team::Product.stream())
                .await
                .iter()
                .find(|e| e.subject == evt::PRODUCT_CREATED_V1 && e.data()["sku"] == "CRASH-1")
                .and_then(|e| e.envelope().data["product_id"].as_str().map(str::to_owned))
        },
    )
    .await;
    let product_id = Uuid::parse_str(&product_id).expect("a product id");
    let anonymous = shop.api();
    let shown: Product = wait_for(
        Duration::from_secs(10),
        "the product is in the edge's view",
        || async {
            let answer = anonymous.product(product_id).await;
            (answer.status() == 200).then(|| answer.json::<Product>())
        },
    )
    .await;
    assert_eq!(shown.sku, "CRASH-1");
    assert_eq!(shown.price.amount_minor, 1234);

    // The client's retry with the same key gets the first outcome and
    // creates nothing new.
    let retried = shop.admin_api().send(create()).await;
    let retried: Product = retried.expect_one_of(&[200, 201]).json();
    assert_eq!(
        retried.id, product_id,
        "the retry returns the first product"
    );

    let created: Vec<_> = streams
        .events(Team::Product.stream())
        .await
        .into_iter()
        .filter(|e| e.subject == evt::PRODUCT_CREATED_V1)
        .collect();
    assert_eq!(created.len(), 1, "published exactly once: {created:?}");
    assert_eq!(streams.message_count(Team::Product.stream()).await, 1);
}
