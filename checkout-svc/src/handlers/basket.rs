//! `cmd.checkout.put-basket-item`

use contracts::checkout::{BasketChangedV1, BasketLineV1};
use contracts::commands::{
    Basket, BasketLine, CommandError, ErrorKind, FieldError, PutBasketItem, Reply, Request,
};
use contracts::{EventContext, Money};
use platform::command::{self, Decided, Refusal};
use platform::Tx;

use super::{push, Handlers};
use crate::domain::{self, MAX_LINES};
use crate::store;

impl Handlers {
    pub async fn put_basket_item(&self, req: Request<PutBasketItem>) -> Reply<Basket> {
        let ctx = EventContext::root(req.command_id.clone(), req.traceparent.clone());
        let asked = command::Asked::new("put-basket-item", &req);
        let customer = req.actor.id.clone();
        let item = req.body;
        command::execute(&self.db, &self.outbox, asked, move |tx| {
            Box::pin(async move {
                domain::check_basket_quantity(item.quantity).map_err(CommandError::invalid)?;
                if item.quantity > 0 {
                    match store::priced_product(tx, item.product_id).await? {
                        None => {
                            return Err(CommandError::new(
                                ErrorKind::NotFound,
                                format!("no product {}", item.product_id),
                            )
                            .into())
                        }
                        Some(p) if !p.active => {
                            return Err(CommandError::invalid(vec![FieldError {
                                field: "product_id".into(),
                                message: "this product is no longer sold".into(),
                            }])
                            .into())
                        }
                        Some(_) => {}
                    }
                }
                store::set_basket_line(tx, &customer, item.product_id, item.quantity).await?;
                let lines = store::basket(tx, &customer).await?;
                if lines.len() > MAX_LINES {
                    return Err(CommandError::invalid(vec![FieldError {
                        field: "product_id".into(),
                        message: format!("a basket holds at most {MAX_LINES} products"),
                    }])
                    .into());
                }
                let basket = priced_basket(tx, &customer, &lines).await?;
                let event = BasketChangedV1 {
                    customer_id: customer.clone(),
                    lines: basket
                        .lines
                        .iter()
                        .map(|l| BasketLineV1 {
                            product_id: l.product_id,
                            quantity: l.quantity,
                            unit_price: l.unit_price.clone(),
                        })
                        .collect(),
                };
                let id = push(tx, event, &ctx).await?;
                Ok(Decided {
                    value: basket,
                    events: vec![id],
                })
            })
        })
        .await
    }
}

/// Prices basket lines from the replica (lines whose product vanished are skipped).
pub(super) async fn priced_basket(
    tx: &mut Tx,
    customer: &str,
    lines: &[(uuid::Uuid, i64)],
) -> Result<Basket, Refusal> {
    let mut priced = Vec::with_capacity(lines.len());
    let mut total = Money::eur(0);
    for (product_id, quantity) in lines {
        let Some(p) = store::priced_product(tx, *product_id).await? else {
            continue;
        };
        let line_total = p.price.checked_mul(*quantity).ok_or_else(overflow)?;
        total = total.checked_add(&line_total).ok_or_else(overflow)?;
        priced.push(BasketLine {
            product_id: *product_id,
            name: p.name,
            quantity: *quantity,
            unit_price: p.price,
            line_total,
        });
    }
    Ok(Basket {
        customer_id: customer.to_owned(),
        lines: priced,
        total,
    })
}

fn overflow() -> Refusal {
    Refusal::Rejected(CommandError::new(
        ErrorKind::Invalid,
        "the basket total is too large",
    ))
}
