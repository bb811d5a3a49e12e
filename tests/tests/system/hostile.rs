//! Hostile input: callers over their rate, forged and malformed tokens, and
//! poison on the bus. The edge answers 429 or 401 problem+json without
//! internals; the consumers dead-letter what they cannot read and carry on.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bazaar_testkit::api::{Answer, Order};
use bazaar_testkit::{mint_expired_token, wait_until, Api, Service, Shop, Streams};
use contracts::auth::{Claims, Role};
use contracts::subjects::{
    dlq_subject, durable, evt, DLQ_STREAM, DLQ_SUBJECTS, FINANCE_SVC, WAREHOUSE_SVC,
};
use contracts::Team;
use futures::TryStreamExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;

use crate::SETTLE;

/// What must never appear in an answer's body.
const INTERNALS: [&str; 8] = [
    "panicked",
    "sqlx",
    "async_nats",
    "stack backtrace",
    ".rs:",
    "/src/",
    "/root/",
    "/work/",
];

#[track_caller]
fn assert_no_internals(answer: &Answer) {
    let body = answer.text();
    for word in INTERNALS {
        assert!(
            !body.contains(word),
            "{} answered {} with internals ({word:?}): {body}",
            answer.request,
            answer.status
        );
    }
}

fn claims(sub: &str, exp_in: i64, nbf_in: Option<i64>) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: sub.to_owned(),
        role: Role::Customer,
        exp: now + exp_in,
        iat: Some(now),
        nbf: nbf_in.map(|n| now + n),
    }
}

fn sign(secret: &str, header: Header, claims: &Claims) -> String {
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_else(|e| panic!("cannot sign a token: {e}"))
}

/// A token with a hand-written header and signature.
fn forged(header: &str, claims: &Claims, signature: &str) -> String {
    let claims = serde_json::to_vec(claims).unwrap_or_else(|e| panic!("claims: {e}"));
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_gets_429_with_retry_after_and_another_customer_is_unaffected()
{
    let shop = Shop::builder()
        .services([Service::Edge])
        .env_for(Service::Edge, "BAZAAR_RATE_LIMIT_PER_S", "5")
        .env_for(Service::Edge, "BAZAAR_RATE_LIMIT_BURST", "10")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let alice = shop.customer_api("alice");
    let bob = shop.customer_api("bob");

    let burst = futures::future::join_all((0..40).map(|_| alice.basket())).await;

    let ok = burst.iter().filter(|a| a.status() == 200).count();
    let limited: Vec<&Answer> = burst.iter().filter(|a| a.status() == 429).collect();
    assert_eq!(ok + limited.len(), burst.len(), "only 200 or 429");
    assert!(
        (10..=15).contains(&ok),
        "the burst of 10 (and what refilled meanwhile) got through, got {ok}"
    );
    for answer in &limited {
        let problem = answer.problem();
        assert_eq!(problem.kind, "urn:bazaar:problem:too-many-requests");
        let retry_after: u64 = answer
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("429 without a Retry-After in seconds: {answer:?}"));
        assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
        assert_no_internals(answer);
    }
    // Another customer has a bucket of its own; probes are never limited.
    for _ in 0..8 {
        bob.basket().await.expect(200);
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        for _ in 0..20 {
            alice.get(path).await.expect(200);
        }
    }
    // Anonymous callers are limited by address.
    let nobody = shop.api();
    let anonymous =
        futures::future::join_all((0..30).map(|_| nobody.get("/api/openapi.json"))).await;
    assert!(
        anonymous.iter().any(|a| a.status() == 429),
        "30 anonymous requests at once were not limited"
    );
    // After the wait it asked for, the customer is served again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    alice.basket().await.expect(200);
}

