//! The customer's side of orders (DESIGN §7): only one's own orders, a
//! paged list, and live updates as server-sent events.

use std::collections::BTreeSet;
use std::time::Duration;

use bazaar_testkit::api::{NewOrder, Order, OrderPage};
use bazaar_testkit::{Api, Service, Shop};
use contracts::subjects::evt;
use reqwest::Method;
use uuid::Uuid;

use crate::SETTLE;

#[tokio::test]
async fn another_customers_order_is_not_found() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("MINE-1", 1000, 5).await;
    let alice = shop.customer_api("alice");
    let mallory = shop.customer_api("mallory");
    let order: Order = alice
        .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    alice
        .wait_for_order(order.id, "alice's order settles", SETTLE, |o| {
            o.status != "pending"
        })
        .await;

    for answer in [
        mallory.order(order.id).await,
        mallory.invoice(order.id).await,
        mallory.cancel_order(order.id).await,
        mallory
            .get(&format!("/api/v1/orders/{}/updates", order.id))
            .await,
    ] {
        let problem = answer.expect(404).problem();
        assert!(!problem.detail.contains("mallory"), "{problem:?}");
    }
    let theirs: OrderPage = mallory.orders(None, None).await.expect(200).json();
    assert!(theirs.items.is_empty(), "{theirs:?}");
    let anonymous = shop.api();
    anonymous.order(order.id).await.expect(401).problem();
    anonymous.orders(None, None).await.expect(401).problem();
    anonymous
        .get(&format!("/api/v1/orders/{}/updates", order.id))
        .await
        .expect(401)
        .problem();

    let mine: OrderPage = alice.orders(None, None).await.expect(200).json();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(mine.items[0].id, order.id);
    let still: Order = alice.order(order.id).await.expect(200).json();
    assert_ne!(still.status, "cancelled", "mallory's cancel did nothing");
    let streams = shop.streams().await;
    assert_eq!(
        streams
            .count_for_order(evt::ORDER_CANCELLED_V1, order.id)
            .await,
        0
    );
}

#[tokio::test]
async fn the_orders_list_pages_through_every_order_once_newest_first() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("PAGES-1", 100, 100).await;
    let leo = shop.customer_api("leo");
    let mut placed = BTreeSet::new();
    for _ in 0..7 {
        let order: Order = leo
            .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
            .await
            .expect_one_of(&[201, 202])
            .json();
        placed.insert(order.id);
    }
    // Someone else's orders never show up in leo's pages.
    shop.customer_api("mia")
        .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202]);

    let mut seen: Vec<Order> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page: OrderPage = leo
            .orders(Some(3), cursor.as_deref())
            .await
            .expect(200)
            .json();
        pages += 1;
        assert!(page.items.len() <= 3, "{page:?}");
        seen.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "the cursor never ends");
    }

    let ids: Vec<Uuid> = seen.iter().map(|o| o.id).collect();
    let distinct: BTreeSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "an order came twice: {ids:?}");
    assert_eq!(distinct, placed, "every order, and only leo's");
    assert_eq!(pages, 3, "7 orders in pages of 3");
    let created: Vec<&str> = seen.iter().map(|o| o.created_at.as_str()).collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    // Settled, a listed order is its detail, timeline included. Confirmed
    // is not settled: capture, invoice and dispatch still follow it, so wait
    // for the saga's last events before comparing two reads.
    let last_steps = [
        evt::PAYMENT_CAPTURED_V1,
        evt::INVOICE_ISSUED_V1,
        evt::SHIPMENT_DISPATCHED_V1,
    ];
    for id in &placed {
        leo.wait_for_order(*id, "the saga's last events", SETTLE, |o| {
            last_steps.iter().all(|subject| o.has_event(subject))
        })
        .await;
    }
    let everything: OrderPage = leo.orders(Some(100), None).await.expect(200).json();
    for listed in &everything.items {
        let detail: Order = leo.order(listed.id).await.expect(200).json();
        assert_eq!(listed.timeline, detail.timeline, "order {}", listed.id);
        assert!(
            !detail.timeline.is_empty(),
            "order {} has no timeline",
            listed.id
        );
    }
    assert_eq!(everything.next_cursor, None);
    assert_eq!(
        everything.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        ids,
        "one page or many, the same order"
    );
    for bad in ["limit=0", "limit=101", "limit=ten", "cursor=not-a-cursor"] {
        leo.get(&format!("/api/v1/orders?{bad}"))
            .await
            .expect(422)
            .problem();
    }
}

/// The `order` events of a server-sent event stream, read for at most
/// `within` or until `done` holds for the latest.
async fn read_order_events(
    api: &Api,
    path: &str,
    within: Duration,
    done: impl Fn(&Order) -> bool,
) -> Vec<Order> {
    let mut response = api
        .request(Method::GET, path)
        .header("Accept", "text/event-stream")
        .timeout(within + Duration::from_secs(5))
        .send()
        .await
        .expect("the updates stream opens");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let deadline = tokio::time::Instant::now() + within;
    let mut buffer = String::new();
    let mut orders = Vec::new();
    while orders.last().is_none_or(|o| !done(o)) {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => panic!("reading the updates stream: {e}"),
            Err(_) => break,
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut event = None;
            let mut data = Vec::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = Some(name.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
            }
            if event.as_deref() == Some("order") {
                let order: Order = serde_json::from_str(&data.join("\n"))
                    .unwrap_or_else(|e| panic!("an order event that is no order ({e}): {frame}"));
                orders.push(order);
            }
        }
    }
    orders
}

