//! What the teams published, read straight from the streams as the `ops`
//! user: every stored event with its headers, message counts, and whether
//! the services' durable consumers have caught up. System tests use it to
//! check every team's view of an order, not just the HTTP answers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use contracts::{Envelope, Event, EventContext, RawEnvelope, Team};
use futures::TryStreamExt;
use uuid::Uuid;

use crate::TestNats;

/// One message as the stream stores it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub stream: String,
    pub stream_seq: u64,
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Vec<u8>,
}

impl StoredEvent {
    /// A header's value, if the message carries it.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.as_str().to_owned())
    }

    /// The CloudEvents envelope, checked against its event type's payload
    /// (`contracts::catalog::decode_any`); panics when it is not valid.
    #[track_caller]
    pub fn envelope(&self) -> RawEnvelope {
        contracts::catalog::decode_any(&self.payload).unwrap_or_else(|e| {
            panic!(
                "{} #{} ({}) is not a valid Bazaar event: {e}: {}",
                self.stream,
                self.stream_seq,
                self.subject,
                String::from_utf8_lossy(&self.payload)
            )
        })
    }

    /// The `data` of the envelope, undecoded.
    pub fn data(&self) -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&self.payload)
            .ok()
            .and_then(|v| v.get("data").cloned())
            .unwrap_or_default()
    }

    /// The order the event is about (`data.order_id`), if any.
    pub fn order_id(&self) -> Option<Uuid> {
        self.data()
            .get("order_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
    }
}

/// The streams of one broker, as `ops` sees them.
#[derive(Clone)]
pub struct Streams {
    js: jetstream::Context,
}

impl Streams {
    /// Connects as `ops`.
    pub async fn connect(nats: &TestNats) -> Streams {
        Streams {
            js: jetstream::new(nats.connect().await),
        }
    }

    /// The JetStream context, for anything the helpers do not cover.
    pub fn js(&self) -> &jetstream::Context {
        &self.js
    }

    async fn stream(&self, name: &str) -> stream::Stream {
        self.js
            .get_stream(name)
            .await
            .unwrap_or_else(|e| panic!("stream {name}: {e}"))
    }

    /// How many messages the stream holds.
    pub async fn message_count(&self, name: &str) -> u64 {
        let mut stream = self.stream(name).await;
        let info = stream
            .info()
            .await
            .unwrap_or_else(|e| panic!("stream {name} info: {e}"));
        info.state.messages
    }

    /// Every message of the stream, oldest first.
    pub async fn events(&self, name: &str) -> Vec<StoredEvent> {
        let mut stream = self.stream(name).await;
        let state = stream
            .info()
            .await
            .unwrap_or_else(|e| panic!("stream {name} info: {e}"))
            .state
            .clone();
        let mut events = Vec::new();
        if state.messages == 0 {
            return events;
        }
        for seq in state.first_sequence..=state.last_sequence {
            match stream.get_raw_message(seq).await {
                Ok(m) => events.push(StoredEvent {
                    stream: name.to_owned(),
                    stream_seq: m.sequence,
                    subject: m.subject.to_string(),
                    headers: m.headers,
                    payload: m.payload.to_vec(),
                }),
                // Limits retention deletes nothing in a test; a gap would
                // be a deleted message, which is not an event any more.
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {}
                Err(e) => panic!("stream {name} message {seq}: {e}"),
            }
        }
        events
    }

    /// Every message of every team's stream.
    pub async fn all_events(&self) -> Vec<StoredEvent> {
        let mut all = Vec::new();
        for team in Team::ALL {
            all.extend(self.events(team.stream()).await);
        }
        all
    }

    /// Every event about `order_id` (`data.order_id`), on every team's stream.
    pub async fn events_of_order(&self, order_id: Uuid) -> Vec<StoredEvent> {
        self.all_events()
            .await
            .into_iter()
            .filter(|e| e.order_id() == Some(order_id))
            .collect()
    }

