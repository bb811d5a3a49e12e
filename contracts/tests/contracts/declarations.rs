//! The consumer declarations (`contracts::consumers`) against the
//! catalogue: every declared version exists and comes from the team that
//! owns it, every published version has a reader, and a reader of one
//! major version of an event reads the other one still in history too.

use contracts::consumers::{
    Consumer, OutsideUse, OwnEvents, Reading, Reads, CONSUMERS, PUBLISHED_FOR_OUTSIDE_USE,
    READS_OWN_EVENTS,
};
use contracts::subjects::{evt, WAREHOUSE_SVC};
use contracts::{Team, EVENTS};

/// A catalogue entry, as far as declarations care.
struct Published {
    subject: &'static str,
    team: Team,
    superseded_by: Option<&'static str>,
}

fn catalogue() -> Vec<Published> {
    EVENTS
        .iter()
        .map(|d| Published {
            subject: d.subject,
            team: d.team,
            superseded_by: d.upcast.as_ref().map(|u| u.to),
        })
        .collect()
}

const HOW: &str = "(contracts/src/consumers.rs; see contracts/README.md)";

/// What is wrong with what the consumers declare they read.
fn declared_problems(
    published: &[Published],
    consumers: &[Consumer],
    own: &[OwnEvents],
) -> Vec<String> {
    let mut problems = Vec::new();
    for c in consumers {
        if c.team.is_some_and(|t| t.service() != c.service) {
            problems.push(format!(
                "{}: declared with the team of {:?} {HOW}",
                c.service, c.team
            ));
        }
        let mut streams: Vec<Team> = c.reads.iter().map(|r| r.from).collect();
        streams.sort();
        streams.dedup();
        if streams.len() != c.reads.len() {
            problems.push(format!(
                "{} declares two `Reads` from one stream: its durable consumer on a stream is \
                 named after the service, so merge them into one {HOW}",
                c.service
            ));
        }
        for Reads { from, subjects } in c.reads {
            for subject in *subjects {
                let Some(p) = published.iter().find(|p| p.subject == *subject) else {
                    problems.push(format!(
                        "{} declares it reads {subject}, which is not in `catalog::EVENTS`: \
                         nobody publishes it. Use the subject constant of an event in the \
                         catalogue, or add the event (type, subject, catalogue entry, schema, \
                         sample) first {HOW}",
                        c.service
                    ));
                    continue;
                };
                if Team::owning(subject) != Some(p.team) {
                    problems.push(format!(
                        "{subject} is catalogued under the {} team but its subject names \
                         another: only the owning team publishes on `evt.<team>.>`",
                        p.team.name()
                    ));
                }
                if p.team != *from {
                    problems.push(format!(
                        "{}: {subject} is published by the {} team, on its stream {}, but is \
                         declared under the {} stream: move it to the `Reads` of the stream \
                         it is on {HOW}",
                        c.service,
                        p.team.name(),
                        p.team.stream(),
                        from.name()
                    ));
                }
                let allowed = own.iter().any(|o| o.service == c.service);
                if c.team == Some(p.team) && !allowed {
                    problems.push(format!(
                        "{} reads {subject}, an event of its own team: a team acts on its own \
                         state directly, not through its own events, and another team's event \
                         must be published by that team. If this is a read model rebuilt from \
                         the stream, add {} to `READS_OWN_EVENTS` with the reason {HOW}",
                        c.service, c.service
                    ));
                }
            }
        }
    }
    problems
}

/// Published versions nobody reads, and readers of only one major.
fn coverage_problems(
    published: &[Published],
    consumers: &[Consumer],
    outside: &[OutsideUse],
) -> Vec<String> {
    let readers = |subject: &str| -> Vec<&'static str> {
        consumers
            .iter()
            .filter(|c| c.subjects().any(|s| s == subject))
            .map(|c| c.service)
            .collect()
    };
    let mut problems = Vec::new();
    for p in published {
        let outside_use = outside.iter().find(|o| o.subject == p.subject);
        if readers(p.subject).is_empty() && outside_use.is_none_or(|o| o.reason.trim().is_empty()) {
            problems.push(format!(
                "{} (published by {}) has no consumer: declare the services that read it, or \
                 list it in `PUBLISHED_FOR_OUTSIDE_USE` with the reason it is published, or \
                 stop publishing it {HOW}",
                p.subject,
                p.team.service()
            ));
        }
        let Some(next) = p.superseded_by else {
            continue;
        };
        let (old, new) = (readers(p.subject), readers(next));
        for service in new.iter().filter(|s| !old.contains(s)) {
            problems.push(format!(
                "{service} reads {next} but not {}, the version it supersedes: the stream still \
                 holds history of the old version. Declare both and decode the old one through its \
                 upcaster {HOW}",
                p.subject
            ));
        }
        for service in old.iter().filter(|s| !new.contains(s)) {
            problems.push(format!(
                "{service} reads {} but not its successor {next}: once the producer switches it \
                 misses every new event. Declare both and handle the new one {HOW}",
                p.subject
            ));
        }
    }
    for o in outside {
        if !published.iter().any(|p| p.subject == o.subject) {
            problems.push(format!(
                "`PUBLISHED_FOR_OUTSIDE_USE` lists {}, which is not in `catalog::EVENTS` {HOW}",
                o.subject
            ));
        }
    }
    problems
}

