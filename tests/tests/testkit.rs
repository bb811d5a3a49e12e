//! Tests of the test kit itself: the broker it starts, the permissions it
//! enforces, the databases it creates, the shop launcher and the waiting.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::ConnectOptions;
use bazaar_testkit::{
    fake_started_with, wait_for, wait_until, write_fake_services, write_scripts, Backend, Service,
    Shop, TestDb, TestNats,
};
use contracts::subjects::{cmd, evt};
use contracts::Team;
use sqlx::{Connection, PgConnection};

async fn stream_messages(js: &jetstream::Context, name: &str) -> u64 {
    let mut stream = js.get_stream(name).await.expect("stream exists");
    stream.info().await.expect("stream info").state.messages
}

async fn create_stream(js: &jetstream::Context, name: &str, subjects: &str) {
    let config = stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        ..Default::default()
    };
    js.create_stream(config).await.expect("stream created");
}

#[tokio::test]
async fn nats_restart_keeps_the_port_and_the_stream_data() {
    let mut nats = TestNats::start();
    let js = jetstream::new(nats.connect().await);
    create_stream(&js, "KIT", "kit.>").await;
    for n in 0..3 {
        js.publish("kit.a", format!("{n}").into())
            .await
            .expect("sent")
            .await
            .expect("acked");
    }
    let port = nats.port();

    nats.kill();
    nats.restart();

    assert_eq!(nats.port(), port);
    let js = jetstream::new(nats.connect().await);
    assert_eq!(stream_messages(&js, "KIT").await, 3);
}

#[tokio::test]
async fn a_client_reconnects_after_the_broker_restarts() {
    let mut nats = TestNats::start();
    let client = nats.connect().await;

    nats.restart();

    wait_until(Duration::from_secs(10), "the client reconnects", || async {
        client.connection_state() == async_nats::connection::State::Connected
    })
    .await;
    client
        .publish("kit.after", "x".into())
        .await
        .expect("published");
    client.flush().await.expect("flushed");
}

#[tokio::test]
async fn product_svc_publishing_a_checkout_event_is_refused_by_the_broker() {
    let nats = TestNats::start();
    let ops = jetstream::new(nats.connect().await);
    create_stream(&ops, Team::Checkout.stream(), Team::Checkout.event_prefix()).await;
    let (client, mut events) = nats.connect_as_with_events("product-svc").await;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(500))
        .build(client);

    let ack = js
        .publish(evt::ORDER_PLACED_V2, "{}".into())
        .await
        .expect("sent")
        .await;

    assert!(ack.is_err(), "a refused publish is never acknowledged");
    let violation = events.permission_violation(Duration::from_secs(5)).await;
    assert!(violation.contains(evt::ORDER_PLACED_V2), "{violation}");
    assert_eq!(stream_messages(&ops, Team::Checkout.stream()).await, 0);
}

#[tokio::test]
async fn product_svc_may_publish_its_own_events() {
    let nats = TestNats::start();
    create_stream(
        &jetstream::new(nats.connect().await),
        Team::Product.stream(),
        Team::Product.event_prefix(),
    )
    .await;
    let js = jetstream::new(nats.connect_as("product-svc").await);

    let ack = js
        .publish(evt::PRODUCT_CREATED_V1, "{}".into())
        .await
        .expect("sent")
        .await;

    assert!(ack.is_ok(), "{ack:?}");
}

#[tokio::test]
async fn edge_api_may_send_commands_but_not_publish_events() {
    let nats = TestNats::start();
    let (client, mut events) = nats.connect_as_with_events("edge-api").await;

    client
        .publish(cmd::CHECKOUT_PLACE_ORDER, "{}".into())
        .await
        .expect("sent");
    client
        .publish(evt::PRODUCT_CREATED_V1, "{}".into())
        .await
        .expect("sent");
    client.flush().await.expect("flushed");

    let violation = events.permission_violation(Duration::from_secs(5)).await;
    assert!(violation.contains(evt::PRODUCT_CREATED_V1), "{violation}");
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let nats = TestNats::start();

    let connected = ConnectOptions::with_user_and_password("ops".into(), "pwwrong".into())
        .connection_timeout(Duration::from_secs(5))
        .connect(nats.url())
        .await;

    assert!(connected.is_err());
}

#[tokio::test]
async fn a_broker_without_auth_accepts_anonymous_clients() {
    let nats = TestNats::start_without_auth();

    let client = nats.connect().await;

    client
        .publish("anything", "x".into())
        .await
        .expect("published");
    client.flush().await.expect("flushed");
}

