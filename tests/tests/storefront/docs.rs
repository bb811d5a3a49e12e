//! The shop's pages under its Content-Security-Policy: the API docs page
//! still lists the API, and neither page runs script injected as markup.

use bazaar_testkit::browser::ChromeDriver;
use bazaar_testkit::{wait_for, Shop};

use super::page::Page;
use super::{DESKTOP, UI};

#[tokio::test]
async fn the_docs_page_lists_the_api_and_no_page_runs_an_inline_script() {
    let Some(driver) = ChromeDriver::start().await else {
        return;
    };
    let shop = Shop::builder().start().await;
    let page = Page::open(&driver, &shop, DESKTOP).await;

    page.run("docs-and-policy", async {
        page.open_path("/docs").await;
        page.wait_text("#desc", "the docs page reads the OpenAPI document", |t| {
            t.contains("(OpenAPI 3.1")
        })
        .await;
        let operations = wait_for(UI, "the docs page lists the operations", || async {
            let count = page
                .js("return document.querySelectorAll('.op').length;", vec![])
                .await
                .as_u64()?;
            (count >= 14).then_some(count)
        })
        .await;
        let styled = page
            .js(
                "return getComputedStyle(document.querySelector('.op')).borderTopStyle;",
                vec![],
            )
            .await;
        assert_eq!(styled, "solid", "the docs page's styles apply");
        assert!(
            !page.inline_script_runs().await,
            "an inline script ran on /docs ({operations} operations listed)"
        );

        page.sign_in_as("dora").await;
        assert!(
            !page.inline_script_runs().await,
            "an inline script ran on the storefront"
        );
    })
    .await;
    page.close().await;
}
