//! What every runtime test needs, in one place: a broker with the product
//! and dead-letter streams, a platform `Db` on a test database, envelopes
//! to send, and ways to look into streams, consumers, tables and metrics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer;
use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::{self, Context};
use bazaar_testkit::{Backend, TestDb, TestNats};
use contracts::commands::{CommandError, ErrorKind};
use contracts::product::ProductCreatedV1;
use contracts::subjects::{dlq_subject, evt, DLQ_STREAM};
use contracts::{Envelope, EventContext, Money, Team};
use futures::future::BoxFuture;
use platform::command::{Asked, Decided, Refusal};
use platform::consumer::{ConsumerHealth, EventHandler};
use platform::outbox;
use platform::streams::ConsumerSpec;
use platform::{streams, Db, Secret, Tx};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The service name the tests' consumers and dead letters run under.
pub const SERVICE: &str = "platform-tests";

/// The stream every test publishes to.
pub const PRODUCT_STREAM: &str = Team::Product.stream();

/// The subject every test publishes on.
pub const PRODUCT_CREATED: &str = evt::PRODUCT_CREATED_V1;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(15);

/// A broker without authentication, with the product and `DLQ` streams.
pub struct Broker {
    pub nats: TestNats,
    pub js: Context,
}

pub async fn broker() -> Broker {
    let nats = TestNats::start_without_auth();
    let js = jetstream::new(nats.connect().await);
    streams::ensure(&js, streams::event_stream(Team::Product, 1))
        .await
        .expect("declaring the product stream");
    streams::ensure(&js, streams::dlq_stream(1))
        .await
        .expect("declaring the DLQ stream");
    Broker { nats, js }
}

pub use bazaar_testkit::on_every_backend;

/// A fresh database and the platform's connection to it (platform tables
/// created). Keep the `TestDb` alive as long as the `Db`.
pub async fn database(backend: Backend) -> (TestDb, Db) {
    let test_db = TestDb::new(backend).await;
    let db = Db::connect(&Secret::new(test_db.url()))
        .await
        .unwrap_or_else(|e| panic!("[{backend}] connecting to the test database: {e:#}"));
    (test_db, db)
}

