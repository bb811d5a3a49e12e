//! The one writer of a shard's index. It runs on its own thread (tantivy
//! writes block), takes decoded events from both streams' feeds in the
//! order each stream delivers them, and commits in batches, each commit
//! carrying the checkpoint of both streams.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use contracts::search::Shard;
use platform::projection::Progress;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{IndexReader, IndexWriter, TantivyDocument};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::index::{self, Checkpoint, Lives, ShardIndex};
use super::record::{self, Fact, ProductRecord};
use super::schema::{self, Fields};

/// Memory the writer may buffer before it flushes a segment on its own, on
/// one indexing thread: enough for batches of a thousand products, small
/// enough to keep a shard near the 50 MiB per-service budget (tantivy's
/// default of one arena per core cost about 60 MiB here). tantivy needs at
/// least 15 MB per thread.
const WRITER_MEMORY: usize = 20 * 1024 * 1024;
const WRITER_THREADS: usize = 1;

/// Which stream an input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Product,
    Warehouse,
}

/// What the indexer is told.
#[derive(Debug)]
pub enum Input {
    /// One stream message: the facts about this shard's products (often
    /// none) and its sequence, which the checkpoint moves to.
    Event {
        feed: Feed,
        seq: u64,
        facts: Vec<Fact>,
        /// The stream had nothing more to deliver after this message.
        caught_up: bool,
    },
    /// The feed started with nothing to deliver after `seq`.
    CaughtUp { feed: Feed, seq: u64 },
    /// The feed's stream started its sequences over below what the index
    /// applied (deleted and created again, or the broker lost its store):
    /// its events are applied again from sequence 1, over the documents.
    StartedOver { feed: Feed },
    /// The life of the feed's stream its sequences count in
    /// (`platform::started_over::Incarnation::key`), committed with the
    /// checkpoint so that a stream created anew while the service was away
    /// is noticed at the next start.
    Life { feed: Feed, key: String },
    /// Time passes: commit a batch that has waited long enough.
    Tick,
}

/// When a batch is committed.
#[derive(Debug, Clone, Copy)]
pub struct CommitPolicy {
    /// The longest a change waits before it becomes searchable.
    pub interval: Duration,
    /// The most documents a batch holds while the index is current.
    pub live_docs: usize,
    /// The most while catching up: nobody waits for single documents
    /// then, and fewer, larger segments index faster.
    pub catch_up_docs: usize,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy {
            interval: Duration::from_millis(500),
            live_docs: 1_000,
            catch_up_docs: 50_000,
        }
    }
}

/// Progress reported to readiness and read-your-writes watchers.
pub struct Reporters {
    pub product: watch::Sender<Progress>,
    pub warehouse: watch::Sender<Progress>,
}

/// Opens the writer; fails when another writer holds the index.
pub fn writer(index: &ShardIndex) -> anyhow::Result<IndexWriter<TantivyDocument>> {
    index
        .index
        .writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY)
        .context("opening the index writer")
}

pub struct Indexer {
    shard: Shard,
    writer: IndexWriter<TantivyDocument>,
    reader: IndexReader,
    fields: Fields,
    /// The text analyzer, for a name's exact-match key.
    analyzer: TextAnalyzer,
    policy: CommitPolicy,
    reporters: Reporters,
    /// Records written since the last commit, which the reader cannot see.
    pending: HashMap<Uuid, ProductRecord>,
    applied: Checkpoint,
    committed: Checkpoint,
    /// The lives `applied` counts in.
    lives: Lives,
    /// Where each feed reported having reached the end of its stream.
    caught_up_at: [Option<u64>; 2],
    batch_started: Option<Instant>,
    batch_docs: usize,
}

impl Indexer {
    pub fn new(
        shard: Shard,
        index: &ShardIndex,
        writer: IndexWriter<TantivyDocument>,
        policy: CommitPolicy,
        reporters: Reporters,
    ) -> Self {
        for (reporter, seq) in [
            (&reporters.product, index.checkpoint.product),
            (&reporters.warehouse, index.checkpoint.warehouse),
        ] {
            reporter.send_modify(|p| p.applied = seq);
        }
        Indexer {
            shard,
            writer,
            reader: index.reader.clone(),
            fields: index.fields,
            analyzer: schema::text_analyzer(),
            policy,
            reporters,
            pending: HashMap::new(),
            applied: index.checkpoint,
            committed: index.checkpoint,
            lives: index.lives.clone(),
            caught_up_at: [None, None],
            batch_started: None,
            batch_docs: 0,
        }
    }

