//! The storefront (`edge-api/static`) in a real browser: headless Chromium,
//! driven over WebDriver, against the whole shop as real processes. A
//! customer signs in through the `/#token=` link, searches, opens a
//! product, fills the basket, checks out and watches the order's live
//! status (server-sent events) settle, on a desktop window and on a
//! phone-sized one.
//!
//! Screenshots are kept under `target/test-artefacts/storefront-*.png`; the
//! test output names each one. Without Chromium and chromedriver the tests
//! are skipped with a notice, except with `CI=true`, where they fail and
//! say how to install them.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use bazaar_testkit::api::{Money, NewProduct, Order, Product};
use bazaar_testkit::browser::{artefact_path, notice, ChromeDriver, Screen};
use bazaar_testkit::{wait_for, wait_until, Service, Shop};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// How long the page may take to show what a click or a search asked for.
const UI: Duration = Duration::from_secs(15);
/// How long an order may take to settle on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(30);
/// A desktop browser window.
const DESKTOP: Screen = Screen::Desktop {
    width: 1280,
    height: 900,
};
/// Order statuses that mean the saga accepted the order.
const ACCEPTED: [&str; 2] = ["confirmed", "shipped"];

#[tokio::test]
async fn a_customer_finds_a_keyboard_orders_it_and_watches_it_confirmed_live() {
    // Arrange
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let (shop, keyboard) = shop_with_a_keyboard().await;
    let page = Page::open(&driver, &shop, DESKTOP).await;

    // Act and assert, step by step as a customer goes.
    page.run("desktop", async {
        page.sign_in_as("alice").await;
        page.find_the_keyboard().await;
        let card = page.text("#result-list").await;
        assert!(card.contains("Mechanical keyboard"), "{card:?}");
        assert!(card.contains("€89.99"), "price missing in {card:?}");
        assert!(
            card.contains("5 available"),
            "availability missing in {card:?}"
        );
        assert!(
            !card.contains("Desk lamp"),
            "a lamp is no keyboard: {card:?}"
        );

        page.click(Locator::LinkText("Mechanical keyboard")).await;
        page.wait_text("#detail-title", "the product detail opens", |t| {
            t == "Mechanical keyboard"
        })
        .await;
        assert_eq!(page.text("#detail-price").await, "€89.99");
        assert_eq!(page.text("#detail-available").await, "5 available");

        // Back returns to the search, Forward to the product.
        page.navigate(Navigation::Back).await;
        page.wait_text("#results-meta", "Back shows the search again", |t| {
            t.starts_with("1 found")
        })
        .await;
        let words = page
            .js("return document.getElementById('q').value", vec![])
            .await;
        assert_eq!(words, json!("keyboard"), "Back keeps the search words");
        page.navigate(Navigation::Forward).await;
        page.wait_text("#detail-title", "Forward opens the product again", |t| {
            t == "Mechanical keyboard"
        })
        .await;
        page.click(Locator::Id("add-button")).await;
        page.wait_text("#basket-count", "the basket counts one item", |t| t == "1")
            .await;

        let lines = page.open_basket_listing("Mechanical keyboard").await;
        assert!(lines.contains("€89.99"), "{lines:?}");
        page.assert_every_control_is_labelled("checkout-form").await;
        page.assert_every_control_is_labelled("search-form").await;
        page.fill_checkout_form("tok_visa").await;
        // The answer to the first press is lost on the way back (the order
        // is placed): the page must not claim it failed, and pressing again
        // must not place a second order (checked in the history below).
        page.place_order_losing_the_answer().await;
        page.click(Locator::Id("place-order")).await;

        let status = page.wait_accepted().await;
        let order = latest_order(&shop, "alice").await;
        assert!(ACCEPTED.contains(&order.status.as_str()), "{order:?}");
        assert_eq!(order.lines.len(), 1, "{order:?}");
        assert_eq!(order.lines[0].product_id, keyboard.id, "{order:?}");
        let total = order.total.as_ref().map(money).unwrap_or_default();
        let totals = page.text("#order-totals").await;
        assert!(
            totals.contains(&format!("Total {total}")),
            "the page shows {totals:?}, the API a total of {total} ({status})"
        );
        page.screenshot("storefront-desktop-order.png").await;

        page.click(Locator::Id("orders-button")).await;
        let history = page
            .wait_text("#order-list", "the order history lists the order", |t| {
                !t.is_empty()
            })
            .await;
        assert_eq!(history.lines().count(), 1, "{history:?}");
        assert!(history.contains(&total), "{history:?} lacks {total}");
        assert!(
            ACCEPTED.iter().any(|s| history.contains(s)),
            "{history:?} shows no accepted status"
        );
        let stale = page
            .js("return document.getElementById('notice').hidden", vec![])
            .await;
        assert_eq!(stale, json!(true), "a notice of another view stays shown");
        page.screenshot("storefront-desktop-orders.png").await;

        // The order took the basket's lines: the basket is empty again.
        page.click(Locator::Id("basket-button")).await;
        page.wait_text("#basket-total", "the basket is empty again", |t| {
            t == "€0.00"
        })
        .await;
        assert_eq!(page.text("#basket-lines").await, "");
        assert_eq!(page.text("#basket-count").await, "0");
    })
    .await;
    page.close().await;
}

