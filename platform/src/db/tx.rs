//! A transaction on one of a [`Db`](super::Db)'s connections: a held
//! SQLite writer or one from PostgreSQL's pool. It begins, commits and
//! rolls back through sqlx's transaction manager exactly as
//! `sqlx::Transaction` does: dropped without a commit (an error, a panic,
//! a cancelled future), it queues its `ROLLBACK` on the connection at once
//! (the SQLite worker runs it before the next borrower's statements;
//! PostgreSQL's pool sends it when it takes the connection back), and the
//! SQLite worker undoes a `BEGIN` or a `COMMIT` whose answer nobody waited
//! for. Unlike `sqlx::Transaction`, it does not need a pool of its own.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use sqlx::any::AnyTransactionManager;
use sqlx::{AnyConnection, TransactionManager as _};

use super::Lent;

#[derive(Debug)]
pub struct Tx {
    conn: Lent,
    /// From the `BEGIN`'s answer until the end's.
    open: bool,
}

impl Tx {
    /// Opens a transaction on `conn` with `begin` (`BEGIN` when `None`).
    pub(crate) async fn begin(
        mut conn: Lent,
        begin: Option<&'static str>,
    ) -> Result<Tx, sqlx::Error> {
        AnyTransactionManager::begin(&mut conn, begin.map(Cow::Borrowed)).await?;
        Ok(Tx { conn, open: true })
    }

    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        AnyTransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        AnyTransactionManager::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            AnyTransactionManager::start_rollback(&mut self.conn);
        }
    }
}
