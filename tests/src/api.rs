//! A typed client of the edge's REST API (DESIGN §7), for system tests.
//!
//! The types here are the kit's own reading of the API, written from the
//! design and not imported from `edge-api`: a change of the edge's bodies
//! that breaks clients then breaks these tests too. Required fields are
//! plain (decoding fails when one is missing), unknown fields are ignored
//! as any client would.
//!
//! Requests never panic on an HTTP status: every call returns an
//! [`Answer`] (status, headers, body) and the test decides what it
//! expects. Only a transport failure (no answer at all) panics.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

mod types;

pub use types::{
    Address, Basket, BasketLine, FieldProblem, Invoice, InvoiceLine, Money, NewOrder, NewProduct,
    Order, OrderItem, OrderLine, OrderPage, Problem, Product, StockLevel, TimelineEntry,
};

/// What the edge answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `METHOD path`, for failure messages.
    pub request: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The media type without parameters, lower case.
    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// Panics, showing the body, unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(
            self.status(),
            status,
            "{} answered {}: {}",
            self.request,
            self.status,
            self.text()
        );
        self
    }

    /// Panics, showing the body, unless the status is one of `statuses`.
    #[track_caller]
    pub fn expect_one_of(self, statuses: &[u16]) -> Answer {
        assert!(
            statuses.contains(&self.status()),
            "{} answered {} (expected one of {statuses:?}): {}",
            self.request,
            self.status,
            self.text()
        );
        self
    }

    /// The body decoded as `T`; panics with the body when it is not one.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered {} with a body that is not the expected JSON ({e}): {}",
                self.request,
                self.status,
                self.text()
            )
        })
    }

    /// The body as untyped JSON.
    #[track_caller]
    pub fn value(&self) -> serde_json::Value {
        self.json()
    }

    /// The problem document; panics unless the answer is one
    /// (`application/problem+json` with `status` equal to the HTTP status).
    #[track_caller]
    pub fn problem(&self) -> Problem {
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{} answered {} without problem+json: {}",
            self.request,
            self.status,
            self.text()
        );
        let problem: Problem = self.json();
        assert_eq!(problem.status, self.status(), "{problem:?}");
        assert!(
            !problem.kind.is_empty() && !problem.title.is_empty(),
            "{problem:?}"
        );
        problem
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A client of one shop's edge, with or without a bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    /// A client without a token for the edge at `base_url`.
    pub fn new(base_url: impl Into<String>) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}"));
        Api {
            base: base_url.into(),
            http,
            token: None,
        }
    }

    /// The same edge, calling with `token`.
    pub fn with_token(&self, token: impl Into<String>) -> Api {
        Api {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same edge, calling without a token.
    pub fn anonymous(&self) -> Api {
        Api {
            token: None,
            ..self.clone()
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the client's token, for anything the helpers below
    /// do not cover (odd headers, raw bodies).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }

    /// Sends `request` and reads the whole answer; panics only when there
    /// is no answer at all.
    pub async fn send(&self, request: RequestBuilder) -> Answer {
        let described = request
            .try_clone()
            .and_then(|r| r.build().ok())
            .map(|r| format!("{} {}", r.method(), r.url().path()))
            .unwrap_or_else(|| "a request".to_owned());
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{described}: no answer from the edge: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{described}: cannot read the body: {e}"))
            .to_vec();
        Answer {
            request: described,
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Answer {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Answer {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn patch<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Answer {
        self.send(self.request(Method::PATCH, path).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn create_product(&self, product: &NewProduct) -> Answer {
        self.post("/api/v1/products", product).await
    }

    pub async fn product(&self, id: Uuid) -> Answer {
        self.get(&format!("/api/v1/products/{id}")).await
    }

    pub async fn set_stock(&self, id: Uuid, on_hand: i64) -> Answer {
        let body = serde_json::json!({ "on_hand": on_hand });
        self.put(&format!("/api/v1/products/{id}/stock"), &body)
            .await
    }

    pub async fn basket(&self) -> Answer {
        self.get("/api/v1/basket").await
    }

    pub async fn put_basket_item(&self, product_id: Uuid, quantity: i64) -> Answer {
        let body = serde_json::json!({ "quantity": quantity });
        self.put(&format!("/api/v1/basket/items/{product_id}"), &body)
            .await
    }

    /// Places an order, with an `Idempotency-Key` when one is given.
    pub async fn place_order(&self, order: &NewOrder, idempotency_key: Option<&str>) -> Answer {
        let mut request = self.request(Method::POST, "/api/v1/orders").json(order);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    /// Places an order of `quantity` units of one product, shipped to
    /// Germany and paid with `token`; panics unless it is accepted (201 or
    /// 202), and returns it as answered.
    pub async fn place_order_of(&self, product_id: Uuid, quantity: i64, token: &str) -> Order {
        self.place_order(&NewOrder::of(product_id, quantity, token), None)
            .await
            .expect_one_of(&[201, 202])
            .json()
    }

    pub async fn order(&self, id: Uuid) -> Answer {
        self.get(&format!("/api/v1/orders/{id}")).await
    }

    /// A page of the caller's orders.
    pub async fn orders(&self, limit: Option<u32>, cursor: Option<&str>) -> Answer {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        self.send(self.request(Method::GET, "/api/v1/orders").query(&query))
            .await
    }

    pub async fn cancel_order(&self, id: Uuid) -> Answer {
        self.send(self.request(Method::POST, &format!("/api/v1/orders/{id}/cancel")))
            .await
    }

    pub async fn invoice(&self, id: Uuid) -> Answer {
        self.get(&format!("/api/v1/orders/{id}/invoice")).await
    }

    /// Creates a product (201) and sets its stock (200); returns the
    /// product as the edge shows it once the stock is visible.
    pub async fn stocked_product(&self, sku: &str, price_minor: i64, on_hand: i64) -> Product {
        let product: Product = self
            .create_product(&NewProduct::sample(sku, price_minor))
            .await
            .expect(201)
            .json();
        let level: StockLevel = self.set_stock(product.id, on_hand).await.expect(200).json();
        assert_eq!(level.available, on_hand, "{level:?}");
        self.product(product.id).await.expect(200).json()
    }

    /// The product's availability as the edge shows it.
    pub async fn available(&self, id: Uuid) -> i64 {
        self.product(id)
            .await
            .expect(200)
            .json::<Product>()
            .available
    }

    /// Waits until the order's status is `status` and returns the order;
    /// panics naming the last status seen otherwise.
    pub async fn wait_for_status(&self, id: Uuid, status: &str, within: Duration) -> Order {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let answer = self.order(id).await;
            let last = if answer.status() == 200 {
                let order: Order = answer.json();
                if order.status == status {
                    return order;
                }
                format!("{} {:?} {:?}", order.status, order.reason, order.steps())
            } else {
                format!("HTTP {}: {}", answer.status, answer.text())
            };
            if tokio::time::Instant::now() >= deadline {
                panic!("order {id} did not become {status} within {within:?}; last seen: {last}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `check` holds for the order as the edge shows it.
    pub async fn wait_for_order(
        &self,
        id: Uuid,
        what: &str,
        within: Duration,
        check: impl Fn(&Order) -> bool,
    ) -> Order {
        crate::wait_for(within, what, || async {
            let answer = self.order(id).await;
            (answer.status() == 200)
                .then(|| answer.json::<Order>())
                .filter(|o| check(o))
        })
        .await
    }

    /// Waits until the product's availability is `available`.
    pub async fn wait_for_available(&self, id: Uuid, available: i64, within: Duration) {
        let what = format!("product {id} shows {available} available");
        crate::wait_until(within, &what, || async {
            self.available(id).await == available
        })
        .await
    }
}

impl crate::Shop {
    /// A client of this shop's edge without a token.
    pub fn api(&self) -> Api {
        Api::new(self.http_url())
    }

    /// A client of this shop's edge with an admin token.
    pub fn admin_api(&self) -> Api {
        self.api().with_token(self.admin_token())
    }

    /// A client of this shop's edge as `customer`.
    pub fn customer_api(&self, customer: &str) -> Api {
        self.api().with_token(self.customer_token(customer))
    }

    /// A product with `on_hand` units, created by an admin, once every
    /// service has taken it in (checkout prices orders from its own
    /// replica of the catalog, fed by product events).
    pub async fn stocked_product(&self, sku: &str, price_minor: i64, on_hand: i64) -> Product {
        let product = self
            .admin_api()
            .stocked_product(sku, price_minor, on_hand)
            .await;
        self.wait_consumers_idle(Duration::from_secs(20)).await;
        product
    }

    /// This shop's streams, as `ops` sees them.
    pub async fn streams(&self) -> crate::Streams {
        crate::Streams::connect(self.nats()).await
    }

    /// Waits until the services have handled everything they were sent:
    /// every durable consumer they declare exists and is idle. A service
    /// answers `/readyz` before it has declared its consumers (it may wait
    /// for another team's stream), so idle alone can pass before it reads.
    pub async fn wait_consumers_idle(&self, within: Duration) {
        let services = self.service_names();
        let streams = self.streams().await;
        crate::wait_until(
            within,
            "every service's durable consumers are declared and idle",
            || async {
                streams.durables_declared(&services).await && streams.consumers_idle().await
            },
        )
        .await;
    }
}