#[tokio::test]
async fn on_a_phone_sized_screen_the_search_box_and_place_order_are_visible_and_usable() {
    // Arrange
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let (shop, _) = shop_with_a_keyboard().await;
    let page = Page::open(
        &driver,
        &shop,
        Screen::Phone {
            width: 390,
            height: 844,
        },
    )
    .await;

    page.run("phone", async {
        // Act
        page.sign_in_as("bob").await;
        // With the page's viewport meta tag, a phone lays it out at its own
        // width, not at a desktop's 980 pixels.
        let width = page.js("return window.innerWidth", vec![]).await;
        assert_eq!(width, json!(390), "the viewport is not phone-sized");

        // Assert: the search box can be seen, reached and typed into.
        page.assert_usable("#q", "the search box").await;
        page.find_the_keyboard().await;
        page.screenshot("storefront-phone-search.png").await;

        page.click(Locator::Css(
            r#"button[aria-label="Add Mechanical keyboard to basket"]"#,
        ))
        .await;
        page.wait_text("#basket-count", "the basket counts one item", |t| t == "1")
            .await;
        page.open_basket_listing("Mechanical keyboard").await;
        page.fill_checkout_form("tok_visa").await;

        // Assert: Place order can be seen and pressed, and it works.
        page.assert_usable("#place-order", "Place order").await;
        page.screenshot("storefront-phone-checkout.png").await;
        page.click(Locator::Id("place-order")).await;
        page.wait_accepted().await;
        page.assert_no_error_notice().await;
    })
    .await;
    page.close().await;
}

