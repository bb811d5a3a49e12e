//! Validating and pricing baskets and orders.

use std::collections::BTreeMap;

use contracts::checkout::{AddressV1, OrderLineV1};
use contracts::commands::{FieldError, OrderItem};
use contracts::Money;
use uuid::Uuid;

use super::countries;

/// Most distinct products in a basket or an order.
pub const MAX_LINES: usize = 50;
/// Most units of one product in a basket line or an order line.
pub const MAX_QUANTITY: i64 = 100;

/// What checkout's replica knows of a product.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedProduct {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub active: bool,
}

/// Checks a basket line's quantity (0 removes the line).
pub fn check_basket_quantity(quantity: i64) -> Result<(), Vec<FieldError>> {
    if (0..=MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(vec![field(
            "quantity",
            format!("must be between 0 and {MAX_QUANTITY}"),
        )])
    }
}

/// Checks the requested lines: 1..=MAX_LINES, each product once, quantities in range.
pub fn check_items(items: &[OrderItem]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if items.is_empty() || items.len() > MAX_LINES {
        errors.push(field("items", format!("must hold 1 to {MAX_LINES} lines")));
    }
    let mut seen = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(field(
                &format!("items[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        if let Some(first) = seen.insert(item.product_id, i) {
            errors.push(field(
                &format!("items[{i}].product_id"),
                format!("repeats items[{first}]; give each product once"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks the shipping address and payment method.
pub fn check_address_and_payment(
    address: &AddressV1,
    payment_method: &str,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let text = |name: &str, value: &str, max: usize, errors: &mut Vec<FieldError>| {
        let len = value.trim().chars().count();
        if len == 0 || value.chars().count() > max || value.chars().any(char::is_control) {
            errors.push(field(
                &format!("shipping_address.{name}"),
                format!("must be 1 to {max} characters, not blank, without control characters"),
            ));
        }
    };
    text("name", &address.name, 100, &mut errors);
    text("line1", &address.line1, 200, &mut errors);
    text("city", &address.city, 100, &mut errors);
    text("postal_code", &address.postal_code, 20, &mut errors);
    if !countries::is_iso_alpha2(&address.country) {
        errors.push(field(
            "shipping_address.country",
            "must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE".into(),
        ));
    }
    let token_ok = (1..=64).contains(&payment_method.len())
        && payment_method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !token_ok {
        errors.push(field(
            "payment_method",
            "must be a card token of 1 to 64 letters, digits, '_' or '-', e.g. tok_visa".into(),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Prices each item from the replica; unknown or discontinued products are refused.
pub fn price_lines(
    items: &[OrderItem],
    lookup: impl Fn(Uuid) -> Option<PricedProduct>,
) -> Result<(Vec<OrderLineV1>, Money), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match lookup(item.product_id) {
            None => errors.push(field(
                &format!("items[{i}].product_id"),
                "no such product".into(),
            )),
            Some(p) if !p.active => errors.push(field(
                &format!("items[{i}].product_id"),
                "this product is no longer sold".into(),
            )),
            Some(p) => match p.price.checked_mul(item.quantity) {
                Some(line_total) => lines.push(OrderLineV1 {
                    product_id: p.product_id,
                    sku: p.sku,
                    name: p.name,
                    quantity: item.quantity,
                    unit_price: p.price,
                    line_total,
                }),
                None => errors.push(field(
                    &format!("items[{i}].quantity"),
                    "the amount is too large".into(),
                )),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let currency = lines
        .first()
        .map(|l| l.unit_price.currency.clone())
        .unwrap_or_else(|| "EUR".into());
    let mut net = Money::zero(&currency);
    for line in &lines {
        net = net.checked_add(&line.line_total).ok_or_else(|| {
            vec![field(
                "items",
                "lines must share one currency and a sane total".into(),
            )]
        })?;
    }
    Ok((lines, net))
}

fn field(name: &str, message: String) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: Uuid, price: i64, active: bool) -> PricedProduct {
        PricedProduct {
            product_id: id,
            sku: "SKU".into(),
            name: "Thing".into(),
            price: Money::eur(price),
            active,
        }
    }

    #[test]
    fn lines_are_priced_from_the_replica_and_summed() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let items = [
            OrderItem {
                product_id: a,
                quantity: 2,
            },
            OrderItem {
                product_id: b,
                quantity: 1,
            },
        ];
        let (lines, net) = price_lines(&items, |id| {
            Some(product(id, if id == a { 1000 } else { 250 }, true))
        })
        .expect("priced");
        assert_eq!(lines[0].line_total, Money::eur(2000));
        assert_eq!(net, Money::eur(2250));
    }

    #[test]
    fn unknown_and_discontinued_products_are_refused_by_position() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let items = [
            OrderItem {
                product_id: a,
                quantity: 1,
            },
            OrderItem {
                product_id: b,
                quantity: 1,
            },
        ];
        let errors = price_lines(&items, |id| (id == b).then(|| product(id, 100, false)))
            .expect_err("refused");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[0].product_id", "items[1].product_id"]);
    }

    #[test]
    fn items_must_be_unique_and_in_range() {
        let a = Uuid::now_v7();
        let errors = check_items(&[
            OrderItem {
                product_id: a,
                quantity: 0,
            },
            OrderItem {
                product_id: a,
                quantity: 101,
            },
        ])
        .expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "items[0].quantity",
                "items[1].quantity",
                "items[1].product_id"
            ]
        );
        assert!(check_items(&[]).is_err());
    }

    #[test]
    fn addresses_need_an_iso_country_and_a_card_token() {
        let address = AddressV1 {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        };
        assert!(check_address_and_payment(&address, "tok_visa").is_ok());
        let bad = AddressV1 {
            country: "Germany".into(),
            name: " ".into(),
            ..address
        };
        let errors = check_address_and_payment(&bad, "tok visa!").expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "shipping_address.name",
                "shipping_address.country",
                "payment_method"
            ]
        );
    }
}
