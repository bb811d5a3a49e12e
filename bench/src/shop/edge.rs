//! The edge's reads against the fastest thing axum can answer: a fixed
//! number of keep-alive clients send GETs for a few seconds, first to an
//! axum hello-world served in this process (on a runtime of its own, two
//! workers, like the edge's), then to the shop's edge.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;

/// Requests per second of one target, and how many were not 200.
pub struct Reads {
    pub per_s: f64,
    pub errors: u64,
}

/// The reads in one line: each rate, the edge's as a share of hello-world,
/// and the errors of each.
pub fn reads_line(hello: &Reads, products: &Reads, orders: &Reads) -> String {
    format!(
        "hello-world {:.0}, GET product {:.0} ({:.0} %), GET order {:.0} ({:.0} %); errors {} / {} / {}",
        hello.per_s,
        products.per_s,
        100.0 * products.per_s / hello.per_s,
        orders.per_s,
        100.0 * orders.per_s / hello.per_s,
        hello.errors,
        products.errors,
        orders.errors
    )
}

/// An axum hello-world on 127.0.0.1:0 in a thread of its own; stops when
/// the returned sender is dropped.
pub fn hello_world() -> anyhow::Result<(String, oneshot::Sender<()>)> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding the hello-world server")?;
    listener
        .set_nonblocking(true)
        .context("a non-blocking listener")?;
    let addr = listener.local_addr().context("the hello-world address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("the hello-world runtime")?;
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let app = Router::new().fallback(get(|| async { "Hello, World!" }));
            // Served as every Bazaar service serves, so the two compare.
            let _ = axum::serve(platform::runtime::without_nagle(listener), app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    Ok((format!("http://{addr}"), stop))
}

/// `clients` keep-alive clients GET `url` one request after another for
/// `seconds`.
pub async fn drive(
    url: &str,
    token: Option<&str>,
    clients: usize,
    seconds: f64,
) -> anyhow::Result<Reads> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(10))
        .build()
        .context("the HTTP client")?;
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // Warm the connections up, so the run measures requests and not connects.
    for _ in 0..clients {
        let _ = get_once(&http, url, token).await;
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, ok, errors) = (http.clone(), ok.clone(), errors.clone());
            let (url, token) = (url.to_owned(), token.map(str::to_owned));
            tokio::spawn(async move {
                // Bounded by the clock.
                while Instant::now() < until {
                    if get_once(&http, &url, token.as_deref()).await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a read client panicked")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Reads {
        per_s: ok.load(Ordering::Relaxed) as f64 / elapsed,
        errors: errors.load(Ordering::Relaxed),
    })
}

async fn get_once(http: &reqwest::Client, url: &str, token: Option<&str>) -> bool {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        // Read the body, so the connection goes back to the pool.
        Ok(response) => {
            let ok = response.status().is_success();
            response.bytes().await.is_ok() && ok
        }
        Err(_) => false,
    }
}