#[tokio::test]
async fn a_customer_adds_twice_quickly_sets_a_quantity_and_cancels_the_order_from_its_page() {
    // Arrange: a slow card keeps the order pending while the customer
    // looks at it.
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let shop = Shop::builder()
        .env_for(Service::Finance, "BAZAAR_SLOW_TOKEN_MS", "20000")
        .start()
        .await;
    let (shop, _) = keyboard_in(shop).await;
    let page = Page::open(&driver, &shop, DESKTOP).await;

    page.run("basket-and-cancel", async {
        page.sign_in_as("carol").await;
        page.find_the_keyboard().await;

        // Two clicks in one go: neither addition is lost.
        page.js(
            r#"const add = document.querySelector('button[aria-label="Add Mechanical keyboard to basket"]');
               add.click(); add.click();"#,
            vec![],
        )
        .await;
        page.wait_text("#basket-count", "both additions count", |t| t == "2")
            .await;

        // The basket shows the unit price, and a quantity can be set.
        let lines = page.open_basket_listing("Mechanical keyboard").await;
        assert!(lines.contains("€89.99") && lines.contains("€179.98"), "{lines:?}");
        page.js(
            "const q = document.querySelector('#basket-lines input.qty');\
             q.value = '3'; q.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await;
        page.wait_text("#basket-total", "three keyboards", |t| t == "€269.97")
            .await;
        assert_eq!(page.text("#basket-count").await, "3");

        // The order page offers a cancel while the order is pending.
        page.fill_checkout_form("tok_slow").await;
        page.click(Locator::Id("place-order")).await;
        page.wait_text("#order-status", "the order is pending", |t| t == "pending")
            .await;
        page.assert_usable("#order-cancel", "Cancel order").await;
        page.click(Locator::Id("order-cancel")).await;
        page.wait_text_within(SETTLE, "#order-status", "the order is cancelled", |t| {
            t == "cancelled"
        })
        .await;
        let hidden = page
            .js("return document.getElementById('order-cancel').hidden", vec![])
            .await;
        assert_eq!(hidden, json!(true), "a cancelled order offers no cancel");
        page.assert_no_error_notice().await;
        let order = latest_order(&shop, "carol").await;
        assert_eq!(order.status, "cancelled", "{order:?}");
        assert_eq!(order.lines[0].quantity, 3, "{order:?}");

        // A reload stays on the order; Back returns to the basket.
        page.navigate(Navigation::Reload).await;
        page.wait_text("#order-title", "the reloaded page shows the order", |t| {
            t == format!("Order {}", order.id)
        })
        .await;
        assert_eq!(page.text("#order-status").await, "cancelled");
        page.navigate(Navigation::Back).await;
        page.wait_text("#basket-title", "Back shows the basket", |t| {
            t == "Your basket"
        })
        .await;

        // Another customer's sign-in link, opened in this tab, signs in as them.
        page.sign_in_as("dave").await;

        // A declined card rejects the order; one press puts its items back.
        page.find_the_keyboard().await;
        page.click(Locator::Css(
            r#"button[aria-label="Add Mechanical keyboard to basket"]"#,
        ))
        .await;
        page.wait_text("#basket-count", "dave's basket has the keyboard", |t| {
            t == "1"
        })
        .await;
        page.open_basket_listing("Mechanical keyboard").await;
        page.fill_checkout_form("tok_declined").await;
        page.click(Locator::Id("place-order")).await;
        page.wait_text_within(SETTLE, "#order-status", "the order is rejected", |t| {
            t == "rejected"
        })
        .await;
        let items = page.text("#order-lines").await;
        assert!(items.contains("1 × Mechanical keyboard"), "{items:?}");
        assert_eq!(page.text("#basket-count").await, "0");
        page.assert_usable("#order-refill", "Put these items back in my basket")
            .await;
        page.click(Locator::Id("order-refill")).await;
        page.wait_text("#basket-lines", "the keyboard is back in the basket", |t| {
            t.contains("Mechanical keyboard")
        })
        .await;
        assert_eq!(page.text("#basket-count").await, "1");
    })
    .await;
    page.close().await;
}

/// The answer to Place order never comes. Until one does, the customer
/// can only ask about that order: the form keeps what was sent, through a
/// reload too, so a changed address or basket is not sent under the same
/// Idempotency-Key (which the shop would refuse, or answer with the first
/// order as if it were the new one). Once answered, the page says which
/// order was placed and what the basket still holds.
#[tokio::test]
async fn an_order_whose_answer_never_came_is_asked_about_not_changed_or_placed_again() {
    // Arrange
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let (shop, keyboard) = shop_with_a_keyboard().await;
    let bob = shop.customer_api("bob");
    bob.put_basket_item(keyboard.id, 1).await.expect(200);
    let page = Page::open(&driver, &shop, DESKTOP).await;

    page.run("unanswered", async {
        page.sign_in_as("bob").await;
        page.open_basket_listing("Mechanical keyboard").await;
        page.fill_checkout_form("tok_visa").await;

        // Act: the answer is lost (the order is placed).
        page.place_order_losing_the_answer().await;

        // Assert: what was sent stays, and cannot be changed.
        let form = "const f = document.getElementById('checkout-form');\
                    return [f.elements['city'].disabled, f.elements['city'].value,\
                            document.getElementById('place-order').textContent];";
        assert_eq!(
            page.js(form, vec![]).await,
            json!([true, "Berlin", "Ask again about this order"]),
            "the address can be changed while the order's answer is owed"
        );

        // A reload still asks about that order; the basket changes meanwhile.
        page.navigate(Navigation::Reload).await;
        page.click(Locator::Id("basket-button")).await;
        page.wait_text("#place-order", "the form still asks about the order", |t| {
            t == "Ask again about this order"
        })
        .await;
        bob.put_basket_item(keyboard.id, 2).await.expect(200);
        page.click(Locator::Id("place-order")).await;

        let said = page
            .wait_text(
                "#notice",
                "the page says the earlier order was placed",
                |t| t.contains("Your order was placed"),
            )
            .await;
        assert!(
            said.contains("Your basket still holds 2 item(s), not ordered"),
            "{said:?}"
        );
        page.wait_text("#basket-count", "the basket counts what is left", |t| {
            t == "2"
        })
        .await;
        let orders = bob.orders(Some(10), None).await.expect(200).value();
        let orders = orders["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(orders.len(), 1, "one order, not two: {orders:?}");
        assert_eq!(orders[0]["lines"][0]["quantity"], json!(1), "{orders:?}");
        assert_eq!(
            page.js(form, vec![]).await,
            json!([false, "Berlin", "Place order"]),
            "answered: the next order is a new one"
        );

        // This time the request itself is lost, and the basket changes
        // before the customer asks again: the order then takes the basket
        // as it is, and the page says so.
        page.click(Locator::Id("basket-button")).await;
        page.open_basket_listing("Mechanical keyboard").await;
        page.place_order_losing(Lost::Request).await;
        bob.put_basket_item(keyboard.id, 3).await.expect(200);
        page.click(Locator::Id("place-order")).await;
        let said = page
            .wait_text("#notice", "the page says which basket was ordered", |t| {
                t.contains("Your order was placed")
            })
            .await;
        assert!(
            said.contains("it had changed since you first pressed"),
            "{said:?}"
        );
        let orders = bob.orders(Some(10), None).await.expect(200).value();
        let orders = orders["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(orders.len(), 2, "{orders:?}");
        assert_eq!(orders[0]["lines"][0]["quantity"], json!(3), "{orders:?}");
    })
    .await;
    page.close().await;
}

/// Which way a Place order's exchange is lost.
#[derive(Debug, Clone, Copy)]
enum Lost {
    /// The shop placed the order; its answer never came back.
    Answer,
    /// The request never reached the shop.
    Request,
}

/// A new customer whose name is not ASCII: the page names them as they
/// are, and an empty basket or order history says so instead of showing
/// a checkout form or nothing.
#[tokio::test]
async fn a_new_customer_named_in_unicode_is_told_their_basket_and_history_are_empty() {
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let shop = Shop::builder().start().await;
    let page = Page::open(&driver, &shop, DESKTOP).await;

    page.run("new-customer", async {
        page.sign_in_as("José 山田").await;

        page.click(Locator::Id("orders-button")).await;
        page.wait_text("#orders-empty", "the history says it is empty", |t| {
            t.starts_with("You have no orders yet")
        })
        .await;

        page.click(Locator::Id("basket-button")).await;
        page.wait_text("#basket-empty", "the basket says it is empty", |t| {
            t.starts_with("Your basket is empty")
        })
        .await;
        let form = page
            .js(
                "return getComputedStyle(document.getElementById('checkout-form')).display",
                vec![],
            )
            .await;
        assert_eq!(
            form,
            json!("none"),
            "an empty basket shows the checkout form"
        );
    })
    .await;
    page.close().await;
}

/// A shop whose catalog has a stocked keyboard and a lamp, once search
/// finds the keyboard with its stock (the index is eventually consistent)
/// and every service has taken both in.
async fn shop_with_a_keyboard() -> (Shop, Product) {
    keyboard_in(Shop::builder().start().await).await
}

/// [`shop_with_a_keyboard`] on a shop already started.
async fn keyboard_in(shop: Shop) -> (Shop, Product) {
    let admin = shop.admin_api();
    let mut created = Vec::new();
    for (sku, name, category, price, stock) in [
        ("KB-001", "Mechanical keyboard", "computers", 8999, 5),
        ("LA-001", "Desk lamp", "home", 2999, 3),
    ] {
        let product: Product = admin
            .create_product(&NewProduct {
                sku: sku.to_owned(),
                name: name.to_owned(),
                description: format!("A {} for the tests", name.to_lowercase()),
                category: category.to_owned(),
                price: Money::eur(price),
            })
            .await
            .expect(201)
            .json();
        admin.set_stock(product.id, stock).await.expect(200);
        created.push(product);
    }
    let keyboard = created.swap_remove(0);
    wait_until(SETTLE, "search finds the keyboard in stock", || async {
        let page = shop.api().get("/api/v1/products?q=keyboard").await;
        let items = page.value()["items"].clone();
        items.as_array().is_some_and(|items| {
            items.len() == 1
                && items[0]["id"] == json!(keyboard.id)
                && items[0]["available"] == json!(5)
        })
    })
    .await;
    shop.wait_consumers_idle(Duration::from_secs(20)).await;
    (shop, keyboard)
}

/// The newest order of `customer`, as the API shows it.
async fn latest_order(shop: &Shop, customer: &str) -> Order {
    let page = shop.customer_api(customer).orders(Some(1), None).await;
    let mut orders: Vec<Order> = serde_json::from_value(page.expect(200).value()["items"].clone())
        .unwrap_or_else(|e| panic!("the orders page is not a list of orders: {e}"));
    assert!(!orders.is_empty(), "{customer} has no order");
    orders.swap_remove(0)
}

/// Euros as the page shows them in US English: `€1,234.50`.
fn money(m: &Money) -> String {
    assert_eq!(m.currency, "EUR", "the test formats euros only");
    let (units, cents) = (m.amount_minor / 100, m.amount_minor % 100);
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("€{grouped}.{cents:02}")
}

/// The browser's own buttons.
#[derive(Debug, Clone, Copy)]
enum Navigation {
    Back,
    Forward,
    Reload,
}

/// One browser session on one shop's storefront. Every helper waits with
/// a deadline and panics with what it was doing.
struct Page<'a> {
    client: Client,
    shop: &'a Shop,
    driver: &'a ChromeDriver,
}

impl<'a> Page<'a> {
    async fn open(driver: &'a ChromeDriver, shop: &'a Shop, screen: Screen) -> Page<'a> {
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(driver.capabilities(screen))
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot open a Chromium session: {e}\nchromedriver's log ends with:\n{}",
                    driver.log_tail()
                )
            });
        Page {
            client,
            shop,
            driver,
        }
    }

    /// Runs `steps`; when one fails, keeps a screenshot and prints what the
    /// page showed before the failure goes on.
    async fn run(&self, name: &str, steps: impl std::future::Future<Output = ()>) {
        if let Err(panic) = AssertUnwindSafe(steps).catch_unwind().await {
            let shot = self
                .try_screenshot(&format!("storefront-{name}-failure.png"))
                .await;
            let state = self
                .client
                .execute(
                    "const shown = [...document.querySelectorAll('main > section')]\
                       .filter((s) => !s.hidden).map((s) => s.id);\
                     const n = document.getElementById('notice');\
                     return `section ${shown} · notice ${n ? n.textContent : ''}`;",
                    vec![],
                )
                .await
                .map_or_else(|e| format!("nothing readable ({e})"), |v| v.to_string());
            notice(&format!(
                "storefront test {name} failed; the page showed {state}; screenshot: {shot:?}"
            ));
            std::panic::resume_unwind(panic);
        }
    }

    /// Opens the sign-in link, as `bazaar up` prints it, and waits until
    /// the page shows who is signed in.
    async fn sign_in_as(&self, customer: &str) {
        let base = self.shop.http_url();
        let url = format!("{base}/#token={}", self.shop.customer_token(customer));
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {base}: {e}"));
        self.wait_text("#who", "the page shows who is signed in", |t| {
            t == format!("Signed in as {customer}")
        })
        .await;
        let address = self.client.current_url().await.map(String::from);
        let address = address.unwrap_or_else(|e| panic!("no current URL: {e}"));
        assert!(
            !address.contains("token="),
            "the token stays in the address bar: {address}"
        );
    }

    /// Presses the browser's Back, Forward or Reload.
    async fn navigate(&self, to: Navigation) {
        let done = match to {
            Navigation::Back => self.client.back().await,
            Navigation::Forward => self.client.forward().await,
            Navigation::Reload => self.client.refresh().await,
        };
        done.unwrap_or_else(|e| panic!("cannot press {to:?}: {e}"));
    }

    /// Searches for "keyboard" and waits until the one keyboard is found.
    async fn find_the_keyboard(&self) {
        self.search_for("keyboard").await;
        self.wait_text("#results-meta", "one keyboard is found", |t| {
            t.starts_with("1 found")
        })
        .await;
    }

    async fn search_for(&self, words: &str) {
        let search = self.find(Locator::Css("input[type=search]")).await;
        search
            .clear()
            .await
            .unwrap_or_else(|e| panic!("cannot clear the search box: {e}"));
        search
            .send_keys(&format!("{words}{}", &*Key::Enter))
            .await
            .unwrap_or_else(|e| panic!("cannot type into the search box: {e}"));
    }

    /// Fills the checkout form with a German address and `card`.
    /// Opens the basket and waits until it lists `product`; its lines.
    async fn open_basket_listing(&self, product: &str) -> String {
        self.click(Locator::Id("basket-button")).await;
        self.wait_text("#basket-lines", "the basket lists the product", |t| {
            t.contains(product)
        })
        .await
    }

    async fn fill_checkout_form(&self, card: &str) {
        for (id, value) in [
            ("ship-name", "Ada Lovelace"),
            ("ship-line1", "12 Analytical St"),
            ("ship-city", "Berlin"),
            ("ship-postal", "10115"),
        ] {
            let input = self.find(Locator::Id(id)).await;
            input
                .clear()
                .await
                .unwrap_or_else(|e| panic!("cannot clear #{id}: {e}"));
            input
                .send_keys(value)
                .await
                .unwrap_or_else(|e| panic!("cannot fill #{id}: {e}"));
        }
        for (id, value) in [("ship-country", "DE"), ("card", card)] {
            self.find(Locator::Id(id))
                .await
                .select_by_value(value)
                .await
                .unwrap_or_else(|e| panic!("cannot choose {value} in #{id}: {e}"));
        }
    }

    /// Presses Place order with its answer lost on the way back (the order
    /// is placed), and waits until the page says the order may be placed.
    async fn place_order_losing_the_answer(&self) {
        self.place_order_losing(Lost::Answer).await;
    }

    /// Presses Place order with its request or its answer lost, and waits
    /// until the page says the order may be placed.
    async fn place_order_losing(&self, lost: Lost) {
        self.js(
            "const real = window.fetch; let lose = true; const before = arguments[0];\
             window.fetch = async (url, options) => {\
               const placing = url === '/api/v1/orders' && options && options.method === 'POST';\
               if (lose && placing && before) { lose = false; throw new TypeError('Failed to fetch'); }\
               const answer = await real(url, options);\
               if (lose && placing) { lose = false; throw new TypeError('Failed to fetch'); }\
               return answer;\
             };",
            vec![json!(matches!(lost, Lost::Request))],
        )
        .await;
        self.click(Locator::Id("place-order")).await;
        self.wait_text("#notice", "the page says the order may be placed", |t| {
            t.contains("It may have been placed")
        })
        .await;
    }

    /// Every input and select in the form has a `label[for=id]` with text.
    async fn assert_every_control_is_labelled(&self, form: &str) {
        let controls = self
            .js(
                "return [...document.getElementById(arguments[0]).querySelectorAll('input, select, textarea')]\
                   .filter((c) => c.type !== 'hidden')\
                   .map((c) => {\
                     const label = c.id ? document.querySelector(`label[for=\"${CSS.escape(c.id)}\"]`) : null;\
                     return { control: c.id || c.outerHTML, label: label ? label.textContent.trim() : '' };\
                   });",
                vec![json!(form)],
            )
            .await;
        let controls = controls.as_array().cloned().unwrap_or_default();
        assert!(!controls.is_empty(), "#{form} has no controls");
        let unlabelled: Vec<&Value> = controls
            .iter()
            .filter(|c| c["label"].as_str().is_none_or(str::is_empty))
            .collect();
        assert!(
            unlabelled.is_empty(),
            "controls in #{form} without a label[for=id]: {unlabelled:?}"
        );
    }

    /// The element can be seen whole within the viewport once scrolled to,
    /// nothing covers it, it is enabled, a finger can hit it (24 px, WCAG
    /// 2.5.8), and the page does not scroll sideways.
    async fn assert_usable(&self, css: &str, what: &str) {
        let element = self.find(Locator::Css(css)).await;
        let displayed = element.is_displayed().await.unwrap_or(false);
        assert!(displayed, "{what} ({css}) is not displayed");
        let box_ = self
            .js(
                "const el = document.querySelector(arguments[0]);\
                 el.scrollIntoView({ block: 'center', inline: 'nearest' });\
                 const r = el.getBoundingClientRect();\
                 const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);\
                 return { left: r.left, right: r.right, top: r.top, bottom: r.bottom,\
                          width: r.width, height: r.height,\
                          viewportWidth: window.innerWidth, viewportHeight: window.innerHeight,\
                          pageWidth: document.documentElement.scrollWidth,\
                          onTop: hit === el || el.contains(hit), disabled: !!el.disabled };",
                vec![json!(css)],
            )
            .await;
        let n = |key: &str| box_[key].as_f64().unwrap_or(f64::NAN);
        assert!(
            n("left") >= 0.0 && n("right") <= n("viewportWidth"),
            "{what} sticks out of the viewport sideways: {box_}"
        );
        assert!(
            n("top") >= 0.0 && n("bottom") <= n("viewportHeight"),
            "{what} is not within the viewport once scrolled to: {box_}"
        );
        assert!(
            n("width") >= 24.0 && n("height") >= 24.0,
            "{what} is too small to tap: {box_}"
        );
        assert_eq!(box_["onTop"], json!(true), "{what} is covered: {box_}");
        assert_eq!(box_["disabled"], json!(false), "{what} is disabled: {box_}");
        assert!(
            n("pageWidth") <= n("viewportWidth"),
            "the page scrolls sideways on this screen: {box_}"
        );
    }

    async fn assert_no_error_notice(&self) {
        let error = self
            .js(
                "const n = document.getElementById('notice');\
                 return !n.hidden && n.classList.contains('error') ? n.textContent : null;",
                vec![],
            )
            .await;
        assert_eq!(error, Value::Null, "the page shows an error");
    }

    /// Waits until the element is in the page.
    async fn find(&self, locator: Locator<'_>) -> Element {
        let described = format!("{locator:?}");
        self.client
            .wait()
            .at_most(UI)
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("{described} did not appear within {UI:?}: {e}"))
    }

    async fn click(&self, locator: Locator<'_>) {
        let described = format!("{locator:?}");
        self.find(locator)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {described}: {e}"));
    }

    /// The element's visible text (empty while it is hidden).
    async fn text(&self, css: &str) -> String {
        self.find(Locator::Css(css))
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("cannot read the text of {css}: {e}"))
    }

    /// Waits until the element's visible text passes `check`; returns it.
    async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.wait_text_within(UI, css, what, check).await
    }

    /// Waits until the order's live status says the saga accepted it.
    async fn wait_accepted(&self) -> String {
        self.wait_text_within(
            SETTLE,
            "#order-status",
            "the live status reaches confirmed or shipped",
            |t| ACCEPTED.contains(&t),
        )
        .await
    }

    async fn wait_text_within(
        &self,
        within: Duration,
        css: &str,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        wait_for(within, what, || async {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            let text = element.text().await.ok()?;
            check(&text).then_some(text)
        })
        .await
    }

    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("the script failed: {e}\n{script}"))
    }

    /// Keeps a screenshot under target/test-artefacts and says where.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.try_screenshot(name).await;
        path.unwrap_or_else(|e| panic!("cannot keep the screenshot {name}: {e}"))
    }

    async fn try_screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let png = self.client.screenshot().await.map_err(|e| e.to_string())?;
        let path = artefact_path(name);
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        notice(&format!("storefront screenshot: {}", path.display()));
        Ok(path)
    }

    /// Ends the session, which closes the browser, before chromedriver stops.
    async fn close(self) {
        if let Err(e) = self.client.close().await {
            notice(&format!(
                "closing the browser session failed: {e}\n{}",
                self.driver.log_tail()
            ));
        }
    }
}
