//! Chaos: a cluster node crashes. The shop runs on a 3-node JetStream
//! cluster on loopback (every service given all three URLs) with three
//! replicas of every stream. Orders flow over REST while the node leading
//! the checkout stream is killed with SIGKILL and, some seconds later,
//! started again on the same ports and store. Nothing the cluster
//! acknowledged may be lost, every order must settle and `bazaar check
//! --settled --json` must find no violation. `BAZAAR_CHAOS_ORDERS` orders
//! (default 2,000).

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bazaar_testkit::{TestCluster, CLUSTER_SIZE};
use chaos::{check, orders_requested, settle, shop_builder, stored_events, Client, Load, Products};
use contracts::Team;

/// How long the cluster may take to elect a JetStream leader at start.
const FORM_WITHIN: Duration = Duration::from_secs(60);
/// How long the node stays down while the load goes on (short enough
/// that it rejoins while orders still flow).
const DOWN_FOR: Duration = Duration::from_secs(5);
/// How long the restarted node's peers may take to serve every event again.
const RECOVER: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(240);
const LOAD_LIMIT: Duration = Duration::from_secs(900);

/// The server that leads `stream` now.
async fn leader_of(js: &jetstream::Context, stream: &str) -> String {
    let mut handle = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    let info = handle
        .info()
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    assert_eq!(
        info.config.num_replicas, CLUSTER_SIZE,
        "{stream} must have a replica on every node"
    );
    info.cluster
        .clone()
        .and_then(|c| c.leader)
        .unwrap_or_else(|| panic!("{stream} has no leader"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_order_settles_without_violations_when_a_cluster_node_is_killed_and_restarted() {
    let orders = orders_requested();
    let mut cluster = TestCluster::start(FORM_WITHIN).await;
    let shop = shop_builder()
        .external_nats(cluster.urls(), cluster.passwords())
        .env("BAZAAR_STREAM_REPLICAS", CLUSTER_SIZE.to_string())
        .start()
        .await;
    let js = jetstream::new(cluster.connect().await);
    let products = Products::stock(&shop, &js, orders).await;
    let client = Client::of(&shop);
    let load = Load::start(&client, products, orders);

    load.wait_for_fraction(0.2, LOAD_LIMIT).await;
    let leader = leader_of(&js, Team::Checkout.stream()).await;
    let node = cluster
        .node_named(&leader)
        .unwrap_or_else(|| panic!("{leader} is not one of the cluster's nodes"));
    let stored_before = stored_events(&js).await;
    eprintln!("chaos: kill -9 {leader} (leads the checkout stream), {stored_before} events stored");
    cluster.kill(node);
    assert!(!cluster.is_running(node), "{leader} still runs");
    tokio::time::sleep(DOWN_FOR).await;
    // Restarted at once, while orders still flow: it must catch up under load.
    cluster.restart(node);
    let last_fault = Instant::now();
    let answered_at_restart = load.answered();
    // What was stored while the node was down, and who took over (the
    // restarted node does not take the lead back by itself).
    let stored_while_down = stored_events(&js).await;
    let new_leader = leader_of(&js, Team::Checkout.stream()).await;
    eprintln!(
        "chaos: {leader} restarted with {answered_at_restart} orders answered; \
         {stored_while_down} events stored; {new_leader} leads"
    );
    assert_ne!(new_leader, leader, "no other node took over the lead");
    let (placed, load_took) = load.finish(LOAD_LIMIT).await;

    let recovered = Instant::now() + RECOVER;
    let mut stored_after = stored_events(&js).await;
    while stored_after < stored_while_down.max(stored_before) && Instant::now() < recovered {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stored_after = stored_events(&js).await;
    }
    assert!(
        stored_after >= stored_while_down.max(stored_before),
        "acknowledged events were lost: {stored_before} stored before the crash, \
         {stored_while_down} while the node was down, {stored_after} after"
    );
    let deadline = Instant::now() + SETTLE;
    let outcomes = settle(&client, &placed, deadline).await;
    chaos::wait_quiet(&shop, &js, deadline).await;
    let recovered_in = last_fault.elapsed();
    let check = check(
        &cluster.url_of(node),
        cluster.password_for("ops"),
        placed.len(),
        (&js, &shop.data_dir().join("logs")),
    )
    .await;
    println!(
        "{}",
        chaos::Summary {
            test: "cluster",
            requested: orders,
            placed: placed.len(),
            outcomes,
            faults: format!(
                "kill -9 of {leader} (checkout stream leader) for {DOWN_FOR:?}, then restarted \
                 after {answered_at_restart} orders; {new_leader} led meanwhile"
            ),
            recovered_in,
            load_took,
            check,
        }
    );
}
