//! What every warehouse test needs, in one place: the service running
//! in-process (one or more instances) against its own nats-server and
//! database, checkout events to publish, set-stock commands to send, and
//! ways to read the warehouse's events and tables.

use std::time::Duration;

use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::{self, Context};
use bazaar_testkit::{wait_for, wait_until, Backend, TestDb, TestNats};
use clap::Parser;
use contracts::auth::Role;
use contracts::commands::{Actor, Reply, Request, SetStock, StockLevel};
use contracts::subjects::{cmd, dlq_subject, durable, DLQ_STREAM, WAREHOUSE_SVC};
use contracts::{Envelope, Event, Team};
use platform::{streams, Db, Secret};
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a test waits for something that should happen soon.
pub const WAIT: Duration = Duration::from_secs(20);

/// The dispatch delay the tests run with unless they say otherwise.
pub const DISPATCH_DELAY_MS: u64 = 100;

pub use bazaar_testkit::on_every_backend;

/// A running warehouse: broker, database, instances, and a reader of its
/// event stream. Dropping it stops everything.
pub struct Warehouse {
    pub backend: Backend,
    pub js: Context,
    client: async_nats::Client,
    /// The test's own connection to the service's database.
    db: Db,
    instances: Vec<Instance>,
    /// Warehouse events read so far (the stream only grows).
    seen: Mutex<Vec<StreamMessage>>,
    // Dropped last: the services use them until then.
    _test_db: TestDb,
    _nats: TestNats,
}

