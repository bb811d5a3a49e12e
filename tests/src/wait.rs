//! Waiting on a condition with a deadline: the one way tests wait.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `check` until it returns true; panics naming `what` when `within`
/// passes first. The pause between polls grows from 10 ms to 200 ms.
///
/// ```no_run
/// # async fn f(shop: &bazaar_testkit::Shop) {
/// use std::time::Duration;
/// bazaar_testkit::wait_until(Duration::from_secs(10), "the edge is ready", || async {
///     reqwest::get(format!("{}/readyz", shop.http_url())).await.is_ok_and(|r| r.status() == 200)
/// })
/// .await;
/// # }
/// ```
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(within, what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}

/// Polls `check` until it returns `Some(value)` and returns the value;
/// panics naming `what` when `within` passes first. A check that hangs is
/// cut off at the deadline too.
pub async fn wait_for<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Some(value)) => return value,
            Ok(None) if Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            _ => panic!("timed out after {within:?} waiting until {what}"),
        }
    }
}
