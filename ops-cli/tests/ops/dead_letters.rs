//! `bazaar dlq`: a poison event lands in the DLQ once per consumer that
//! refused it, is listed and shown, stays when a retry fails, goes through
//! the consumer that failed it once the cause is fixed, and can be dropped.
//! The service takes the dead letter from the request (it may not read the
//! DLQ) and refuses one it does not own or cannot decode.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use bazaar_testkit::api::{NewProduct, Product};
use bazaar_testkit::{wait_for, Api, Service, Shop, Streams};
use contracts::subjects::{
    dlq_subject, durable, evt, ops, CHECKOUT_SVC, DLQ_SUBJECTS, WAREHOUSE_SVC,
};
use contracts::Team;
use platform::control::{ControlErrorKind, ControlReply, RedeliverRequest, Redelivered};
use platform::dlq::{self, Letter};
use serde_json::Value;

use crate::support::{bazaar, expect_code, json, stderr, stdout};

/// The dead letters `bazaar dlq list --json` shows.
async fn dead_letters(shop: &Shop) -> Vec<Value> {
    json(&bazaar(shop, &["dlq", "list", "--json"]).await)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits for the dead letter of `consumer` about `stream_seq`; its ID.
async fn wait_for_dead_letter(shop: &Shop, consumer: &str, stream_seq: u64) -> u64 {
    wait_for(
        Duration::from_secs(30),
        &format!("{consumer} dead-letters #{stream_seq}"),
        || async {
            dead_letters(shop).await.iter().find_map(|l| {
                (l["consumer"] == consumer && l["stream_seq"] == stream_seq)
                    .then(|| l["id"].as_u64())
                    .flatten()
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_listed_shown_kept_when_retry_fails_and_dropped() {
    // Arrange: a malformed envelope on a subject that the edge's catalog and
    // checkout's price replica both consume.
    let shop = Shop::builder().start().await;
    let streams = Streams::connect(shop.nats()).await;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
    let seq = streams
        .publish(
            evt::PRODUCT_CREATED_V1,
            headers,
            br#"{"specversion":"1.0","id":"not even a uuid""#.to_vec(),
        )
        .await;

    // Act
    let edge_letter = wait_for_dead_letter(&shop, "edge.product", seq).await;
    let checkout_letter = wait_for_dead_letter(&shop, "checkout-svc", seq).await;
    let shown = bazaar(&shop, &["dlq", "show", &edge_letter.to_string()]).await;
    let tailed = bazaar(&shop, &["tail", DLQ_SUBJECTS, "--json"]).await;
    let retried = bazaar(
        &shop,
        &[
            "dlq",
            "retry",
            &edge_letter.to_string(),
            &checkout_letter.to_string(),
        ],
    )
    .await;
    let after_retry = dead_letters(&shop).await;
    let unconfirmed = bazaar(&shop, &["dlq", "drop", &edge_letter.to_string()]).await;
    let dropped = bazaar(
        &shop,
        &[
            "dlq",
            "drop",
            &edge_letter.to_string(),
            &checkout_letter.to_string(),
            "--yes",
            "--json",
        ],
    )
    .await;
    let after_drop = dead_letters(&shop).await;
    let missing = bazaar(&shop, &["dlq", "show", "999999"]).await;
    let not_held = bazaar(&shop, &["dlq", "retry", "999999"]).await;
    streams
        .js()
        .delete_stream(contracts::subjects::DLQ_STREAM)
        .await
        .expect("the DLQ deleted by hand");
    let without_dlq = bazaar(&shop, &["dlq", "list"]).await;
    let tail_without_dlq = bazaar(&shop, &["tail", DLQ_SUBJECTS]).await;

    // `tail 'dlq.>' --json` shows each letter, undecodable as they are, with
    // where it came from and why.
    expect_code(&tailed, 0);
    let lines: Vec<Value> = stdout(&tailed)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for letter in [edge_letter, checkout_letter] {
        let line = lines
            .iter()
            .find(|l| l["seq"] == letter)
            .unwrap_or_else(|| panic!("letter {letter} tailed: {}", stdout(&tailed)));
        assert_eq!(line["dead_letter"]["seq"], seq, "{line}");
        assert!(line["dead_letter"]["consumer"].is_string(), "{line}");
        assert!(
            line["payload"]
                .as_str()
                .is_some_and(|p| p.contains("not even a uuid")),
            "{line}"
        );
    }

    // Assert
    expect_code(&shown, 0);
    let text = stdout(&shown);
    for part in [
        "edge-api",
        "edge.product",
        &format!("EVT_PRODUCT#{seq}"),
        evt::PRODUCT_CREATED_V1,
        "not a JSON CloudEvent",
        "not even a uuid",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    // The cause is in the message itself: both retries fail, both stay.
    expect_code(&retried, 1);
    assert_eq!(
        stdout(&retried).matches("failed, kept").count(),
        2,
        "{}",
        stdout(&retried)
    );
    for id in [edge_letter, checkout_letter] {
        assert!(
            after_retry.iter().any(|l| l["id"] == id),
            "{id} was not kept"
        );
    }
    expect_code(&unconfirmed, 2);
    assert!(
        stderr(&unconfirmed).contains("--yes"),
        "{}",
        stderr(&unconfirmed)
    );
    let report = json(&dropped);
    assert_eq!(
        report["done"],
        serde_json::json!([edge_letter, checkout_letter])
    );
    for id in [edge_letter, checkout_letter] {
        assert!(
            !after_drop.iter().any(|l| l["id"] == id),
            "{id} was not dropped"
        );
    }
    expect_code(&missing, 2);
    expect_code(&not_held, 1);
    assert!(
        stdout(&not_held).contains("999999: not retried: no dead letter 999999"),
        "{}",
        stdout(&not_held)
    );
    expect_code(&without_dlq, 1);
    assert!(
        stderr(&without_dlq).contains("`bazaar streams apply` creates it"),
        "{}",
        stderr(&without_dlq)
    );
    expect_code(&tail_without_dlq, 1);
    assert!(
        stderr(&tail_without_dlq).contains("`bazaar streams apply` creates it"),
        "{}",
        stderr(&tail_without_dlq)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_retried_into_the_consumer_that_failed_once_the_cause_is_fixed() {
    // Arrange: checkout's price replica refuses product events (an injected
    // fault standing in for a bug), so a new product is dead-lettered there
    // and checkout cannot sell it.
    let mut shop = Shop::builder()
        .services([Service::Product, Service::Checkout, Service::Edge])
        .env_for(
            Service::Checkout,
            "BAZAAR_FAULTS",
            "poison.checkout-svc.EVT_PRODUCT",
        )
        .start()
        .await;
    let api = Api::new(shop.http_url());
    let admin = api.with_token(shop.admin_token());
    let alice = api.with_token(shop.customer_token("alice"));
    let lamp: Product = admin
        .create_product(&NewProduct::sample("LAMP-9", 4999))
        .await
        .expect(201)
        .json();
    let letter = wait_for_dead_letter(&shop, "checkout-svc", 1).await;
    let refused = alice.put_basket_item(lamp.id, 1).await;
    let still_broken = bazaar(&shop, &["dlq", "retry", &letter.to_string()]).await;

    // Act: deploy the fix (restart without the fault), then retry.
    shop.stop(Service::Checkout);
    shop.set_env(Service::Checkout, "BAZAAR_FAULTS", None);
    shop.start(Service::Checkout).await;
    let retried = bazaar(&shop, &["dlq", "retry", &letter.to_string(), "--json"]).await;
    let again = bazaar(&shop, &["dlq", "retry", &letter.to_string()]).await;

    // Assert
    assert!(
        (400..500).contains(&refused.status()),
        "checkout sold a product it never heard of: {}",
        refused.text()
    );
    expect_code(&still_broken, 1);
    assert!(
        stdout(&still_broken).contains("injected fault"),
        "{}",
        stdout(&still_broken)
    );
    let report = json(&retried);
    assert_eq!(report["done"], serde_json::json!([letter]), "{report}");
    assert!(!dead_letters(&shop).await.iter().any(|l| l["id"] == letter));
    let basket = alice.put_basket_item(lamp.id, 1).await.expect(200).value();
    assert_eq!(basket["total"]["amount_minor"], 4999, "{basket}");
    // The dead letter is gone once handled: nothing left to run twice.
    expect_code(&again, 1);
    assert!(
        stdout(&again).contains("no dead letter"),
        "{}",
        stdout(&again)
    );
}

/// A dead letter of checkout's price replica, owned by `owner`, with the
/// stream sequence `seq` and the base64 `payload`.
fn letter(owner: &str, seq: &str, payload: &str) -> Letter {
    let headers = BTreeMap::from([
        (dlq::H_SERVICE.to_owned(), owner.to_owned()),
        (dlq::H_CONSUMER.to_owned(), durable::CHECKOUT.to_owned()),
        (dlq::H_STREAM.to_owned(), Team::Product.stream().to_owned()),
        (
            dlq::H_SUBJECT.to_owned(),
            evt::PRODUCT_CREATED_V1.to_owned(),
        ),
        (dlq::H_SEQ.to_owned(), seq.to_owned()),
    ]);
    Letter {
        subject: dlq_subject(owner, durable::CHECKOUT),
        headers,
        payload: payload.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_refuses_a_dead_letter_it_does_not_own_or_cannot_decode() {
    // Arrange: requests as `bazaar dlq retry` sends them, straight from `ops`.
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let ops_client = shop.nats().connect().await;
    let cases = [
        (letter(WAREHOUSE_SVC, "1", "e30="), "belongs to"),
        (letter(CHECKOUT_SVC, "1", "not base64!"), "not base64"),
        (letter(CHECKOUT_SVC, "", "e30="), "no stream sequence"),
    ];

    for (letter, why) in cases {
        // Act
        let body = serde_json::to_vec(&RedeliverRequest { dlq_seq: 7, letter })
            .expect("a request serializes");
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            ops_client.request(ops::redeliver(CHECKOUT_SVC), body.into()),
        )
        .await
        .expect("checkout-svc answers within 30 s")
        .expect("checkout-svc answers");

        // Assert
        let reply: ControlReply<Redelivered> =
            serde_json::from_slice(&answer.payload).expect("a control reply");
        match reply {
            ControlReply::Error { kind, message } => {
                assert_eq!(kind, ControlErrorKind::Invalid, "{message}");
                assert!(message.contains(why), "{message} does not say {why:?}");
            }
            ControlReply::Ok { value } => panic!("checkout-svc ran it: {value:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_too_large_to_send_is_kept_with_an_error_that_says_so() {
    // Arrange: a dead letter of 900 KB, which the broker stores (max_payload
    // is 1 MB) but which base64 inside a request makes too large to send.
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let streams = Streams::connect(shop.nats()).await;
    let mut headers = HeaderMap::new();
    for (name, value) in letter(CHECKOUT_SVC, "1", "").headers {
        headers.insert(name.as_str(), value.as_str());
    }
    let id = streams
        .publish(
            &dlq_subject(CHECKOUT_SVC, durable::CHECKOUT),
            headers,
            vec![b'x'; 900 * 1024],
        )
        .await;

    // Act
    let retried = bazaar(&shop, &["dlq", "retry", &id.to_string()]).await;

    // Assert
    expect_code(&retried, 1);
    let text = stdout(&retried);
    assert!(text.contains("failed, kept"), "{text}");
    assert!(text.contains("too large"), "{text}");
    assert!(text.contains("max_payload"), "{text}");
    assert!(
        dead_letters(&shop).await.iter().any(|l| l["id"] == id),
        "{id} was not kept"
    );
}
