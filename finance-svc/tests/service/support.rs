//! What every finance-svc test needs, in one place: the service running
//! in-process against its own nats-server and database ([`TestApp`]),
//! checkout's order events to feed it, and ways to read what it published
//! and stored.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, Context};
use bazaar_testkit::{wait_for, wait_until, Backend, TestDb, TestNats};
use clap::Parser;
use contracts::checkout::{
    AddressV1, CustomerV2, OrderCancelledV1, OrderConfirmedV1, OrderLineV1, OrderPlacedV1,
    OrderPlacedV2, OrderRejectedV1, PaymentMethodV2, PaymentV2,
};
use contracts::subjects::{durable, CHECKOUT_SVC};
use contracts::{Envelope, Event, EventContext, Money, RawEnvelope, Team};
use platform::{streams, Db, Secret};
use tempfile::TempDir;
use tokio::sync::{oneshot, Mutex};
use uuid::Uuid;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(30);

/// How long the simulated provider takes for `tok_slow` in these tests.
pub const SLOW_TOKEN: Duration = Duration::from_millis(400);

pub use bazaar_testkit::on_every_backend;

/// finance-svc instances sharing one broker and one database, plus the
/// test's own view of both. Everything stops when it drops.
pub struct TestApp {
    pub backend: Backend,
    pub js: Context,
    /// The test's own connection to the service's database.
    pub store: Db,
    instances: Vec<Instance>,
    /// What was read from `EVT_FINANCE` so far, in stream order.
    published: Mutex<Vec<RawEnvelope>>,
    db: TestDb,
    data_dir: TempDir,
    nats: TestNats,
}

