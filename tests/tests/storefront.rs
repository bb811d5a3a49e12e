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

use std::time::Duration;

use bazaar_testkit::browser::{ChromeDriver, Screen};
use bazaar_testkit::{Service, Shop};
use fantoccini::Locator;
use serde_json::json;

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
        let set_quantity = |n: u32| {
            page.js(
                "const q = document.querySelector('#basket-lines input.qty');\
                 q.value = String(arguments[0]); q.dispatchEvent(new Event('change'));",
                vec![json!(n)],
            )
        };
        // More than the 5 on sale: the line says so before any order.
        set_quantity(7).await;
        page.wait_text("#basket-lines", "the line says 5 are on sale", |t| {
            t.contains("only 5 available")
        })
        .await;
        set_quantity(3).await;
        page.wait_text("#basket-total", "three keyboards", |t| t == "€269.97")
            .await;
        assert!(!page.text("#basket-lines").await.contains("available"));
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
        // The order emptied the basket: the badge asks the shop, not the
        // page's memory.
        page.wait_text("#basket-count", "the badge shows the emptied basket", |t| {
            t == "0"
        })
        .await;

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

        // A link naming an order that is not theirs (or not at all) says
        // so, without the basket still under the error as if it were it.
        page.open_fragment(&format!("order={}", uuid::Uuid::now_v7()))
            .await;
        page.wait_text("#notice", "the page says the order is not there", |t| {
            t.starts_with("Could not load the order")
        })
        .await;
        let shown = page
            .js(
                "return ['results', 'detail', 'basket', 'order', 'orders']\
                 .filter((id) => !document.getElementById(id).hidden)",
                vec![],
            )
            .await;
        assert_eq!(shown, json!([]), "a view stays under the error");

        // A search the shop refuses (an offset past 10,000) leaves no
        // earlier results under its error.
        page.search_for("lamp").await;
        page.wait_text("#results-meta", "the search answers", |t| {
            t.starts_with("Nothing found")
        })
        .await;
        page.open_fragment("offset=20000").await;
        page.wait_text("#notice", "the page says the search failed", |t| {
            t.starts_with("Search failed")
        })
        .await;
        let left = page
            .js(
                "return document.getElementById('results-meta').textContent",
                vec![],
            )
            .await;
        assert_eq!(left, json!(""), "an earlier answer stays under the error");

        // A sign-in link cut short says so, and keeps the customer signed in.
        page.open_fragment("token=eyJhbGciOi").await;
        let who = page
            .wait_text("#who", "the page says the link is broken", |t| {
                t.starts_with("That sign-in link is broken")
            })
            .await;
        assert!(who.ends_with("Signed in as José 山田"), "{who:?}");
        // So does one whose token expired ({"sub":"zoe","exp":1}).
        page.open_fragment(
            "token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
             eyJzdWIiOiJ6b2UiLCJyb2xlIjoiY3VzdG9tZXIiLCJleHAiOjF9.c2ln",
        )
        .await;
        let who = page
            .wait_text("#who", "the page says the link expired", |t| {
                t.starts_with("That sign-in link has expired")
            })
            .await;
        assert!(who.ends_with("Signed in as José 山田"), "{who:?}");

        // The logo leads home without reloading the page (which would
        // drop what the customer typed).
        page.js("window.keptAcrossClicks = true;", vec![]).await;
        page.click(Locator::Css(".brand")).await;
        page.wait_text("#results-meta", "the home view shows the catalog", |t| {
            !t.is_empty()
        })
        .await;
        let kept = page
            .js("return window.keptAcrossClicks === true", vec![])
            .await;
        assert_eq!(kept, json!(true), "the logo reloaded the page");
    })
    .await;
    page.close().await;
}

/// An order page whose live updates the shop refuses (the customer holds
/// as many update streams open as allowed) says so, instead of standing
/// still as if nothing happened.
#[tokio::test]
async fn an_order_page_whose_updates_are_refused_says_live_updates_stopped() {
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let (shop, keyboard) = shop_with_a_keyboard().await;
    let carol = shop.customer_api("carol");
    let order = carol.place_order_of(keyboard.id, 1, "tok_visa").await;
    let path = format!("/api/v1/orders/{}/updates", order.id);
    let mut held = Vec::new();
    for _ in 0..32 {
        let stream = carol
            .request(reqwest::Method::GET, &path)
            .send()
            .await
            .expect("an updates stream");
        assert_eq!(stream.status(), 200);
        held.push(stream);
    }
    let page = Page::open(&driver, &shop, DESKTOP).await;

    page.run("updates-refused", async {
        page.sign_in_as("carol").await;
        page.open_fragment(&format!("order={}", order.id)).await;
        page.wait_text("#order-title", "the order opens", |t| {
            t.contains(&order.id.to_string())
        })
        .await;
        page.wait_text("#notice", "the page says live updates stopped", |t| {
            t.starts_with("Live updates of this order stopped")
        })
        .await;
    })
    .await;
    drop(held);
    page.close().await;
}

#[path = "storefront/catalog.rs"]
mod catalog;
#[path = "storefront/docs.rs"]
mod docs;
#[path = "storefront/other_tabs.rs"]
mod other_tabs;
#[path = "storefront/page.rs"]
mod page;

use catalog::{keyboard_in, latest_order, money, shop_with_a_keyboard};
use page::{Lost, Navigation, Page};
