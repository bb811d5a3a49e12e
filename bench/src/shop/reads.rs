//! The edge's reads against hello-world (step 3 of `bench shop`), and
//! `bench shop --reads-only`: a shop, its demo catalog and one order, then
//! only this step, for iterating on the edge's read path in seconds.

use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;
use serde_json::json;

use super::edge::{self, Reads};
use super::round;
use super::running::{self, RunningShop};

/// Reads/s of hello-world, `GET /api/v1/products/{id}` and
/// `GET /api/v1/orders/{id}` (the owner's token), one after another, each
/// with `clients` keep-alive clients for `secs`. With `load_concurrency`,
/// `bazaar load` places orders at that concurrency while the edge is read
/// (not while hello-world is), so the views keep changing.
pub async fn measure(
    shop: &RunningShop,
    clients: usize,
    secs: f64,
    load_concurrency: Option<u16>,
) -> anyhow::Result<(Reads, Reads, Reads)> {
    let token = shop
        .bazaar(
            &["token", "--customer", "bench-reader"],
            Duration::from_secs(30),
        )
        .await?
        .trim()
        .to_owned();
    let product = first_product(shop)?;
    let order = place_order(&shop.up.http_url, &token, &product).await?;
    let (hello_url, stop_hello) = edge::hello_world()?;
    let hello = edge::drive(
        &format!("{hello_url}/api/v1/products/{product}"),
        None,
        clients,
        secs,
    )
    .await?;
    drop(stop_hello);
    if let Some(pid) = edge_pid(shop) {
        eprintln!("reads: GET product from edge-api (pid {pid})");
    }
    let edge_reads = async {
        let products = edge::drive(
            &format!("{}/api/v1/products/{product}", shop.up.http_url),
            None,
            clients,
            secs,
        )
        .await?;
        eprintln!("reads: GET order");
        let orders = edge::drive(
            &format!("{}/api/v1/orders/{order}", shop.up.http_url),
            Some(&token),
            clients,
            secs,
        )
        .await?;
        anyhow::Ok((products, orders))
    };
    let (products, orders) = match load_concurrency {
        None => edge_reads.await?,
        Some(concurrency) => {
            let concurrency = concurrency.to_string();
            // Far more orders than the reads take; dropping the run kills it.
            let args = [
                "load",
                "--orders",
                "100000",
                "--concurrency",
                &concurrency,
                "--timeout",
                "600s",
                "--json",
            ];
            let load = shop.bazaar(&args, Duration::from_secs(660));
            tokio::select! {
                reads = edge_reads => reads?,
                ended = load => bail!("the order load ended before the reads: {:?}", ended.map(|_| ())),
            }
        }
    };
    eprintln!(
        "reads/s: hello-world {:.0}, product {:.0}, order {:.0}",
        hello.per_s, products.per_s, orders.per_s
    );
    Ok((hello, products, orders))
}

/// `bench shop --reads-only`: start the shop, seed it, measure the reads,
/// print one line of figures and one JSON object.
pub async fn only(clients: usize, secs: f64, load_concurrency: Option<u16>) -> anyhow::Result<()> {
    let bin_dir = running::bin_dir()?;
    let work = tempfile::Builder::new()
        .prefix("bazaar-bench-reads-")
        .tempdir()
        .context("a temp dir")?;
    let data_dir = work.path().join("shop");
    let shop = tokio::task::spawn_blocking(move || RunningShop::start(&bin_dir, &data_dir))
        .await
        .context("the start task")??;
    eprintln!("shop: up at {}", shop.up.http_url);
    shop.bazaar(
        &["seed", "--stock", "100000000", "--json"],
        Duration::from_secs(120),
    )
    .await?;
    let (hello, products, orders) = measure(&shop, clients, secs, load_concurrency).await?;
    let rss = shop.peak_rss_mib();
    drop(shop);
    println!(
        "reads/s ({clients} clients, {secs} s each{}): {}",
        load_concurrency.map_or(String::new(), |c| format!(
            ", {c} orders in flight meanwhile"
        )),
        edge::reads_line(&hello, &products, &orders)
    );
    let edge_rss = rss
        .iter()
        .find(|(name, _)| name.starts_with("edge"))
        .map(|(_, mib)| round(*mib));
    println!(
        "{}",
        json!({
            "reads_per_s": summary(&hello, &products, &orders),
            "orders_in_flight_meanwhile": load_concurrency,
            "edge_rss_mib": edge_rss,
        })
    );
    Ok(())
}

/// The reads' figures as the JSON summary carries them.
pub fn summary(hello: &Reads, products: &Reads, orders: &Reads) -> serde_json::Value {
    json!({
        "hello_world": round(hello.per_s),
        "product": round(products.per_s),
        "order": round(orders.per_s),
        "product_ratio": round(products.per_s / hello.per_s),
        "order_ratio": round(orders.per_s / hello.per_s),
        "errors": hello.errors + products.errors + orders.errors,
    })
}

fn edge_pid(shop: &RunningShop) -> Option<u32> {
    shop.up
        .services
        .iter()
        .find(|s| s.instance.starts_with("edge"))
        .and_then(|s| s.pid)
}

fn first_product(shop: &RunningShop) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Seeded {
        products: Vec<SeededProduct>,
    }
    #[derive(Deserialize)]
    struct SeededProduct {
        id: String,
        stock: i64,
    }
    let text = std::fs::read_to_string(shop.data_dir.join("seed.json")).context("seed.json")?;
    let seeded: Seeded = serde_json::from_str(&text).context("parsing seed.json")?;
    seeded
        .products
        .into_iter()
        .find(|p| p.stock > 0)
        .map(|p| p.id)
        .context("seed.json lists no product with stock")
}

/// Places one order as the reader's customer and waits until the edge shows it.
async fn place_order(base: &str, token: &str, product: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("the HTTP client")?;
    let body = json!({
        "items": [{"product_id": product, "quantity": 1}],
        "shipping_address": {"name": "Bench Reader", "line1": "1 Benchmark Way",
                             "city": "Berlin", "postal_code": "10115", "country": "DE"},
        "payment_method": "tok_visa",
    });
    let response = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .context("placing the order to read")?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.context("the order answer")?;
    let id = answer
        .get("id")
        .and_then(|v| v.as_str())
        .with_context(|| format!("placing the order to read: {status} {answer}"))?
        .to_owned();
    for _ in 0..100 {
        let got = http
            .get(format!("{base}/api/v1/orders/{id}"))
            .bearer_auth(token)
            .send()
            .await;
        if got.is_ok_and(|r| r.status().is_success()) {
            return Ok(id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the edge did not show order {id} within 10 s")
}