struct Instance {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Drop for Warehouse {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            if let Some(stop) = instance.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

/// One warehouse instance with the default dispatch delay.
pub async fn spawn_warehouse(backend: Backend) -> Warehouse {
    spawn_instances(backend, 1, DISPATCH_DELAY_MS).await
}

/// `instances` warehouse instances sharing one database and broker.
pub async fn spawn_instances(backend: Backend, instances: usize, delay_ms: u64) -> Warehouse {
    let nats = TestNats::start_without_auth();
    let client = nats.connect().await;
    let js = jetstream::new(client.clone());
    // Checkout is not running: declare its stream so events can be published.
    streams::ensure(&js, streams::event_stream(Team::Checkout, 1))
        .await
        .expect("declaring the checkout stream");
    let test_db = TestDb::new(backend).await;
    let mut running = Vec::new();
    for n in 0..instances {
        running.push(start_instance(&nats, &test_db, n, delay_ms).await);
    }
    wait_until(WAIT, "the warehouse's consumer exists", || async {
        consumer(&js).await.is_some()
    })
    .await;
    let db = Db::connect(&Secret::new(test_db.url()))
        .await
        .unwrap_or_else(|e| panic!("[{backend}] connecting to the service's database: {e:#}"));
    Warehouse {
        backend,
        js,
        client,
        db,
        instances: running,
        seen: Mutex::new(Vec::new()),
        _test_db: test_db,
        _nats: nats,
    }
}

/// Starts `warehouse_svc::run` in a task and waits until it is ready.
async fn start_instance(nats: &TestNats, db: &TestDb, n: usize, delay_ms: u64) -> Instance {
    let port = platform::nats_server::free_port().expect("a free port");
    let args = warehouse_svc::Args::try_parse_from([
        "warehouse-svc".to_owned(),
        format!("--nats-url={}", nats.url()),
        format!("--database-url={}", db.url()),
        format!("--http-addr=127.0.0.1:{port}"),
        format!("--instance=warehouse-test-{n}"),
        format!("--dispatch-delay-ms={delay_ms}"),
    ])
    .expect("valid arguments");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(warehouse_svc::run(args, async move {
        let _ = stopped.await;
    }));
    let ready = format!("http://127.0.0.1:{port}/readyz");
    wait_until(WAIT, "a warehouse instance is ready", || async {
        assert!(!task.is_finished(), "the warehouse instance stopped");
        reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    Instance {
        stop: Some(stop),
        task,
    }
}

async fn consumer(js: &Context) -> Option<async_nats::jetstream::consumer::Info> {
    let stream = js.get_stream(Team::Checkout.stream()).await.ok()?;
    stream.consumer_info(durable::WAREHOUSE).await.ok()
}

impl Warehouse {
    // ---- commands ----------------------------------------------------------

    /// Sends `cmd.warehouse.set-stock` as an admin with a fresh command id.
    pub async fn set_stock(&self, product_id: Uuid, on_hand: i64) -> Reply<StockLevel> {
        self.set_stock_as(
            Role::Admin,
            &Uuid::now_v7().to_string(),
            product_id,
            on_hand,
        )
        .await
    }

    /// Sets stock as an admin and insists that it worked.
    pub async fn stock(&self, product_id: Uuid, on_hand: i64) {
        let reply = self.set_stock(product_id, on_hand).await;
        assert!(
            matches!(reply, Reply::Ok { .. }),
            "[{}] setting stock: {reply:?}",
            self.backend
        );
    }

    pub async fn set_stock_as(
        &self,
        role: Role,
        command_id: &str,
        product_id: Uuid,
        on_hand: i64,
    ) -> Reply<StockLevel> {
        let request = Request {
            command_id: command_id.to_owned(),
            actor: Actor {
                id: "tester".to_owned(),
                role,
            },
            traceparent: None,
            body: SetStock {
                product_id,
                on_hand,
            },
        };
        let payload = serde_json::to_vec(&request).expect("serialising the request");
        let answer = self
            .client
            .request(cmd::WAREHOUSE_SET_STOCK, payload.into())
            .await
            .expect("an answer to set-stock");
        serde_json::from_slice(&answer.payload).expect("a set-stock reply")
    }

    // ---- checkout events -----------------------------------------------------

    /// Publishes a checkout event the way checkout's relay does.
    pub async fn publish<T: Event>(&self, envelope: &Envelope<T>) -> u64 {
        self.publish_with_msg_id(envelope, &envelope.id.to_string())
            .await
    }

    /// Publishes with a chosen `Nats-Msg-Id` (a different one slips past
    /// the broker's de-duplication, as a re-publish after the window would).
    pub async fn publish_with_msg_id<T: Event>(&self, envelope: &Envelope<T>, msg_id: &str) -> u64 {
        self.publish_raw(T::SUBJECT, envelope.to_json(), msg_id)
            .await
    }

    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>, msg_id: &str) -> u64 {
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(msg_id);
        self.js
            .send_publish(subject.to_owned(), message)
            .await
            .expect("publishing")
            .await
            .expect("awaiting the publish ack")
            .sequence
    }

    // ---- warehouse events -----------------------------------------------------

    /// Every warehouse event of type `T` published so far, in stream order.
    pub async fn events<T: Event>(&self) -> Vec<Envelope<T>> {
        let mut seen = self.seen.lock().await;
        let mut stream = self
            .js
            .get_stream(Team::Warehouse.stream())
            .await
            .expect("the warehouse stream");
        let last = stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence;
        let next = seen.last().map_or(1, |m| m.sequence + 1);
        for seq in next..=last {
            let message = stream
                .get_raw_message(seq)
                .await
                .unwrap_or_else(|e| panic!("reading message {seq}: {e}"));
            seen.push(message);
        }
        seen.iter()
            .filter(|m| m.subject.as_str() == T::SUBJECT)
            .map(|m| Envelope::<T>::from_slice(&m.payload).expect("a valid warehouse event"))
            .collect()
    }

    /// Waits for the first event of type `T` that `matches` accepts.
    pub async fn wait_event<T: Event>(
        &self,
        what: &str,
        matches: impl Fn(&T) -> bool,
    ) -> Envelope<T> {
        wait_for(WAIT, &format!("[{}] {what}", self.backend), || async {
            self.events::<T>()
                .await
                .into_iter()
                .find(|e| matches(&e.data))
        })
        .await
    }

    /// The events of type `T` about `order_id`.
    pub async fn events_of<T: Event>(&self, order_id: Uuid) -> Vec<T> {
        let id = order_id.to_string();
        self.events::<T>()
            .await
            .into_iter()
            .filter(|e| e.subject == id)
            .map(|e| e.data)
            .collect()
    }

    /// Waits until every checkout event published so far is handled and
    /// every warehouse event it caused is published: after this, what has
    /// not happened will not happen.
    pub async fn settle(&self) {
        wait_until(
            WAIT,
            &format!("[{}] the warehouse settles", self.backend),
            || async {
                let Ok(mut stream) = self.js.get_stream(Team::Checkout.stream()).await else {
                    return false;
                };
                let Ok(info) = stream.info().await else {
                    return false;
                };
                let last = info.state.last_sequence;
                let handled = consumer(&self.js).await.is_some_and(|c| {
                    c.ack_floor.stream_sequence >= last
                        && c.num_ack_pending == 0
                        && c.num_pending == 0
                });
                handled
                    && self
                        .scalar("SELECT COUNT(*) FROM platform_outbox WHERE published_at IS NULL")
                        .await
                        == 0
            },
        )
        .await
    }

    /// The dead letters of the warehouse's consumer.
    pub async fn dead_letters(&self) -> usize {
        let subject = dlq_subject(WAREHOUSE_SVC, durable::WAREHOUSE);
        let Ok(mut stream) = self.js.get_stream(DLQ_STREAM).await else {
            return 0;
        };
        let Ok(info) = stream.info().await else {
            return 0;
        };
        let state = info.state.clone();
        let mut count = 0;
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                count += usize::from(m.subject.as_str() == subject);
            }
        }
        count
    }