#[tokio::test]
async fn forged_expired_premature_and_odd_tokens_get_401_problem_json_without_internals() {
    let shop = Shop::builder().services([Service::Edge]).start().await;
    let _logs = shop.logs_on_failure();
    let secret = shop.jwt_secret();
    let good = claims("carol", 3600, None);
    let tokens = [
        (
            "alg none",
            forged(r#"{"alg":"none","typ":"JWT"}"#, &good, ""),
        ),
        (
            "alg None, signed",
            forged(r#"{"alg":"None","typ":"JWT"}"#, &good, "c2ln"),
        ),
        ("HS384", sign(secret, Header::new(Algorithm::HS384), &good)),
        (
            "RS256 header",
            forged(r#"{"alg":"RS256","typ":"JWT"}"#, &good, "c2lnbmF0dXJl"),
        ),
        (
            "another secret",
            sign(
                "another secret that is at least thirty-two bytes",
                Header::default(),
                &good,
            ),
        ),
        (
            "nbf beyond the leeway",
            sign(secret, Header::default(), &claims("carol", 3600, Some(120))),
        ),
        (
            "exp far past",
            mint_expired_token(
                secret,
                "carol",
                Role::Customer,
                Duration::from_secs(864_000),
            ),
        ),
        (
            "empty sub",
            sign(secret, Header::default(), &claims("", 3600, None)),
        ),
        (
            "blank sub",
            sign(secret, Header::default(), &claims("   ", 3600, None)),
        ),
        (
            "over-long sub",
            sign(
                secret,
                Header::default(),
                &claims(&"x".repeat(129), 3600, None),
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("huge", "a".repeat(6000)),
    ];
    let api = shop.api();

    for (what, token) in &tokens {
        let answer = api.with_token(token.clone()).basket().await;
        assert_eq!(answer.status(), 401, "{what}: {}", answer.text());
        let problem = answer.problem();
        assert_eq!(problem.kind, "urn:bazaar:problem:unauthorized", "{what}");
        assert_no_internals(&answer);
        let stream = api
            .get(&format!(
                "/api/v1/orders/{}/updates?access_token={token}",
                uuid::Uuid::now_v7()
            ))
            .await;
        assert_eq!(stream.status(), 401, "{what} as access_token");
        assert_no_internals(&stream);
    }
    // The control: the same claims, properly signed, are accepted.
    api.with_token(sign(secret, Header::default(), &good))
        .basket()
        .await
        .expect(200);
    // Hostile bodies and headers do not reveal internals either.
    let carol = api.with_token(sign(secret, Header::default(), &good));
    let hostile = [
        carol
            .send(
                carol
                    .request(Method::POST, "/api/v1/orders")
                    .header("content-type", "application/json")
                    .body("{\"items\": [{\"product_id\": \"\\ud800\", \"quantity\": 1e999}]"),
            )
            .await,
        carol
            .send(
                carol
                    .request(Method::POST, "/api/v1/orders")
                    .header("content-type", "application/json")
                    .body(vec![b'['; 70_000]),
            )
            .await,
        carol
            .send(
                carol
                    .request(Method::PUT, "/api/v1/basket/items/not-a-uuid")
                    .header("content-type", "text/plain")
                    .body("quantity=1"),
            )
            .await,
        carol
            .send(
                carol
                    .request(Method::POST, "/api/v1/orders")
                    .header("content-type", "application/json")
                    .header("idempotency-key", "a key with spaces")
                    .body("{}"),
            )
            .await,
        api.get("/api/v1/products?limit=-1&offset=99999999999999999999")
            .await,
    ];
    for answer in &hostile {
        assert!(
            (400..500).contains(&answer.status()),
            "{} answered {}: {}",
            answer.request,
            answer.status,
            answer.text()
        );
        answer.problem();
        assert_no_internals(answer);
    }
}

/// The dead letters of `consumer` (service and durable of the same name)
/// of messages stored at `seqs` on EVT_CHECKOUT.
async fn dead_letters_of(streams: &Streams, service: &str, seqs: &[u64]) -> Vec<u64> {
    let subject = dlq_subject(service, service);
    streams
        .events(DLQ_STREAM)
        .await
        .iter()
        .filter(|e| e.subject == subject)
        .filter(|e| e.header("Bazaar-Dlq-Stream").as_deref() == Some(Team::Checkout.stream()))
        .filter_map(|e| e.header("Bazaar-Dlq-Seq").and_then(|s| s.parse().ok()))
        .filter(|seq| seqs.contains(seq))
        .collect()
}

/// How many dead letters each `dlq.>` subject holds.
async fn dlq_counts(streams: &Streams) -> std::collections::BTreeMap<String, usize> {
    let stream = streams
        .js()
        .get_stream(DLQ_STREAM)
        .await
        .unwrap_or_else(|e| panic!("stream {DLQ_STREAM}: {e}"));
    stream
        .info_with_subjects(DLQ_SUBJECTS)
        .await
        .unwrap_or_else(|e| panic!("stream {DLQ_STREAM} info: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("stream {DLQ_STREAM} subjects: {e}"))
}

/// Places an order of one unit as `customer` and waits until it confirms.
async fn an_order_confirms(shop: &Shop, api: &Api, sku: &str, within: Duration) -> Order {
    let product = shop.stocked_product(sku, 1500, 5).await;
    let order = api.place_order_of(product.id, 1, "tok_visa").await;
    api.wait_for_order(order.id, "the order confirms", within, |o| {
        o.status == "confirmed" || o.status == "shipped"
    })
    .await
}

#[tokio::test]
async fn poison_on_the_bus_is_dead_lettered_and_the_consumers_carry_on() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let streams = shop.streams().await;
    let sample = include_str!("../../../contracts/samples/checkout.order.placed.v1/two-lines.json");
    let mut wrong_schema: serde_json::Value =
        serde_json::from_str(sample).unwrap_or_else(|e| panic!("sample: {e}"));
    wrong_schema["id"] = uuid::Uuid::now_v7().to_string().into();
    wrong_schema["data"] = serde_json::json!({ "order_id": 42, "lines": "none" });

    let poison = [
        b"{\"specversion\": \"1.0\", \"id\": ".to_vec(),
        serde_json::to_vec(&wrong_schema).unwrap_or_default(),
    ];
    let mut seqs = Vec::new();
    for payload in poison {
        seqs.push(
            streams
                .publish(evt::ORDER_PLACED_V1, HeaderMap::new(), payload)
                .await,
        );
    }
    // A version no consumer filters (a future one, derived from a known
    // subject) is stored, and simply not delivered.
    let future_version = evt::ORDER_PLACED_V1.replace(".v1", ".v9");
    let unknown = streams
        .publish(
            &future_version,
            HeaderMap::new(),
            serde_json::to_vec(&wrong_schema).unwrap_or_default(),
        )
        .await;
    // Over the stream's largest message: the broker refuses it.
    let oversized = vec![b'x'; platform::streams::MAX_MESSAGE_SIZE as usize + 1];
    let refused = match streams
        .js()
        .publish(evt::ORDER_PLACED_V1, oversized.into())
        .await
    {
        Ok(ack) => ack.await.map(|a| a.sequence),
        Err(e) => Err(e),
    };
    assert!(
        refused.is_err(),
        "the broker stored an oversized message: {refused:?}"
    );

    for service in [WAREHOUSE_SVC, FINANCE_SVC] {
        wait_until(SETTLE, &format!("{service} dead-letters both"), || async {
            let mut got = dead_letters_of(&streams, service, &seqs).await;
            got.sort_unstable();
            got == seqs
        })
        .await;
    }
    let unknown_letters = streams
        .events(DLQ_STREAM)
        .await
        .iter()
        .filter(|e| e.header("Bazaar-Dlq-Seq") == Some(unknown.to_string()))
        .count();
    assert_eq!(unknown_letters, 0, "an unfiltered version was delivered");

    // The consumers carry on: a real order confirms.
    let dora = shop.customer_api("dora");
    an_order_confirms(&shop, &dora, "POISON-AFTER-1", SETTLE).await;
    for consumer in [durable::WAREHOUSE, durable::FINANCE] {
        assert!(
            streams
                .consumer_passed(Team::Checkout.stream(), consumer, unknown)
                .await,
            "{consumer} is stuck"
        );
    }
}

#[tokio::test]
async fn a_flood_of_poison_drains_and_a_good_order_still_settles_in_bounded_time() {
    const FLOOD: usize = 10_000;
    const WINDOW: usize = 500;
    // The test's own bound (60 s) decides, not the 30 s order timeout: on
    // a loaded machine the flood alone may take longer than that.
    let shop = Shop::builder()
        .env_for(Service::Checkout, "BAZAAR_ORDER_TIMEOUT_MS", "120000")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let streams = shop.streams().await;
    let product = shop.stocked_product("FLOOD-1", 1500, 5).await;
    let dlq_before = dlq_counts(&streams).await;

    let started = Instant::now();
    let mut last = 0;
    let mut sent = 0;
    while sent < FLOOD {
        // At most WINDOW publishes in flight, then await their acks.
        let mut acks = Vec::with_capacity(WINDOW);
        for n in sent..(sent + WINDOW).min(FLOOD) {
            let payload = format!("{{\"poison\": {n}, ");
            let ack = streams
                .js()
                .publish(evt::ORDER_PLACED_V1, payload.into())
                .await
                .unwrap_or_else(|e| panic!("publish {n}: {e}"));
            acks.push(ack);
        }
        sent += acks.len();
        for ack in futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await {
            let ack = ack.unwrap_or_else(|e| panic!("no ack: {e}"));
            last = last.max(ack.sequence);
        }
    }
    let published = started.elapsed();

    let dora = shop.customer_api("dora");
    let order = dora.place_order_of(product.id, 1, "tok_visa").await;
    dora.wait_for_order(
        order.id,
        "the good order confirms behind the flood",
        Duration::from_secs(60),
        |o| o.status == "confirmed" || o.status == "shipped",
    )
    .await;
    let settled = started.elapsed();
    wait_until(
        Duration::from_secs(60),
        "both consumers drained the flood",
        || async {
            streams
                .consumer_passed(Team::Checkout.stream(), durable::WAREHOUSE, last)
                .await
                && streams
                    .consumer_passed(Team::Checkout.stream(), durable::FINANCE, last)
                    .await
        },
    )
    .await;
    let drained = started.elapsed();
    let after = dlq_counts(&streams).await;
    let letters = |service: &str| {
        let subject = dlq_subject(service, service);
        after.get(&subject).copied().unwrap_or(0) - dlq_before.get(&subject).copied().unwrap_or(0)
    };
    let letters = [letters(WAREHOUSE_SVC), letters(FINANCE_SVC)];

    let all: Vec<(String, usize)> = after
        .iter()
        .map(|(s, n)| (s.clone(), n - dlq_before.get(s).copied().unwrap_or(0)))
        .collect();
    eprintln!(
        "poison flood: {FLOOD} published in {published:?}; good order settled after {settled:?}; \
         drained after {drained:?}; new dead letters per subject: {all:?}"
    );
    assert_eq!(
        letters,
        [FLOOD, FLOOD],
        "each consumer dead-letters each one"
    );
}