#[tokio::test]
async fn every_backend_gives_a_working_database() {
    for backend in TestDb::backends().await {
        let db = TestDb::new(backend).await;
        let pool = sqlx::any::AnyPoolOptions::new();
        sqlx::any::install_default_drivers();
        let pool = pool
            .connect(db.url())
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .expect("select");
        assert_eq!(one, 1, "{backend}");
        pool.close().await;
    }
}

#[tokio::test]
async fn a_postgres_test_database_is_dropped_with_its_handle() {
    if !TestDb::backends().await.contains(&Backend::Postgres) {
        return; // Without PostgreSQL (and outside CI) there is nothing to check.
    }
    let db = TestDb::postgres().await;
    let name = db.url().rsplit('/').next().unwrap_or_default().to_owned();
    let server = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());

    drop(db);

    let mut conn = PgConnection::connect(&server).await.expect("connect");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 0, "{name} still exists");
}

#[tokio::test]
async fn wait_for_returns_the_value_once_the_check_yields_one() {
    let calls = Arc::new(AtomicUsize::new(0));

    let value = wait_for(Duration::from_secs(5), "the third call", || {
        let calls = calls.clone();
        async move { (calls.fetch_add(1, Ordering::SeqCst) >= 2).then_some("done") }
    })
    .await;

    assert_eq!(value, "done");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

fn fake_bin_dir(script: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    match script {
        Some(script) => write_scripts(dir.path(), script),
        None => write_fake_services(dir.path()),
    }
    .expect("fakes written");
    dir
}

fn started_with(data: &Path, instance: &str) -> serde_json::Value {
    fake_started_with(data, instance).expect("the fake wrote how it started")
}

#[tokio::test]
async fn the_shop_gives_each_instance_the_env_contract_and_restarts_what_was_killed() {
    let bins = fake_bin_dir(None);
    let mut shop = Shop::builder()
        .bin_dir(bins.path())
        .shards(2)
        .db(Backend::Sqlite)
        .env("BAZAAR_FAULTS", "none")
        .start()
        .await;

    assert_eq!(
        shop.instances(),
        [
            "product-svc-0",
            "product-svc-1",
            "checkout-svc-0",
            "warehouse-svc-0",
            "finance-svc-0",
            "edge-api-0"
        ]
    );
    let product = started_with(shop.data_dir(), "product-svc-1");
    assert_eq!(product["args"], serde_json::json!(["--shard", "1/2"]));
    assert_eq!(product["env"]["NATS_USER"], "product-svc");
    assert_eq!(
        product["env"]["NATS_PASSWORD"],
        shop.nats().password_for("product-svc")
    );
    assert_eq!(product["env"]["NATS_URL"], shop.nats().url());
    assert_eq!(product["env"]["BAZAAR_FAULTS"], "none");
    assert!(product["env"].get("BAZAAR_JWT_SECRET").is_none());
    let edge = started_with(shop.data_dir(), "edge-api-0");
    assert!(edge["env"]["BAZAAR_JWT_SECRET"]
        .as_str()
        .is_some_and(|s| s.len() >= 32));
    assert_eq!(
        format!(
            "http://{}",
            edge["env"]["BAZAAR_HTTP_ADDR"].as_str().unwrap_or_default()
        ),
        shop.http_url()
    );

    shop.kill(Service::Checkout);
    let health = format!("{}/readyz", shop.health_url("checkout-svc-0"));
    assert!(
        reqwest::get(&health).await.is_err(),
        "a killed instance does not answer"
    );
    shop.start(Service::Checkout).await;

    assert_eq!(
        reqwest::get(&health)
            .await
            .map(|r| r.status().as_u16())
            .ok(),
        Some(200)
    );
}

#[tokio::test]
async fn a_service_that_dies_at_start_up_is_reported_with_its_log() {
    let bins = fake_bin_dir(Some("#!/bin/sh\necho \"boom: no config\" >&2\nexit 3\n"));

    let started = Shop::builder()
        .bin_dir(bins.path())
        .services([Service::Finance])
        .db(Backend::Sqlite)
        .try_start()
        .await;

    let error = format!("{:#}", started.expect_err("the shop does not start"));
    assert!(
        error.contains("finance-svc-0") && error.contains("boom: no config"),
        "{error}"
    );
}