#[test]
fn every_declared_subject_is_in_the_catalogue_and_published_by_its_owning_team() {
    let problems = declared_problems(&catalogue(), CONSUMERS, READS_OWN_EVENTS);
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn every_published_event_has_a_consumer_or_is_published_for_outside_use() {
    let problems = coverage_problems(&catalogue(), CONSUMERS, PUBLISHED_FOR_OUTSIDE_USE);
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn every_service_is_declared_once() {
    let mut services: Vec<&str> = CONSUMERS.iter().map(|c| c.service).collect();
    services.sort_unstable();
    let before = services.len();
    services.dedup();
    assert_eq!(services.len(), before, "a service is declared twice {HOW}");
}

// ---- the checks themselves, on made-up declarations -------------------------

fn published(subject: &'static str, team: Team) -> Published {
    Published {
        subject,
        team,
        superseded_by: None,
    }
}

fn warehouse_reading(subjects: &'static [&'static str]) -> [Consumer; 1] {
    let reads: &'static [Reads] = Box::leak(Box::new([Reads {
        from: Team::Checkout,
        subjects,
    }]));
    [Consumer {
        service: WAREHOUSE_SVC,
        team: Some(Team::Warehouse),
        reading: Reading::Durable,
        reads,
    }]
}

#[test]
fn a_declared_subject_missing_from_the_catalogue_is_reported() {
    let problems = declared_problems(
        &[published(evt::ORDER_CONFIRMED_V1, Team::Checkout)],
        &warehouse_reading(&[evt::ORDER_CONFIRMED_V1, evt::ORDER_PLACED_V2]),
        &[],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("evt.checkout.order.placed.v2, which is not in"));
}

#[test]
fn a_service_reading_its_own_teams_events_is_reported_unless_allowed() {
    let catalogue = [published(evt::STOCK_RESERVED_V1, Team::Warehouse)];
    let reads: &'static [Reads] = &[Reads {
        from: Team::Warehouse,
        subjects: &[evt::STOCK_RESERVED_V1],
    }];
    let consumer = [Consumer {
        service: WAREHOUSE_SVC,
        team: Some(Team::Warehouse),
        reading: Reading::Durable,
        reads,
    }];

    let refused = declared_problems(&catalogue, &consumer, &[]);
    let allowed = declared_problems(
        &catalogue,
        &consumer,
        &[OwnEvents {
            service: WAREHOUSE_SVC,
            reason: "a read model",
        }],
    );

    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("an event of its own team"));
    assert!(allowed.is_empty(), "{allowed:?}");
}

#[test]
fn an_event_nobody_reads_is_reported_unless_published_for_outside_use() {
    let catalogue = [published(evt::ORDER_CONFIRMED_V1, Team::Checkout)];
    let outside = [OutsideUse {
        subject: evt::ORDER_CONFIRMED_V1,
        reason: "the partners' order feed",
    }];

    let unread = coverage_problems(&catalogue, &[], &[]);
    let for_partners = coverage_problems(&catalogue, &[], &outside);

    assert_eq!(unread.len(), 1, "{unread:?}");
    assert!(unread[0].contains("has no consumer"));
    assert!(for_partners.is_empty(), "{for_partners:?}");
}

#[test]
fn a_reader_of_only_the_new_major_version_is_reported() {
    let catalogue = [
        Published {
            subject: evt::ORDER_PLACED_V1,
            team: Team::Checkout,
            superseded_by: Some(evt::ORDER_PLACED_V2),
        },
        published(evt::ORDER_PLACED_V2, Team::Checkout),
    ];

    let problems = coverage_problems(&catalogue, &warehouse_reading(&[evt::ORDER_PLACED_V2]), &[]);

    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("has no consumer"));
    assert!(problems[1].contains("the stream still holds history"));
}

#[test]
fn every_durable_reader_is_a_team_service_its_durables_are_named_after() {
    use contracts::subjects::durable;
    let names = [
        durable::CHECKOUT,
        durable::WAREHOUSE,
        durable::FINANCE,
        durable::PRODUCT,
    ];
    for consumer in contracts::consumers::durable_readers() {
        assert!(consumer.team.is_some(), "{} has no team", consumer.service);
        assert!(
            names.contains(&consumer.service),
            "{}'s durable consumers would not be named after it",
            consumer.service
        );
    }
}
