//! checkout-svc: the checkout team's service. It owns baskets, orders and
//! the order saga (choreography, DESIGN §5) and publishes `evt.checkout.>`.
//! Prices come from its own replica of product events (never a call to
//! product-svc); warehouse's and finance's answers arrive as events and move
//! each order's state machine; pending orders past the timeout are rejected.
//! What it reads is declared in `contracts::consumers::checkout_svc`.

pub mod domain;
pub mod handlers;
pub mod prices;
pub mod store;

use std::future::Future;
use std::time::Duration;

use contracts::subjects::{cmd, CHECKOUT_SVC};
use contracts::Team;
use platform::{Runtime, ServiceArgs};

/// checkout-svc's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "checkout-svc",
    version,
    about = "Bazaar's checkout service: baskets, orders, the order saga"
)]
pub struct Args {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// How long an order may wait for stock and payment before it is rejected.
    #[arg(long, env = "BAZAAR_ORDER_TIMEOUT_MS", default_value_t = 30_000)]
    pub order_timeout_ms: u64,
}

pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut rt = Runtime::start(
        CHECKOUT_SVC,
        Some(Team::Checkout),
        &args.service,
        Some(&platform::migrations!()),
    )
    .await?;
    let handlers = handlers::Handlers {
        db: rt.db.clone(),
        outbox: rt.outbox.clone(),
        order_timeout: Duration::from_millis(args.order_timeout_ms),
    };
    rt.consume(
        prices::consumer_spec(),
        prices::PriceReplica::new(rt.db.clone()),
    )
    .await?;
    for spec in handlers::SagaEvents::specs() {
        rt.react(spec, handlers::SagaEvents).await?;
    }
    let h = handlers.clone();
    rt.serve(cmd::CHECKOUT_PUT_BASKET_ITEM, move |req| {
        let h = h.clone();
        async move { h.put_basket_item(req).await }
    })
    .await?;
    let h = handlers.clone();
    rt.serve(cmd::CHECKOUT_PLACE_ORDER, move |req| {
        let h = h.clone();
        async move { h.place_order(req).await }
    })
    .await?;
    let h = handlers.clone();
    rt.serve(cmd::CHECKOUT_CANCEL_ORDER, move |req| {
        let h = h.clone();
        async move { h.cancel_order(req).await }
    })
    .await?;
    rt.spawn(move |stop| handlers::sweep_overdue(handlers, stop));
    rt.run_until_stopped(None, shutdown).await
}
