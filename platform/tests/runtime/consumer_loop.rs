//! The consumer loop with the inbox: redeliveries have their effect once,
//! undecodable and persistently failing messages are dead-lettered, and the
//! consumer carries on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use bazaar_testkit::{wait_until, Backend};
use contracts::product::ProductCreatedV1;
use platform::consumer::{EventHandler, Pulling};
use platform::dlq;
use platform::streams::ConsumerSpec;
use platform::{inbox, Db, Delivery, HandlerError, Outcome};
use uuid::Uuid;

use crate::support::{
    broker, consumer_info, consumer_settled, database, dead_letters, execute, header, metric,
    on_every_backend, product_created, publish, publish_event, scalar, start, start_watched,
    PRODUCT_CREATED, PRODUCT_STREAM, SERVICE, WAIT,
};

/// A durable consumer of the tests on `product.created.v1`.
pub(crate) fn spec(durable: &str) -> ConsumerSpec {
    ConsumerSpec::new(PRODUCT_STREAM, durable, &[PRODUCT_CREATED])
}

/// Adds one to its row of `test_counter` per product.created it handles,
/// recording the event id in the inbox in the same transaction or not.
struct Counter {
    db: Db,
    name: &'static str,
    with_inbox: bool,
}

impl Counter {
    async fn count(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let event = delivery.decode::<ProductCreatedV1>()?;
        let mut tx = if self.with_inbox {
            match inbox::begin(&self.db, self.name, &event.id.to_string()).await? {
                Some(tx) => tx,
                None => return Ok(()),
            }
        } else {
            self.db.begin().await?
        };
        sqlx::query("UPDATE test_counter SET n = n + 1 WHERE name = $1")
            .bind(self.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl EventHandler for Counter {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.count(delivery).await.into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_has_its_effect_once() {
    platform::metrics::install(SERVICE);
    on_every_backend(redelivered_event_has_its_effect_once).await;
}

async fn redelivered_event_has_its_effect_once(backend: Backend) {
    // Arrange: two consumers counting the same events, one with the inbox
    // (as reactions must) and one without (the control that shows the
    // duplicate really reaches the handler).
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    execute(
        &db,
        "CREATE TABLE test_counter (name TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    )
    .await;
    let (with, without) = match backend {
        Backend::Sqlite => ("counter-inbox-sqlite", "counter-plain-sqlite"),
        Backend::Postgres => ("counter-inbox-postgres", "counter-plain-postgres"),
    };
    for name in [with, without] {
        execute(
            &db,
            &format!("INSERT INTO test_counter (name, n) VALUES ('{name}', 0)"),
        )
        .await;
    }
    let duplicates_before = metric("bazaar_duplicates_skipped_total", with);
    let deduplicating = start(
        &broker.js,
        spec(with),
        Counter {
            db: db.clone(),
            name: with,
            with_inbox: true,
        },
    );
    let plain = start(
        &broker.js,
        spec(without),
        Counter {
            db: db.clone(),
            name: without,
            with_inbox: false,
        },
    );

    // Act: the same event twice, under different message ids so that the
    // broker does not drop the second copy.
    let event = product_created("kettle");
    publish(&broker.js, PRODUCT_CREATED, event.to_json(), "copy-1").await;
    publish(&broker.js, PRODUCT_CREATED, event.to_json(), "copy-2").await;

    // Assert: both copies were handled by both consumers; the effect
    // happened once with the inbox and twice without it.
    let js = &broker.js;
    for durable in [with, without] {
        wait_until(
            WAIT,
            &format!("{durable} has acked both copies"),
            || async move { consumer_settled(js, durable, 2).await },
        )
        .await;
    }
    let count = |name: &str| format!("SELECT n FROM test_counter WHERE name = '{name}'");
    assert_eq!(
        scalar(&db, &count(with)).await,
        1,
        "[{backend}] effect with the inbox"
    );
    assert_eq!(
        scalar(&db, &count(without)).await,
        2,
        "[{backend}] effect without the inbox (control)"
    );
    assert_eq!(
        scalar(
            &db,
            &format!("SELECT COUNT(*) FROM platform_inbox WHERE consumer = '{with}'")
        )
        .await,
        1,
        "[{backend}] inbox rows"
    );
    assert_eq!(
        metric("bazaar_duplicates_skipped_total", with) - duplicates_before,
        1.0,
        "[{backend}] the skipped duplicate is counted"
    );

    deduplicating.stop().await;
    plain.stop().await;
}

/// How a [`Recorder`] answers.
#[derive(Clone, Copy)]
pub(crate) enum Behaviour {
    /// Decodes the event: undecodable is poison.
    Decode,
    /// Fails transiently on every delivery.
    AlwaysRetry,
    /// Fails transiently until the given delivery, then succeeds.
    SucceedOnDelivery(i64),
    /// Takes this long, then decodes.
    Slow(Duration),
}

/// Records every delivery it sees and the events it handled.
#[derive(Clone)]
pub(crate) struct Recorder {
    behaviour: Behaviour,
    /// (stream sequence, delivery count) of every call.
    calls: Arc<Mutex<Vec<(u64, i64)>>>,
    handled: Arc<Mutex<Vec<Uuid>>>,
}

impl Recorder {
    pub(crate) fn new(behaviour: Behaviour) -> Self {
        Recorder {
            behaviour,
            calls: Arc::default(),
            handled: Arc::default(),
        }
    }

    pub(crate) fn calls(&self) -> Vec<(u64, i64)> {
        self.calls.lock().expect("calls lock").clone()
    }

    pub(crate) fn handled(&self) -> Vec<Uuid> {
        self.handled.lock().expect("handled lock").clone()
    }
}

impl EventHandler for Recorder {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.calls
            .lock()
            .expect("calls lock")
            .push((delivery.stream_seq, delivery.delivered));
        let failing = match self.behaviour {
            Behaviour::Decode => false,
            Behaviour::Slow(takes) => {
                tokio::time::sleep(takes).await;
                false
            }
            Behaviour::AlwaysRetry => true,
            Behaviour::SucceedOnDelivery(n) => delivery.delivered < n,
        };
        if failing {
            return Outcome::Retry(format!(
                "simulated failure on delivery {}",
                delivery.delivered
            ));
        }
        match delivery.decode::<ProductCreatedV1>() {
            Ok(event) => {
                self.handled.lock().expect("handled lock").push(event.id);
                Outcome::Done
            }
            Err(error) => Err(error).into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_dead_lettered_and_the_consumer_continues() {
    // Arrange
    let broker = broker().await;
    let durable = "poison-reader";
    let recorder = Recorder::new(Behaviour::Decode);
    let consumer = start(&broker.js, spec(durable), recorder.clone());

    // Act: garbage, then a good event behind it.
    let garbage = b"{ this is not a CloudEvent".to_vec();
    let garbage_seq = publish(&broker.js, PRODUCT_CREATED, garbage.clone(), "garbage-1").await;
    let good = product_created("teapot");
    let good_seq = publish_event(&broker.js, &good).await;

    // Assert: the good event is handled after the garbage.
    let js = &broker.js;
    let (handled, good_id) = (&recorder, good.id);
    wait_until(WAIT, "the good event is handled", || async move {
        handled.handled().contains(&good_id)
    })
    .await;
    wait_until(
        WAIT,
        "the consumer has finished both messages",
        || async move { consumer_settled(js, durable, good_seq).await },
    )
    .await;

    // Assert: the garbage is a dead letter with the error and its origin.
    let letters = dead_letters(js, durable).await;
    assert_eq!(letters.len(), 1, "dead letters on dlq.{SERVICE}.{durable}");
    let letter = &letters[0];
    assert_eq!(
        letter.payload.as_ref(),
        garbage.as_slice(),
        "the dead letter carries the original payload"
    );
    let error = header(letter, dlq::H_ERROR).expect("Bazaar-Dlq-Error header");
    assert!(
        error.contains("not a JSON CloudEvent"),
        "Bazaar-Dlq-Error says why: {error}"
    );
    assert_eq!(header(letter, dlq::H_SERVICE).as_deref(), Some(SERVICE));
    assert_eq!(header(letter, dlq::H_CONSUMER).as_deref(), Some(durable));
    assert_eq!(
        header(letter, dlq::H_STREAM).as_deref(),
        Some(PRODUCT_STREAM)
    );
    assert_eq!(
        header(letter, dlq::H_SUBJECT).as_deref(),
        Some(PRODUCT_CREATED)
    );
    assert_eq!(header(letter, dlq::H_SEQ), Some(garbage_seq.to_string()));
    assert_eq!(header(letter, dlq::H_DELIVERIES).as_deref(), Some("1"));
    assert!(
        header(letter, dlq::H_TIME).is_some(),
        "Bazaar-Dlq-Time header"
    );

    // Assert: the garbage was terminated, not redelivered.
    let info = consumer_info(js, durable).await.expect("consumer info");
    assert_eq!(info.num_redelivered, 0, "redelivered messages");
    let garbage_calls: Vec<_> = recorder
        .calls()
        .into_iter()
        .filter(|(seq, _)| *seq == garbage_seq)
        .collect();
    assert_eq!(
        garbage_calls,
        vec![(garbage_seq, 1)],
        "the garbage was handed to the handler once"
    );

    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_ack_wait_is_not_redelivered_while_it_works() {
    // Arrange: a 1 s ack wait and a handler that takes 3 s.
    let broker = broker().await;
    let durable = "slow-reader";
    let quick_to_redeliver = ConsumerSpec {
        ack_wait: Duration::from_secs(1),
        ..spec(durable)
    };
    let slow = Recorder::new(Behaviour::Slow(Duration::from_secs(3)));
    let consumer = start(&broker.js, quick_to_redeliver, slow.clone());

    // Act
    let event = product_created("kettle");
    let seq = publish_event(&broker.js, &event).await;

    // Assert: handled once; the loop told the broker it was still working.
    let js = &broker.js;
    wait_until(WAIT, "the slow handler's event is acked", || async move {
        consumer_settled(js, durable, seq).await
    })
    .await;
    assert_eq!(slow.handled(), vec![event.id]);
    assert_eq!(
        slow.calls(),
        vec![(seq, 1)],
        "deliveries to the slow handler"
    );
    let info = consumer_info(js, durable).await.expect("consumer info");
    assert_eq!(info.num_redelivered, 0, "redelivered messages");

    consumer.stop().await;
}

/// Fails the first delivery of the product named "flaky"; takes 4 s over
/// the one named "slow"; records when each delivery came.
#[derive(Clone, Default)]
struct FlakyAndSlow {
    calls: Arc<Mutex<Vec<(String, i64, std::time::Instant)>>>,
}

impl EventHandler for FlakyAndSlow {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let name = match delivery.decode::<ProductCreatedV1>() {
            Ok(event) => event.data.name,
            Err(error) => return Err(error).into(),
        };
        self.calls.lock().expect("calls lock").push((
            name.clone(),
            delivery.delivered,
            std::time::Instant::now(),
        ));
        match (name.as_str(), delivery.delivered) {
            ("flaky", 1) => Outcome::Retry("flaky the first time".into()),
            ("slow", _) => {
                tokio::time::sleep(Duration::from_secs(4)).await;
                Outcome::Done
            }
            _ => Outcome::Done,
        }
    }
}

// One thread: the dispatcher hands both messages to the lane before the
// lane runs, so they are one lot.
#[tokio::test]
async fn a_retry_delay_is_not_stretched_by_in_progress_acks_for_its_lot() {
    // Arrange: "flaky" and "slow" arrive in one lot of one lane; the
    // in-progress acks for "slow" come every second (3 s ack wait).
    let broker = broker().await;
    let durable = "flaky-and-slow";
    let flaky = product_created("flaky");
    let slow = product_created("slow");
    publish_event(&broker.js, &flaky).await;
    publish_event(&broker.js, &slow).await;
    let handler = FlakyAndSlow::default();
    let spec = ConsumerSpec {
        ack_wait: Duration::from_secs(3),
        backoff: vec![Duration::from_millis(1500)],
        ..spec(durable)
    };
    let consumer = start(&broker.js, spec, handler.clone());

    // Assert: "flaky" is back 1.5 s after its nak, so it is handled again
    // as soon as "slow" is done (about 4 s), not an ack wait after the
    // last in-progress ack (about 7 s: each one restarted its delay).
    let calls = handler.calls.clone();
    wait_until(WAIT, "flaky is handled a second time", || {
        let calls = calls.clone();
        async move {
            let calls = calls.lock().expect("calls lock");
            calls
                .iter()
                .any(|(name, delivered, _)| name == "flaky" && *delivered == 2)
        }
    })
    .await;
    let calls = handler.calls.lock().expect("calls lock").clone();
    let at = |name: &str, delivered: i64| {
        calls
            .iter()
            .find(|(n, d, _)| n == name && *d == delivered)
            .map(|(_, _, at)| *at)
            .unwrap_or_else(|| panic!("no delivery {delivered} of {name}: {calls:?}"))
    };
    let again = at("flaky", 2).duration_since(at("flaky", 1));
    assert!(
        again < Duration::from_millis(5500),
        "flaky came back {again:?} after its first delivery: {calls:?}"
    );

    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_message_is_retried_then_dead_lettered_after_max_deliver() {
    // Arrange: two consumers with 3 deliveries and short back-off; one
    // always fails, the other fails twice and then succeeds.
    let broker = broker().await;
    let short = |durable: &str| ConsumerSpec {
        max_deliver: 3,
        ack_wait: Duration::from_secs(10),
        backoff: vec![Duration::from_millis(50), Duration::from_millis(100)],
        ..spec(durable)
    };
    let (hopeless, recovering) = ("always-failing", "fails-twice");
    let always = Recorder::new(Behaviour::AlwaysRetry);
    let third_time = Recorder::new(Behaviour::SucceedOnDelivery(3));
    let always_consumer = start(&broker.js, short(hopeless), always.clone());
    let third_time_consumer = start(&broker.js, short(recovering), third_time.clone());

    // Act
    let event = product_created("toaster");
    let seq = publish_event(&broker.js, &event).await;

    // Assert: the hopeless one tried three times, then dead-lettered it.
    let js = &broker.js;
    wait_until(
        WAIT,
        "the always failing consumer dead-lettered the event",
        || async move { !dead_letters(js, hopeless).await.is_empty() },
    )
    .await;
    wait_until(
        WAIT,
        "the always failing consumer has terminated the event",
        || async move { consumer_settled(js, hopeless, seq).await },
    )
    .await;
    let letters = dead_letters(js, hopeless).await;
    assert_eq!(letters.len(), 1, "dead letters of {hopeless}");
    assert_eq!(
        header(&letters[0], dlq::H_DELIVERIES).as_deref(),
        Some("3"),
        "delivery count in the dead letter"
    );
    let error = header(&letters[0], dlq::H_ERROR).expect("Bazaar-Dlq-Error header");
    assert!(
        error.contains("gave up after 3 deliveries"),
        "Bazaar-Dlq-Error: {error}"
    );
    assert_eq!(
        always.calls(),
        vec![(seq, 1), (seq, 2), (seq, 3)],
        "deliveries to the always failing handler"
    );

    // Assert: the recovering one handled it on the third delivery, with no
    // dead letter.
    wait_until(
        WAIT,
        "the recovering consumer has acked the event",
        || async move { consumer_settled(js, recovering, seq).await },
    )
    .await;
    assert_eq!(
        third_time.handled(),
        vec![event.id],
        "handled by the recovering handler"
    );
    assert_eq!(
        third_time.calls(),
        vec![(seq, 1), (seq, 2), (seq, 3)],
        "deliveries to the recovering handler"
    );
    assert!(
        dead_letters(js, recovering).await.is_empty(),
        "no dead letter for the recovering consumer"
    );

    always_consumer.stop().await;
    third_time_consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_cannot_declare_its_durable_is_not_ready_until_it_can() {
    // Arrange: someone declared the durable by hand with a deliver policy
    // that the code's declaration cannot change.
    let broker = broker().await;
    let durable = "declared-by-hand";
    let mut by_hand = spec(durable).config();
    by_hand.deliver_policy = DeliverPolicy::New;
    broker
        .js
        .create_consumer_on_stream(by_hand, PRODUCT_STREAM)
        .await
        .expect("declaring the durable by hand");
    let recorder = Recorder::new(Behaviour::Decode);
    let (consumer, health) = start_watched(&broker.js, spec(durable), recorder.clone());

    // Assert: the loop says why it takes nothing, and is not ready.
    wait_until(
        WAIT,
        "the loop reports that it cannot declare its durable",
        || async { matches!(health.pulling(), Pulling::Interrupted(_)) },
    )
    .await;
    assert!(!health.is_ready(), "{:?}", health.pulling());
    let Pulling::Interrupted(error) = health.pulling() else {
        unreachable!("checked above")
    };
    assert!(
        error.contains(durable),
        "the error names the durable: {error}"
    );

    // Act: the hand-made durable is removed.
    broker
        .js
        .get_stream(PRODUCT_STREAM)
        .await
        .expect("the product stream")
        .delete_consumer(durable)
        .await
        .expect("deleting the hand-made durable");

    // Assert: the loop declares its own, is ready and takes events.
    wait_until(WAIT, "the loop is ready once it can declare", || async {
        health.is_ready()
    })
    .await;
    let event = product_created("mended");
    publish_event(&broker.js, &event).await;
    wait_until(WAIT, "the event is handled", || async {
        recorder.handled().contains(&event.id)
    })
    .await;
    consumer.stop().await;
}
