//! Commands → domain → store, each exactly once (platform::command).

use contracts::commands::{
    CommandError, CreateProduct, ErrorKind, ProductRecord, Reply, Request, UpdateProduct,
};
use contracts::subjects::PRODUCT_SVC;
use contracts::{Envelope, EventContext};
use platform::command::{self, is_unique_violation, Decided, Refusal};
use platform::outbox::{self, Outbox};
use platform::Db;
use uuid::Uuid;

use crate::{domain, store};

#[derive(Clone)]
pub struct Handlers {
    db: Db,
    outbox: Outbox,
}

impl Handlers {
    pub fn new(db: Db, outbox: Outbox) -> Self {
        Handlers { db, outbox }
    }

    pub async fn create(&self, req: Request<CreateProduct>) -> Reply<ProductRecord> {
        let ctx = EventContext::root(req.command_id.clone(), req.traceparent.clone());
        let asked = command::Asked::new("create-product", &req);
        let body = req.body;
        command::execute(&self.db, &self.outbox, asked, move |tx| {
            Box::pin(async move {
                let (product, created) =
                    domain::create(Uuid::now_v7(), body).map_err(CommandError::invalid)?;
                if store::sku_taken(tx, &product.sku).await? {
                    return Err(sku_conflict(&product.sku));
                }
                if let Err(e) = store::insert(tx, &product).await {
                    return Err(if is_unique_violation(&e) {
                        sku_conflict(&product.sku)
                    } else {
                        e.into()
                    });
                }
                let envelope = Envelope::new(PRODUCT_SVC, created, &ctx);
                outbox::push(tx, &envelope).await?;
                Ok(Decided {
                    value: product,
                    events: vec![envelope.id],
                })
            })
        })
        .await
    }

    pub async fn update(&self, req: Request<UpdateProduct>) -> Reply<ProductRecord> {
        let ctx = EventContext::root(req.command_id.clone(), req.traceparent.clone());
        let asked = command::Asked::new("update-product", &req);
        let body = req.body;
        command::execute(&self.db, &self.outbox, asked, move |tx| {
            Box::pin(async move {
                let Some(current) = store::find(tx, body.product_id).await? else {
                    return Err(CommandError::new(
                        ErrorKind::NotFound,
                        format!("no product {}", body.product_id),
                    )
                    .into());
                };
                let (next, events) =
                    domain::update(&current, body).map_err(CommandError::invalid)?;
                let mut published = Vec::new();
                if let Some(updated) = events.updated {
                    store::update(tx, &next).await?;
                    let envelope = Envelope::new(PRODUCT_SVC, updated, &ctx);
                    outbox::push(tx, &envelope).await?;
                    published.push(envelope.id);
                }
                if let Some(price_changed) = events.price_changed {
                    let envelope = Envelope::new(PRODUCT_SVC, price_changed, &ctx);
                    outbox::push(tx, &envelope).await?;
                    published.push(envelope.id);
                }
                Ok(Decided {
                    value: next,
                    events: published,
                })
            })
        })
        .await
    }
}

fn sku_conflict(sku: &str) -> Refusal {
    Refusal::Rejected(CommandError::new(
        ErrorKind::Conflict,
        format!("a product with SKU {sku:?} already exists"),
    ))
}
