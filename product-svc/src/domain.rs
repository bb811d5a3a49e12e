//! The catalog's rules, with no I/O: validating new products and deciding
//! what an update changes and which events it causes.

use contracts::commands::{CreateProduct, FieldError, ProductRecord, UpdateProduct};
use contracts::money::EUR;
use contracts::product::{ProductCreatedV1, ProductPriceChangedV1, ProductUpdatedV1};
use contracts::Money;
use uuid::Uuid;

pub const MAX_SKU: usize = 64;
pub const MAX_NAME: usize = 200;
pub const MAX_DESCRIPTION: usize = 5_000;
pub const MAX_CATEGORY: usize = 100;
/// The highest price accepted: 1,000,000.00 EUR.
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

pub const ACTIVE: &str = "active";

/// Validates a new product; on success returns it and its creation event.
pub fn create(
    id: Uuid,
    cmd: CreateProduct,
) -> Result<(ProductRecord, ProductCreatedV1), Vec<FieldError>> {
    let mut errors = Vec::new();
    check_sku(&cmd.sku, &mut errors);
    check_text("name", &cmd.name, 1, MAX_NAME, &mut errors);
    check_text(
        "description",
        &cmd.description,
        0,
        MAX_DESCRIPTION,
        &mut errors,
    );
    check_text("category", &cmd.category, 1, MAX_CATEGORY, &mut errors);
    check_price("price", &cmd.price, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let product = ProductRecord {
        id,
        sku: cmd.sku,
        name: cmd.name.trim().to_owned(),
        description: cmd.description.trim().to_owned(),
        category: cmd.category.trim().to_owned(),
        price: cmd.price,
        status: ACTIVE.to_owned(),
    };
    let event = ProductCreatedV1 {
        product_id: id,
        sku: product.sku.clone(),
        name: product.name.clone(),
        description: product.description.clone(),
        category: product.category.clone(),
        price: product.price.clone(),
    };
    Ok((product, event))
}

/// The events an update causes.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateEvents {
    /// None when nothing changed.
    pub updated: Option<ProductUpdatedV1>,
    pub price_changed: Option<ProductPriceChangedV1>,
}

