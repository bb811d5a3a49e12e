//! The search shard (DESIGN §6): this instance's share of the catalog in a
//! full-text index, kept current from the product and warehouse streams,
//! answering `qry.product.search` for its shard.
//!
//! - `record`: what the shard knows of a product and how events change it;
//! - `schema`: fields, analyzers and the shard-independent scoring;
//! - `words`: how a text splits into words;
//! - `index`: the index on disk, its lock and its checkpoint;
//! - `indexer`: the one writer, committing in batches;
//! - `feed`: ordered consumers of the two streams;
//! - `query`, `responder`: answering queries.

pub mod feed;
pub mod index;
pub mod indexer;
pub mod query;
pub mod record;
pub mod responder;
pub mod schema;
pub mod words;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use contracts::search::Shard;
use contracts::Team;
use platform::projection::ProjectionHandle;
use platform::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use indexer::{CommitPolicy, Feed, Indexer, Input, Reporters};

/// How often the indexer is reminded to commit a waiting batch.
const TICK: Duration = Duration::from_millis(100);

/// Stream messages decoded ahead of the indexer, at most.
const INPUT_BUFFER: usize = 1024;

/// Where and how a shard indexes.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    pub shard: Shard,
    pub data_dir: PathBuf,
    pub commit: CommitPolicy,
}

/// Set when the index can no longer be written. The service then stops,
/// so that its supervisor restarts it from the last committed checkpoint
/// rather than it serving an index that silently stopped moving.
#[derive(Clone, Default)]
pub struct Failure {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Failure {
    fn fail(&self, reason: String) {
        tracing::error!(%reason, "search index failed; stopping the service");
        if let Ok(mut slot) = self.reason.lock() {
            slot.get_or_insert(reason);
        }
        self.token.cancel();
    }

    /// Resolves when the index has failed.
    pub async fn occurred(&self) {
        self.token.cancelled().await;
    }

    /// The failure, if there was one.
    pub fn into_result(self) -> anyhow::Result<()> {
        match self.reason.lock().ok().and_then(|mut r| r.take()) {
            Some(reason) => Err(anyhow::anyhow!("search index failed: {reason}")),
            None => Ok(()),
        }
    }
}

/// Opens the shard's index, starts feeding it and starts answering
/// queries; everything stops with the runtime.
pub async fn start(rt: &mut Runtime, config: SearchConfig) -> anyhow::Result<Failure> {
    let shard = config.shard;
    let data_dir = config.data_dir.clone();
    let opened = tokio::task::spawn_blocking(move || index::open(&data_dir, shard))
        .await
        .context("opening the search index")??;
    let writer = indexer::writer(&opened)?;
    tracing::info!(%shard, dir = %opened.dir.display(), checkpoint = ?opened.checkpoint,
        "search index opened");

    let (product_view, product) = ProjectionHandle::detached(
        indexer::reporter_name(shard, Feed::Product),
        Team::Product.stream(),
    );
    let (warehouse_view, warehouse) = ProjectionHandle::detached(
        indexer::reporter_name(shard, Feed::Warehouse),
        Team::Warehouse.stream(),
    );
    rt.track(product_view);
    rt.track(warehouse_view);

    let (inputs, rx) = mpsc::channel(INPUT_BUFFER);
    let indexer = Indexer::new(
        shard,
        &opened,
        writer,
        config.commit,
        Reporters { product, warehouse },
    );
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("search-indexer-{}", shard.index()))
        .spawn(move || {
            let _ = done_tx.send(indexer.run(rx));
        })
        .context("starting the search indexer thread")?;
    let failure = Failure::default();
    let watch = failure.clone();
    // Spawned after the feeds and the ticker: shutdown waits for workers
    // in order, so the feeds stop (dropping their senders) before this
    // waits for the indexer's last commit.
    let index_keeper = async move {
        match done.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => watch.fail(format!("{error:#}")),
            Err(_) => watch.fail("the indexer thread died".to_owned()),
        }
    };

    for (feed, start) in [
        (
            Feed::Product,
            (opened.checkpoint.product, opened.lives.product.clone()),
        ),
        (
            Feed::Warehouse,
            (opened.checkpoint.warehouse, opened.lives.warehouse.clone()),
        ),
    ] {
        let (js, inputs) = (rt.js.clone(), inputs.clone());
        rt.spawn(move |stop| feed::run(js, shard, feed, start, inputs, stop));
    }
    let ticks = inputs.clone();
    rt.spawn(move |stop| async move {
        let mut interval = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = interval.tick() => {
                    if let Err(mpsc::error::TrySendError::Closed(_)) = ticks.try_send(Input::Tick) {
                        break;
                    }
                }
            }
        }
    });
    drop(inputs);
    rt.spawn(move |_| index_keeper);

    let searcher = query::ShardSearcher::new(opened.reader.clone(), opened.fields);
    let responder = responder::serve(rt.nats.clone(), shard, searcher).await?;
    rt.spawn(move |stop| responder.run(stop));
    // The lock and the index stay open as long as the reader uses them.
    rt.spawn(move |stop| async move {
        stop.cancelled().await;
        drop(opened);
    });
    Ok(failure)
}
