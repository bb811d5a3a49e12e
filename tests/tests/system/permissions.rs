//! Ownership enforced by the broker (DESIGN §1): against a running shop,
//! no service can publish another team's events, and the edge none at all;
//! nor can a service wipe out another team's history through the
//! JetStream API.

use std::time::Duration;

use async_nats::jetstream;
use bazaar_testkit::{ConnectionEvents, Service, Shop};
use contracts::Team;

/// Publishes `subject` as a JetStream message and returns whether the
/// broker acknowledged it (a refused publish is never acknowledged).
async fn acknowledged(client: &async_nats::Client, subject: &str) -> bool {
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(750))
        .build(client.clone());
    match js.publish(subject.to_owned(), "{}".into()).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

/// Publishes every subject at once as `user` and asserts that the broker
/// refused each one: no ack, and a permissions violation naming it.
async fn assert_refused(shop: &Shop, user: &str, subjects: &[String]) {
    let (client, mut events): (_, ConnectionEvents) =
        shop.nats().connect_as_with_events(user).await;
    let acks = futures::future::join_all(subjects.iter().map(|s| acknowledged(&client, s))).await;
    for (subject, acked) in subjects.iter().zip(acks) {
        assert!(!acked, "{user} published {subject}");
    }
    let mut violations = Vec::new();
    for _ in subjects {
        violations.push(events.permission_violation(Duration::from_secs(5)).await);
    }
    for subject in subjects {
        assert!(
            violations.iter().any(|v| v.contains(subject.as_str())),
            "{user}: no violation names {subject}: {violations:?}"
        );
    }
}

#[tokio::test]
async fn no_service_can_publish_another_teams_events_and_the_edge_none_at_all() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let streams = shop.streams().await;
    let mut before = Vec::new();
    for team in Team::ALL {
        before.push(streams.message_count(team.stream()).await);
    }

    for owner in Team::ALL {
        let others: Vec<String> = Team::ALL
            .into_iter()
            .filter(|t| *t != owner)
            .map(|t| format!("evt.{}.order.placed.v1", t.name()))
            .collect();
        assert_refused(&shop, owner.service(), &others).await;
    }
    let every_team: Vec<String> = Team::ALL
        .into_iter()
        .map(|t| format!("evt.{}.anything.happened.v1", t.name()))
        .collect();
    assert_refused(&shop, Service::Edge.name(), &every_team).await;

    let mut after = Vec::new();
    for team in Team::ALL {
        after.push(streams.message_count(team.stream()).await);
    }
    assert_eq!(after, before, "a refused publish was stored");

    // The refusals are about ownership, not a broken connection: each
    // service still publishes its own team's events.
    let (client, _events) = shop
        .nats()
        .connect_as_with_events(Team::Finance.service())
        .await;
    assert!(acknowledged(&client, "evt.finance.permission.probe.v1").await);
}

#[tokio::test]
async fn no_service_can_purge_or_delete_another_teams_stream() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    shop.stocked_product("KEEP-1", 100, 5).await;
    let streams = shop.streams().await;
    let kept = streams.message_count(Team::Warehouse.stream()).await;
    assert!(kept > 0, "the warehouse has history to lose");

    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(750))
        .build(shop.nats().connect_as(Team::Product.service()).await);
    let purged = match js.get_stream(Team::Warehouse.stream()).await {
        Ok(stream) => stream.purge().await.is_ok(),
        Err(_) => false,
    };
    let deleted = js.delete_stream(Team::Warehouse.stream()).await.is_ok();

    assert!(!purged, "product-svc purged the warehouse's history");
    assert!(!deleted, "product-svc deleted the warehouse's stream");
    assert_eq!(streams.message_count(Team::Warehouse.stream()).await, kept);
}