    // ---- tables ------------------------------------------------------------

    /// `(on_hand, reserved)` of a product, as stored.
    pub async fn level(&self, product_id: Uuid) -> Option<(i64, i64)> {
        sqlx::query_as("SELECT on_hand, reserved FROM stock WHERE product_id = $1")
            .bind(product_id.to_string())
            .fetch_optional(&mut *self.db.conn().await.expect("a database connection"))
            .await
            .expect("reading stock")
    }

    /// `(product_id, quantity, status)` of an order's reservations.
    pub async fn reservations(&self, order_id: Uuid) -> Vec<(String, i64, String)> {
        sqlx::query_as(
            "SELECT product_id, quantity, status FROM reservations WHERE order_id = $1
             ORDER BY product_id",
        )
        .bind(order_id.to_string())
        .fetch_all(&mut *self.db.conn().await.expect("a database connection"))
        .await
        .expect("reading reservations")
    }

    /// The status of an order's shipment, if it has one.
    pub async fn shipment_status(&self, order_id: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM shipments WHERE order_id = $1")
            .bind(order_id.to_string())
            .fetch_optional(&mut *self.db.conn().await.expect("a database connection"))
            .await
            .expect("reading shipments")
    }

    /// A single `BIGINT` (e.g. a `COUNT(*)`).
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut *self.db.conn().await.expect("a database connection"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Stops every instance gracefully and waits for them.
    pub async fn stop(mut self) {
        self.stop_instances().await;
    }

    /// Stops every instance and waits for each to exit; the broker and the
    /// database stay, so what is published meanwhile becomes history that
    /// the next instance reads through the durable consumer.
    pub async fn stop_instances(&mut self) {
        for mut instance in std::mem::take(&mut self.instances) {
            if let Some(stop) = instance.stop.take() {
                let _ = stop.send(());
            }
            let result = tokio::time::timeout(WAIT, instance.task)
                .await
                .expect("the instance stops in time")
                .expect("the instance does not panic");
            if let Err(e) = result {
                panic!("[{}] the instance failed: {e:#}", self.backend);
            }
        }
    }

    /// Starts one more instance on the same broker and database.
    pub async fn start_instance(&mut self) {
        let n = 100 + self.instances.len();
        let instance = start_instance(&self._nats, &self._test_db, n, DISPATCH_DELAY_MS).await;
        self.instances.push(instance);
    }
}