#[tokio::test]
async fn order_updates_stream_the_order_view_as_it_changes() {
    let shop = Shop::builder()
        .env_for(Service::Finance, "BAZAAR_SLOW_TOKEN_MS", "3000")
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "300")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("LIVE-1", 1000, 5).await;
    let nina = shop.customer_api("nina");
    let order: Order = nina
        .place_order(&NewOrder::of(product.id, 1, "tok_slow"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();

    let updates = read_order_events(
        &nina,
        &format!("/api/v1/orders/{}/updates", order.id),
        SETTLE,
        |o| o.status == "shipped",
    )
    .await;

    let statuses: Vec<&str> = updates.iter().map(|o| o.status.as_str()).collect();
    assert!(updates.len() >= 2, "at least two views: {statuses:?}");
    assert!(updates.iter().all(|o| o.id == order.id));
    assert_eq!(statuses.first(), Some(&"pending"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"shipped"), "{statuses:?}");
    assert!(
        updates.windows(2).all(|w| w[0] != w[1]),
        "each event is a change: {statuses:?}"
    );
    assert!(
        updates
            .windows(2)
            .all(|w| w[0].timeline.len() <= w[1].timeline.len()),
        "the timeline only grows"
    );
    let last = updates.last().cloned().expect("a last view");
    assert_eq!(nina.order(order.id).await.expect(200).json::<Order>(), last);

    // Browsers' EventSource cannot send headers: the token may come in
    // the query instead, percent-decoded as any query parameter (an
    // encoder may escape the dots).
    let token = shop.customer_token("nina");
    for (given, what) in [
        (token.clone(), "the stream starts with the current view"),
        (token.replace('.', "%2E"), "the escaped token is taken"),
    ] {
        let by_query = read_order_events(
            &shop.api(),
            &format!("/api/v1/orders/{}/updates?access_token={given}", order.id),
            Duration::from_secs(10),
            |_| true,
        )
        .await;
        assert_eq!(by_query.first(), Some(&last), "{what}");
    }
}

#[tokio::test]
async fn the_live_updates_end_when_the_token_expires() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("EXPIRES-1", 1000, 5).await;
    let nina = shop.customer_api("nina");
    let order: Order = nina
        .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    // A token that expires in a second: the edge refuses it 5 s later.
    let token = bazaar_testkit::mint_token(
        shop.jwt_secret(),
        "nina",
        contracts::auth::Role::Customer,
        Duration::from_secs(1),
    );
    let url = format!("{}/api/v1/orders/{}/updates", shop.http_url(), order.id);

    let answer = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(answer.status(), 200);
    let cache = answer
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cache.contains("no-store"), "{cache}");
    // Without the token's end the stream would run its 600 s.
    let body = tokio::time::timeout(Duration::from_secs(30), answer.text())
        .await
        .expect("the stream ends once the token has expired")
        .expect("its body");

    assert!(body.contains("event: order"), "{body}");
}

/// A customer holds at most 32 update streams open at once: the next is
/// told to close one (429 with Retry-After), and once one closes another
/// opens. Another customer is not affected.
#[tokio::test]
async fn a_customer_follows_at_most_32_orders_at_once() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("STREAMS-1", 1000, 5).await;
    let olga = shop.customer_api("olga");
    let order: Order = olga
        .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    let path = format!("/api/v1/orders/{}/updates", order.id);
    let open = |api: Api| {
        let path = path.clone();
        async move {
            api.request(Method::GET, &path)
                .header("Accept", "text/event-stream")
                .send()
                .await
                .expect("the updates stream answers")
        }
    };

    let mut streams = Vec::new();
    for n in 1..=32 {
        let stream = open(olga.clone()).await;
        assert_eq!(stream.status(), 200, "stream {n} of 32");
        streams.push(stream);
    }
    let refused = olga.get(&path).await.expect(429);
    assert_eq!(refused.header("retry-after").as_deref(), Some("5"));
    let problem = refused.problem();
    assert!(problem.detail.contains("close one"), "{problem:?}");
    // Someone else's streams are counted apart.
    let other: Order = shop
        .customer_api("pavel")
        .place_order(&NewOrder::of(product.id, 1, "tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    let pavels = shop
        .customer_api("pavel")
        .request(Method::GET, &format!("/api/v1/orders/{}/updates", other.id))
        .send()
        .await
        .expect("pavel's stream answers");
    assert_eq!(pavels.status(), 200);

    // One of olga's streams closes: its place is free again.
    drop(streams.pop());
    let reopened = bazaar_testkit::wait_for(
        Duration::from_secs(10),
        "a stream opens once one of 32 closed",
        || {
            let olga = olga.clone();
            let open = &open;
            async move {
                let stream = open(olga).await;
                (stream.status() == 200).then_some(stream)
            }
        },
    )
    .await;
    assert_eq!(reopened.status(), 200);
}
