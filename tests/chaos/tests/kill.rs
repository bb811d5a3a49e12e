//! Chaos: kill -9. Orders flow over REST while instances of every service
//! (two of each, the edge and product-svc included) are killed with
//! SIGKILL, one a second in a shuffled round over all of them, and
//! started again. Once every order has settled, `bazaar check --settled
//! --json` must find no violation of the saga's invariants.
//!
//! `BAZAAR_CHAOS_ORDERS` orders (default 2,000), `BAZAAR_CHAOS_KILLS` kills
//! at most (default 40; at least two rounds over every instance). Run
//! alone: `./dev chaos`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bazaar_testkit::Service;
use chaos::{
    check_shop, env_number, orders_requested, settle, shop_builder, Client, Load, Products,
};
use rand::seq::SliceRandom;

/// Between two kills (after the killed instance is ready again).
const KILL_EVERY: Duration = Duration::from_secs(1);
/// How long every order may take to settle after the last kill.
const SETTLE: Duration = Duration::from_secs(180);
/// How long the whole load may take.
const LOAD_LIMIT: Duration = Duration::from_secs(900);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_order_settles_without_violations_while_every_service_is_killed() {
    let orders = orders_requested();
    let mut shop = Service::ALL
        .into_iter()
        .fold(shop_builder(), |builder, service| builder.scale(service, 2))
        .start()
        .await;
    let products = Products::stock(&shop, shop.streams().await.js(), orders).await;
    let client = Client::of(&shop);
    let load = Load::start(&client, products, orders);

    // Chaos: rounds over every instance, in a new random order each round.
    let victims: Vec<(Service, String)> = shop
        .instances()
        .into_iter()
        .filter_map(|name| {
            Service::ALL
                .into_iter()
                .find(|s| name.starts_with(s.name()))
                .map(|s| (s, name.to_owned()))
        })
        .collect();
    assert_eq!(victims.len(), 10, "two instances of each: {victims:?}");
    let min_kills = 2 * victims.len();
    let max_kills = env_number("BAZAAR_CHAOS_KILLS", 40).max(min_kills);
    let mut round = Vec::new();
    let mut killed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kills = 0;
    let mut last_fault = Instant::now();
    while kills < max_kills && (kills < min_kills || !load.is_done()) && load.elapsed() < LOAD_LIMIT
    {
        tokio::time::sleep(KILL_EVERY).await;
        if round.is_empty() {
            round = victims.clone();
            round.shuffle(&mut rand::thread_rng());
        }
        let Some((service, instance)) = round.pop() else {
            continue;
        };
        eprintln!("chaos: kill -9 {instance}");
        shop.kill_instance(&instance);
        shop.start(service).await;
        *killed.entry(service.name()).or_default() += 1;
        kills += 1;
        last_fault = Instant::now();
    }
    for service in Service::ALL {
        assert!(
            killed.get(service.name()).copied().unwrap_or(0) >= 2,
            "{} was not killed twice: {killed:?}",
            service.name()
        );
    }
    let (placed, load_took) = load.finish(LOAD_LIMIT).await;

    // Every order settles, every consumer is idle, every invariant holds.
    let deadline = Instant::now() + SETTLE;
    let outcomes = settle(&client, &placed, deadline).await;
    let streams = shop.streams().await;
    chaos::wait_quiet(&shop, streams.js(), deadline).await;
    let recovered_in = last_fault.elapsed();
    let check = check_shop(&shop, streams.js(), placed.len()).await;
    let kinds: Vec<String> = killed.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "{}",
        chaos::Summary {
            test: "kill",
            requested: orders,
            placed: placed.len(),
            outcomes,
            faults: format!("{kills} kill -9 ({})", kinds.join(", ")),
            recovered_in,
            load_took,
            check,
        }
    );
}
