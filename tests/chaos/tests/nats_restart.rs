//! Chaos: the broker crashes. Orders flow over REST while the single
//! nats-server (file store) is killed with SIGKILL, twice, and started
//! again on the same port and store after a few seconds. Every event the
//! broker had acknowledged must still be stored after each restart, every
//! order must settle, and `bazaar check --settled --json` must find no
//! violation. `BAZAAR_CHAOS_ORDERS` orders (default 2,000).

use std::time::{Duration, Instant};

use chaos::{
    check_shop, orders_requested, settle, shop_builder, stored_events, Client, Load, Products,
};

/// How long the broker stays down each time.
const DOWN_FOR: Duration = Duration::from_secs(3);
/// How far into the load each crash comes.
const CRASH_AT: [f64; 2] = [0.25, 0.6];
/// How long the restarted broker may take to serve its streams again.
const RECOVER: Duration = Duration::from_secs(30);
const SETTLE: Duration = Duration::from_secs(180);
const LOAD_LIMIT: Duration = Duration::from_secs(900);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_order_settles_without_violations_when_the_broker_is_killed_and_restarted() {
    let orders = orders_requested();
    let mut shop = shop_builder().start().await;
    let products = Products::stock(&shop, shop.streams().await.js(), orders).await;
    let client = Client::of(&shop);
    let load = Load::start(&client, products, orders);

    let mut crashes = 0;
    let mut last_fault = Instant::now();
    for at in CRASH_AT {
        load.wait_for_fraction(at, LOAD_LIMIT).await;
        let stored_before = {
            let streams = shop.streams().await;
            stored_events(streams.js()).await
        };
        let pid = shop.nats().server().pid();
        eprintln!("chaos: kill -9 nats-server (pid {pid:?}) with {stored_before} events stored");
        shop.nats_mut().kill();
        assert_eq!(shop.nats().server().pid(), None, "nats-server still runs");
        tokio::time::sleep(DOWN_FOR).await;
        shop.nats_mut().restart();
        crashes += 1;
        last_fault = Instant::now();
        // The streams are readable again once the server has recovered its
        // store; until then a stream counts as empty.
        let streams = shop.streams().await;
        let recovered = Instant::now() + RECOVER;
        let mut stored_after = stored_events(streams.js()).await;
        while stored_after < stored_before && Instant::now() < recovered {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stored_after = stored_events(streams.js()).await;
        }
        eprintln!("chaos: nats-server back with {stored_after} events stored");
        assert!(
            stored_after >= stored_before,
            "acknowledged events were lost: {stored_before} stored before the crash, \
             {stored_after} {RECOVER:?} after the restart"
        );
    }
    let (placed, load_took) = load.finish(LOAD_LIMIT).await;

    let deadline = Instant::now() + SETTLE;
    let outcomes = settle(&client, &placed, deadline).await;
    let streams = shop.streams().await;
    chaos::wait_quiet(&shop, streams.js(), deadline).await;
    let recovered_in = last_fault.elapsed();
    let check = check_shop(&shop, streams.js(), placed.len()).await;
    println!(
        "{}",
        chaos::Summary {
            test: "nats_restart",
            requested: orders,
            placed: placed.len(),
            outcomes,
            faults: format!("{crashes} kill -9 of nats-server, down {DOWN_FOR:?} each"),
            recovered_in,
            load_took,
            check,
        }
    );
}
