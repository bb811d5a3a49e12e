//! `cmd.checkout.place-order` and `cmd.checkout.cancel-order`.

use chrono::Utc;
use contracts::checkout::{BasketChangedV1, CustomerV2, OrderPlacedV2, PaymentMethodV2, PaymentV2};
use contracts::commands::{
    CancelOrder, CommandError, ErrorKind, FieldError, OrderItem, OrderRecord, PlaceOrder, Reply,
    Request,
};
use contracts::EventContext;
use platform::command::{self, Decided, Refusal};
use platform::Tx;
use uuid::Uuid;

use super::{apply, push, Applied, Handlers};
use crate::domain::{self, Input, SagaState};
use crate::store::{self, OrderRow};

impl Handlers {
    pub async fn place_order(&self, req: Request<PlaceOrder>) -> Reply<OrderRecord> {
        let ctx = EventContext::root(req.command_id.clone(), req.traceparent.clone());
        let asked = command::Asked::new("place-order", &req);
        let customer = req.actor.id.clone();
        let body = req.body;
        let timeout =
            chrono::Duration::from_std(self.order_timeout).unwrap_or(chrono::Duration::seconds(30));
        command::execute(&self.db, &self.outbox, asked, move |tx| {
            Box::pin(async move {
                check_body(&body).map_err(CommandError::invalid)?;
                let from_basket = body.items.is_none();
                let items = match body.items {
                    Some(items) => items,
                    None => basket_items(tx, &customer).await?,
                };
                domain::check_items(&items).map_err(CommandError::invalid)?;
                let ids: Vec<Uuid> = items.iter().map(|item| item.product_id).collect();
                let known = store::priced_products(tx, &ids).await?;
                let (lines, net) = domain::price_lines(&items, |id| {
                    known.iter().find(|p| p.product_id == id).cloned()
                })
                .map_err(CommandError::invalid)?;
                let now = Utc::now();
                let order = OrderRow {
                    order_id: Uuid::now_v7(),
                    customer_id: customer.clone(),
                    saga: SagaState::placed(),
                    lines: lines.clone(),
                    net: net.clone(),
                    created_at: now,
                    deadline_at: now + timeout,
                };
                store::insert_order(tx, &order).await?;
                let mut events = Vec::new();
                if from_basket {
                    store::clear_basket(tx, &customer).await?;
                    let emptied = BasketChangedV1 {
                        customer_id: customer.clone(),
                        lines: Vec::new(),
                    };
                    events.push(push(tx, emptied, &ctx).await?);
                }
                let placed = OrderPlacedV2 {
                    order_id: order.order_id,
                    customer: CustomerV2 {
                        id: customer,
                        email: body.contact_email,
                    },
                    lines,
                    net,
                    shipping_address: body.shipping_address,
                    // Cards are the only method the shop takes so far.
                    payment: PaymentV2 {
                        method: PaymentMethodV2::Card,
                        token: body.payment_method,
                    },
                    placed_at: now,
                };
                events.push(push(tx, placed, &ctx).await?);
                Ok(Decided {
                    value: record(&order),
                    events,
                })
            })
        })
        .await
    }

    pub async fn cancel_order(&self, req: Request<CancelOrder>) -> Reply<OrderRecord> {
        let ctx = EventContext::root(req.command_id.clone(), req.traceparent.clone());
        let asked = command::Asked::new("cancel-order", &req);
        let customer = req.actor.id.clone();
        let order_id = req.body.order_id;
        command::execute(&self.db, &self.outbox, asked, move |tx| {
            Box::pin(async move {
                let owned = store::load_order(tx, order_id)
                    .await?
                    .is_some_and(|o| o.customer_id == customer);
                if !owned {
                    return Err(not_found());
                }
                match apply(tx, order_id, Input::CancelRequested, &ctx).await? {
                    Ok(Applied::Done { event, order }) => Ok(Decided {
                        value: record(&order),
                        events: event.into_iter().collect(),
                    }),
                    Ok(Applied::Unknown) => Err(not_found()),
                    Err(refusal) => {
                        Err(CommandError::new(ErrorKind::Conflict, refusal.to_string()).into())
                    }
                }
            })
        })
        .await
    }
}

/// Every invalid field of the order's body at once, so the customer can
/// fix them in one go.
fn check_body(body: &PlaceOrder) -> Result<(), Vec<FieldError>> {
    let address = domain::check_address_and_payment(&body.shipping_address, &body.payment_method);
    let contact = domain::check_contact_email(body.contact_email.as_deref());
    match (address, contact) {
        (Ok(()), Ok(())) => Ok(()),
        (a, c) => Err([a.err(), c.err()].into_iter().flatten().flatten().collect()),
    }
}

async fn basket_items(tx: &mut Tx, customer: &str) -> Result<Vec<OrderItem>, Refusal> {
    let lines = store::basket(tx, customer).await?;
    if lines.is_empty() {
        return Err(CommandError::invalid(vec![FieldError {
            field: "items".into(),
            message: "the basket is empty; add items or give them in the order".into(),
        }])
        .into());
    }
    Ok(lines
        .into_iter()
        .map(|(product_id, quantity)| OrderItem {
            product_id,
            quantity,
        })
        .collect())
}

fn not_found() -> Refusal {
    Refusal::Rejected(CommandError::new(ErrorKind::NotFound, "no such order"))
}

pub(super) fn record(order: &OrderRow) -> OrderRecord {
    OrderRecord {
        order_id: order.order_id,
        customer_id: order.customer_id.clone(),
        status: order.saga.status.as_str().to_owned(),
        lines: order.lines.clone(),
        net: order.net.clone(),
        reason: order.saga.reason.clone(),
        created_at: order.created_at,
    }
}
