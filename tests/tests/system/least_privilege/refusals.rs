//! The refusals of `users.conf`, proved against a real nats-server running
//! the real users, and the start-up order they impose on the real binaries.

use std::time::Duration;

use async_nats::jetstream::consumer;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use bazaar_testkit::{wait_until, Service, Shop, TestNats};
use contracts::consumers;
use contracts::subjects::{
    cmd, durable, evt, CHECKOUT_SVC, DLQ_STREAM, EDGE_API, FINANCE_SVC, PRODUCT_SVC, WAREHOUSE_SVC,
};
use contracts::Team;
use futures::StreamExt as _;
use platform::streams::{self, ConsumerSpec};

use super::{broker, js_of, violation_naming};

/// The warehouse's real consumer on the checkout stream.
fn warehouse_spec() -> ConsumerSpec {
    let reads = consumers::warehouse_svc::ORDERS;
    ConsumerSpec::new(reads.from.stream(), durable::WAREHOUSE, reads.subjects)
}

/// Sends one pull request for `consumer` on `stream` (as a pull consumer
/// does: the messages come to an inbox under their own subjects) and
/// returns the subject of the message it got, if one arrived.
async fn pull_one(client: &async_nats::Client, stream: &str, consumer: &str) -> Option<String> {
    use futures::StreamExt;
    let inbox = client.new_inbox();
    let mut deliveries = client.subscribe(inbox.clone()).await.ok()?;
    let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}");
    let body = serde_json::json!({ "batch": 1, "expires": 500_000_000 }).to_string();
    client
        .publish_with_reply(subject, inbox, body.into())
        .await
        .ok()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, deliveries.next()).await {
            // Status messages (timeouts, heartbeats) carry no event.
            Ok(Some(message)) if message.status.is_some() => continue,
            Ok(Some(message)) => return Some(message.subject.to_string()),
            Ok(None) | Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_service_cannot_read_a_stream_it_does_not_consume() {
    let (nats, ops_js) = broker().await;
    let product = Team::Product.stream();
    assert!(
        consumers::of(WAREHOUSE_SVC).is_some_and(|c| c.subjects_from(Team::Product).is_empty()),
        "the warehouse reads the product stream now; pick a stream it does not read"
    );
    let (client, mut events) = nats.connect_as_with_events(WAREHOUSE_SVC).await;
    let js = js_of(&client);

    let durable_on_product = ConsumerSpec::new(
        product,
        durable::WAREHOUSE,
        consumers::checkout_svc::PRICES.subjects,
    );
    let as_durable = js
        .create_consumer_on_stream(durable_on_product.config(), product)
        .await;
    violation_naming(&mut events, "$JS.API.CONSUMER.CREATE.EVT_PRODUCT").await;
    let as_ordered = js
        .create_consumer_on_stream(OrderedConfig::default(), product)
        .await;
    let info = js.get_stream(product).await;
    let direct = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(
            format!("$JS.API.STREAM.MSG.GET.{product}"),
            r#"{"seq":1}"#.into(),
        ),
    )
    .await;
    violation_naming(&mut events, "$JS.API.STREAM.MSG.GET.EVT_PRODUCT").await;

    assert!(
        as_durable.is_err(),
        "warehouse-svc made a durable consumer on {product}"
    );
    assert!(
        as_ordered.is_err(),
        "warehouse-svc made an ordered consumer on {product}"
    );
    assert!(info.is_err(), "warehouse-svc read {product}'s info");
    assert!(
        !matches!(direct, Ok(Ok(ref m)) if m.status.is_none()),
        "warehouse-svc read a message of {product}"
    );
    let mut stream = ops_js.get_stream(product).await.expect("product stream");
    assert_eq!(
        stream.info().await.expect("info").state.consumer_count,
        0,
        "a consumer was created on {product}"
    );

    // The same user reads the stream it does consume, the way the service does.
    let own = js
        .create_consumer_on_stream(warehouse_spec().config(), warehouse_spec().stream)
        .await;
    assert!(
        own.is_ok(),
        "warehouse-svc cannot read its own orders: {own:?}"
    );
    assert_eq!(
        pull_one(&client, warehouse_spec().stream, durable::WAREHOUSE).await,
        Some(evt::ORDER_PLACED_V1.to_owned())
    );
}

