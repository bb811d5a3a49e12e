//! `streams::wait_for`: a reader of another team's stream waits for its
//! owner to create it (services start in any order), and stops waiting on
//! shutdown.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bazaar_testkit::TestNats;
use contracts::Team;
use platform::streams;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_reader_waits_for_the_stream_until_its_owner_creates_it() {
    let nats = TestNats::start_without_auth();
    let js = jetstream::new(nats.connect().await);
    let stop = CancellationToken::new();
    let absent = Arc::new(AtomicU32::new(0));
    let waiting = tokio::spawn({
        let (js, stop, absent) = (js.clone(), stop.clone(), absent.clone());
        async move {
            streams::wait_for(&js, Team::Product.stream(), &stop, || {
                absent.fetch_add(1, Ordering::SeqCst);
            })
            .await
        }
    });
    bazaar_testkit::wait_until(Duration::from_secs(5), "the stream found missing", || {
        let absent = absent.clone();
        async move { absent.load(Ordering::SeqCst) > 0 }
    })
    .await;
    assert!(
        !waiting.is_finished(),
        "it stopped waiting for a missing stream"
    );

    streams::ensure(&js, streams::event_stream(Team::Product, 1))
        .await
        .expect("the owner declares its stream");

    // Looks at most STREAM_WAIT_MAX_DELAY apart.
    let found = tokio::time::timeout(streams::STREAM_WAIT_MAX_DELAY * 3, waiting)
        .await
        .expect("it found the stream once it existed")
        .expect("the waiting task");
    assert!(found);
}

#[tokio::test]
async fn a_reader_stops_waiting_on_shutdown() {
    let nats = TestNats::start_without_auth();
    let js = jetstream::new(nats.connect().await);
    let stop = CancellationToken::new();
    let waiting = tokio::spawn({
        let (js, stop) = (js.clone(), stop.clone());
        async move { streams::wait_for(&js, Team::Finance.stream(), &stop, || {}).await }
    });

    stop.cancel();

    let found = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("it stopped waiting on shutdown")
        .expect("the waiting task");
    assert!(!found, "it reported a stream that does not exist");
}
