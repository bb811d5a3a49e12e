//! A basket changed behind the page's back (another tab, an admin's new
//! price) is not ordered unseen: the page shows it and waits for the
//! customer to press again.

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
