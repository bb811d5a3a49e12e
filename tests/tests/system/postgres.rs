//! The same shop with every service on PostgreSQL (DESIGN §9; compose.yaml
//! runs it that way). Every test in this binary runs on the backend
//! `BAZAAR_TEST_DB` names; these also run the walking skeleton and the
//! saga's happy path on PostgreSQL in a default (SQLite) run, whenever a
//! PostgreSQL server answers (`TEST_POSTGRES_URL`; with `CI=true` it must).

use bazaar_testkit::api::{NewProduct, Product};
use bazaar_testkit::{Backend, Service, Shop, TestDb};

async fn postgres_available() -> bool {
    TestDb::backends().await.contains(&Backend::Postgres)
}

#[tokio::test]
async fn a_product_is_created_and_read_back_at_once_on_postgresql() {
    if !postgres_available().await {
        return; // Outside CI without PostgreSQL there is nothing to run on.
    }
    let shop = Shop::builder().db(Backend::Postgres).start().await;
    let _logs = shop.logs_on_failure();
    for service in [
        Service::Product,
        Service::Checkout,
        Service::Warehouse,
        Service::Finance,
        Service::Edge,
    ] {
        assert!(
            shop.database_url(service)
                .is_some_and(|u| u.starts_with("postgres")),
            "{} runs on PostgreSQL",
            service.name()
        );
    }
    let admin = shop.admin_api();

    let created: Product = admin
        .create_product(&NewProduct::sample("PG-1", 3300))
        .await
        .expect(201)
        .json();

    assert_eq!(
        shop.api()
            .product(created.id)
            .await
            .expect(200)
            .json::<Product>(),
        created
    );
    // Grouped and counted by PostgreSQL's SQL too.
    let categories = shop
        .api()
        .get("/api/v1/categories")
        .await
        .expect(200)
        .value();
    assert_eq!(
        categories,
        serde_json::json!({"items": [{"name": "tests", "products": 1}]})
    );
    let events = shop
        .streams()
        .await
        .events(contracts::Team::Product.stream())
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].header("Nats-Msg-Id"),
        Some(events[0].envelope().id.to_string())
    );
    shop.customer_api("alice")
        .create_product(&NewProduct::sample("PG-2", 1))
        .await
        .expect(403)
        .problem();
}

#[tokio::test]
async fn an_order_from_the_basket_is_confirmed_shipped_and_invoiced_on_postgresql() {
    if !postgres_available().await {
        return;
    }
    let shop = Shop::builder()
        .db(Backend::Postgres)
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "200")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    crate::saga::order_from_basket_is_confirmed_shipped_and_invoiced(&shop).await;
}
