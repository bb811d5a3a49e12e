//! The catalog view written a batch at a time, for replays: a statement is a
//! round trip to the database (on SQLite, to its worker thread), which per
//! event would cap a replay far below the rate the stream can be read at.
//!
//! Each product's events in the batch are folded, in stream order, into
//! what they do together, then written in two statements per chunk of
//! products. The result is exactly that of `products::apply` per event:
//! events before the batch's first `created`/`updated` of a product change
//! it only if it exists already (like the per-event `UPDATE`s), the rest
//! follow an upsert that leaves an existing row's status alone.

use std::collections::HashMap;

use contracts::product::{
    ProductCreatedV1, ProductDiscontinuedV1, ProductPriceChangedV1, ProductUpdatedV1,
};
use contracts::subjects::evt;
use contracts::Money;
use platform::delivery::{Delivery, HandlerError};
use platform::Tx;
use uuid::Uuid;

/// Products per statement (9 parameters each, far below both backends' limits).
const CHUNK: usize = 400;

/// What one product's events in the batch do, together.
#[derive(Default)]
struct Patch {
    /// Before the batch's first upsert: changes to an existing row only.
    before: Conditional,
    /// From the first upsert on: the row as it ends up.
    upsert: Option<Upsert>,
}

#[derive(Default)]
struct Conditional {
    touched: bool,
    price: Option<Money>,
    discontinued: bool,
    seq: i64,
}

struct Upsert {
    sku: String,
    name: String,
    description: String,
    category: String,
    price: Money,
    /// Discontinued after the upsert (an existing row keeps its status otherwise).
    discontinued: bool,
    seq: i64,
}

/// Applies product events in stream order, as `products::apply` would one
/// by one. Subjects it does not project are skipped.
pub async fn apply_batch(tx: &mut Tx, batch: &[Delivery]) -> Result<(), HandlerError> {
    let mut order: Vec<Uuid> = Vec::new();
    let mut patches: HashMap<Uuid, Patch> = HashMap::new();
    for d in batch {
        let seq = i64::try_from(d.stream_seq).unwrap_or(i64::MAX);
        let (id, change) = match d.subject.as_str() {
            evt::PRODUCT_CREATED_V1 => {
                let e = d.decode::<ProductCreatedV1>()?.data;
                let change = Change::Upsert(e.sku, e.name, e.description, e.category, e.price);
                (e.product_id, change)
            }
            evt::PRODUCT_UPDATED_V1 => {
                let e = d.decode::<ProductUpdatedV1>()?.data;
                let change = Change::Upsert(e.sku, e.name, e.description, e.category, e.price);
                (e.product_id, change)
            }
            evt::PRODUCT_PRICE_CHANGED_V1 => {
                let e = d.decode::<ProductPriceChangedV1>()?.data;
                (e.product_id, Change::Price(e.new_price))
            }
            evt::PRODUCT_DISCONTINUED_V1 => {
                let e = d.decode::<ProductDiscontinuedV1>()?.data;
                (e.product_id, Change::Discontinued)
            }
            _ => continue,
        };
        let patch = patches.entry(id).or_insert_with(|| {
            order.push(id);
            Patch::default()
        });
        patch.fold(change, seq);
    }
    let conditional: Vec<(Uuid, &Conditional)> = order
        .iter()
        .filter_map(|id| patches.get(id).map(|p| (*id, &p.before)))
        .filter(|(_, c)| c.touched)
        .collect();
    for chunk in conditional.chunks(CHUNK) {
        update_existing(tx, chunk).await?;
    }
    let upserts: Vec<(Uuid, &Upsert)> = order
        .iter()
        .filter_map(|id| {
            patches
                .get(id)
                .and_then(|p| p.upsert.as_ref().map(|u| (*id, u)))
        })
        .collect();
    for chunk in upserts.chunks(CHUNK) {
        upsert(tx, chunk).await?;
    }
    Ok(())
}