#[tokio::test]
async fn a_service_cannot_pull_from_or_redefine_another_services_durable_consumer() {
    let (nats, ops_js) = broker().await;
    let stream = warehouse_spec().stream;
    ops_js
        .create_consumer_on_stream(warehouse_spec().config(), stream)
        .await
        .expect("the warehouse's consumer, as ops");

    // finance-svc reads the same stream through its own durable; the edge
    // reads it through ordered consumers (wildcard grants with denials).
    for user in [FINANCE_SVC, EDGE_API] {
        let (client, mut events) = nats.connect_as_with_events(user).await;
        let js = js_of(&client);
        assert_eq!(
            pull_one(&client, stream, durable::WAREHOUSE).await,
            None,
            "{user} pulled from warehouse-svc's consumer"
        );
        violation_naming(&mut events, "CONSUMER.MSG.NEXT.EVT_CHECKOUT.warehouse-svc").await;
        // Redefining it (here: to read only basket changes) is refused too,
        // by the subject that names it and by the one that does not.
        let mut hijack = warehouse_spec().config();
        hijack.filter_subjects = vec![evt::BASKET_CHANGED_V1.to_owned()];
        let named = js.create_consumer_on_stream(hijack.clone(), stream).await;
        assert!(named.is_err(), "{user} redefined warehouse-svc's consumer");
        let deleted = js
            .delete_consumer_from_stream(durable::WAREHOUSE, stream)
            .await;
        assert!(deleted.is_err(), "{user} deleted warehouse-svc's consumer");
        for config in [
            serde_json::json!({ "durable_name": durable::WAREHOUSE, "ack_policy": "explicit",
                "filter_subject": evt::BASKET_CHANGED_V1 }),
            serde_json::json!({ "name": durable::WAREHOUSE, "ack_policy": "explicit",
                "filter_subject": evt::BASKET_CHANGED_V1 }),
        ] {
            let body = serde_json::json!({ "stream_name": stream, "config": config });
            // Unnamed in the subject (how async-nats creates an unnamed
            // consumer), and under a name of its own: the broker must not
            // let the body's name win.
            for subject in [
                format!("$JS.API.CONSUMER.CREATE.{stream}"),
                format!("$JS.API.CONSUMER.CREATE.{stream}.ordered_probe"),
            ] {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    client.request(subject, body.to_string().into()),
                )
                .await;
            }
        }
    }

    let info = ops_js
        .get_stream(stream)
        .await
        .expect("stream")
        .consumer_info(durable::WAREHOUSE)
        .await
        .expect("the warehouse's consumer still exists");
    assert_eq!(
        info.config.filter_subjects,
        warehouse_spec().filter_subjects
    );
    assert_eq!(info.delivered.stream_sequence, 0, "someone pulled from it");
    assert_eq!(info.num_pending, 1);

    // Its owner pulls from it.
    let (owner, _) = nats.connect_as_with_events(WAREHOUSE_SVC).await;
    assert_eq!(
        pull_one(&owner, stream, durable::WAREHOUSE).await,
        Some(evt::ORDER_PLACED_V1.to_owned())
    );
}

