//! `bazaar tail` and `bazaar streams`: what flows, decoded.

use bazaar_testkit::{Api, Service, Shop, Streams};
use contracts::Team;
use serde_json::Value;

use crate::support::{
    bazaar, expect_code, json, order, settle, stderr, stdout, stocked, wait_settled, EdgeDb,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_stored_events_as_cloudevents_filtered_by_order_type_and_subject() {
    // Arrange: one order that went all the way.
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "0")
        .start()
        .await;
    let streams = Streams::connect(shop.nats()).await;
    let api = Api::new(shop.http_url());
    let admin = api.with_token(shop.admin_token());
    let alice = api.with_token(shop.customer_token("alice"));
    let lamp = stocked(&admin, "LAMP-T", 10).await;
    let placed: Vec<_> = order(&alice, lamp.id, "tok_visa")
        .await
        .into_iter()
        .collect();
    let order_id = placed[0];
    wait_settled(&alice, &placed).await;
    settle(&streams, &EdgeDb::open(&shop).await).await;
    let mut stored = 0;
    for team in Team::ALL {
        stored += streams.message_count(team.stream()).await;
    }

    // Act
    let all = bazaar(&shop, &["tail", "--json"]).await;
    let of_order = bazaar(&shop, &["tail", "--order", &order_id.to_string(), "--json"]).await;
    let placed_line = bazaar(&shop, &["tail", "evt.checkout.>", "--type", "order.placed"]).await;
    let limited = bazaar(&shop, &["tail", "--limit", "2"]).await;
    let by_seq = bazaar(
        &shop,
        &["tail", "evt.warehouse.>", "--from-seq", "2", "--json"],
    )
    .await;
    let ambiguous_seq = bazaar(&shop, &["tail", "--from-seq", "2"]).await;
    let past_the_end = bazaar(&shop, &["tail", "evt.warehouse.>", "--from-seq", "99999"]).await;
    let seq_zero = bazaar(&shop, &["tail", "evt.warehouse.>", "--from-seq", "0"]).await;
    let limit_zero = bazaar(&shop, &["tail", "evt.warehouse.>", "--limit", "0"]).await;
    let not_an_order = bazaar(&shop, &["tail", "--order", "not-an-id"]).await;
    let order_in_capitals = bazaar(
        &shop,
        &[
            "tail",
            "--order",
            &order_id.to_string().to_uppercase(),
            "--json",
        ],
    )
    .await;
    let streams_json = bazaar(&shop, &["streams", "--json"]).await;
    let streams_text = bazaar(&shop, &["streams"]).await;

    // Assert: every line is a CloudEvents 1.0 document Bazaar can decode.
    expect_code(&all, 0);
    let lines: Vec<&str> = std::str::from_utf8(&all.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len() as u64, stored, "{}", stdout(&all));
    for line in &lines {
        let event: Value = serde_json::from_str(line).expect("one JSON document per line");
        assert_eq!(event["specversion"], "1.0", "{line}");
        for attribute in ["id", "source", "type", "subject", "time", "datacontenttype"] {
            assert!(event[attribute].is_string(), "{attribute} missing: {line}");
        }
        contracts::catalog::decode_any(line.as_bytes()).expect("a Bazaar event");
    }
    // One order's story across the four teams' streams, in time order.
    expect_code(&of_order, 0);
    let types: Vec<String> = stdout(&of_order)
        .lines()
        .map(|l| {
            let event: Value = serde_json::from_str(l).expect("JSON");
            event["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    // Any version of each fact (`order.placed` has a v2).
    for expected in [
        "bazaar.checkout.order.placed.",
        "bazaar.warehouse.stock.reserved.",
        "bazaar.finance.payment.authorized.",
        "bazaar.checkout.order.confirmed.",
        "bazaar.warehouse.shipment.dispatched.",
    ] {
        assert!(
            types.iter().any(|t| t.starts_with(expected)),
            "{expected} not in {types:?}"
        );
    }
    assert!(
        types[0].starts_with("bazaar.checkout.order.placed."),
        "{types:?}"
    );
    expect_code(&placed_line, 0);
    let text = stdout(&placed_line);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("EVT_CHECKOUT#") && text.contains("checkout.order.placed.v"),
        "{text}"
    );
    assert!(
        text.contains(&order_id.to_string()) && text.contains("=alice"),
        "{text}"
    );
    expect_code(&limited, 0);
    assert_eq!(stdout(&limited).lines().count(), 2, "{}", stdout(&limited));
    expect_code(&by_seq, 0);
    assert!(!stdout(&by_seq).is_empty());
    assert!(
        stdout(&by_seq)
            .lines()
            .all(|l| l.contains("\"bazaar.warehouse.")),
        "{}",
        stdout(&by_seq)
    );
    expect_code(&ambiguous_seq, 2);
    // Past the end: nothing, and a note saying where the stream ends.
    expect_code(&past_the_end, 0);
    assert!(stdout(&past_the_end).is_empty());
    let note = String::from_utf8_lossy(&past_the_end.stderr);
    assert!(note.contains("EVT_WAREHOUSE ends at #"), "{note}");
    // Sequences start at 1; an order is named by its id.
    expect_code(&seq_zero, 2);
    expect_code(&limit_zero, 2);
    expect_code(&not_an_order, 2);
    assert!(
        stderr(&not_an_order).contains("an order id is a UUID"),
        "{}",
        stderr(&not_an_order)
    );
    expect_code(&order_in_capitals, 0);
    assert_eq!(stdout(&order_in_capitals), stdout(&of_order));

    // Streams and their durable consumers, caught up.
    let view = json(&streams_json);
    let checkout = view["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["name"] == "EVT_CHECKOUT")
        .expect("EVT_CHECKOUT listed")
        .clone();
    assert_eq!(
        checkout["messages"].as_u64(),
        Some(streams.message_count("EVT_CHECKOUT").await)
    );
    for durable in ["warehouse-svc", "finance-svc"] {
        let consumer = checkout["consumers"]
            .as_array()
            .expect("consumers")
            .iter()
            .find(|c| c["name"] == durable && c["durable"] == true)
            .unwrap_or_else(|| panic!("{durable} missing: {checkout}"));
        assert_eq!(consumer["lag"], 0, "{consumer}");
        // Its service's consumer loop keeps a pull open.
        assert!(
            consumer["waiting_pulls"].as_u64().is_some_and(|n| n >= 1),
            "{consumer}"
        );
    }
    expect_code(&streams_text, 0);
    for part in [
        "EVT_PRODUCT",
        "EVT_CHECKOUT",
        "DLQ",
        "warehouse-svc",
        "LAG",
        "PULLING",
    ] {
        assert!(
            stdout(&streams_text).contains(part),
            "{part}: {}",
            stdout(&streams_text)
        );
    }
}
