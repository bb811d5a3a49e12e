//! The short summary `bazaar tail` prints after an event's type: the
//! payload fields an operator looks for, in a fixed order, read from the
//! JSON so that any event version (old or new) gets one.

use serde_json::Value;

/// Fields shown, in this order, when the payload has them.
const FIELDS: [&str; 18] = [
    "order_id",
    "customer_id",
    "customer",
    "product_id",
    "sku",
    "name",
    "quantity",
    "delta",
    "on_hand",
    "available",
    "price",
    "old_price",
    "new_price",
    "net",
    "tax",
    "total",
    "amount",
    "number",
];
/// Longest text value shown.
const MAX_TEXT: usize = 40;

/// `key=value` pairs of `data`, skipping the aggregate id (already shown).
pub fn summarize(data: &Value, aggregate: &str) -> String {
    let mut parts = Vec::new();
    for key in FIELDS {
        let Some(value) = data.get(key) else {
            continue;
        };
        if value.as_str() == Some(aggregate) {
            continue;
        }
        if let Some(text) = render(value) {
            parts.push(format!("{key}={text}"));
        }
    }
    if let Some(lines) = data.get("lines").and_then(Value::as_array) {
        parts.push(format!("lines={}", lines.len()));
    }
    if let Some(reason) = data.get("reason").and_then(render) {
        parts.push(format!("reason={reason}"));
    }
    parts.join(" ")
}

fn render(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(shorten(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(map) => match (map.get("amount_minor"), map.get("currency")) {
            (Some(minor), Some(currency)) => Some(money(minor.as_i64()?, currency.as_str()?)),
            // An entity (`customer: {id, …}`) shows as its id.
            _ => map.get("id")?.as_str().map(shorten),
        },
        _ => None,
    }
}

fn shorten(text: &str) -> String {
    let text = if text.chars().count() > MAX_TEXT {
        let cut: String = text.chars().take(MAX_TEXT - 1).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    };
    if text.contains(' ') {
        format!("{text:?}")
    } else {
        text
    }
}

/// `1999, "EUR"` → `19.99 EUR` (two decimals, as every currency we sell in).
fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_summary_shows_known_fields_money_and_line_counts() {
        let data = json!({
            "order_id": "o-1",
            "customer_id": "alice",
            "net": {"amount_minor": 5998, "currency": "EUR"},
            "lines": [{}, {}],
            "shipping_address": {"city": "Berlin"}
        });
        assert_eq!(
            summarize(&data, "o-1"),
            "customer_id=alice net=59.98 EUR lines=2"
        );
    }

    #[test]
    fn a_nested_entity_shows_as_its_id() {
        let data = json!({"customer": {"id": "bob", "email": "bob@example.com"}});
        assert_eq!(summarize(&data, "o-2"), "customer=bob");
    }

    #[test]
    fn long_or_spaced_text_is_shortened_and_quoted() {
        let data = json!({"name": "A very long product name that goes on and on and on"});
        let text = summarize(&data, "x");
        assert!(text.starts_with("name=\"A very long"), "{text}");
        assert!(text.contains('…'), "{text}");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
    }
}
