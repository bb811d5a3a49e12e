//! A durable consumer that goes away with its stream while no pull of the
//! loop is pending: the server has nobody to tell "Consumer Deleted", the
//! loop's next pull finds no responder, and the loop must declare its
//! consumer again on the new stream instead of waiting on for ever.

use std::time::Duration;

use platform::streams::{self, ConsumerSpec};

use crate::consumer_loop::{spec, Behaviour, Recorder};
use crate::support::{broker, consumer_info, product_created, publish_event, start, WAIT};
use bazaar_testkit::wait_until;
use contracts::Team;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_deleted_with_its_stream_between_two_pulls_is_declared_again() {
    // Arrange: one lane holding one message at a time, its handler busy
    // with the first for a while, so the loop stops pulling once a second
    // waits in the lane and a third waits to be handed over.
    let broker = broker().await;
    let js = &broker.js;
    let durable = "between-pulls";
    let recorder = Recorder::new(Behaviour::Slow(Duration::from_secs(3)));
    let consumer = start(
        js,
        ConsumerSpec {
            batch: 1,
            lanes: 1,
            ..spec(durable)
        },
        recorder.clone(),
    );
    publish_event(js, &product_created("first")).await;
    let busy = &recorder;
    wait_until(WAIT, "the handler has the first message", || async move {
        !busy.calls().is_empty()
    })
    .await;
    publish_event(js, &product_created("second")).await;
    publish_event(js, &product_created("third")).await;
    wait_until(
        WAIT,
        "all three delivered, no pull left pending",
        || async move {
            consumer_info(js, durable).await.is_some_and(|i| {
                i.delivered.stream_sequence == 3 && i.num_pending == 0 && i.num_waiting == 0
            })
        },
    )
    .await;

    // Act: the stream, and the consumer with it, deleted and created anew
    // while the handler still works on the first message.
    js.delete_stream(Team::Product.stream())
        .await
        .expect("stream deleted");
    streams::ensure(js, streams::event_stream(Team::Product, 1))
        .await
        .expect("stream created again");
    let after = product_created("after");
    publish_event(js, &after).await;

    // Assert: the loop declared its consumer again and handles the new
    // stream's event.
    let (handled, id) = (&recorder, after.id);
    wait_until(
        WAIT,
        "the event on the new stream is handled",
        || async move { handled.handled().contains(&id) },
    )
    .await;

    consumer.stop().await;
}
