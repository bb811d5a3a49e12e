//! The storefront as a customer's browser sees it: one WebDriver session,
//! with helpers that wait with a deadline and panic with what they were
//! doing.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use bazaar_testkit::browser::{artefact_path, notice, ChromeDriver, Screen};
use bazaar_testkit::{wait_for, Shop};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::{ACCEPTED, SETTLE, UI};

/// Which way a Place order's exchange is lost.
#[derive(Debug, Clone, Copy)]
pub enum Lost {
    /// The shop placed the order; its answer never came back.
    Answer,
    /// The request never reached the shop.
    Request,
}

/// The browser's own buttons.
#[derive(Debug, Clone, Copy)]
pub enum Navigation {
    Back,
    Forward,
    Reload,
}

/// One browser session on one shop's storefront. Every helper waits with
/// a deadline and panics with what it was doing.
pub struct Page<'a> {
    client: Client,
    shop: &'a Shop,
    driver: &'a ChromeDriver,
}

impl<'a> Page<'a> {
    pub async fn open(driver: &'a ChromeDriver, shop: &'a Shop, screen: Screen) -> Page<'a> {
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
    pub async fn run(&self, name: &str, steps: impl std::future::Future<Output = ()>) {
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
    pub async fn sign_in_as(&self, customer: &str) {
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
    pub async fn navigate(&self, to: Navigation) {
        let done = match to {
            Navigation::Back => self.client.back().await,
            Navigation::Forward => self.client.forward().await,
            Navigation::Reload => self.client.refresh().await,
        };
        done.unwrap_or_else(|e| panic!("cannot press {to:?}: {e}"));
    }

    /// Types `#fragment` into the address bar of the page already open,
    /// as a customer pasting a link does.
    pub async fn open_fragment(&self, fragment: &str) {
        self.open_path(&format!("/#{fragment}")).await;
    }

    /// Opens the shop's `path` (`/docs`, `/#order=…`).
    pub async fn open_path(&self, path: &str) {
        let url = format!("{}{path}", self.shop.http_url());
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Opens a second tab and switches to it; the first tab's handle, to
    /// switch back with [`Page::switch_to`].
    pub async fn open_second_tab(&self) -> WindowHandle {
        let first = self
            .client
            .window()
            .await
            .unwrap_or_else(|e| panic!("no current tab: {e}"));
        let tab = self
            .client
            .new_window(true)
            .await
            .unwrap_or_else(|e| panic!("cannot open a tab: {e}"));
        self.switch_to(tab.handle).await;
        first
    }

    pub async fn switch_to(&self, tab: WindowHandle) {
        self.client
            .switch_to_window(tab)
            .await
            .unwrap_or_else(|e| panic!("cannot switch tabs: {e}"));
    }

    /// Adds an inline `<script>` to the page, as injected markup would;
    /// whether it ran.
    pub async fn inline_script_runs(&self) -> bool {
        let ran = self
            .js(
                "const s = document.createElement('script');\
                 s.textContent = 'window.__inlineRan = true;';\
                 document.body.append(s);\
                 return window.__inlineRan === true;",
                vec![],
            )
            .await;
        ran.as_bool()
            .unwrap_or_else(|| panic!("the check answered {ran}, not a boolean"))
    }

    /// Searches for "keyboard" and waits until the one keyboard is found.
    pub async fn find_the_keyboard(&self) {
        self.search_for("keyboard").await;
        self.wait_text("#results-meta", "one keyboard is found", |t| {
            t.starts_with("1 found")
        })
        .await;
    }

    pub async fn search_for(&self, words: &str) {
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

    /// Opens the basket and waits until it lists `product`; its lines.
    pub async fn open_basket_listing(&self, product: &str) -> String {
        self.click(Locator::Id("basket-button")).await;
        self.wait_text("#basket-lines", "the basket lists the product", |t| {
            t.contains(product)
        })
        .await
    }

    /// Fills the checkout form with a German address and `card`.
    pub async fn fill_checkout_form(&self, card: &str) {
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
    pub async fn place_order_losing_the_answer(&self) {
        self.place_order_losing(Lost::Answer).await;
    }

    /// Presses Place order with its request or its answer lost, and waits
    /// until the page says the order may be placed.
    pub async fn place_order_losing(&self, lost: Lost) {
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
    pub async fn assert_every_control_is_labelled(&self, form: &str) {
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
    pub async fn assert_usable(&self, css: &str, what: &str) {
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

    pub async fn assert_no_error_notice(&self) {
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
    pub async fn find(&self, locator: Locator<'_>) -> Element {
        let described = format!("{locator:?}");
        self.client
            .wait()
            .at_most(UI)
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("{described} did not appear within {UI:?}: {e}"))
    }

    pub async fn click(&self, locator: Locator<'_>) {
        let described = format!("{locator:?}");
        self.find(locator)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {described}: {e}"));
    }

    /// The element's visible text (empty while it is hidden).
    pub async fn text(&self, css: &str) -> String {
        self.find(Locator::Css(css))
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("cannot read the text of {css}: {e}"))
    }

    /// Waits until the element's visible text passes `check`; returns it.
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.wait_text_within(UI, css, what, check).await
    }

    /// Waits until the order's live status says the saga accepted it.
    pub async fn wait_accepted(&self) -> String {
        self.wait_text_within(
            SETTLE,
            "#order-status",
            "the live status reaches confirmed or shipped",
            |t| ACCEPTED.contains(&t),
        )
        .await
    }

    pub async fn wait_text_within(
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

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("the script failed: {e}\n{script}"))
    }

    /// Keeps a screenshot under target/test-artefacts and says where.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.try_screenshot(name).await;
        path.unwrap_or_else(|e| panic!("cannot keep the screenshot {name}: {e}"))
    }

    pub async fn try_screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let png = self.client.screenshot().await.map_err(|e| e.to_string())?;
        let path = artefact_path(name);
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        notice(&format!("storefront screenshot: {}", path.display()));
        Ok(path)
    }

    /// Ends the session, which closes the browser, before chromedriver stops.
    pub async fn close(self) {
        if let Err(e) = self.client.close().await {
            notice(&format!(
                "closing the browser session failed: {e}\n{}",
                self.driver.log_tail()
            ));
        }
    }
}