enum Change {
    Upsert(String, String, String, String, Money),
    Price(Money),
    Discontinued,
}

impl Patch {
    fn fold(&mut self, change: Change, seq: i64) {
        match (change, &mut self.upsert) {
            (Change::Upsert(sku, name, description, category, price), upsert) => {
                let discontinued = upsert.as_ref().is_some_and(|u| u.discontinued);
                *upsert = Some(Upsert {
                    sku,
                    name,
                    description,
                    category,
                    price,
                    discontinued,
                    seq,
                });
            }
            (Change::Price(price), Some(u)) => {
                u.price = price;
                u.seq = seq;
            }
            (Change::Discontinued, Some(u)) => {
                u.discontinued = true;
                u.seq = seq;
            }
            (Change::Price(price), None) => {
                self.before.touched = true;
                self.before.price = Some(price);
                self.before.seq = seq;
            }
            (Change::Discontinued, None) => {
                self.before.touched = true;
                self.before.discontinued = true;
                self.before.seq = seq;
            }
        }
    }
}

/// Changes to rows that exist, as the per-event `UPDATE`s make them. An
/// upsert of rows selected from the existing ones (`UPDATE … FROM` would
/// let SQLite scan the whole view for each changed row).
async fn update_existing(tx: &mut Tx, chunk: &[(Uuid, &Conditional)]) -> Result<(), sqlx::Error> {
    let rows = platform::db::values(tx, chunk.len(), 5);
    // `WHERE true` tells SQLite's parser that `ON CONFLICT` is not the join's.
    let sql = format!(
        "WITH v (id, price_minor, currency, discontinued, seq) AS (VALUES {rows})
         INSERT INTO product_view (id, sku, name, description, category, price_minor, currency, status, updated_seq)
         SELECT p.id, p.sku, p.name, p.description, p.category,
             COALESCE(v.price_minor, p.price_minor), COALESCE(v.currency, p.currency),
             CASE WHEN v.discontinued = 1 THEN 'discontinued' ELSE p.status END, v.seq
         FROM v JOIN product_view p ON p.id = v.id WHERE true
         ON CONFLICT (id) DO UPDATE SET price_minor = excluded.price_minor,
             currency = excluded.currency, status = excluded.status,
             updated_seq = excluded.updated_seq"
    );
    let mut query = sqlx::query(&sql);
    for (id, c) in chunk {
        query = query
            .bind(id.to_string())
            .bind(c.price.as_ref().map(|p| p.amount_minor))
            .bind(c.price.as_ref().map(|p| p.currency.clone()))
            .bind(i64::from(c.discontinued))
            .bind(c.seq);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The rows as they end up, inserted or updated; an existing row's status
/// changes only when the batch discontinued it after its upsert.
async fn upsert(tx: &mut Tx, chunk: &[(Uuid, &Upsert)]) -> Result<(), sqlx::Error> {
    let rows = platform::db::values(tx, chunk.len(), 9);
    let sql = format!(
        "INSERT INTO product_view (id, sku, name, description, category, price_minor, currency, status, updated_seq)
         VALUES {rows}
         ON CONFLICT (id) DO UPDATE SET sku = excluded.sku, name = excluded.name,
             description = excluded.description, category = excluded.category,
             price_minor = excluded.price_minor, currency = excluded.currency,
             status = CASE WHEN excluded.status = 'discontinued' THEN 'discontinued'
                 ELSE product_view.status END,
             updated_seq = excluded.updated_seq"
    );
    let mut query = sqlx::query(&sql);
    for (id, u) in chunk {
        query = query
            .bind(id.to_string())
            .bind(u.sku.clone())
            .bind(u.name.clone())
            .bind(u.description.clone())
            .bind(u.category.clone())
            .bind(u.price.amount_minor)
            .bind(u.price.currency.clone())
            .bind(if u.discontinued {
                "discontinued"
            } else {
                "active"
            })
            .bind(u.seq);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
