//! The outbox relay: what was committed is published, exactly once, in order,
//! even across crashes of the service and of the broker.

use std::time::Duration;

use bazaar_testkit::{wait_until, Backend};
use contracts::product::ProductCreatedV1;
use contracts::{Envelope, RawEnvelope};
use platform::outbox::Outbox;
use tokio_util::sync::CancellationToken;

use crate::support::{
    broker, commit_to_outbox, database, execute, header, join, on_every_backend, product_created,
    scalar, stream_len, stream_messages, PRODUCT_CREATED, PRODUCT_STREAM, WAIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_publishes_rows_committed_before_a_crash_exactly_once() {
    on_every_backend(publishes_rows_committed_before_a_crash_exactly_once).await;
}

async fn publishes_rows_committed_before_a_crash_exactly_once(backend: Backend) {
    // Arrange: a row committed while no relay runs (a crash between commit
    // and publish).
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    let event = product_created("lamp");
    commit_to_outbox(&db, std::slice::from_ref(&event)).await;
    assert_eq!(
        stream_len(&broker.js, PRODUCT_STREAM).await,
        0,
        "[{backend}] nothing is published before the relay runs"
    );

    // Act: the relay starts.
    let outbox = Outbox::new(db.clone(), broker.js.clone());
    let published = outbox.flush().await.expect("flushing the outbox");

    // Assert: the event is in the stream once, as a CloudEvent with its id
    // as the message id, and the row is marked.
    assert_eq!(published, 1, "[{backend}] rows published");
    let messages = stream_messages(&broker.js, PRODUCT_STREAM).await;
    assert_eq!(messages.len(), 1, "[{backend}] messages in the stream");
    let message = &messages[0];
    assert_eq!(
        message.subject.as_str(),
        PRODUCT_CREATED,
        "[{backend}] subject"
    );
    assert_eq!(
        header(message, "Nats-Msg-Id"),
        Some(event.id.to_string()),
        "[{backend}] Nats-Msg-Id"
    );
    let raw =
        RawEnvelope::parse(&message.payload).expect("the body is a CloudEvents 1.0 JSON document");
    assert_eq!(raw.specversion, "1.0", "[{backend}] specversion");
    assert_eq!(
        raw.event_type, "bazaar.product.product.created.v1",
        "[{backend}] type"
    );
    assert_eq!(raw.source, "/platform-tests", "[{backend}] source");
    assert_eq!(
        raw.datacontenttype, "application/json",
        "[{backend}] datacontenttype"
    );
    let decoded = Envelope::<ProductCreatedV1>::from_slice(&message.payload)
        .expect("the body decodes as product.created.v1");
    assert_eq!(
        decoded, event,
        "[{backend}] the published envelope is the committed one"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM platform_outbox WHERE published_at IS NOT NULL AND stream_seq = 1").await,
        1,
        "[{backend}] the row is marked published with its stream sequence"
    );

    // Act: a crash after publishing but before marking the row sent.
    execute(
        &db,
        "UPDATE platform_outbox SET published_at = NULL, stream_seq = NULL",
    )
    .await;
    let republished = outbox.flush().await.expect("flushing the outbox again");

    // Assert: the broker dropped the duplicate; the row is marked again
    // with the original sequence.
    assert_eq!(
        republished, 1,
        "[{backend}] the unmarked row was sent again"
    );
    assert_eq!(
        stream_len(&broker.js, PRODUCT_STREAM).await,
        1,
        "[{backend}] still exactly one message in the stream"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM platform_outbox WHERE published_at IS NOT NULL AND stream_seq = 1").await,
        1,
        "[{backend}] the row is marked with the sequence of the original message"
    );
    assert_eq!(
        outbox.backlog().await.expect("backlog"),
        0,
        "[{backend}] backlog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_keeps_order_of_events() {
    on_every_backend(keeps_order_of_events).await;
}

async fn keeps_order_of_events(backend: Backend) {
    // Arrange: a running relay.
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    let outbox = Outbox::new(db.clone(), broker.js.clone());
    let stop = CancellationToken::new();
    let relay = tokio::spawn(outbox.clone().run(stop.clone()));

    // Act: 50 events, each committed in its own transaction and announced
    // to the relay, so that they go out over many flushes.
    let events: Vec<_> = (0..50)
        .map(|i| product_created(&format!("item-{i:02}")))
        .collect();
    for event in &events {
        commit_to_outbox(&db, std::slice::from_ref(event)).await;
        outbox.notify();
    }

    // Assert: the stream holds them in the order they were committed.
    let js = &broker.js;
    wait_until(WAIT, "all 50 events are in the stream", || async move {
        stream_len(js, PRODUCT_STREAM).await >= 50
    })
    .await;
    let published: Vec<_> = stream_messages(js, PRODUCT_STREAM)
        .await
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").expect("every message has a Nats-Msg-Id"))
        .collect();
    let committed: Vec<_> = events.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        published, committed,
        "[{backend}] stream order is commit order"
    );

    stop.cancel();
    join(relay, "the outbox relay").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_relay_survives_a_broker_restart() {
    on_every_backend(relay_survives_a_broker_restart).await;
}

async fn relay_survives_a_broker_restart(backend: Backend) {
    // Arrange: a relay (with a short publish-ack timeout) that has
    // published once, so it is known to work.
    let mut broker = broker().await;
    let (_test_db, db) = database(backend).await;
    let mut relay_js = broker.js.clone();
    relay_js.set_timeout(Duration::from_secs(1));
    let outbox = Outbox::new(db.clone(), relay_js);
    let stop = CancellationToken::new();
    let relay = tokio::spawn(outbox.clone().run(stop.clone()));
    let before = product_created("before");
    commit_to_outbox(&db, std::slice::from_ref(&before)).await;
    outbox.notify();
    let js = &broker.js;
    wait_until(WAIT, "the first event is published", || async move {
        stream_len(js, PRODUCT_STREAM).await == 1
    })
    .await;

    // Act: the broker dies and rows are committed meanwhile; publishing
    // them fails (the publishes may still reach the broker once it is
    // back: a timed-out ack does not mean "not stored", NATS-NOTES.md).
    broker.nats.kill();
    let during: Vec<_> = (0..3)
        .map(|i| product_created(&format!("during-{i}")))
        .collect();
    commit_to_outbox(&db, &during).await;
    outbox.notify();
    // Two flushes of our own, both failing: the relay, woken above, queues
    // on the same fair lock, so its own attempt has failed in between.
    for attempt in 1..=2 {
        assert!(
            outbox.flush().await.is_err(),
            "[{backend}] publishing succeeded although the broker is down (attempt {attempt})"
        );
    }
    assert_eq!(
        outbox.backlog().await.expect("backlog"),
        3,
        "[{backend}] rows wait while the broker is down"
    );

    // Act: the broker returns.
    broker.nats.restart();

    // Assert: the running relay publishes them by itself, each exactly once.
    let outbox = &outbox;
    wait_until(
        Duration::from_secs(40),
        "the relay published the rows committed while the broker was down",
        || async move { outbox.backlog().await.is_ok_and(|n| n == 0) },
    )
    .await;
    let published: Vec<_> = stream_messages(js, PRODUCT_STREAM)
        .await
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").expect("every message has a Nats-Msg-Id"))
        .collect();
    let expected: Vec<_> = std::iter::once(&before)
        .chain(&during)
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(
        published, expected,
        "[{backend}] every event once, in order"
    );

    stop.cancel();
    join(relay, "the outbox relay").await;
}
