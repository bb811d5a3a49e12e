//! Chaos: zombie consumers. Orders flow over REST while one of the two
//! instances of checkout, warehouse and finance is frozen with SIGSTOP for
//! longer than its consumers' ack wait, then woken with SIGCONT. What the
//! frozen instances held must be redelivered to their twins (the broker's
//! redelivery count proves they held something), and what the zombies do
//! when they wake (handle and ack stale deliveries) must not apply anything
//! twice: every order settles and `bazaar check --settled --json` finds no
//! violation. `BAZAAR_CHAOS_ORDERS` orders (default 2,000).

use std::time::{Duration, Instant};

use bazaar_testkit::{Service, Streams};
use chaos::{
    check_shop, metric_sum, orders_requested, settle, shop_builder, Client, Load, Products,
};

/// Frozen this much longer than the longest ack wait.
const BEYOND_ACK_WAIT: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(180);
const LOAD_LIMIT: Duration = Duration::from_secs(900);
const FROZEN: [&str; 3] = ["checkout-svc-1", "warehouse-svc-1", "finance-svc-1"];
const SKIPPED: &str = "bazaar_duplicates_skipped_total";

/// The most messages any durable consumer has redelivered and not yet
/// seen acknowledged.
async fn redelivered(streams: &Streams) -> u64 {
    streams
        .durable_consumers()
        .await
        .iter()
        .map(|i| i.num_redelivered as u64)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frozen_instances_lose_their_deliveries_to_their_twins_and_apply_nothing_twice() {
    let orders = orders_requested();
    let mut shop = shop_builder()
        .scale(Service::Checkout, 2)
        .scale(Service::Warehouse, 2)
        .scale(Service::Finance, 2)
        .start()
        .await;
    let streams = shop.streams().await;
    let products = Products::stock(&shop, streams.js(), orders).await;
    let client = Client::of(&shop);
    let ack_wait = streams
        .durable_consumers()
        .await
        .iter()
        .map(|i| i.config.ack_wait)
        .max()
        .expect("the services declared their consumers");
    let freeze_for = ack_wait + BEYOND_ACK_WAIT;
    let load = Load::start(&client, products, orders);

    load.wait_for_fraction(0.3, LOAD_LIMIT).await;
    let before = redelivered(&streams).await;
    let mut skipped_before = Vec::new();
    for instance in FROZEN {
        skipped_before.push(metric_sum(&shop, instance, SKIPPED).await);
        eprintln!("chaos: SIGSTOP {instance} for {freeze_for:?} (ack wait {ack_wait:?})");
        shop.freeze_instance(instance);
    }
    let thaw_at = Instant::now() + freeze_for;
    let mut most_redelivered = 0;
    while Instant::now() < thaw_at {
        most_redelivered = most_redelivered.max(redelivered(&streams).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for instance in FROZEN {
        eprintln!("chaos: SIGCONT {instance}");
        shop.thaw_instance(instance);
    }
    let last_fault = Instant::now();
    let (placed, load_took) = load.finish(LOAD_LIMIT).await;

    let deadline = Instant::now() + SETTLE;
    let outcomes = settle(&client, &placed, deadline).await;
    chaos::wait_quiet(&shop, streams.js(), deadline).await;
    let recovered_in = last_fault.elapsed();
    let mut skipped = Vec::new();
    let mut skipped_total = 0.0;
    for (instance, before) in FROZEN.into_iter().zip(skipped_before) {
        let after = metric_sum(&shop, instance, SKIPPED).await;
        skipped_total += after - before;
        skipped.push(format!("{instance} {}", after - before));
    }
    // The zombies held deliveries: the broker was seen redelivering them
    // (the count is of redelivered messages not yet acknowledged, so a
    // poll can miss it), or the zombies, once awake, skipped deliveries
    // their twins had handled meanwhile.
    assert!(
        most_redelivered > before || skipped_total > 0.0,
        "the zombies held nothing: no redelivery seen while {FROZEN:?} were frozen for \
         {freeze_for:?} ({before} redelivered before), and no duplicate skipped after: {skipped:?}"
    );
    let check = check_shop(&shop, streams.js(), placed.len()).await;
    println!(
        "{}",
        chaos::Summary {
            test: "zombie",
            requested: orders,
            placed: placed.len(),
            outcomes,
            faults: format!(
                "SIGSTOP of {} instances for {freeze_for:?} (ack wait {ack_wait:?}); up to \
                 {most_redelivered} deliveries of one consumer redelivered; duplicates the \
                 zombies skipped after waking: {}",
                FROZEN.len(),
                skipped.join(", ")
            ),
            recovered_in,
            load_took,
            check,
        }
    );
}