/// Runs one statement of test DDL or DML.
pub async fn execute(db: &Db, sql: &str) {
    sqlx::query(sql)
        .execute(&mut *db.conn().await.expect("a database connection"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A single `BIGINT` (e.g. a `COUNT(*)`) from the database.
pub async fn scalar(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut *db.conn().await.expect("a database connection"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A `product.created.v1` event with a fresh id, named `name`.
pub fn product_created(name: &str) -> Envelope<ProductCreatedV1> {
    let data = ProductCreatedV1 {
        product_id: Uuid::now_v7(),
        sku: format!("SKU-{name}"),
        name: name.to_owned(),
        description: format!("the product called {name}"),
        category: "tests".to_owned(),
        price: Money::eur(1999),
    };
    Envelope::new(
        SERVICE,
        data,
        &EventContext::root(Uuid::now_v7().to_string(), None),
    )
}

/// Commits the envelopes to the outbox in one transaction, and does
/// nothing else (no relay is told).
pub async fn commit_to_outbox(db: &Db, envelopes: &[Envelope<ProductCreatedV1>]) {
    let mut tx = db.begin().await.expect("beginning a transaction");
    for envelope in envelopes {
        platform::outbox::push(&mut tx, envelope)
            .await
            .expect("pushing to the outbox");
    }
    tx.commit().await.expect("committing the outbox rows");
}

/// Publishes `payload` on `subject` with the given `Nats-Msg-Id` and waits
/// for the broker's ack; returns the stream sequence.
pub async fn publish(js: &Context, subject: &str, payload: Vec<u8>, msg_id: &str) -> u64 {
    let message = PublishMessage::build()
        .payload(payload.into())
        .message_id(msg_id);
    js.send_publish(subject.to_owned(), message)
        .await
        .expect("publishing")
        .await
        .expect("awaiting the publish ack")
        .sequence
}

/// Publishes an envelope the way the outbox relay does (message id = event id).
pub async fn publish_event(js: &Context, envelope: &Envelope<ProductCreatedV1>) -> u64 {
    publish(
        js,
        PRODUCT_CREATED,
        envelope.to_json(),
        &envelope.id.to_string(),
    )
    .await
}

/// Every message in `stream`, in stream order.
pub async fn stream_messages(js: &Context, stream: &str) -> Vec<StreamMessage> {
    let mut handle = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("getting stream {stream}: {e}"));
    let state = handle
        .info()
        .await
        .unwrap_or_else(|e| panic!("stream {stream} info: {e}"))
        .state
        .clone();
    let mut messages = Vec::new();
    if state.messages == 0 {
        return messages;
    }
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(message) = handle.get_raw_message(seq).await {
            messages.push(message);
        }
    }
    assert_eq!(
        messages.len() as u64,
        state.messages,
        "could not read every message of {stream}"
    );
    messages
}

/// How many messages `stream` holds.
pub async fn stream_len(js: &Context, stream: &str) -> u64 {
    let mut handle = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("getting stream {stream}: {e}"));
    handle
        .info()
        .await
        .unwrap_or_else(|e| panic!("stream {stream} info: {e}"))
        .state
        .messages
}

/// The dead letters of one of the tests' consumers.
pub async fn dead_letters(js: &Context, consumer: &str) -> Vec<StreamMessage> {
    let subject = dlq_subject(SERVICE, consumer);
    stream_messages(js, DLQ_STREAM)
        .await
        .into_iter()
        .filter(|m| m.subject.as_str() == subject)
        .collect()
}

/// A header of a stored message, as text.
pub fn header(message: &StreamMessage, name: &str) -> Option<String> {
    message.headers.get(name).map(|v| v.as_str().to_owned())
}

/// The durable consumer's state, once it exists.
pub async fn consumer_info(js: &Context, durable: &str) -> Option<consumer::Info> {
    let stream = js.get_stream(PRODUCT_STREAM).await.ok()?;
    stream.consumer_info(durable).await.ok()
}

/// Whether the durable consumer has finished (acked or terminated) every
/// message up to `seq` and has nothing in flight.
pub async fn consumer_settled(js: &Context, durable: &str, seq: u64) -> bool {
    consumer_info(js, durable)
        .await
        .is_some_and(|i| i.ack_floor.stream_sequence >= seq && i.num_ack_pending == 0)
}

/// The value of a counter in the process's Prometheus registry for one
/// consumer (0 when it was never incremented).
pub fn metric(name: &str, consumer: &str) -> f64 {
    let label = format!("consumer=\"{consumer}\"");
    platform::metrics::render()
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{'))
                && line.contains(&label)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Awaits a spawned task that was told to stop.
pub async fn join(task: tokio::task::JoinHandle<()>, what: &str) {
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap_or_else(|_| panic!("{what} did not stop within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{what} panicked: {e}"));
}

/// A running consumer loop; stopped by [`Running::stop`].
pub struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Runs the platform's consumer loop of `spec` with `handler`.
pub fn start<H: EventHandler>(js: &Context, spec: ConsumerSpec, handler: H) -> Running {
    start_watched(js, spec, handler).0
}

/// [`start`], with the loop's health for readiness.
pub fn start_watched<H: EventHandler>(
    js: &Context,
    spec: ConsumerSpec,
    handler: H,
) -> (Running, ConsumerHealth) {
    let stop = CancellationToken::new();
    let health = ConsumerHealth::new(&spec.durable, spec.stream);
    let task = tokio::spawn(platform::consumer::run(
        js.clone(),
        SERVICE,
        spec,
        handler,
        health.clone(),
        stop.clone(),
    ));
    (Running { stop, task }, health)
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        join(self.task, "the consumer loop").await;
    }
}

/// The command `name` with id `id`, asking `what`.
pub fn asked<W: serde::Serialize + ?Sized>(name: &'static str, id: &str, what: &W) -> Asked {
    Asked::of(name, id.to_owned(), what)
}

/// The table [`create_product`] writes to.
pub async fn create_products_table(db: &Db) {
    execute(
        db,
        "CREATE TABLE test_product (id TEXT PRIMARY KEY, sku TEXT NOT NULL)",
    )
    .await;
}

/// The decision of a "create product" command: stores a row in
/// `test_product` and `event` in the outbox and answers with the SKU, or,
/// if `refuse`, is refused after writing both; counts how often it runs.
pub fn create_product(
    runs: Arc<AtomicUsize>,
    event: Envelope<ProductCreatedV1>,
    refuse: bool,
) -> impl for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<Decided<String>, Refusal>> {
    move |tx: &mut Tx| -> BoxFuture<'_, Result<Decided<String>, Refusal>> {
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            sqlx::query("INSERT INTO test_product (id, sku) VALUES ($1, $2)")
                .bind(event.data.product_id.to_string())
                .bind(event.data.sku.clone())
                .execute(&mut **tx)
                .await?;
            outbox::push(tx, &event).await?;
            if refuse {
                return Err(CommandError::new(ErrorKind::Conflict, "refused").into());
            }
            Ok(Decided {
                value: event.data.sku.clone(),
                events: vec![event.id],
            })
        })
    }
}
