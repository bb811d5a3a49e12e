//! A live view after the broker restarts: its ordered consumer lived only
//! in the broker's memory, so the view follows again as soon as the
//! connection is back, not after async-nats's missed heartbeats (10 s and
//! more), while customers would see it stand still.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::Context;
use bazaar_testkit::{wait_for, wait_until, Backend};
use platform::projection::{self, ProjectionSpec, Projector};
use platform::{Delivery, HandlerError, Tx};
use tokio_util::sync::CancellationToken;

use crate::support::{
    broker, database, join, product_created, publish_event, PRODUCT_CREATED, PRODUCT_STREAM,
    SERVICE, WAIT,
};

/// Applies nothing; the view's position is what this test watches.
struct Positions;

impl Projector for Positions {
    async fn apply(&self, _tx: &mut Tx, _delivery: &Delivery) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// How long after its publish the view may take to apply a new event:
/// about 1 s here (the reconnect check's period, then following again,
/// which may wait out JetStream's own start). Without following again on
/// reconnect it had applied nothing 15 s after the publish, in each of two
/// runs.
const SOON: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_view_follows_again_as_soon_as_the_broker_is_back() {
    // Arrange: a live view that has applied one event.
    let mut broker = broker().await;
    let js = broker.js.clone();
    let (_test_db, db) = database(Backend::Sqlite).await;
    let stop = CancellationToken::new();
    let (view, task) = projection::spawn(
        js.clone(),
        db.clone(),
        SERVICE,
        ProjectionSpec {
            name: "test-reconnect".to_owned(),
            stream: PRODUCT_STREAM,
            filter_subjects: vec![PRODUCT_CREATED.to_owned()],
        },
        Positions,
        stop.clone(),
    );
    let first = publish_event(&js, &product_created("before")).await;
    assert!(view.wait_for(first, WAIT).await, "{:?}", view.progress());

    // Act: the broker dies and comes back at once (its store kept).
    let stats = js.client().statistics();
    let connects = stats.connects.load(Ordering::Relaxed);
    broker.nats.kill();
    broker.nats.restart();
    wait_until(WAIT, "the client connected again", || {
        let stats = stats.clone();
        async move { stats.connects.load(Ordering::Relaxed) > connects }
    })
    .await;
    let next = publish_when_ready(&js).await;

    // Assert: the view applies the new event soon.
    assert!(
        view.wait_for(next, SOON).await,
        "the view did not apply seq {next} within {SOON:?} of its publish: {:?}",
        view.progress()
    );

    stop.cancel();
    join(task, "the projection").await;
}

/// Publishes one event once JetStream takes publishes again after its
/// restart; returns its stream sequence.
async fn publish_when_ready(js: &Context) -> u64 {
    let event = product_created("after");
    wait_for(WAIT, "JetStream takes a publish again", || {
        let event = event.clone();
        async move {
            let ack = js
                .publish(PRODUCT_CREATED, event.to_json().into())
                .await
                .ok()?;
            ack.await.ok().map(|ack| ack.sequence)
        }
    })
    .await
}
