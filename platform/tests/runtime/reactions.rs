//! Reactions (`platform::reaction`): the platform's transaction around a
//! handler. On SQLite the deliveries at hand commit together; a failure
//! among them keeps nothing of the lot, and each is then handled alone, so
//! the good ones take effect once and the bad one is dead-lettered alone.

use bazaar_testkit::{wait_until, Backend};
use contracts::product::ProductCreatedV1;
use platform::outbox::Outbox;
use platform::reaction::{Effect, InTx, Reaction};
use platform::streams::ConsumerSpec;
use platform::{inbox, Db, Delivery, HandlerError, Tx};

use crate::support::{
    broker, consumer_settled, database, dead_letters, execute, metric, on_every_backend,
    product_created, publish_event, scalar, start, Broker, PRODUCT_CREATED, PRODUCT_STREAM,
    SERVICE, WAIT,
};

/// Records each product.created it handles as a row of `test_tally`; a
/// product named "poison" is refused after its row was written, so a lot
/// that kept anything of a failed transaction would show it.
struct Tally {
    consumer: &'static str,
}

impl Reaction for Tally {
    type Prepared = ();

    async fn react(
        &self,
        tx: &mut Tx,
        delivery: &Delivery,
        (): (),
    ) -> Result<Effect, HandlerError> {
        let event = delivery.decode::<ProductCreatedV1>()?;
        if !inbox::claim(tx, self.consumer, &event.id.to_string()).await? {
            return Ok(Effect::Quiet);
        }
        sqlx::query("INSERT INTO test_tally (consumer, name) VALUES ($1, $2)")
            .bind(self.consumer)
            .bind(&event.data.name)
            .execute(&mut **tx)
            .await?;
        if event.data.name == "poison" {
            return Err(HandlerError::Poison("this product is refused".into()));
        }
        Ok(Effect::Quiet)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_at_hand_commit_together_and_a_bad_one_is_dead_lettered_alone() {
    platform::metrics::install(SERVICE);
    on_every_backend(commit_together_and_dead_letter_alone).await;
}

async fn commit_together_and_dead_letter_alone(backend: Backend) {
    // Arrange: a tally table; events are published while the consumer is
    // stopped, so that its lane has many at hand when it starts.
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    execute(
        &db,
        "CREATE TABLE test_tally (consumer TEXT NOT NULL, name TEXT NOT NULL)",
    )
    .await;
    let consumer = match backend {
        Backend::Sqlite => "tally-sqlite",
        Backend::Postgres => "tally-postgres",
    };
    let together_before = metric("bazaar_deliveries_committed_together_total", consumer);
    let js = &broker.js;

    // Act 1: 30 good events, then the consumer.
    let good: Vec<String> = (1..=30).map(|i| format!("product-{i}")).collect();
    let mut last = 0;
    for name in &good {
        last = publish_event(js, &product_created(name)).await;
    }
    drain(&broker, &db, consumer, last).await;

    // Assert 1: SQLite committed deliveries together; PostgreSQL, one by one.
    let together = metric("bazaar_deliveries_committed_together_total", consumer) - together_before;
    match backend {
        Backend::Sqlite => assert!(
            together >= 2.0,
            "[{backend}] deliveries committed together: {together}"
        ),
        Backend::Postgres => assert_eq!(together, 0.0, "[{backend}] deliveries committed together"),
    }

    // Act 2: ten more, the fifth one the reaction refuses, then the consumer
    // again: the refused one usually lands in a lot with good ones.
    let more: Vec<String> = (31..=40)
        .map(|i| match i {
            35 => "poison".to_owned(),
            i => format!("product-{i}"),
        })
        .collect();
    for name in &more {
        last = publish_event(js, &product_created(name)).await;
    }
    drain(&broker, &db, consumer, last).await;

    // Assert 2: the refused event is the one dead letter.
    let letters = dead_letters(js, consumer).await;
    assert_eq!(letters.len(), 1, "[{backend}] dead letters");
    let refused: ProductCreatedV1 =
        serde_json::from_slice::<serde_json::Value>(&letters[0].payload)
            .ok()
            .and_then(|v| serde_json::from_value(v["data"].clone()).ok())
            .expect("the dead letter is the refused event");
    assert_eq!(refused.name, "poison", "[{backend}] the dead letter");

    // Assert 2: each good event took effect once, the refused one not at all.
    let rows = |name: &str| {
        format!("SELECT COUNT(*) FROM test_tally WHERE consumer = '{consumer}' AND name = '{name}'")
    };
    for name in good.iter().chain(&more) {
        let expected = i64::from(name != "poison");
        assert_eq!(
            scalar(&db, &rows(name)).await,
            expected,
            "[{backend}] rows for {name}"
        );
    }
}

/// Runs the consumer of [`Tally`] until it has finished the stream up to
/// `last`, then stops it.
async fn drain(broker: &Broker, db: &Db, consumer: &'static str, last: u64) {
    run_until_settled(broker, db, Tally { consumer }, consumer, 2, last).await;
}

/// Runs `reaction` as `consumer` with `lanes` lanes until it has finished
/// the stream up to `last`, then stops it.
async fn run_until_settled<R: Reaction>(
    broker: &Broker,
    db: &Db,
    reaction: R,
    consumer: &'static str,
    lanes: usize,
    last: u64,
) {
    let handler = InTx::new(
        db.clone(),
        Outbox::new(db.clone(), broker.js.clone()),
        reaction,
    );
    let spec = ConsumerSpec::new(PRODUCT_STREAM, consumer, &[PRODUCT_CREATED]).with_lanes(lanes);
    let running = start(&broker.js, spec, handler);
    let js = &broker.js;
    wait_until(
        WAIT,
        "the consumer has finished the stream",
        || async move { consumer_settled(js, consumer, last).await },
    )
    .await;
    running.stop().await;
}

/// Records each product.created it handles with what its prepare saw: how
/// many events of the same aggregate were committed before it.
struct Sequencer {
    db: Db,
    consumer: &'static str,
}

impl Reaction for Sequencer {
    type Prepared = i64;
    const PREPARES: bool = true;

    async fn prepare(&self, delivery: &Delivery) -> Result<i64, HandlerError> {
        let aggregate = delivery.decode::<ProductCreatedV1>()?.subject;
        let mut conn = self.db.conn().await?;
        let seen = sqlx::query_scalar("SELECT COUNT(*) FROM test_seen WHERE aggregate = $1")
            .bind(aggregate)
            .fetch_one(&mut *conn)
            .await?;
        Ok(seen)
    }

    async fn react(
        &self,
        tx: &mut Tx,
        delivery: &Delivery,
        seen_before: i64,
    ) -> Result<Effect, HandlerError> {
        let event = delivery.decode::<ProductCreatedV1>()?;
        if !inbox::claim(tx, self.consumer, &event.id.to_string()).await? {
            return Ok(Effect::Quiet);
        }
        sqlx::query("INSERT INTO test_seen (aggregate, name, seen_before) VALUES ($1, $2, $3)")
            .bind(&event.subject)
            .bind(&event.data.name)
            .bind(seen_before)
            .execute(&mut **tx)
            .await?;
        Ok(Effect::Quiet)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepare_sees_what_the_same_aggregates_earlier_events_did_even_in_one_lot() {
    platform::metrics::install(SERVICE);
    on_every_backend(prepare_sees_earlier_events_of_its_aggregate).await;
}

async fn prepare_sees_earlier_events_of_its_aggregate(backend: Backend) {
    // Arrange: three events each of four aggregates, interleaved, published
    // while the consumer is stopped, so that its one lane has them at hand.
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    execute(
        &db,
        "CREATE TABLE test_seen (aggregate TEXT NOT NULL, name TEXT NOT NULL, \
         seen_before BIGINT NOT NULL)",
    )
    .await;
    let consumer = match backend {
        Backend::Sqlite => "sequencer-sqlite",
        Backend::Postgres => "sequencer-postgres",
    };
    let together_before = metric("bazaar_deliveries_committed_together_total", consumer);
    let mut last = 0;
    for round in 0..3 {
        for aggregate in ["a", "b", "c", "d"] {
            let mut event = product_created(&format!("{aggregate}-{round}"));
            event.subject = format!("aggregate-{aggregate}");
            last = publish_event(&broker.js, &event).await;
        }
    }

    // Act
    let sequencer = Sequencer {
        db: db.clone(),
        consumer,
    };
    run_until_settled(&broker, &db, sequencer, consumer, 1, last).await;

    // Assert: the n-th event of an aggregate was prepared knowing the n
    // before it, though on SQLite they came in lots.
    for round in 0..3 {
        for aggregate in ["a", "b", "c", "d"] {
            let name = format!("{aggregate}-{round}");
            assert_eq!(
                scalar(
                    &db,
                    &format!("SELECT seen_before FROM test_seen WHERE name = '{name}'")
                )
                .await,
                round,
                "[{backend}] what the prepare of {name} saw"
            );
        }
    }
    let together = metric("bazaar_deliveries_committed_together_total", consumer) - together_before;
    if backend == Backend::Sqlite {
        assert!(
            together >= 2.0,
            "[{backend}] deliveries committed together: {together}"
        );
    }
}
