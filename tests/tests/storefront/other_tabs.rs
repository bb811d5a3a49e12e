//! What another tab does is not done unseen: a basket changed behind the
//! page's back (another tab, an admin's new price) is shown, not ordered,
//! until the customer presses again; a sign-in as someone else in another
//! tab is said and followed.

use bazaar_testkit::browser::ChromeDriver;
use fantoccini::Locator;
use serde_json::json;

use super::page::Page;
use super::{latest_order, shop_with_a_keyboard, DESKTOP};

#[tokio::test]
async fn a_basket_changed_in_another_tab_is_shown_not_ordered_until_pressed_again() {
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let (shop, keyboard) = shop_with_a_keyboard().await;
    let erin = shop.customer_api("erin");
    erin.put_basket_item(keyboard.id, 1).await.expect(200);
    let page = Page::open(&driver, &shop, DESKTOP).await;

    page.run("changed-basket", async {
        page.sign_in_as("erin").await;
        page.open_basket_listing("Mechanical keyboard").await;
        page.fill_checkout_form("tok_visa").await;
        // Another tab of hers wants two.
        erin.put_basket_item(keyboard.id, 2).await.expect(200);

        page.click(Locator::Id("place-order")).await;
        page.wait_text("#notice", "the page says the basket changed", |t| {
            t.starts_with("Nothing was ordered yet: your basket changed")
        })
        .await;
        let shown = page
            .js(
                "return document.querySelector('#basket-lines input.qty').value",
                vec![],
            )
            .await;
        assert_eq!(
            shown,
            json!("2"),
            "the basket view shows what the shop holds"
        );
        let orders = erin.orders(None, None).await.expect(200);
        assert_eq!(orders.value()["items"], json!([]), "nothing was ordered");

        page.click(Locator::Id("place-order")).await;
        page.wait_accepted().await;
        let order = latest_order(&shop, "erin").await;
        assert_eq!(order.lines.len(), 1, "{order:?}");
        assert_eq!(order.lines[0].quantity, 2, "{order:?}");
    })
    .await;
    page.close().await;
}

#[tokio::test]
async fn signing_in_as_someone_else_in_another_tab_is_said_and_followed() {
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let (shop, keyboard) = shop_with_a_keyboard().await;
    shop.customer_api("gus")
        .put_basket_item(keyboard.id, 3)
        .await
        .expect(200);
    let page = Page::open(&driver, &shop, DESKTOP).await;

    page.run("other-tab", async {
        page.sign_in_as("fay").await;
        page.click(Locator::Id("basket-button")).await;
        page.wait_text("#basket-empty", "fay's basket is empty", |t| !t.is_empty())
            .await;
        let first = page.open_second_tab().await;
        page.sign_in_as("gus").await;
        page.switch_to(first).await;

        page.wait_text("#who", "the first tab follows the sign-in", |t| {
            t == "Signed in as gus"
        })
        .await;
        page.wait_text("#notice", "the first tab says why", |t| {
            t.starts_with("Signed in as gus in another tab")
        })
        .await;
        page.wait_text("#basket-count", "the badge counts gus's basket", |t| {
            t == "3"
        })
        .await;
        page.open_basket_listing("Mechanical keyboard").await;
    })
    .await;
    page.close().await;
}