/// Applies an update to `current`; unchanged fields cause no event.
pub fn update(
    current: &ProductRecord,
    cmd: UpdateProduct,
) -> Result<(ProductRecord, UpdateEvents), Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Some(name) = &cmd.name {
        check_text("name", name, 1, MAX_NAME, &mut errors);
    }
    if let Some(description) = &cmd.description {
        check_text("description", description, 0, MAX_DESCRIPTION, &mut errors);
    }
    if let Some(category) = &cmd.category {
        check_text("category", category, 1, MAX_CATEGORY, &mut errors);
    }
    if let Some(price) = &cmd.price {
        check_price("price", price, &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut next = current.clone();
    let mut changed = Vec::new();
    if let Some(name) = cmd.name.map(|s| s.trim().to_owned()) {
        if name != next.name {
            next.name = name;
            changed.push("name".to_owned());
        }
    }
    if let Some(description) = cmd.description.map(|s| s.trim().to_owned()) {
        if description != next.description {
            next.description = description;
            changed.push("description".to_owned());
        }
    }
    if let Some(category) = cmd.category.map(|s| s.trim().to_owned()) {
        if category != next.category {
            next.category = category;
            changed.push("category".to_owned());
        }
    }
    let mut price_changed = None;
    if let Some(price) = cmd.price {
        if price != next.price {
            price_changed = Some(ProductPriceChangedV1 {
                product_id: current.id,
                old_price: next.price.clone(),
                new_price: price.clone(),
            });
            next.price = price;
            changed.push("price".to_owned());
        }
    }
    let updated = (!changed.is_empty()).then(|| ProductUpdatedV1 {
        product_id: next.id,
        sku: next.sku.clone(),
        name: next.name.clone(),
        description: next.description.clone(),
        category: next.category.clone(),
        price: next.price.clone(),
        changed,
    });
    Ok((
        next,
        UpdateEvents {
            updated,
            price_changed,
        },
    ))
}

fn check_sku(sku: &str, errors: &mut Vec<FieldError>) {
    let valid_chars = sku
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if sku.is_empty() || sku.len() > MAX_SKU || !valid_chars {
        errors.push(field(
            "sku",
            format!("must be 1 to {MAX_SKU} characters of ASCII letters (A-Z, a-z), digits, '-', '_' or '.'"),
        ));
    }
}

fn check_text(name: &str, value: &str, min: usize, max: usize, errors: &mut Vec<FieldError>) {
    let len = value.trim().chars().count();
    if len < min || value.chars().count() > max {
        let message = if min > 0 {
            format!("must be 1 to {max} characters and not blank")
        } else {
            format!("must be at most {max} characters")
        };
        errors.push(field(name, message));
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        errors.push(field(name, "must not contain control characters".into()));
    }
}

fn check_price(name: &str, price: &Money, errors: &mut Vec<FieldError>) {
    if price.currency != EUR {
        errors.push(field(&format!("{name}.currency"), format!("must be {EUR}")));
    }
    if !(0..=MAX_PRICE_MINOR).contains(&price.amount_minor) {
        errors.push(field(
            &format!("{name}.amount_minor"),
            format!("must be between 0 and {MAX_PRICE_MINOR}"),
        ));
    }
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

    fn new_product() -> CreateProduct {
        CreateProduct {
            sku: "KB-001".into(),
            name: " Mechanical keyboard ".into(),
            description: "Brown switches".into(),
            category: "computers".into(),
            price: Money::eur(8999),
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_valid_product_is_created_with_trimmed_text() {
        let id = Uuid::now_v7();
        let (product, event) = create(id, new_product()).expect("valid");
        assert_eq!(product.name, "Mechanical keyboard");
        assert_eq!(event.product_id, id);
        assert_eq!(event.price, Money::eur(8999));
        assert_eq!(product.status, ACTIVE);
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let cmd = CreateProduct {
            sku: "has space".into(),
            name: "   ".into(),
            description: "x".repeat(MAX_DESCRIPTION + 1),
            category: String::new(),
            price: Money {
                amount_minor: -1,
                currency: "USD".into(),
            },
        };
        let errors = fields(create(Uuid::now_v7(), cmd).expect_err("invalid"));
        assert_eq!(
            errors,
            [
                "sku",
                "name",
                "description",
                "category",
                "price.currency",
                "price.amount_minor"
            ]
        );
    }

    #[test]
    fn a_price_change_causes_both_updated_and_price_changed() {
        let (product, _) = create(Uuid::now_v7(), new_product()).expect("valid");
        let cmd = UpdateProduct {
            product_id: product.id,
            name: None,
            description: None,
            category: None,
            price: Some(Money::eur(7999)),
        };
        let (next, events) = update(&product, cmd).expect("valid");
        assert_eq!(next.price, Money::eur(7999));
        let updated = events.updated.expect("updated event");
        assert_eq!(updated.changed, ["price"]);
        let changed = events.price_changed.expect("price event");
        assert_eq!(
            (changed.old_price, changed.new_price),
            (Money::eur(8999), Money::eur(7999))
        );
    }

    #[test]
    fn an_update_that_changes_nothing_causes_no_event() {
        let (product, _) = create(Uuid::now_v7(), new_product()).expect("valid");
        let cmd = UpdateProduct {
            product_id: product.id,
            name: Some(product.name.clone()),
            description: None,
            category: None,
            price: Some(product.price.clone()),
        };
        let (_, events) = update(&product, cmd).expect("valid");
        assert_eq!(
            events,
            UpdateEvents {
                updated: None,
                price_changed: None
            }
        );
    }
}
