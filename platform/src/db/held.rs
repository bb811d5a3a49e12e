//! SQLite connections the service holds itself, instead of in sqlx's pool.
//!
//! sqlx's pool pings every connection it takes back (`return_to_pool` in
//! sqlx-core 0.8 and 0.9, unconditionally): on SQLite one more round trip
//! to the connection's worker thread, two context switches, after every
//! transaction and every statement run on the pool, and the one writer is
//! not free for the next transaction until that ping is answered. A local
//! file does not go stale and a dropped transaction is rolled back below, so
//! on SQLite the ping buys nothing. bench/README ("sqlx's ping on release")
//! has the figures.
//!
//! [`Held`] keeps up to a fixed number of connections (one for the writer,
//! a few for the readers), each made on first need by a sqlx pool with the
//! service's `after_connect` pragmas and then detached from it. A [`Conn`]
//! lends one out and puts it back when dropped. A [`Tx`] opens, commits
//! and rolls back through sqlx's transaction manager, as `sqlx::Transaction`
//! does: dropped without a commit (an error, a panic, a cancelled future),
//! it queues its `ROLLBACK` on the connection's worker at once, and the
//! worker undoes a `BEGIN` or a `COMMIT` whose answer nobody waited for.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::any::AnyTransactionManager;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor as _, TransactionManager as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a borrower waits for a connection, as the pools' acquire timeout.
const WAIT: Duration = Duration::from_secs(10);

/// Up to a fixed number of connections to one SQLite file.
#[derive(Debug)]
pub struct Held {
    idle: Mutex<Vec<Slot>>,
    /// One permit per connection that may be lent: made or idle.
    free: Arc<Semaphore>,
    /// Makes the connections (its `after_connect` sets them up).
    source: AnyPool,
}

#[derive(Debug)]
struct Slot {
    conn: AnyConnection,
    /// A statement to run before the next borrower's: the pragma that
    /// restores the database's sync after a relaxed statement that did not
    /// finish.
    repair: Option<&'static str>,
}

impl Held {
    /// Holds up to `max` connections made by `source` (a pool of at least
    /// one connection; an idle one it has is taken first).
    pub fn new(source: AnyPool, max: usize) -> Arc<Held> {
        Arc::new(Held {
            idle: Mutex::new(Vec::with_capacity(max)),
            free: Arc::new(Semaphore::new(max)),
            source,
        })
    }

    /// Lends a connection, making one if none is idle and fewer than the
    /// most are made; waits up to ten seconds for one to be free.
    pub async fn borrow(self: &Arc<Held>) -> Result<Conn, sqlx::Error> {
        let permit = tokio::time::timeout(WAIT, self.free.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle().pop();
        let slot = match idle {
            Some(slot) => slot,
            None => Slot {
                conn: self.source.acquire().await?.detach(),
                repair: None,
            },
        };
        let mut conn = Conn {
            slot: Some(slot),
            home: self.clone(),
            _permit: permit,
        };
        // Cleared only once run: a borrow cancelled meanwhile leaves it to the next.
        if let Some(repair) = conn.slot_mut().repair {
            conn.execute(repair).await?;
            conn.repaired();
        }
        Ok(conn)
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A push or a pop cannot leave the list half changed.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection lent by [`Held`], or one from PostgreSQL's pool.
#[derive(Debug)]
pub enum Lent {
    Held(Conn),
    Pooled(PoolConnection<Any>),
}

impl Deref for Lent {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Lent::Held(conn) => conn,
            Lent::Pooled(conn) => conn,
        }
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Lent::Held(conn) => conn,
            Lent::Pooled(conn) => conn,
        }
    }
}

/// A connection lent by [`Held`]; it goes back when dropped.
#[derive(Debug)]
pub struct Conn {
    slot: Option<Slot>,
    home: Arc<Held>,
    // Released after the slot is back (fields drop after `Drop::drop`).
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    fn slot_mut(&mut self) -> &mut Slot {
        // Present from the borrow until the drop.
        self.slot
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lent connection has its slot"))
    }

    /// Has `sql` run before the next borrower's first statement.
    pub(crate) fn repair_with(&mut self, sql: &'static str) {
        self.slot_mut().repair = Some(sql);
    }

    /// What [`Conn::repair_with`] asked for is done.
    pub(crate) fn repaired(&mut self) {
        self.slot_mut().repair = None;
    }
}

impl Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.slot {
            Some(slot) => &slot.conn,
            None => unreachable!("a lent connection has its slot"),
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.slot_mut().conn
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.home.idle().push(slot);
        }
    }
}

/// A transaction on a [`Held`] connection (`BEGIN IMMEDIATE` … `COMMIT`),
/// or sqlx's own on PostgreSQL. Rolled back when dropped uncommitted.
#[derive(Debug)]
pub struct Tx(Inner);

#[derive(Debug)]
enum Inner {
    /// `open` from the `BEGIN`'s answer until the end's.
    Held {
        conn: Conn,
        open: bool,
    },
    Pooled(sqlx::Transaction<'static, Any>),
    /// sqlx's transaction, taken out to commit or roll back.
    Ended,
}

impl Tx {
    /// Opens a write transaction on a held SQLite connection: `BEGIN
    /// IMMEDIATE` takes the write lock at once (see `Db::begin`).
    pub async fn begin_held(held: &Arc<Held>) -> Result<Tx, sqlx::Error> {
        let mut conn = held.borrow().await?;
        AnyTransactionManager::begin(&mut conn, Some(Cow::Borrowed("BEGIN IMMEDIATE"))).await?;
        Ok(Tx(Inner::Held { conn, open: true }))
    }

    /// sqlx's transaction on a pool (PostgreSQL).
    pub fn pooled(tx: sqlx::Transaction<'static, Any>) -> Tx {
        Tx(Inner::Pooled(tx))
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.end(true).await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end(false).await
    }

    async fn end(mut self, commit: bool) -> Result<(), sqlx::Error> {
        if let Inner::Held { conn, open } = &mut self.0 {
            if commit {
                AnyTransactionManager::commit(conn).await?;
            } else {
                AnyTransactionManager::rollback(conn).await?;
            }
            *open = false;
            return Ok(());
        }
        match std::mem::replace(&mut self.0, Inner::Ended) {
            Inner::Pooled(tx) if commit => tx.commit().await,
            Inner::Pooled(tx) => tx.rollback().await,
            _ => Ok(()),
        }
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            Inner::Held { conn, .. } => conn,
            Inner::Pooled(tx) => tx,
            Inner::Ended => unreachable!("an ended transaction is not used"),
        }
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            Inner::Held { conn, .. } => conn,
            Inner::Pooled(tx) => tx,
            Inner::Ended => unreachable!("an ended transaction is not used"),
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Queued on the worker before the connection goes back, so it runs
        // before the next borrower's statements (sqlx::Transaction's drop
        // does the same).
        if let Inner::Held { conn, open: true } = &mut self.0 {
            AnyTransactionManager::start_rollback(conn);
        }
    }
}
