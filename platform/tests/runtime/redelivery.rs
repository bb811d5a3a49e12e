//! What the consumer loop does with redeliveries now that the broker
//! never gives up on a message (no broker-side `max_deliver`): a message
//! whose dead letter cannot be filed comes back until it can, a delivery
//! that never gets an outcome is dead-lettered at last without handling
//! it again, and a copy of a delivery still waiting in a lane is not
//! queued behind it.

use std::time::Duration;

use futures::StreamExt;
use platform::dlq;
use platform::streams::ConsumerSpec;

use crate::consumer_loop::{spec, Behaviour, Recorder};
use crate::support::{
    broker, consumer_info, consumer_settled, dead_letters, header, product_created, publish_event,
    start, PRODUCT_STREAM, WAIT,
};
use bazaar_testkit::wait_until;

/// The DLQ stream is missing (deleted by hand) when a message runs out of
/// deliveries: the loop cannot file its dead letter, so the message must
/// come back until it can, not be dropped by the broker's own limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_dead_letter_cannot_be_filed_is_redelivered_until_it_can() {
    // Arrange
    let broker = broker().await;
    let js = &broker.js;
    js.delete_stream(contracts::subjects::DLQ_STREAM)
        .await
        .expect("DLQ deleted");
    let durable = "no-dlq-yet";
    let always = Recorder::new(Behaviour::AlwaysRetry);
    let consumer = start(
        js,
        ConsumerSpec {
            max_deliver: 2,
            backoff: vec![Duration::from_millis(50), Duration::from_millis(100)],
            ..spec(durable)
        },
        always.clone(),
    );

    // Act
    let seq = publish_event(js, &product_created("kettle")).await;

    // Assert: delivered again and again past its 2 deliveries (each time
    // the handler is tried once more, then the dead letter).
    wait_until(
        WAIT,
        "the message is delivered a fifth time",
        || async move {
            consumer_info(js, durable)
                .await
                .is_some_and(|i| i.delivered.consumer_sequence >= 5)
        },
    )
    .await;
    platform::streams::ensure_dlq(js, 1)
        .await
        .expect("DLQ created again");
    dead_lettered_once(js, durable, seq).await;

    consumer.stop().await;
}

/// Instances that crashed while handling a message took it and never
/// answered, again and again: the loop dead-letters it at last without
/// handling it once more (the broker itself would redeliver it for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_never_got_an_outcome_is_dead_lettered_without_handling_it() {
    // Arrange: the deliveries of the crashed instances, taken and dropped.
    let broker = broker().await;
    let js = &broker.js;
    let durable = "crash-looping";
    let crashing = ConsumerSpec {
        max_deliver: 2,
        ack_wait: Duration::from_millis(300),
        ..spec(durable)
    };
    let seq = publish_event(js, &product_created("grenade")).await;
    let taken: async_nats::jetstream::consumer::PullConsumer = js
        .create_consumer_on_stream(crashing.config(), PRODUCT_STREAM)
        .await
        .expect("the durable declared");
    for n in 1..=crashing.max_deliver * platform::consumer::UNFINISHED_FACTOR {
        let mut batch = taken
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(3))
            .messages()
            .await
            .expect("a fetch");
        let message = batch
            .next()
            .await
            .unwrap_or_else(|| panic!("delivery {n} came"))
            .expect("a message");
        assert_eq!(message.info().expect("metadata").delivered, n);
    }

    // Act
    let recorder = Recorder::new(Behaviour::Decode);
    let consumer = start(js, crashing, recorder.clone());

    // Assert
    dead_lettered_once(js, durable, seq).await;
    let letters = dead_letters(js, durable).await;
    let error = header(&letters[0], dlq::H_ERROR).expect("Bazaar-Dlq-Error header");
    assert!(
        error.contains("without its handler ever finishing"),
        "{error}"
    );
    assert_eq!(recorder.calls(), vec![], "handled again");
    consumer.stop().await;
}

/// A message waits in a lane behind a slow one, longer than the ack wait:
/// the broker redelivers it meanwhile, and that copy must not queue up to
/// be handled a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_delivery_waiting_in_a_lane_is_not_handled_again() {
    // Arrange: one lane, a 1 s ack wait, 2.5 s per message.
    let broker = broker().await;
    let js = &broker.js;
    let durable = "one-slow-lane";
    let slow = Recorder::new(Behaviour::Slow(Duration::from_millis(2500)));
    let consumer = start(
        js,
        ConsumerSpec {
            ack_wait: Duration::from_secs(1),
            ..spec(durable).with_lanes(1)
        },
        slow.clone(),
    );
    let first = publish_event(js, &product_created("first")).await;
    let calls = slow.clone();
    wait_until(WAIT, "the first message is being handled", || {
        let calls = calls.clone();
        async move { !calls.calls().is_empty() }
    })
    .await;

    // Act: the second comes while the first is in hand.
    let second = publish_event(js, &product_created("second")).await;

    // Assert
    wait_until(WAIT, "both are settled", || async move {
        consumer_settled(js, durable, second).await
    })
    .await;
    assert_eq!(
        slow.calls(),
        vec![(first, 1), (second, 1)],
        "deliveries handled"
    );
    consumer.stop().await;
}

/// A durable declared by an earlier release, with the broker's delivery
/// limit on, loses that limit when the service declares it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_declared_with_the_brokers_delivery_limit_loses_it_at_start() {
    // Arrange
    let broker = broker().await;
    let js = &broker.js;
    let durable = "declared-before";
    let earlier = async_nats::jetstream::consumer::pull::Config {
        max_deliver: 6,
        ..spec(durable).config()
    };
    js.create_consumer_on_stream(earlier, PRODUCT_STREAM)
        .await
        .expect("declared as an earlier release did");

    // Act
    let consumer = start(js, spec(durable), Recorder::new(Behaviour::AlwaysRetry));

    // Assert
    wait_until(WAIT, "the consumer has no delivery limit", || async move {
        consumer_info(js, durable)
            .await
            .is_some_and(|i| i.config.max_deliver == -1)
    })
    .await;
    consumer.stop().await;
}

/// Waits until `durable` has filed one dead letter and settled `seq`.
async fn dead_lettered_once(js: &async_nats::jetstream::Context, durable: &str, seq: u64) {
    wait_until(WAIT, "the message is dead-lettered", || async move {
        dead_letters(js, durable).await.len() == 1
    })
    .await;
    wait_until(WAIT, "the message is settled", || async move {
        consumer_settled(js, durable, seq).await
    })
    .await;
}