/// One running instance; told to stop when dropped.
struct Instance {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    /// A fresh broker (with checkout's stream) and database, and one
    /// instance of finance-svc running on them.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with_history(backend, &[]).await
    }

    /// Like [`TestApp::spawn`], with `history` (`(subject, envelope)`)
    /// already in checkout's stream when finance first starts: what a
    /// deployment meets on its first start, or a replay from the start.
    pub async fn spawn_with_history(backend: Backend, history: &[(&str, Vec<u8>)]) -> TestApp {
        let nats = TestNats::start_without_auth();
        let js = jetstream::new(nats.connect().await);
        for team in [Team::Checkout, Team::Finance] {
            streams::ensure(&js, streams::event_stream(team, 1))
                .await
                .unwrap_or_else(|e| panic!("declaring {}: {e:#}", team.stream()));
        }
        for (subject, payload) in history {
            let message = PublishMessage::build().payload(payload.clone().into());
            js.send_publish((*subject).to_owned(), message)
                .await
                .unwrap_or_else(|e| panic!("publishing history on {subject}: {e}"))
                .await
                .unwrap_or_else(|e| panic!("ack for history on {subject}: {e}"));
        }
        let db = TestDb::new(backend).await;
        let data_dir = tempfile::Builder::new()
            .prefix("finance-svc-")
            .tempdir()
            .expect("a data directory");
        let first = start_instance(&nats, &db, &data_dir, "finance-test-1");
        // The service creates its tables at start-up; the test connects
        // after that, once its consumer exists.
        wait_until(WAIT, "finance-svc consumes checkout's events", || async {
            consumer_info(&js).await.is_some()
        })
        .await;
        let store = Db::connect(&Secret::new(db.url()))
            .await
            .unwrap_or_else(|e| panic!("[{backend}] connecting to finance's database: {e:#}"));
        TestApp {
            backend,
            js,
            store,
            instances: vec![first],
            published: Mutex::new(Vec::new()),
            db,
            data_dir,
            nats,
        }
    }

    /// Starts one more instance on the same broker and database.
    pub fn spawn_instance(&mut self, name: &str) {
        let instance = start_instance(&self.nats, &self.db, &self.data_dir, name);
        self.instances.push(instance);
    }

    /// Publishes `envelope` on its subject, `Nats-Msg-Id` = its id, as
    /// checkout's outbox does; returns the stream sequence.
    pub async fn publish<T: Event>(&self, envelope: &Envelope<T>) -> u64 {
        self.publish_as(envelope, &envelope.id.to_string()).await
    }

    /// Publishes `envelope` with another `Nats-Msg-Id`, as a publisher that
    /// lost its first ack and retried outside the duplicate window would.
    pub async fn publish_as<T: Event>(&self, envelope: &Envelope<T>, msg_id: &str) -> u64 {
        self.publish_raw(T::SUBJECT, envelope.to_json(), msg_id)
            .await
    }

    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>, msg_id: &str) -> u64 {
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(msg_id);
        let ack = self
            .js
            .send_publish(subject.to_owned(), message)
            .await
            .unwrap_or_else(|e| panic!("publishing on {subject}: {e}"));
        ack.await
            .unwrap_or_else(|e| panic!("ack for {subject}: {e}"))
            .sequence
    }

    /// Waits until finance has handled everything published to checkout's
    /// stream so far and its outbox has gone out.
    pub async fn settle(&self) {
        let last = self
            .js
            .get_stream(Team::Checkout.stream())
            .await
            .expect("checkout's stream")
            .get_info()
            .await
            .expect("checkout's stream info")
            .state
            .last_sequence;
        wait_until(WAIT, "finance handled every checkout event", || async {
            consumer_info(&self.js)
                .await
                .is_some_and(|i| i.ack_floor.stream_sequence >= last && i.num_ack_pending == 0)
        })
        .await;
        wait_until(WAIT, "finance's outbox is empty", || async {
            self.scalar("SELECT COUNT(*) FROM platform_outbox WHERE published_at IS NULL")
                .await
                == 0
        })
        .await;
    }

    /// Every event of type `T` finance published about `order_id`, in order.
    pub async fn events<T: Event>(&self, order_id: Uuid) -> Vec<T> {
        self.all_events::<T>()
            .await
            .into_iter()
            .filter(|e| e.subject == order_id.to_string())
            .map(|e| e.data)
            .collect()
    }

    /// Every event of type `T` finance published, in order.
    pub async fn all_events<T: Event>(&self) -> Vec<Envelope<T>> {
        self.read_published()
            .await
            .into_iter()
            .filter(|e| e.event_type == T::event_type())
            .map(|e| {
                e.decode::<T>()
                    .unwrap_or_else(|err| panic!("finance published a bad event: {err}"))
            })
            .collect()
    }

    /// Waits until finance has published `count` events of type `T` about
    /// `order_id` and returns them.
    pub async fn wait_for_events<T: Event>(&self, order_id: Uuid, count: usize) -> Vec<T> {
        let what = format!("{count} × {} for order {order_id}", T::event_type());
        wait_for(WAIT, &what, || async {
            let events = self.events::<T>(order_id).await;
            (events.len() >= count).then_some(events)
        })
        .await
    }

    /// Waits until finance has published `count` events of type `T` in all.
    pub async fn wait_for_all<T: Event>(&self, count: usize) -> Vec<Envelope<T>> {
        let what = format!("{count} × {}", T::event_type());
        wait_for(WAIT, &what, || async {
            let events = self.all_events::<T>().await;
            (events.len() >= count).then_some(events)
        })
        .await
    }

    /// The status of an order's payment as stored, if any.
    pub async fn payment_status(&self, order_id: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
            .bind(order_id.to_string())
            .fetch_optional(&mut *self.store.conn().await.expect("a database connection"))
            .await
            .unwrap_or_else(|e| panic!("[{}] reading a payment: {e}", self.backend))
    }

    /// A single `BIGINT` (e.g. a `COUNT(*)`) from finance's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut *self.store.conn().await.expect("a database connection"))
            .await
            .unwrap_or_else(|e| panic!("[{}] {sql}: {e}", self.backend))
    }

    /// Reads what `EVT_FINANCE` gained since the last call.
    async fn read_published(&self) -> Vec<RawEnvelope> {
        let mut published = self.published.lock().await;
        let stream = self
            .js
            .get_stream(Team::Finance.stream())
            .await
            .expect("finance's stream");
        let last = stream
            .get_info()
            .await
            .expect("finance's stream info")
            .state
            .last_sequence;
        // Nothing is ever deleted from the stream, so sequence = index + 1.
        for seq in published.len() as u64 + 1..=last {
            let message = stream
                .get_raw_message(seq)
                .await
                .unwrap_or_else(|e| panic!("reading finance event {seq}: {e}"));
            let envelope = RawEnvelope::parse(&message.payload)
                .unwrap_or_else(|e| panic!("finance event {seq} is no envelope: {e}"));
            published.push(envelope);
        }
        published.clone()
    }
}

