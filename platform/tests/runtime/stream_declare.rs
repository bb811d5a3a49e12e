//! Declaring a team's stream on a cluster: a service started with fewer
//! replicas than the stream has does not take copies away.

use std::time::Duration;

use bazaar_testkit::TestCluster;
use contracts::subjects::Team;
use platform::streams;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_declaring_one_replica_keeps_a_streams_three() {
    // Arrange: a 3-node cluster whose operators gave the stream 3 replicas.
    let cluster = TestCluster::start(Duration::from_secs(60)).await;
    let js = async_nats::jetstream::new(cluster.connect().await);
    streams::ensure(&js, streams::event_stream(Team::Checkout, 3))
        .await
        .expect("the stream is declared with 3 replicas");

    // Act: a service starts with the default, 1.
    streams::ensure(&js, streams::event_stream(Team::Checkout, 1))
        .await
        .expect("the service declares its stream");

    // Assert: still 3.
    let info = js
        .get_stream(Team::Checkout.stream())
        .await
        .expect("the stream")
        .info()
        .await
        .expect("its info")
        .clone();
    assert_eq!(info.config.num_replicas, 3);
}
