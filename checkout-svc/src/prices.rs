//! checkout's price replica: product events → `price_replica`, each event
//! applied exactly once (inbox in the same transaction as the upsert).

use contracts::consumers::checkout_svc;
use contracts::product::{
    ProductCreatedV1, ProductDiscontinuedV1, ProductPriceChangedV1, ProductUpdatedV1,
};
use contracts::subjects::{durable, evt};
use contracts::Money;
use platform::consumer::EventHandler;
use platform::delivery::{Delivery, HandlerError, Outcome};
use platform::streams::ConsumerSpec;
use platform::{Db, Tx};
use uuid::Uuid;

/// The durable consumer of the product events checkout declares it reads.
pub fn consumer_spec() -> ConsumerSpec {
    let reads = checkout_svc::PRICES;
    ConsumerSpec::new(reads.from.stream(), durable::CHECKOUT, reads.subjects)
}

pub struct PriceReplica {
    db: Db,
}

impl PriceReplica {
    pub fn new(db: Db) -> Self {
        PriceReplica { db }
    }

    async fn apply(&self, d: &Delivery) -> Result<(), HandlerError> {
        let raw = d.raw()?;
        let Some(mut tx) =
            platform::inbox::begin(&self.db, durable::CHECKOUT, &raw.id.to_string()).await?
        else {
            return Ok(());
        };
        match d.subject.as_str() {
            evt::PRODUCT_CREATED_V1 => {
                let e = d.decode::<ProductCreatedV1>()?.data;
                upsert(&mut tx, e.product_id, &e.sku, &e.name, &e.price).await?;
            }
            evt::PRODUCT_UPDATED_V1 => {
                let e = d.decode::<ProductUpdatedV1>()?.data;
                upsert(&mut tx, e.product_id, &e.sku, &e.name, &e.price).await?;
            }
            evt::PRODUCT_PRICE_CHANGED_V1 => {
                let e = d.decode::<ProductPriceChangedV1>()?.data;
                sqlx::query(
                    "UPDATE price_replica SET price_minor = $1, currency = $2, applied_events = applied_events + 1
                     WHERE product_id = $3",
                )
                .bind(e.new_price.amount_minor)
                .bind(&e.new_price.currency)
                .bind(e.product_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            evt::PRODUCT_DISCONTINUED_V1 => {
                let e = d.decode::<ProductDiscontinuedV1>()?.data;
                sqlx::query(
                    "UPDATE price_replica SET status = 'discontinued', applied_events = applied_events + 1
                     WHERE product_id = $1",
                )
                .bind(e.product_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            other => {
                return Err(HandlerError::Poison(format!(
                    "checkout does not consume {other}"
                )))
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

impl EventHandler for PriceReplica {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.apply(delivery).await.into()
    }
}

async fn upsert(
    tx: &mut Tx,
    id: Uuid,
    sku: &str,
    name: &str,
    price: &Money,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO price_replica (product_id, sku, name, price_minor, currency, status, applied_events)
         VALUES ($1, $2, $3, $4, $5, 'active', 1)
         ON CONFLICT (product_id) DO UPDATE SET sku = $2, name = $3, price_minor = $4, currency = $5,
             applied_events = price_replica.applied_events + 1",
    )
    .bind(id.to_string())
    .bind(sku)
    .bind(name)
    .bind(price.amount_minor)
    .bind(&price.currency)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
