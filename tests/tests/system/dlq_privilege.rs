//! Dead letters are for operators only (issue #7). The `DLQ` stream holds
//! the payloads of every team's failed messages, so no service's user may
//! read it, not even its own dead letters: no message get, no direct get,
//! no consumer, no subscription on `dlq.>`. `bazaar dlq retry` reads the
//! dead letter as `ops` and sends it inside `ops.<service>.redeliver`, so
//! that subject is the way in: only `ops` may publish on it, or a service
//! could run a forged dead letter through another's handler. (That a retry
//! still goes through end to end is `ops-cli/tests/ops/dead_letters.rs`,
//! under these same users.)

use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use bazaar_testkit::TestNats;
use contracts::subjects::{
    durable, evt, ops, CHECKOUT_SVC, DLQ_STREAM, DLQ_SUBJECTS, EDGE_API, FINANCE_SVC, PRODUCT_SVC,
    WAREHOUSE_SVC,
};
use contracts::Team;
use futures::StreamExt;
use platform::{dlq, streams, Delivery};

use crate::least_privilege::{broker, js_of, violation_naming};

/// Every service's user; `ops` is the only other one.
const SERVICES: [&str; 5] = [
    PRODUCT_SVC,
    CHECKOUT_SVC,
    WAREHOUSE_SVC,
    FINANCE_SVC,
    EDGE_API,
];

/// What a dead letter may carry: another team's customer data.
const SECRET: &str = r#"{"type":"order.placed","card_holder":"Alice Secret"}"#;

/// Sends a raw JetStream API request and returns the answer's payload if
/// a real answer (not a status) came back.
async fn api_answer(client: &async_nats::Client, subject: String, body: &str) -> Option<String> {
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(subject, body.to_owned().into()),
    )
    .await;
    match answer {
        Ok(Ok(message)) if message.status.is_none() => {
            Some(String::from_utf8_lossy(&message.payload).into_owned())
        }
        _ => None,
    }
}

#[tokio::test]
async fn no_service_can_read_a_dead_letter_not_even_its_own() {
    // Arrange: checkout-svc files a dead letter the way its consumer loop does.
    let (nats, ops_js) = broker().await;
    let owner = js_of(&nats.connect_as(CHECKOUT_SVC).await);
    let delivery = Delivery {
        stream: Team::Product.stream().to_owned(),
        subject: evt::PRODUCT_CREATED_V1.to_owned(),
        payload: SECRET.into(),
        headers: None,
        stream_seq: 1,
        delivered: 5,
    };
    dlq::send(
        &owner,
        CHECKOUT_SVC,
        durable::CHECKOUT,
        &delivery,
        "refused",
    )
    .await
    .expect("checkout-svc files its own dead letter");
    let seq = ops_js
        .get_stream(DLQ_STREAM)
        .await
        .expect("the DLQ")
        .info()
        .await
        .expect("its info")
        .state
        .last_sequence;

    for user in SERVICES {
        let (client, mut events) = nats.connect_as_with_events(user).await;
        let js = js_of(&client);

        // Act: every way there is to read a stream.
        let by_handle = match js.get_stream(DLQ_STREAM).await {
            Ok(stream) => stream.get_raw_message(seq).await.ok().map(|m| m.payload),
            Err(_) => None,
        };
        violation_naming(&mut events, "$JS.API.STREAM.MSG.GET.DLQ").await;
        let get = format!(r#"{{"seq":{seq}}}"#);
        let by_get = api_answer(
            &client,
            format!("$JS.API.STREAM.MSG.GET.{DLQ_STREAM}"),
            &get,
        )
        .await;
        violation_naming(&mut events, "$JS.API.STREAM.MSG.GET.DLQ").await;
        let by_direct = api_answer(&client, format!("$JS.API.DIRECT.GET.{DLQ_STREAM}"), &get).await;
        violation_naming(&mut events, "$JS.API.DIRECT.GET.DLQ").await;
        let ordered = OrderedConfig {
            name: Some(streams::ordered_consumer_name()),
            ..Default::default()
        };
        let by_consumer = js.create_consumer_on_stream(ordered, DLQ_STREAM).await;
        violation_naming(&mut events, "$JS.API.CONSUMER.CREATE.DLQ").await;
        let _live = client.subscribe(DLQ_SUBJECTS).await;
        violation_naming(&mut events, DLQ_SUBJECTS).await;

        // Assert
        assert_eq!(by_handle, None, "{user} read dead letter {seq}");
        for answer in [&by_get, &by_direct] {
            assert!(
                !answer.as_deref().unwrap_or_default().contains("Alice"),
                "{user} read dead letter {seq}: {answer:?}"
            );
        }
        assert!(
            by_consumer.is_err(),
            "{user} made a consumer on {DLQ_STREAM}"
        );
    }

    // The operator reads it, as `bazaar dlq` does.
    let mut dlq_stream = ops_js.get_stream(DLQ_STREAM).await.expect("the DLQ");
    let letter = dlq_stream
        .get_raw_message(seq)
        .await
        .expect("ops reads the dead letter");
    assert_eq!(letter.payload, SECRET.as_bytes());
    assert_eq!(
        dlq_stream.info().await.expect("info").state.consumer_count,
        0,
        "a consumer was created on {DLQ_STREAM}"
    );
}

#[tokio::test]
async fn only_ops_can_send_a_service_a_dead_letter_to_run() {
    // Arrange: checkout-svc listens on its control endpoint.
    let nats = TestNats::start();
    let checkout = nats.connect_as(CHECKOUT_SVC).await;
    let subject = ops::redeliver(CHECKOUT_SVC);
    let mut requests = checkout
        .subscribe(subject.clone())
        .await
        .expect("subscribe");
    checkout.flush().await.expect("flush");

    // Act: every other service sends it a "dead letter", then ops does.
    for user in SERVICES.into_iter().filter(|u| *u != CHECKOUT_SVC) {
        let (client, mut events) = nats.connect_as_with_events(user).await;
        let _ = client
            .publish(subject.clone(), format!("forged by {user}").into())
            .await;
        let _ = client.flush().await;
        violation_naming(&mut events, &subject).await;
    }
    let ops_client = nats.connect().await;
    ops_client
        .publish(subject.clone(), "from ops".into())
        .await
        .expect("ops publishes");
    ops_client.flush().await.expect("flush");

    // Assert: the first request to arrive is the operator's.
    let first = tokio::time::timeout(Duration::from_secs(5), requests.next())
        .await
        .expect("a request within 5 s")
        .expect("the subscription is open");
    assert_eq!(first.payload.as_ref(), b"from ops");
}