#[tokio::test]
async fn a_service_cannot_change_another_teams_stream_nor_purge_or_delete_any() {
    let (nats, ops_js) = broker().await;
    let (client, mut events) = nats.connect_as_with_events(PRODUCT_SVC).await;
    let js = js_of(&client);

    let mut shortened = streams::event_stream(Team::Warehouse, 1);
    shortened.max_age = Duration::from_secs(1);
    let updated = js.update_stream(shortened.clone()).await;
    violation_naming(&mut events, "$JS.API.STREAM.UPDATE.EVT_WAREHOUSE").await;
    let created_or_updated = js.create_or_update_stream(shortened).await;
    let mut dlq = streams::dlq_stream(1);
    dlq.max_age = Duration::from_secs(1);
    let dlq_updated = js.update_stream(dlq).await;
    violation_naming(&mut events, "$JS.API.STREAM.UPDATE.DLQ").await;
    let own = Team::Product.stream();
    let purged = match js.get_stream(own).await {
        Ok(stream) => stream.purge().await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    violation_naming(&mut events, "$JS.API.STREAM.PURGE.EVT_PRODUCT").await;
    let deleted = js.delete_stream(own).await;
    let dlq_deleted = js.delete_stream(DLQ_STREAM).await;

    assert!(
        updated.is_err(),
        "product-svc changed the warehouse's stream"
    );
    assert!(
        created_or_updated.is_err(),
        "product-svc changed the warehouse's stream"
    );
    assert!(dlq_updated.is_err(), "product-svc changed the DLQ");
    assert!(purged.is_err(), "product-svc purged its own stream");
    assert!(deleted.is_err(), "product-svc deleted its own stream");
    assert!(dlq_deleted.is_err(), "product-svc deleted the DLQ");
    let mut warehouse = ops_js
        .get_stream(Team::Warehouse.stream())
        .await
        .expect("stream");
    assert_eq!(
        warehouse.info().await.expect("info").config.max_age,
        Duration::ZERO
    );
    let mut kept_dlq = ops_js.get_stream(DLQ_STREAM).await.expect("DLQ");
    assert_eq!(
        kept_dlq.info().await.expect("info").config.max_age,
        streams::dlq_stream(1).max_age
    );
    let mut product = ops_js.get_stream(own).await.expect("the product stream");
    assert_eq!(product.info().await.expect("info").state.messages, 1);

    // What it may do: declare its own stream, and the DLQ if it is missing.
    streams::ensure(&js, streams::event_stream(Team::Product, 1))
        .await
        .expect("product-svc declares its own stream");
    streams::ensure_dlq(&js, 1)
        .await
        .expect("product-svc declares the DLQ");
}

#[tokio::test]
async fn the_edge_cannot_publish_any_event_nor_declare_a_stream() {
    let (nats, ops_js) = broker().await;
    let (client, mut events) = nats.connect_as_with_events(EDGE_API).await;
    let js = js_of(&client);

    for team in Team::ALL {
        let subject = format!("evt.{}.anything.happened.v1", team.name());
        let acked = match js.publish(subject.clone(), "{}".into()).await {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        assert!(!acked, "the edge published {subject}");
        violation_naming(&mut events, &subject).await;
    }
    let declared = js
        .create_or_update_stream(streams::event_stream(Team::Product, 1))
        .await;
    assert!(declared.is_err(), "the edge declared the product stream");
    let mut own = streams::event_stream(Team::Product, 1);
    own.name = "EVT_EDGE".to_owned();
    own.subjects = vec!["edge.>".to_owned()];
    assert!(
        js.create_stream(own).await.is_err(),
        "the edge created a stream"
    );

    for team in Team::ALL {
        let mut stream = ops_js.get_stream(team.stream()).await.expect("stream");
        let expected = u64::from(matches!(team, Team::Product | Team::Checkout));
        assert_eq!(stream.info().await.expect("info").state.messages, expected);
    }
    // What it may do: read a team's stream through an ordered consumer.
    let ordered = OrderedConfig {
        name: Some(streams::ordered_consumer_name()),
        ..Default::default()
    };
    let view = js
        .create_consumer_on_stream(ordered, Team::Checkout.stream())
        .await;
    assert!(
        view.is_ok(),
        "the edge cannot read the checkout stream: {view:?}"
    );
}

#[tokio::test]
async fn no_service_can_listen_to_another_services_inbox() {
    let nats = TestNats::start();
    let (client, mut events) = nats.connect_as_with_events(WAREHOUSE_SVC).await;

    let _all = client.subscribe("_INBOX.>").await.expect("subscribe");
    violation_naming(&mut events, "_INBOX.>").await;
    let _checkouts = client
        .subscribe("_INBOX.checkout-svc.>")
        .await
        .expect("subscribe");
    violation_naming(&mut events, "_INBOX.checkout-svc.>").await;

    // Its own inbox works: the acknowledgement of its own event arrives there.
    let ops_js = js_of(&nats.connect().await);
    streams::ensure(&ops_js, streams::event_stream(Team::Warehouse, 1))
        .await
        .expect("the warehouse stream");
    let ack = js_of(&client)
        .publish(evt::STOCK_ADJUSTED_V1, "{}".into())
        .await
        .expect("publish");
    assert!(
        ack.await.is_ok(),
        "warehouse-svc got no acknowledgement in its own inbox"
    );
}

/// After a reconnect (in a cluster, to another node) a service answers a
/// request it took on its old connection from its new one. The broker's
/// `allow_responses` knows the request only on the connection that took
/// it, so users.conf also lets a team's service publish into the edge's
/// inbox: without that the reply was refused and the customer got 503.
#[tokio::test]
async fn a_reply_to_the_edge_may_leave_on_another_connection_of_the_service() {
    let nats = TestNats::start();
    let edge = nats.connect_as(EDGE_API).await;
    let took = nats.connect_as(CHECKOUT_SVC).await;
    let answers = nats.connect_as(CHECKOUT_SVC).await;
    let mut requests = took
        .subscribe(cmd::CHECKOUT_PLACE_ORDER)
        .await
        .expect("subscribe");
    took.flush().await.expect("flush");
    // The edge's request, with a reply subject in its own inbox, as
    // `request` sends it (sent by hand and again until it arrives: the
    // subscription above may reach the broker after the first send, which
    // `request` would take for "no responders").
    let inbox = format!("{}.reply-test", platform::nats::inbox_prefix(EDGE_API));
    let mut replies = edge.subscribe(inbox.clone()).await.expect("subscribe");
    edge.flush().await.expect("flush");

    let mut asked = None;
    for _ in 0..20 {
        edge.publish_with_reply(cmd::CHECKOUT_PLACE_ORDER, inbox.clone(), "{}".into())
            .await
            .expect("publish");
        edge.flush().await.expect("flush");
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), requests.next()).await
        {
            asked = Some(message);
            break;
        }
    }
    let asked = asked.expect("the request arrives within 10 s");
    let reply = asked.reply.expect("a request has a reply subject");
    answers
        .publish(reply, "answered".into())
        .await
        .expect("publish");
    answers.flush().await.expect("flush");

    // Skipping the broker's "no responders" status answers to the sends
    // that came before the subscription had reached it.
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = replies.next().await {
            if message.status.is_none() {
                return Some(message);
            }
        }
        None
    })
    .await
    .expect("the edge hears back: the reply was refused")
    .expect("a reply");
    assert_eq!(answer.payload.as_ref(), b"answered");
}

