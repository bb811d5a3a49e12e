//! The compatibility checker itself, on small schemas shaped like the
//! generated ones: each kind of careless change is caught at its field
//! path, and a new optional field is not.

use serde_json::{json, Value};

use crate::compat::{compare, Rule};

/// An envelope whose `data` is an order with lines, a status and a note.
fn base() -> Value {
    json!({
        "$defs": {
            "Order": {
                "properties": {
                    "order_id": { "format": "uuid", "type": "string" },
                    "lines": { "items": { "$ref": "#/$defs/Line" }, "type": "array" },
                    "status": { "enum": ["pending", "confirmed"], "type": "string" },
                    "note": { "type": ["string", "null"] }
                },
                "required": ["order_id", "lines", "status"],
                "type": "object"
            },
            "Line": {
                "properties": {
                    "quantity": { "format": "int64", "type": "integer" },
                    "sku": { "type": "string" }
                },
                "required": ["quantity", "sku"],
                "type": "object"
            }
        },
        "properties": { "data": { "$ref": "#/$defs/Order" } },
        "required": ["data"],
        "type": "object"
    })
}

/// The rules broken by `change` applied to [`base`], with their paths.
fn check(change: impl FnOnce(&mut Value)) -> Vec<(Rule, String)> {
    let mut new = base();
    change(&mut new);
    compare(&base(), &new)
        .breaking
        .into_iter()
        .map(|b| (b.rule, b.path))
        .collect()
}

fn at<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
    doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}"))
}

const ORDER: &str = "/$defs/Order";
const LINE: &str = "/$defs/Line";

fn remove(doc: &mut Value, pointer: &str, key: &str) -> Value {
    at(doc, pointer)
        .as_object_mut()
        .and_then(|o| o.remove(key))
        .unwrap_or_else(|| panic!("{pointer}/{key}"))
}

fn require(doc: &mut Value, pointer: &str, field: &str) {
    at(doc, &format!("{pointer}/required"))
        .as_array_mut()
        .expect("required is a list")
        .push(json!(field));
}

#[test]
fn an_identical_schema_has_no_changes() {
    let report = compare(&base(), &base());
    assert!(report.breaking.is_empty() && report.additive.is_empty());
}

#[test]
fn a_new_optional_field_is_additive() {
    let mut new = base();
    at(&mut new, &format!("{LINE}/properties"))["coupon"] = json!({ "type": ["string", "null"] });

    let report = compare(&base(), &new);

    assert!(report.breaking.is_empty(), "{:?}", report.breaking);
    assert_eq!(
        report.additive,
        ["`data.lines[].coupon`: new optional field"]
    );
}

#[test]
fn a_changed_description_is_additive() {
    let mut new = base();
    at(&mut new, ORDER)["description"] = json!("An order.");

    let report = compare(&base(), &new);

    assert!(report.breaking.is_empty(), "{:?}", report.breaking);
    assert_eq!(report.additive, ["`data`: description changed"]);
}

#[test]
fn a_removed_field_breaks() {
    let broken = check(|d| {
        remove(d, &format!("{LINE}/properties"), "sku");
        at(d, &format!("{LINE}/required"))
            .as_array_mut()
            .expect("a list")
            .retain(|f| f != "sku");
    });
    assert_eq!(broken, [(Rule::RemovedField, "data.lines[].sku".into())]);
}

#[test]
fn a_renamed_field_breaks_as_a_removal() {
    let broken = check(|d| {
        let sku = remove(d, &format!("{LINE}/properties"), "sku");
        at(d, &format!("{LINE}/properties"))["stock_unit"] = sku;
    });
    assert_eq!(broken, [(Rule::RemovedField, "data.lines[].sku".into())]);
}

#[test]
fn a_changed_type_breaks() {
    let broken = check(|d| {
        at(d, &format!("{LINE}/properties/quantity"))["type"] = json!("string");
    });
    assert!(broken.contains(&(Rule::ChangedType, "data.lines[].quantity".into())));
}

#[test]
fn a_changed_format_breaks() {
    let broken = check(|d| {
        at(d, &format!("{LINE}/properties/quantity"))["format"] = json!("int32");
    });
    assert_eq!(
        broken,
        [(Rule::ChangedFormat, "data.lines[].quantity".into())]
    );
}

#[test]
fn a_newly_required_field_breaks() {
    let broken = check(|d| require(d, ORDER, "note"));
    assert!(broken.contains(&(Rule::NewlyRequired, "data.note".into())));
}

#[test]
fn a_new_required_field_breaks() {
    let broken = check(|d| {
        at(d, &format!("{ORDER}/properties"))["coupon"] = json!({ "type": "string" });
        require(d, ORDER, "coupon");
    });
    assert_eq!(broken, [(Rule::NewlyRequired, "data.coupon".into())]);
}

#[test]
fn a_field_made_optional_breaks() {
    let broken = check(|d| {
        at(d, &format!("{ORDER}/required"))
            .as_array_mut()
            .expect("a list")
            .retain(|f| f != "status");
    });
    assert_eq!(broken, [(Rule::MadeOptional, "data.status".into())]);
}

#[test]
fn a_narrowed_enum_breaks() {
    let broken = check(|d| {
        at(d, &format!("{ORDER}/properties/status"))["enum"] = json!(["pending"]);
    });
    assert_eq!(broken, [(Rule::NarrowedEnum, "data.status".into())]);
}

#[test]
fn a_widened_enum_breaks_closed_set_readers() {
    let broken = check(|d| {
        at(d, &format!("{ORDER}/properties/status"))["enum"] =
            json!(["pending", "confirmed", "lost"]);
    });
    assert_eq!(broken, [(Rule::WidenedEnum, "data.status".into())]);
}

#[test]
fn a_removed_definition_breaks_even_when_the_shape_survives() {
    let broken = check(|d| {
        let line = remove(d, "/$defs", "Line");
        at(d, "/$defs")["OrderLine"] = line;
        at(d, &format!("{ORDER}/properties/lines/items"))["$ref"] = json!("#/$defs/OrderLine");
    });
    assert_eq!(broken, [(Rule::RemovedDefinition, "$defs/Line".into())]);
}

#[test]
fn a_nested_object_inlined_instead_of_referenced_is_compared_by_shape() {
    let mut new = base();
    let line = remove(&mut new, "/$defs", "Line");
    at(&mut new, &format!("{ORDER}/properties/lines"))["items"] = line;

    let report = compare(&base(), &new);

    // Same shape on the wire; only the definition's name is gone.
    let rules: Vec<Rule> = report.breaking.iter().map(|b| b.rule).collect();
    assert_eq!(rules, [Rule::RemovedDefinition]);
}

#[test]
fn a_break_deep_in_a_shared_definition_is_reported_once_at_its_field_path() {
    let broken = check(|d| {
        at(d, &format!("{LINE}/properties/sku"))["type"] = json!("integer");
    });
    assert_eq!(broken, [(Rule::ChangedType, "data.lines[].sku".into())]);
}
