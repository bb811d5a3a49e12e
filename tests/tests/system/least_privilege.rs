//! Least privilege on the broker (issue #7): each service's NATS user may
//! do exactly what its code needs, derived from the consumer declarations
//! in `contracts`, and nothing beyond. The first test checks
//! `nats/users.conf` against that derivation; the others prove the
//! refusals against a real nats-server running the real users: a service
//! cannot read a stream it does not consume, pull from or redefine another
//! service's durable consumer, change another team's stream or purge or
//! delete any, listen to another service's inbox; the edge publishes no
//! event and declares no stream (`refusals.rs`, with the helpers below).
//! Its last tests start a real service before the owner of a stream it
//! reads and show it waits for it. (Publishing another team's events is
//! refused in `permissions.rs`, reading dead letters in `dlq_privilege.rs`.)

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream;
use bazaar_testkit::{ConnectionEvents, TestNats};
use contracts::consumers::{self, Reading, CONSUMERS};
use contracts::subjects::{dlq_subject, evt, ops, DLQ_STREAM, EDGE_API};
use contracts::Team;
use platform::streams;

mod refusals;

// ---- users.conf against the declarations -----------------------------------------

/// How the code says `service` reads (`contracts::consumers`); a new
/// consumer must also be granted in `nats/users.conf` before it can run.
fn reading(service: &str) -> Reading {
    match consumers::of(service) {
        Some(c) => c.reading,
        None => panic!("{service} consumes nothing"),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Grants {
    publish_allow: BTreeSet<String>,
    publish_deny: BTreeSet<String>,
    subscribe_allow: BTreeSet<String>,
}

/// What `service`'s user needs: derived from the ownership table and
/// `contracts::consumers`, the way `nats/users.conf` explains it.
fn needed(service: &str) -> Grants {
    let api = |rest: String| format!("$JS.API.{rest}");
    let team = Team::ALL.into_iter().find(|t| t.service() == service);
    let mut g = Grants::default();
    let mut publish = |s: String| g.publish_allow.insert(s);
    match team {
        Some(team) => {
            publish(team.event_prefix().to_owned());
            // Replies to the edge's requests, also after a reconnect, when
            // `allow_responses` no longer knows the request (users.conf).
            publish(format!("{}.>", platform::nats::inbox_prefix(EDGE_API)));
            for verb in ["CREATE", "UPDATE", "INFO"] {
                publish(api(format!("STREAM.{verb}.{}", team.stream())));
            }
        }
        None => {
            publish("cmd.>".to_owned());
            publish("qry.>".to_owned());
        }
    }
    // Replies to the operators' control requests, also after a reconnect.
    publish(format!(
        "{}.>",
        platform::nats::inbox_prefix(platform::nats::OPS_USER)
    ));
    publish(dlq_subject(service, ">"));
    publish(format!("{}.progress.>", ops::replay(service)));
    // The DLQ: create it if missing and see it, never read it (dlq_privilege.rs).
    for verb in ["CREATE", "INFO"] {
        publish(api(format!("STREAM.{verb}.{DLQ_STREAM}")));
    }
    let reads: BTreeSet<&str> = consumers::of(service)
        .map(|c| c.reads.iter().map(|r| r.from.stream()).collect())
        .unwrap_or_default();
    for stream in reads {
        publish(api(format!("STREAM.INFO.{stream}")));
        match reading(service) {
            Reading::Durable => {
                for rest in [
                    format!("CONSUMER.CREATE.{stream}.{service}"),
                    format!("CONSUMER.CREATE.{stream}.{service}.>"),
                    format!("CONSUMER.INFO.{stream}.{service}"),
                    format!("CONSUMER.MSG.NEXT.{stream}.{service}"),
                ] {
                    publish(api(rest));
                }
                publish(format!("$JS.ACK.{stream}.{service}.>"));
            }
            Reading::Ordered => {
                // Named creates only (see streams::ordered_consumer_name).
                for rest in [
                    format!("CONSUMER.CREATE.{stream}.>"),
                    format!("CONSUMER.INFO.{stream}.*"),
                    format!("CONSUMER.MSG.NEXT.{stream}.*"),
                    // async-nats deletes an ordered consumer it replaces.
                    format!("CONSUMER.DELETE.{stream}.*"),
                ] {
                    publish(api(rest));
                }
                // The wildcards above must not reach another service's durable.
                for other in durable_readers(stream).filter(|d| *d != service) {
                    for rest in [
                        format!("CONSUMER.CREATE.{stream}.{other}"),
                        format!("CONSUMER.CREATE.{stream}.{other}.>"),
                        format!("CONSUMER.INFO.{stream}.{other}"),
                        format!("CONSUMER.MSG.NEXT.{stream}.{other}"),
                        format!("CONSUMER.DELETE.{stream}.{other}"),
                    ] {
                        g.publish_deny.insert(api(rest));
                    }
                }
            }
        }
    }
    let mut subscribe = |s: String| g.subscribe_allow.insert(s);
    subscribe(format!("{}.>", platform::nats::inbox_prefix(service)));
    if let Some(team) = team {
        subscribe(format!("cmd.{}.>", team.name()));
        subscribe(format!("qry.{}.>", team.name()));
    }
    subscribe(ops::replay(service));
    subscribe(ops::redeliver(service));
    subscribe("$SRV.*".to_owned());
    subscribe(format!("$SRV.*.{service}"));
    subscribe(format!("$SRV.*.{service}.*"));
    g
}

/// The services with a durable consumer on `stream` (its name is theirs).
fn durable_readers(stream: &str) -> impl Iterator<Item = &'static str> + '_ {
    CONSUMERS
        .iter()
        .filter(move |c| {
            reading(c.service) == Reading::Durable
                && c.reads.iter().any(|r| r.from.stream() == stream)
        })
        .map(|c| c.service)
}

/// `user -> grants`, parsed from `nats/users.conf` (comments dropped).
fn users_conf() -> Vec<(String, Grants)> {
    let conf: String = platform::nats_server::USERS_CONF
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let list = |text: &str, key: &str| -> BTreeSet<String> {
        let Some((_, rest)) = text.split_once(key) else {
            return BTreeSet::new();
        };
        let inside = rest
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(inside, _)| inside)
            .unwrap_or_default();
        inside
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    conf.split("user:")
        .skip(1)
        .filter_map(|block| {
            let name = block.split('"').nth(1)?.to_owned();
            let (publish, subscribe) = block.split_once("publish:")?.1.split_once("subscribe:")?;
            let grants = Grants {
                publish_allow: list(publish, "allow:"),
                publish_deny: list(publish, "deny:"),
                subscribe_allow: list(subscribe, "allow:"),
            };
            Some((name, grants))
        })
        .collect()
}

#[test]
fn users_conf_grants_each_service_exactly_what_its_declared_reads_need() {
    let users = users_conf();
    let names: BTreeSet<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(
        names,
        platform::nats_server::USERS.into_iter().collect(),
        "nats/users.conf and platform::nats_server::USERS disagree"
    );
    let mut failures = Vec::new();
    let services = Team::ALL.map(|t| t.service()).into_iter().chain([EDGE_API]);
    for service in services {
        let Some((_, actual)) = users.iter().find(|(u, _)| u == service) else {
            continue;
        };
        let want = needed(service);
        let diff = |what: &str, have: &BTreeSet<String>, want: &BTreeSet<String>| {
            let extra: Vec<_> = have.difference(want).collect();
            let missing: Vec<_> = want.difference(have).collect();
            (!extra.is_empty() || !missing.is_empty()).then(|| {
                format!("{service} {what}: beyond what it needs {extra:?}; missing {missing:?}")
            })
        };
        failures.extend(diff(
            "publish allow",
            &actual.publish_allow,
            &want.publish_allow,
        ));
        failures.extend(diff(
            "publish deny",
            &actual.publish_deny,
            &want.publish_deny,
        ));
        failures.extend(diff(
            "subscribe allow",
            &actual.subscribe_allow,
            &want.subscribe_allow,
        ));
        // Belt and braces against a future edit that widens a rule.
        for subject in actual.publish_allow.iter().chain(&actual.subscribe_allow) {
            if subject == ">" || subject == "$JS.API.>" || subject == "_INBOX.>" {
                failures.push(format!("{service} may use {subject:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---- shared by the tests on a real broker ----------------------------------------

/// The API timeout as a refused request never gets an answer.
pub(crate) const REFUSED_WITHIN: Duration = Duration::from_millis(750);

pub(crate) fn js_of(client: &async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(REFUSED_WITHIN)
        .build(client.clone())
}

/// A broker with every team's stream and the DLQ, one order placed and one
/// product created, declared as `ops`.
pub(crate) async fn broker() -> (TestNats, jetstream::Context) {
    let nats = TestNats::start();
    let js = js_of(&nats.connect().await);
    for team in Team::ALL {
        streams::ensure(&js, streams::event_stream(team, 1))
            .await
            .expect("declaring a team's stream as ops");
    }
    streams::ensure_dlq(&js, 1)
        .await
        .expect("declaring the DLQ");
    for subject in [evt::ORDER_PLACED_V1, evt::PRODUCT_CREATED_V1] {
        js.publish(subject, "{}".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    (nats, js)
}

/// Waits for the broker's permissions violation that names `subject`.
pub(crate) async fn violation_naming(events: &mut ConnectionEvents, subject: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while tokio::time::Instant::now() < deadline {
        let text = events.permission_violation(Duration::from_secs(5)).await;
        if text.contains(subject) {
            return;
        }
        seen.push(text);
    }
    panic!("no permissions violation names {subject}; saw {seen:?}");
}