    /// How many distinct events (by CloudEvents id, so a message stored
    /// twice counts once) of each subject are about `order_id`.
    pub async fn order_event_counts(&self, order_id: Uuid) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::<String, BTreeSet<Uuid>>::new();
        for event in self.events_of_order(order_id).await {
            let id = event.envelope().id;
            seen.entry(event.subject).or_default().insert(id);
        }
        seen.into_iter().map(|(s, ids)| (s, ids.len())).collect()
    }

    /// Asserts that the events about `order_id` are exactly `expected`
    /// (subject, how many distinct events): every subject not named has
    /// none. Panics listing what the streams hold otherwise.
    #[track_caller]
    pub fn assert_order_events<'a>(
        &'a self,
        order_id: Uuid,
        expected: &'a [(&'a str, usize)],
    ) -> impl std::future::Future<Output = ()> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let actual = self.order_event_counts(order_id).await;
            let expected: BTreeMap<String, usize> = expected
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| ((*s).to_owned(), *n))
                .collect();
            assert_eq!(
                actual, expected,
                "the events about order {order_id} (asserted at {caller})"
            );
        }
    }

    /// How many events on `subject` are about `order_id`.
    pub async fn count_for_order(&self, subject: &str, order_id: Uuid) -> usize {
        let Some(team) = Team::owning(subject) else {
            panic!("{subject} is no team's event subject");
        };
        self.events(team.stream())
            .await
            .iter()
            .filter(|e| e.subject == subject && e.order_id() == Some(order_id))
            .count()
    }

    /// How many events on `subject` the stream of its team holds.
    pub async fn count(&self, subject: &str) -> usize {
        let Some(team) = Team::owning(subject) else {
            panic!("{subject} is no team's event subject");
        };
        self.events(team.stream())
            .await
            .iter()
            .filter(|e| e.subject == subject)
            .count()
    }

    /// Waits until `subject` has an event about `order_id`, and returns it.
    pub async fn wait_for_order_event(
        &self,
        subject: &str,
        order_id: Uuid,
        within: Duration,
    ) -> StoredEvent {
        let Some(team) = Team::owning(subject) else {
            panic!("{subject} is no team's event subject");
        };
        let what = format!("{subject} for order {order_id} is in {}", team.stream());
        crate::wait_for(within, &what, || async {
            self.events(team.stream())
                .await
                .into_iter()
                .find(|e| e.subject == subject && e.order_id() == Some(order_id))
        })
        .await
    }

    /// The durable consumers (the services' reactions) on every stream.
    pub async fn durable_consumers(&self) -> Vec<consumer::Info> {
        let mut all = Vec::new();
        for team in Team::ALL {
            let stream = self.stream(team.stream()).await;
            let infos: Vec<consumer::Info> = stream
                .consumers()
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("consumers of {}: {e}", team.stream()));
            all.extend(
                infos
                    .into_iter()
                    .filter(|i| i.config.durable_name.is_some()),
            );
        }
        all
    }

    /// Whether every durable consumer that `services` declare
    /// (`contracts::consumers`) exists on its stream, where that stream's
    /// owner is among `services` too (no other creates it). A service answers
    /// `/readyz` before it has declared them (it may be waiting for another
    /// team's stream), and until then [`Streams::consumers_idle`] cannot
    /// see what it has still to read (see `Shop::wait_consumers_idle`).
    pub async fn durables_declared(&self, services: &[&str]) -> bool {
        let readers =
            contracts::consumers::durable_readers().filter(|c| services.contains(&c.service));
        for reader in readers {
            let owned = reader
                .reads
                .iter()
                .filter(|r| services.contains(&r.from.service()));
            for reads in owned {
                let Ok(stream) = self.js.get_stream(reads.from.stream()).await else {
                    return false;
                };
                if stream.consumer_info(reader.service).await.is_err() {
                    return false;
                }
            }
        }
        true
    }

    /// Whether every durable consumer has been delivered everything and
    /// acknowledged it (each service has handled all it was sent).
    pub async fn consumers_idle(&self) -> bool {
        self.durable_consumers()
            .await
            .iter()
            .all(|i| i.num_pending == 0 && i.num_ack_pending == 0)
    }

    /// Waits until every durable consumer is idle.
    pub async fn wait_consumers_idle(&self, within: Duration) {
        crate::wait_until(within, "every service's consumers are idle", || {
            self.consumers_idle()
        })
        .await
    }

    /// Whether `durable` on `stream` has handled (acknowledged) everything
    /// up to and including stream sequence `seq`, which must be stored
    /// already: its ack floor passed `seq`, or nothing it filters is
    /// pending or unacknowledged any more.
    pub async fn consumer_passed(&self, stream: &str, durable: &str, seq: u64) -> bool {
        let mut consumer: consumer::PullConsumer =
            match self.stream(stream).await.get_consumer(durable).await {
                Ok(c) => c,
                Err(_) => return false,
            };
        match consumer.info().await {
            Ok(info) => {
                info.ack_floor.stream_sequence >= seq
                    || (info.num_pending == 0 && info.num_ack_pending == 0)
            }
            Err(_) => false,
        }
    }

    /// Publishes `payload` on `subject` as `ops` with `headers` and returns
    /// the stream sequence it was stored at; panics when it was not stored
    /// (or was dropped as a duplicate).
    pub async fn publish(&self, subject: &str, headers: HeaderMap, payload: Vec<u8>) -> u64 {
        let ack = self
            .js
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .unwrap_or_else(|e| panic!("publish on {subject}: {e}"))
            .await
            .unwrap_or_else(|e| panic!("no ack for {subject}: {e}"));
        assert!(!ack.duplicate, "{subject}: the broker dropped a duplicate");
        ack.sequence
    }

    /// Publishes `data` as a new event of `source` (a fresh CloudEvent id,
    /// which is also its `Nats-Msg-Id`), as `ops`: an event the owning
    /// service did not send. Returns its stream sequence.
    pub async fn publish_event<T: Event>(&self, source: &str, data: T) -> u64 {
        let envelope = Envelope::new(
            source,
            data,
            &EventContext::root(Uuid::now_v7().to_string(), None),
        );
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
        self.publish(T::SUBJECT, headers, envelope.to_json()).await
    }
}