fn start_instance(nats: &TestNats, db: &TestDb, data_dir: &TempDir, name: &str) -> Instance {
    let slow_ms = SLOW_TOKEN.as_millis().to_string();
    let data_dir = data_dir.path().display().to_string();
    let args = finance_svc::Args::try_parse_from([
        "finance-svc",
        "--nats-url",
        &nats.url(),
        "--database-url",
        db.url(),
        "--data-dir",
        &data_dir,
        "--http-addr",
        "127.0.0.1:0",
        "--instance",
        name,
        "--slow-token-ms",
        &slow_ms,
    ])
    .expect("valid arguments");
    let (stop, stopped) = oneshot::channel::<()>();
    let name = name.to_owned();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = finance_svc::run(args, shutdown).await {
            panic!("finance-svc instance {name} failed: {e:#}");
        }
    });
    Instance { stop: Some(stop) }
}

async fn consumer_info(js: &Context) -> Option<jetstream::consumer::Info> {
    let stream = js.get_stream(Team::Checkout.stream()).await.ok()?;
    stream.consumer_info(durable::FINANCE).await.ok()
}

/// The context of a flow that starts with a test's order.
fn root() -> EventContext {
    EventContext::root(Uuid::now_v7().to_string(), None)
}

/// An `order.placed` of one line worth `net_minor` EUR cents, shipped to
/// `country` and paid with `token`.
pub fn placed(country: &str, net_minor: i64, token: &str) -> Envelope<OrderPlacedV1> {
    let price = Money::eur(net_minor);
    let order = OrderPlacedV1 {
        order_id: Uuid::now_v7(),
        customer_id: "cust_test".to_owned(),
        lines: vec![OrderLineV1 {
            product_id: Uuid::now_v7(),
            sku: "CUP-ESP-001".to_owned(),
            name: "Espresso cup".to_owned(),
            quantity: 1,
            unit_price: price.clone(),
            line_total: price.clone(),
        }],
        net: price,
        shipping_address: AddressV1 {
            name: "Jana Nowak".to_owned(),
            line1: "Lindenstraße 12".to_owned(),
            city: "Berlin".to_owned(),
            postal_code: "10969".to_owned(),
            country: country.to_owned(),
        },
        payment_token: token.to_owned(),
        placed_at: chrono::Utc::now(),
    };
    Envelope::new("checkout-svc", order, &root())
}

/// The same order as checkout publishes it since v2: with the customer's
/// contact and a structured payment.
pub fn placed_v2(country: &str, net_minor: i64, token: &str) -> Envelope<OrderPlacedV2> {
    let v1 = placed(country, net_minor, token).data;
    let order = OrderPlacedV2 {
        order_id: Uuid::now_v7(),
        customer: CustomerV2 {
            id: v1.customer_id,
            email: Some("jana@example.org".to_owned()),
        },
        lines: v1.lines,
        net: v1.net,
        shipping_address: v1.shipping_address,
        payment: PaymentV2 {
            method: PaymentMethodV2::Card,
            token: v1.payment_token,
        },
        placed_at: v1.placed_at,
    };
    Envelope::new(CHECKOUT_SVC, order, &root())
}

pub fn confirmed(order_id: Uuid) -> Envelope<OrderConfirmedV1> {
    let data = OrderConfirmedV1 {
        order_id,
        customer_id: "cust_test".to_owned(),
    };
    Envelope::new("checkout-svc", data, &root())
}

pub fn rejected(order_id: Uuid) -> Envelope<OrderRejectedV1> {
    let data = OrderRejectedV1 {
        order_id,
        customer_id: "cust_test".to_owned(),
        reason: "out_of_stock".to_owned(),
        detail: None,
    };
    Envelope::new("checkout-svc", data, &root())
}

pub fn cancelled(order_id: Uuid, was_confirmed: bool) -> Envelope<OrderCancelledV1> {
    let data = OrderCancelledV1 {
        order_id,
        customer_id: "cust_test".to_owned(),
        was_confirmed,
    };
    Envelope::new("checkout-svc", data, &root())
}
