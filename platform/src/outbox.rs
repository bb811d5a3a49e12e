//! The transactional outbox: events are written in the same transaction as
//! the state change that causes them, and a relay publishes them in order
//! with `Nats-Msg-Id` = event id, awaits each PubAck and marks the row sent.
//! A crash between commit and publish only delays the event; a crash after
//! publish but before marking is absorbed by the broker's duplicate window.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::Context;
use contracts::{Envelope, Event};
use sqlx::Row;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bounded::Bounded;
use crate::db::{now_text, placeholders, Backend, Db, Tx};
use crate::telemetry::TRACEPARENT;

/// Rows published per round trip of the relay.
const BATCH: i64 = 256;

/// Stream sequences of the latest events this process published, kept so
/// that [`Outbox::publish_now`] need not read them back (a command's event
/// is often published by the relay, woken by another commit, first).
const REMEMBERED: usize = 4096;

/// Adds an event to the outbox inside the caller's transaction.
pub async fn push<T: Event>(tx: &mut Tx, envelope: &Envelope<T>) -> Result<(), sqlx::Error> {
    // Inside a handler's span the event carries that span (per-hop parents).
    let (payload, traceparent) = crate::telemetry::stamp(envelope);
    let payload = String::from_utf8(payload).unwrap_or_default();
    sqlx::query(
        "INSERT INTO platform_outbox (event_id, subject, payload, traceparent, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(envelope.id.to_string())
    .bind(T::SUBJECT)
    .bind(payload)
    .bind(traceparent)
    .bind(now_text())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The relay. Cheap to clone; all clones share one publishing lock so rows
/// go out in order even when a command handler flushes eagerly.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    js: Context,
    wake: Arc<Notify>,
    publishing: Arc<Mutex<()>>,
    recent: Arc<std::sync::Mutex<Recent>>,
}

/// The last [`REMEMBERED`] events published: id → stream sequence.
type Recent = Bounded<String, u64>;

/// The highest stream sequence of `event_ids`, if all are in `recent`.
fn highest(recent: &Recent, event_ids: &[Uuid]) -> Option<u64> {
    event_ids.iter().try_fold(0, |highest, id| {
        let seq = recent.get(id.to_string().as_str())?;
        Some(highest.max(*seq))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("publishing {subject}: {message}")]
    Publish { subject: String, message: String },
}

impl Outbox {
    pub fn new(db: Db, js: Context) -> Self {
        Outbox {
            db,
            js,
            wake: Arc::new(Notify::new()),
            publishing: Arc::new(Mutex::new(())),
            recent: Arc::new(std::sync::Mutex::new(Bounded::new(REMEMBERED))),
        }
    }

    /// Tells the relay that rows were committed.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Publishes every pending row, remembering each one's stream sequence;
    /// returns how many were published.
    pub async fn flush(&self) -> Result<usize, RelayError> {
        let _guard = self.publishing.lock().await;
        self.flush_locked().await
    }

    /// [`Outbox::flush`] with the publishing lock held.
    async fn flush_locked(&self) -> Result<usize, RelayError> {
        let mut published = 0;
        // Bounded: each round drains up to BATCH rows; stop once a round is short.
        for _ in 0..10_000 {
            let rows = sqlx::query(
                "SELECT position, event_id, subject, payload, traceparent FROM platform_outbox
                 WHERE published_at IS NULL ORDER BY position LIMIT $1",
            )
            .bind(BATCH)
            .fetch_all(&mut *self.db.conn().await?)
            .await?;
            if rows.is_empty() {
                break;
            }
            let count = rows.len();
            let mut pending = Vec::with_capacity(count);
            for row in &rows {
                let position: i64 = row.try_get("position")?;
                let event_id: String = row.try_get("event_id")?;
                let subject: String = row.try_get("subject")?;
                let payload: String = row.try_get("payload")?;
                let traceparent: Option<String> = row.try_get("traceparent")?;
                // Exported only; it ends when the PubAck is in (or given up).
                let span = crate::telemetry::export_span(
                    crate::telemetry::ExportSpan::Publish,
                    &subject,
                    traceparent.as_deref(),
                );
                let mut publish = Publish::build()
                    .payload(payload.into_bytes().into())
                    .message_id(event_id.as_str());
                if let Some(tp) = traceparent {
                    publish = publish.header(TRACEPARENT, tp.as_str());
                }
                let ack = self.js.send_publish(subject.clone(), publish).await;
                pending.push((position, event_id, subject, ack, span));
            }
            // Await acks in order; stop at the first failure so that nothing
            // after it is marked sent (it will be published again, and the
            // broker drops the duplicates).
            let mut done = Vec::with_capacity(count);
            let mut failure = None;
            for (position, event_id, subject, ack, _span) in pending {
                let result = match ack {
                    Ok(future) => future.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match result {
                    Ok(ack) => {
                        done.push((position, ack.sequence));
                        self.remembered().insert(event_id, ack.sequence);
                        published += 1;
                    }
                    Err(message) => {
                        failure = Some(RelayError::Publish { subject, message });
                        break;
                    }
                }
            }
            self.mark_published(&done).await?;
            crate::metrics::outbox_published(done.len());
            if let Some(error) = failure {
                return Err(error);
            }
            if (count as i64) < BATCH {
                break;
            }
        }
        Ok(published)
    }

    /// Marks rows sent, with their stream sequences, in one statement that
    /// does not wait for the disk (see [`Db::execute_relaxed`]).
    async fn mark_published(&self, done: &[(i64, u64)]) -> Result<(), sqlx::Error> {
        if done.is_empty() {
            return Ok(());
        }
        // `VALUES` names its columns column1, column2 on both backends.
        let backend = self.db.backend();
        let published_at = match backend {
            Backend::Sqlite => "?",
            Backend::Postgres => "$1",
        };
        let sql = format!(
            "UPDATE platform_outbox SET published_at = {published_at}, stream_seq = v.column2
             FROM (VALUES {}) AS v WHERE platform_outbox.position = v.column1",
            placeholders(backend, 1, done.len(), 2)
        );
        let mut query = sqlx::query(&sql).bind(now_text());
        for (position, seq) in done {
            query = query
                .bind(*position)
                .bind(i64::try_from(*seq).unwrap_or(i64::MAX));
        }
        self.db.execute_relaxed(query).await?;
        Ok(())
    }

    /// Publishes what is pending and returns the highest stream sequence
    /// among `event_ids`, once all of them are published. Used by command
    /// handlers to tell the caller how far its views must catch up.
    pub async fn publish_now(&self, event_ids: &[Uuid]) -> Option<u64> {
        if event_ids.is_empty() {
            return None;
        }
        // The relay, woken by another commit, often published them first.
        if let Some(highest) = highest(&self.remembered(), event_ids) {
            return Some(highest);
        }
        {
            let _guard = self.publishing.lock().await;
            // Often the flush this waited for published them.
            if let Some(highest) = highest(&self.remembered(), event_ids) {
                return Some(highest);
            }
            if let Err(error) = self.flush_locked().await {
                tracing::warn!(%error, "outbox flush after command failed; the relay will retry");
            }
        }
        // Usually this flush published them.
        if let Some(highest) = highest(&self.remembered(), event_ids) {
            return Some(highest);
        }
        // Past REMEMBERED events ago (a large backlog), only the rows tell.
        let mut highest = 0u64;
        let mut conn = self.db.conn().await.ok()?;
        for id in event_ids {
            let seq: Option<i64> =
                sqlx::query_scalar("SELECT stream_seq FROM platform_outbox WHERE event_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await
                    .ok()
                    .flatten()
                    .flatten();
            highest = highest.max(u64::try_from(seq?).ok()?);
        }
        Some(highest)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Recent> {
        // The map holds no invariant a panic elsewhere could break.
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rows not yet published.
    pub async fn backlog(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM platform_outbox WHERE published_at IS NULL")
            .fetch_one(&mut *self.db.conn().await?)
            .await
    }

    /// The relay loop: publishes on every notification and at least once a
    /// second (catching rows committed by another instance or before a
    /// crash), backing off on failure; flushes once more when stopped.
    pub async fn run(self, stop: CancellationToken) {
        let mut failures: u32 = 0;
        let mut last_prune = std::time::Instant::now();
        let mut last_gauge = last_prune
            .checked_sub(Duration::from_secs(1))
            .unwrap_or(last_prune);
        loop {
            let delay = if failures == 0 {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(100 * 2u64.pow(failures.min(6)))
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(delay) => {}
            }
            match self.flush().await {
                Ok(_) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, failures, "outbox relay could not publish; retrying");
                }
            }
            // A count is a scan of the unpublished rows: once a second is
            // enough for a gauge.
            if last_gauge.elapsed() >= Duration::from_secs(1) {
                last_gauge = std::time::Instant::now();
                if let Ok(backlog) = self.backlog().await {
                    crate::metrics::outbox_backlog(backlog);
                }
            }
            if last_prune.elapsed() > Duration::from_secs(600) {
                last_prune = std::time::Instant::now();
                self.prune().await;
            }
        }
        match self.flush().await {
            Ok(n) => tracing::info!(published = n, "outbox flushed at shutdown"),
            Err(error) => {
                tracing::warn!(%error, "outbox not fully flushed at shutdown; rows stay for next start")
            }
        }
    }

    /// Forgets rows published more than a day ago (far past the broker's
    /// duplicate window).
    async fn prune(&self) {
        let cutoff = (chrono::Utc::now() - chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let pruned = async {
            sqlx::query(
                "DELETE FROM platform_outbox WHERE published_at IS NOT NULL AND published_at < $1",
            )
            .bind(cutoff)
            .execute(&mut *self.db.conn().await?)
            .await
        };
        if let Err(error) = pruned.await {
            tracing::warn!(%error, "pruning the outbox failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{highest, Bounded, REMEMBERED};
    use uuid::Uuid;

    #[test]
    fn the_highest_sequence_is_known_only_when_every_event_is_remembered() {
        let mut recent = Bounded::new(8);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        recent.insert(a.to_string(), 7);
        assert_eq!(highest(&recent, &[a]), Some(7));
        assert_eq!(highest(&recent, &[a, b]), None, "b was never published");
        recent.insert(b.to_string(), 5);
        assert_eq!(highest(&recent, &[a, b]), Some(7));
    }

    #[test]
    fn past_its_capacity_the_oldest_events_are_forgotten_first() {
        let mut recent = Bounded::new(REMEMBERED);
        let ids: Vec<Uuid> = (0..=REMEMBERED).map(|_| Uuid::now_v7()).collect();
        for (seq, id) in ids.iter().enumerate() {
            recent.insert(id.to_string(), seq as u64);
        }
        assert_eq!(recent.len(), REMEMBERED);
        assert_eq!(highest(&recent, &ids[..1]), None, "the oldest stayed");
        assert_eq!(highest(&recent, &ids[1..]), Some(REMEMBERED as u64));
    }
}
