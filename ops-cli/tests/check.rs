//! `bazaar check` against the real shop: a clean history passes, a forged
//! second outcome for a rejected order fails naming the rule.

use std::process::{Output, Stdio};
use std::time::Duration;

use bazaar_testkit::api::NewOrder;
use bazaar_testkit::{wait_until, Api, Service, Shop};
use contracts::checkout::OrderConfirmedV1;
use contracts::subjects::CHECKOUT_SVC;
use uuid::Uuid;

const BAZAAR: &str = env!("CARGO_BIN_EXE_bazaar");
const SETTLE: Duration = Duration::from_secs(60);

async fn bazaar(shop: &Shop, args: &[&str]) -> Output {
    tokio::process::Command::new(BAZAAR)
        .args(args)
        .env_remove("BAZAAR_DATA_DIR")
        .env("NATS_URL", shop.nats().url())
        .env("NATS_USER", "ops")
        .env("NATS_PASSWORD", shop.nats().password_for("ops"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("bazaar runs")
}

fn shown(output: &Output) -> String {
    format!(
        "code {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn order(customer: &Api, product: Uuid, token: &str) -> Uuid {
    let answer = customer
        .place_order(&NewOrder::of(product, 1, token), None)
        .await
        .expect_one_of(&[201, 202]);
    answer
        .value()
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("an order without an id: {}", answer.text()))
}

async fn status_of(customer: &Api, id: Uuid) -> String {
    let answer = customer.order(id).await;
    if answer.status() != 200 {
        return String::new();
    }
    answer
        .value()
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned()
}

async fn wait_final(customer: &Api, id: Uuid) -> String {
    wait_until(SETTLE, &format!("order {id} is settled"), || async {
        matches!(
            status_of(customer, id).await.as_str(),
            "shipped" | "rejected" | "cancelled"
        )
    })
    .await;
    status_of(customer, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_settled_history_and_names_a_forged_second_outcome() {
    // Arrange: a shipped, a declined and a cancelled order, all settled.
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "0")
        .start()
        .await;
    let lamp = shop.stocked_product("LAMP-1", 1999, 100).await;
    let alice = shop.customer_api("alice");
    let shipped = order(&alice, lamp.id, "tok_visa").await;
    let declined = order(&alice, lamp.id, "tok_declined").await;
    let cancelled = order(&alice, lamp.id, "tok_visa").await;
    alice.cancel_order(cancelled).await;
    assert_eq!(wait_final(&alice, shipped).await, "shipped");
    assert_eq!(wait_final(&alice, declined).await, "rejected");
    wait_final(&alice, cancelled).await;
    shop.wait_consumers_idle(SETTLE).await;
    let streams = shop.streams().await;

    // Act + assert: nothing is wrong.
    let clean = bazaar(&shop, &["check", "--settled", "--json"]).await;
    assert_eq!(clean.status.code(), Some(0), "{}", shown(&clean));
    let report: serde_json::Value = serde_json::from_slice(&clean.stdout).expect("JSON");
    assert_eq!(report["orders"], 3, "{report}");
    assert_eq!(report["violations"], serde_json::json!([]), "{report}");

    // Arrange: a second outcome for the rejected order, with a fresh id.
    let data = OrderConfirmedV1 {
        order_id: declined,
        customer_id: "alice".to_owned(),
    };
    streams.publish_event(CHECKOUT_SVC, data).await;

    // Act + assert: check fails and names the rule and the order.
    let broken = bazaar(&shop, &["check", "--settled", "--json"]).await;
    assert_eq!(broken.status.code(), Some(1), "{}", shown(&broken));
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).expect("JSON");
    let violations = report["violations"].as_array().expect("violations");
    assert!(
        violations
            .iter()
            .any(|v| v["rule"] == "not-confirmed-and-rejected"
                && v["order_id"] == declined.to_string()),
        "{report}"
    );
    let text = bazaar(&shop, &["check"]).await;
    assert_eq!(text.status.code(), Some(1), "{}", shown(&text));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("not-confirmed-and-rejected"),
        "{}",
        shown(&text)
    );
}