    /// Applies inputs until every sender is gone, then commits what is
    /// left. An error means the index can no longer be written.
    pub fn run(mut self, mut inputs: mpsc::Receiver<Input>) -> anyhow::Result<()> {
        while let Some(input) = inputs.blocking_recv() {
            match input {
                Input::Event {
                    feed,
                    seq,
                    facts,
                    caught_up,
                } => {
                    self.apply(feed, seq, facts)?;
                    if caught_up {
                        self.caught_up_at[slot(feed)] = Some(seq);
                    }
                }
                Input::CaughtUp { feed, seq } => {
                    self.caught_up_at[slot(feed)] = Some(seq);
                    self.report();
                }
                Input::StartedOver { feed } => self.start_over(feed),
                Input::Life { feed, key } => self.live_in(feed, key),
                Input::Tick => {}
            }
            if self.batch_due() {
                self.commit()?;
            }
        }
        if self.batch_started.is_some() {
            self.commit()?;
        }
        tracing::info!(shard = %self.shard, ?self.committed, "search indexer stopped");
        Ok(())
    }

    /// Positions of the old stream no longer compare with the new one's;
    /// the index's checkpoint moves back with the next commit.
    fn start_over(&mut self, feed: Feed) {
        let (applied, committed, reporter) = match feed {
            Feed::Product => (
                &mut self.applied.product,
                &mut self.committed.product,
                &self.reporters.product,
            ),
            Feed::Warehouse => (
                &mut self.applied.warehouse,
                &mut self.committed.warehouse,
                &self.reporters.warehouse,
            ),
        };
        *applied = 0;
        *committed = 0;
        reporter.send_modify(|p| p.applied = 0);
    }

    /// Stores `key` as the life of `feed`'s stream with the next commit,
    /// which is due even if no event follows.
    fn live_in(&mut self, feed: Feed, key: String) {
        let life = match feed {
            Feed::Product => &mut self.lives.product,
            Feed::Warehouse => &mut self.lives.warehouse,
        };
        if life.as_deref() != Some(key.as_str()) {
            *life = Some(key);
            self.batch_started.get_or_insert_with(Instant::now);
        }
    }

    fn apply(&mut self, feed: Feed, seq: u64, facts: Vec<Fact>) -> anyhow::Result<()> {
        let position = match feed {
            Feed::Product => &mut self.applied.product,
            Feed::Warehouse => &mut self.applied.warehouse,
        };
        if seq <= *position {
            return Ok(()); // a feed resumed before what the index holds
        }
        *position = seq;
        for fact in facts {
            let id = fact.product_id();
            let current = match self.pending.get(&id) {
                Some(record) => Some(record.clone()),
                None => index::find(&self.reader.searcher(), &self.fields, id)?,
            };
            if let Some(next) = record::apply(current, fact) {
                // Delete then add: within one batch the delete only hits
                // documents added before it, so the new one survives.
                self.writer.delete_term(index::id_term(&self.fields, id));
                self.writer.add_document(index::document(
                    &self.fields,
                    &mut self.analyzer,
                    &next,
                )?)?;
                self.pending.insert(id, next);
                self.batch_docs += 1;
            }
        }
        self.batch_started.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn batch_due(&self) -> bool {
        let Some(started) = self.batch_started else {
            return false;
        };
        let live = self.caught_up_at.iter().all(Option::is_some);
        let max_docs = if live {
            self.policy.live_docs
        } else {
            self.policy.catch_up_docs
        };
        started.elapsed() >= self.policy.interval || self.batch_docs >= max_docs
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut prepared = self.writer.prepare_commit().context("preparing a commit")?;
        prepared.set_payload(&index::payload(self.shard, self.applied, &self.lives));
        prepared.commit().context("committing the index")?;
        self.reader.reload().context("reloading the index reader")?;
        tracing::debug!(shard = %self.shard, docs = self.batch_docs, checkpoint = ?self.applied,
            elapsed = ?started.elapsed(), "search index committed");
        self.pending.clear();
        self.committed = self.applied;
        self.batch_started = None;
        self.batch_docs = 0;
        self.report();
        Ok(())
    }

    /// Tells watchers how far the searchable index is.
    fn report(&self) {
        let feeds = [
            (
                Feed::Product,
                &self.reporters.product,
                self.committed.product,
            ),
            (
                Feed::Warehouse,
                &self.reporters.warehouse,
                self.committed.warehouse,
            ),
        ];
        for (feed, reporter, committed) in feeds {
            let caught_up = self.caught_up_at[slot(feed)].is_some_and(|at| committed >= at);
            reporter.send_modify(|p| {
                p.applied = p.applied.max(committed);
                p.caught_up |= caught_up;
            });
            platform::metrics::projection_position(&reporter_name(self.shard, feed), committed);
        }
    }
}

fn slot(feed: Feed) -> usize {
    match feed {
        Feed::Product => 0,
        Feed::Warehouse => 1,
    }
}

/// The name of a shard's view of one stream, for readiness and metrics.
pub fn reporter_name(shard: Shard, feed: Feed) -> String {
    let stream = match feed {
        Feed::Product => "product",
        Feed::Warehouse => "warehouse",
    };
    format!(
        "search-shard-{}-of-{}.{stream}",
        shard.index(),
        shard.count()
    )
}
