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
//! lends one out and puts it back when dropped. Transactions on it are
//! `db::Tx`, as on PostgreSQL's pool.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ACQUIRE_TIMEOUT;

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
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.free.clone().acquire_owned())
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
