//! Group commit for short write transactions on SQLite: work that arrives
//! while the one writer is busy waits, then runs with the rest of its lot
//! in one transaction, each piece inside a savepoint of its own, and the lot
//! commits once (one `BEGIN`/`COMMIT` and one fsync instead of one each).
//!
//! Each piece keeps its own outcome: one that fails is rolled back to its
//! savepoint, and what the others did stays. A lot whose transaction does
//! not open, breaks or does not commit fails every piece in it, and
//! nothing of it is kept. Commands use it ([`crate::command::execute`]);
//! reactions batch in the consumer loop instead ([`crate::reaction`]),
//! because their lots are acked together.
//!
//! PostgreSQL does not use it: its transactions run in parallel, and one
//! transaction across several orders would take their rows' locks in no
//! fixed order.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt as _;
use sqlx::Executor as _;
use tokio::sync::{mpsc, oneshot};

use crate::db::{Held, Lent, Tx, SQLITE_BEGIN};

/// Pieces of work one transaction takes at most.
pub const LOT: usize = 64;

/// Why a piece of work did not commit.
#[derive(Debug)]
pub enum NotCommitted<E> {
    /// The work itself failed; its savepoint was rolled back.
    Failed(E),
    /// The lot's transaction broke after this piece ran, or did not commit.
    Lot(Arc<sqlx::Error>),
    /// No answer: the piece panicked, or its lot's transaction did not
    /// open or broke before the piece ran (logged there), or the task that
    /// runs the lots is gone.
    Lost,
}

/// What ran of a piece: whether to keep it, and how to tell its caller
/// once the lot has committed (or not).
struct Staged {
    keep: bool,
    answer: Box<dyn FnOnce(Result<(), Arc<sqlx::Error>>) + Send>,
}

type Work = Box<dyn for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Staged> + Send>;

/// The queue in front of a database's writer. Cloning shares it; the task
/// that runs the lots ends when the last clone is dropped. The queue has no
/// bound of its own: its callers bound it (a command endpoint serves at
/// most 64 requests at once, `responder`).
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Work>,
}

impl GroupCommit {
    /// Starts the task that runs lots on the `writer` (it must be called
    /// inside a Tokio runtime).
    pub(crate) fn start(writer: Arc<Held>) -> GroupCommit {
        let (queue, incoming) = mpsc::unbounded_channel();
        tokio::spawn(run_lots(writer, incoming));
        GroupCommit { queue }
    }

    /// Runs `work` in the next lot's transaction and answers once that has
    /// committed. `work` must neither commit nor roll back, and should not
    /// wait on anything but the database: the lot holds the write lock.
    pub async fn run<R, E, F>(&self, work: F) -> Result<R, NotCommitted<E>>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<R, E>> + Send + 'static,
    {
        let (tell, told) = oneshot::channel();
        let piece: Work = Box::new(move |tx| {
            Box::pin(async move {
                let result = work(tx).await;
                Staged {
                    keep: result.is_ok(),
                    answer: Box::new(move |committed| {
                        let answer = match (result, committed) {
                            (Err(error), _) => Err(NotCommitted::Failed(error)),
                            (Ok(value), Ok(())) => Ok(value),
                            (Ok(_), Err(error)) => Err(NotCommitted::Lot(error)),
                        };
                        // The caller may have gone; the work committed anyway.
                        let _ = tell.send(answer);
                    }),
                }
            })
        });
        if self.queue.send(piece).is_err() {
            return Err(NotCommitted::Lost);
        }
        told.await.unwrap_or(Err(NotCommitted::Lost))
    }
}

async fn run_lots(writer: Arc<Held>, mut incoming: mpsc::UnboundedReceiver<Work>) {
    while let Some(first) = incoming.recv().await {
        let mut lot = Vec::with_capacity(LOT);
        lot.push(first);
        while lot.len() < LOT {
            match incoming.try_recv() {
                Ok(work) => lot.push(work),
                Err(_) => break,
            }
        }
        run_lot(&writer, lot).await;
    }
}

/// Runs one lot. A piece dropped unanswered (its lot failed before it ran,
/// or it panicked) tells its caller [`NotCommitted::Lost`].
async fn run_lot(writer: &Arc<Held>, lot: Vec<Work>) {
    let count = lot.len();
    let begun = match writer.borrow().await {
        Ok(conn) => Tx::begin(Lent::Held(conn), Some(SQLITE_BEGIN)).await,
        Err(error) => Err(error),
    };
    let mut tx = match begun {
        Ok(tx) => tx,
        Err(error) => {
            tracing::error!(%error, count, "could not open a group commit's transaction");
            return;
        }
    };
    let mut staged = Vec::with_capacity(count);
    for work in lot {
        match piece(&mut tx, work).await {
            Ok(Some(done)) => staged.push(done),
            Ok(None) => {}
            Err(error) => {
                // The transaction is rolled back when dropped.
                tracing::error!(%error, count, "a group commit's transaction broke");
                return fail(staged, error);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            crate::metrics::lot_committed(count);
            for done in staged {
                (done.answer)(Ok(()));
            }
        }
        Err(error) => {
            tracing::error!(%error, count, "a group commit did not commit");
            fail(staged, error);
        }
    }
}

/// One piece inside its savepoint; `None` if it panicked (rolled back and
/// dropped unanswered). An error is the transaction's, not the piece's.
async fn piece(tx: &mut Tx, work: Work) -> Result<Option<Staged>, sqlx::Error> {
    tx.execute("SAVEPOINT piece").await?;
    let ran = AssertUnwindSafe(work(tx)).catch_unwind().await;
    let keep = matches!(&ran, Ok(done) if done.keep);
    if keep {
        tx.execute("RELEASE piece").await?;
    } else {
        tx.execute("ROLLBACK TO piece; RELEASE piece").await?;
    }
    Ok(ran.ok())
}

fn fail(staged: Vec<Staged>, error: sqlx::Error) {
    let error = Arc::new(error);
    for done in staged {
        (done.answer)(Err(error.clone()));
    }
}
