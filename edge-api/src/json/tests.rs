use super::*;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Address {
    city: String,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Body {
    sku: String,
    #[serde(deserialize_with = "object")]
    address: Address,
    #[serde(default, deserialize_with = "optional_object")]
    billing: Option<Address>,
    #[serde(default, deserialize_with = "optional_objects")]
    stops: Option<Vec<Address>>,
    #[serde(default, deserialize_with = "optional_present")]
    note: Option<String>,
}

fn fields(error: ApiError) -> Vec<String> {
    match error {
        ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("not a validation error: {other:?}"),
    }
}

#[test]
fn an_optional_object_or_list_may_be_left_out_but_not_null() {
    let out = r#"{"sku": "A", "address": {"city": "X"}}"#;
    let body = decode::<Body>(out.as_bytes()).expect("left out");
    assert!(body.billing.is_none() && body.stops.is_none());
    let given = r#"{"sku": "A", "address": {"city": "X"}, "stops": [], "billing": {"city": "Y"}}"#;
    let body = decode::<Body>(given.as_bytes()).expect("given");
    assert!(body.billing.is_some() && body.stops.is_some_and(|s| s.is_empty()));
    let nulls =
        r#"{"sku": "A", "address": {"city": "X"}, "billing": null, "stops": null, "note": null}"#;
    assert_eq!(
        fields(decode::<Body>(nulls.as_bytes()).expect_err("nulls")),
        ["billing", "note", "stops"]
    );
}

#[test]
fn a_key_given_twice_is_named() {
    let twice = r#"{"sku": "A", "sku": "B", "address": {"city": "X"}}"#;
    assert_eq!(
        fields(decode::<Body>(twice.as_bytes()).expect_err("sku twice")),
        ["sku"]
    );
    let nested = r#"{"sku": "A", "address": {"city": "X", "city": "Y"}}"#;
    assert_eq!(
        fields(decode::<Body>(nested.as_bytes()).expect_err("city twice")),
        ["address.city"]
    );
}

#[test]
fn type_errors_say_what_json_to_send() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        quantity: i64,
        name: String,
        id: uuid::Uuid,
    }
    let message = |body: &str| match decode::<Line>(body.as_bytes()) {
        Err(ApiError::Validation(errors)) => errors[0].message.clone(),
        other => panic!("{body}: {other:?}"),
    };
    assert_eq!(
        message(r#"{"quantity": 1.5}"#),
        "must be a whole number, not floating point `1.5`"
    );
    assert_eq!(
        message(r#"{"quantity": 1, "name": 7}"#),
        "must be a string, not integer `7`"
    );
    assert!(message(r#"{"quantity": 1, "name": "x", "id": "nope"}"#).starts_with("must be a UUID"));
}

#[test]
fn every_missing_or_ill_typed_field_is_named_not_only_the_first() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
        quantity: i64,
        id: uuid::Uuid,
        #[serde(deserialize_with = "object")]
        address: Address,
        #[serde(default)]
        note: Option<String>,
    }
    let all = |body: &str| match decode::<Strict>(body.as_bytes()) {
        Err(ApiError::Validation(errors)) => errors
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>(),
        other => panic!("{body}: {other:?}"),
    };
    let fields_of = |body: &str| -> Vec<String> {
        all(body)
            .into_iter()
            .map(|e| e.split(": ").next().unwrap_or_default().to_owned())
            .collect()
    };

    // Missing ones in the order of the struct; ill-typed ones as
    // serde meets them (the first in the body's order, the rest in
    // key order).
    assert_eq!(fields_of("{}"), ["name", "quantity", "id", "address"]);
    assert_eq!(
        all(r#"{"name": 1, "quantity": "2", "id": "x", "address": [], "note": 5}"#),
        [
            "name: must be a string, not integer `1`",
            "address: must be a JSON object, not a list",
            "id: must be a UUID (e.g. 01890f5e-5c4b-7cc4-9a3e-1f2b3c4d5e6f)",
            "note: must be a string, not integer `5`",
            "quantity: must be a whole number, not string \"2\"",
        ]
    );
    // Inside an object the client sent, its own fields; an unknown
    // field is named and the rest still checked.
    assert_eq!(
        fields_of(r#"{"colour": "red", "name": "A", "address": {}}"#),
        ["colour", "address.city", "quantity", "id"]
    );
    // A field no stand-in suits ends the search without a wrong error.
    assert_eq!(
        fields_of(r#"{"name": "A", "quantity": 1, "id": "x"}"#),
        ["id", "address"]
    );
    assert!(decode::<Strict>(
        br#"{"name": "A", "quantity": 1, "id": "01890f5e-5c4b-7cc4-9a3e-1f2b3c4d5e6f", "address": {"city": "B"}}"#
    )
    .is_ok());
}

#[test]
fn a_body_full_of_bad_fields_names_a_bounded_number_of_them() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Lines {
        lines: Vec<Address>,
    }
    let bad: Vec<String> = (0..2_000).map(|i| format!("{{\"city\": {i}}}")).collect();
    let body = format!("{{\"lines\": [{}]}}", bad.join(","));
    let named = fields(decode::<Lines>(body.as_bytes()).expect_err("bad cities"));
    assert_eq!(named.len(), MAX_FIELD_ERRORS, "{named:?}");
    assert_eq!(named[0], "lines[0].city");
    assert_eq!(named[1], "lines[1].city");
}

#[test]
fn a_body_that_is_not_an_object_is_told_so() {
    for body in ["null", "7", "\"text\""] {
        match decode::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => {
                assert_eq!(errors.len(), 1, "{body}: {errors:?}");
                assert_eq!(errors[0].field, "");
                assert!(
                    errors[0].message.starts_with("must be a JSON object"),
                    "{body}: {}",
                    errors[0].message
                );
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn a_missing_field_is_named_with_its_path() {
    let top = decode::<Body>(br#"{"address": {"city": "Berlin"}}"#).expect_err("no sku");
    assert_eq!(fields(top), ["sku"]);
    let nested = decode::<Body>(br#"{"sku": "A", "address": {}}"#).expect_err("no city");
    assert_eq!(fields(nested), ["address.city"]);
}

#[test]
fn a_request_without_a_body_takes_nothing_or_an_empty_object() {
    assert!(no_body(b"").is_ok());
    assert!(no_body(b" {} ").is_ok());
    let error = no_body(br#"{"reason": "x"}"#).expect_err("a field");
    assert_eq!(fields(error), ["reason"]);
}

#[test]
fn an_array_is_not_taken_for_an_object() {
    let error = decode::<Body>(br#" ["A", {"city": "Berlin"}]"#).expect_err("an array");
    assert_eq!(fields(error), [""]);
    assert!(decode::<Body>(br#"{"sku": "A", "address": {"city": "Berlin"}}"#).is_ok());
}

#[test]
fn a_nested_array_is_not_taken_for_a_struct_and_is_named() {
    let cases: [(&[u8], &str); 3] = [
        (br#"{"sku": "A", "address": ["Berlin"]}"#, "address"),
        (
            br#"{"sku": "A", "address": {"city": "B"}, "billing": ["Berlin"]}"#,
            "billing",
        ),
        (
            br#"{"sku": "A", "address": {"city": "B"}, "stops": [{"city": "C"}, ["D"]]}"#,
            "stops[1]",
        ),
    ];
    for (body, field) in cases {
        let error = decode::<Body>(body).expect_err("an array for a struct");
        assert_eq!(fields(error), [field]);
    }
    let whole =
        decode::<Body>(br#"{"sku": "A", "address": {"city": "B"}, "stops": [{"city": "C"}]}"#)
            .expect("objects decode");
    assert!(whole.billing.is_none() && whole.stops.is_some_and(|s| s.len() == 1));
}