// ---- start-up order, with the real binaries ---------------------------------------

#[tokio::test]
async fn a_service_waits_for_a_stream_its_owner_has_not_created_yet() {
    // Checkout reads the product, warehouse and finance streams; none of
    // their services runs, so none of those streams exists.
    let shop = Shop::builder().services([Service::Checkout]).start().await;
    let _logs = shop.logs_on_failure();
    let ops_js = js_of(&shop.nats().connect().await);
    let product = Team::Product.stream();
    assert!(
        ops_js.get_stream(product).await.is_err(),
        "checkout-svc created the product team's stream"
    );
    wait_until(
        Duration::from_secs(20),
        "checkout-svc says it waits",
        || async {
            shop.log_of("checkout-svc-0")
                .contains("waiting for its owning team's service to create it")
        },
    )
    .await;

    // The product team's service creates its stream, as it does at start.
    let owner = js_of(&shop.nats().connect_as(Team::Product.service()).await);
    streams::ensure(&owner, streams::event_stream(Team::Product, 1))
        .await
        .expect("product-svc declares its stream");

    wait_until(
        Duration::from_secs(20),
        "checkout-svc's consumer on the product stream",
        || async {
            match ops_js.get_stream(product).await {
                Ok(stream) => stream
                    .get_consumer::<consumer::pull::Config>(durable::CHECKOUT)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        },
    )
    .await;
}

#[tokio::test]
async fn the_whole_shop_runs_an_order_through_without_a_single_refusal() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();

    crate::saga::order_from_basket_is_confirmed_shipped_and_invoiced(&shop).await;

    // A refused publish or subscription does not fail the call that made
    // it; the broker reports it on the connection, which every service logs.
    for instance in shop.instances() {
        let log = shop.log_of(instance);
        let refusals: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("Permissions Violation"))
            .collect();
        assert!(
            refusals.is_empty(),
            "{instance} was refused by the broker:\n{}",
            refusals.join("\n")
        );
    }
}
