//! The service's own database through sqlx's `Any` driver: an embedded
//! SQLite file by default, PostgreSQL when `DATABASE_URL=postgres://…`.
//!
//! SQL is written once for both: `$1`-style parameters (sqlx's SQLite
//! driver binds `$N` by number), `BIGINT`/`TEXT` columns, times as RFC 3339
//! text in UTC. So each service keeps ONE set of migrations
//! (`<crate>/migrations`) that runs on both backends.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor};

use crate::config::Secret;
use crate::group_commit::GroupCommit;

mod held;
mod tx;

pub(crate) use held::Held;
pub use held::Lent;
pub use tx::Tx;

/// How long a caller waits for a connection, on either backend.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a write transaction opens on SQLite: with the write lock taken at
/// once (see [`Db::begin`]).
pub(crate) const SQLITE_BEGIN: &str = "BEGIN IMMEDIATE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A service's migrations, written in SQL both backends accept (use
/// [`migrations!`](crate::migrations)).
pub struct Migrations(pub &'static Migrator);

/// Embeds a crate's `migrations` directory.
#[macro_export]
macro_rules! migrations {
    () => {{
        static MIGRATOR: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations");
        $crate::db::Migrations(&MIGRATOR)
    }};
}

/// What a commit waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The disk: a committed transaction survives power loss (SQLite
    /// `synchronous=FULL`, PostgreSQL `synchronous_commit=on`). Every
    /// database that holds state of its own: reactions' effects, the
    /// outbox, the inbox, commands.
    Durable,
    /// The OS: a crash of the process loses nothing, a power cut may lose
    /// the last commits, never consistency (SQLite `synchronous=NORMAL` in
    /// WAL mode, PostgreSQL `synchronous_commit=off`). Only for a database
    /// whose tables are all rebuildable projections with their checkpoints
    /// in the same transactions (the edge's views): what a power cut takes
    /// is applied again from the stream.
    Rebuildable,
}

/// The service's connections plus what kind of database they talk to.
#[derive(Debug, Clone)]
pub struct Db {
    writer: Conns,
    /// Connections for reads only (see [`Db::reader`]).
    readers: Conns,
    backend: Backend,
    durability: Durability,
    /// The writer's group commit, started on first use (SQLite only).
    group: Option<Arc<OnceLock<GroupCommit>>>,
}

/// Where a [`Db`]'s connections come from: held by the service on SQLite
/// (`held`: sqlx's pool pings each connection it takes back), sqlx's pool
/// on PostgreSQL.
#[derive(Debug, Clone)]
enum Conns {
    Held(Arc<Held>),
    Pool(AnyPool),
}

impl Conns {
    async fn lend(&self) -> Result<Lent, sqlx::Error> {
        match self {
            Conns::Held(held) => Ok(Lent::Held(held.borrow().await?)),
            Conns::Pool(pool) => Ok(Lent::Pooled(pool.acquire().await?)),
        }
    }
}

/// The SQLite pragma for `durability`.
fn sqlite_sync(durability: Durability) -> &'static str {
    match durability {
        Durability::Durable => "PRAGMA synchronous=FULL",
        Durability::Rebuildable => "PRAGMA synchronous=NORMAL",
    }
}

/// Read-only connections to an SQLite file: enough for an API's readers.
const SQLITE_READERS: u32 = 4;

impl Db {
    /// Connects (creating an SQLite file and its directory if needed), sets
    /// the SQLite pragmas, and creates the platform's own tables; commits
    /// are [`Durability::Durable`].
    pub async fn connect(url: &Secret) -> anyhow::Result<Db> {
        Db::connect_with(url, Durability::Durable).await
    }

    /// [`Db::connect`] with commits as durable as `durability` says.
    pub async fn connect_with(url: &Secret, durability: Durability) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let raw = url.expose();
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres:") || raw.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("unsupported database URL scheme (use sqlite://… or postgres://…)");
        };
        if backend == Backend::Sqlite {
            ensure_sqlite_dir(raw)?;
        }
        let options = AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // SQLite allows one writer at a time; one connection per process
            // (held, `db/held.rs`; this pool only makes it) turns lock
            // contention into queueing instead of SQLITE_BUSY.
            .max_connections(match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => 8,
            })
            // A ping before each use finds a PostgreSQL connection the
            // server dropped. SQLite's connections are held, not taken
            // from this pool for each use.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            // WAL for concurrent readers; FULL sync so a
                            // commit survives power loss (unless the data
                            // is rebuildable); wait instead of failing on locks.
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute(sqlite_sync(durability)).await?;
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                            conn.execute("PRAGMA foreign_keys=ON").await?;
                        }
                        Backend::Postgres if durability == Durability::Rebuildable => {
                            conn.execute("SET synchronous_commit TO OFF").await?;
                        }
                        Backend::Postgres => {}
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(raw)
            .await
            .with_context(|| format!("connecting to the {backend:?} database"))?;
        let (writer, readers) = match backend {
            Backend::Sqlite => {
                let writer = Held::new(pool, 1);
                // An in-memory database exists only on the one connection.
                let readers = if is_in_memory(raw) {
                    writer.clone()
                } else {
                    Held::new(sqlite_readers(raw)?, SQLITE_READERS as usize)
                };
                (Conns::Held(writer), Conns::Held(readers))
            }
            // PostgreSQL readers see the last committed state through MVCC
            // on any connection.
            Backend::Postgres => (Conns::Pool(pool.clone()), Conns::Pool(pool)),
        };
        let db = Db {
            writer,
            readers,
            backend,
            durability,
            group: (backend == Backend::Sqlite).then(Default::default),
        };
        db.create_platform_tables().await?;
        Ok(db)
    }

    /// A connection for statements outside a transaction, e.g.
    /// `.fetch_all(&mut *db.conn().await?)`. On SQLite it is the one writer
    /// (or, on a [`Db::reader`], one of the readers) and goes back when
    /// dropped; on PostgreSQL one from the pool.
    pub async fn conn(&self) -> Result<Lent, sqlx::Error> {
        self.writer.lend().await
    }

    /// A handle on the same database for reads only. With SQLite, the one
    /// writing connection may be held by a long transaction (a projection
    /// replay); these connections keep answering from the last committed
    /// state meanwhile (WAL). With PostgreSQL it is the same pool.
    pub fn reader(&self) -> Db {
        Db {
            writer: self.readers.clone(),
            readers: self.readers.clone(),
            backend: self.backend,
            durability: self.durability,
            group: None,
        }
    }

    /// The writer's [`GroupCommit`] on SQLite (started here on first use,
    /// inside the caller's runtime); `None` on PostgreSQL and for readers.
    pub fn group_commit(&self) -> Option<&GroupCommit> {
        let group = self.group.as_ref()?;
        let Conns::Held(writer) = &self.writer else {
            return None;
        };
        Some(group.get_or_init(|| GroupCommit::start(writer.clone())))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs the service's migrations for this backend.
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let migrator = migrations.0;
        // sqlx takes no migration lock on SQLite: instances starting together
        // on one file race, and the loser fails on DDL the winner committed.
        // Each migration commits with its record, so running again skips it.
        let mut attempt = 0;
        loop {
            // What `Migrator::run` does with a pool: one connection.
            let ran = match self.conn().await {
                Ok(mut conn) => migrator.run_direct(&mut *conn).await,
                Err(error) => Err(error.into()),
            };
            match ran {
                Ok(()) => return Ok(()),
                Err(_) if self.backend == Backend::Sqlite && attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e).context("running migrations"),
            }
        }
    }

    /// A transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later
    /// fails with SQLITE_BUSY, without waiting, when another process (an
    /// instance sharing the file) wrote in between.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let begin = (self.backend == Backend::Sqlite).then_some(SQLITE_BEGIN);
        Tx::begin(self.conn().await?, begin).await
    }

    /// Runs one statement whose loss in a power failure is harmless because
    /// it is redone after a restart (the outbox marking rows sent: a row
    /// found unsent is published again with the same `Nats-Msg-Id`, and
    /// the broker's duplicate window or the consumers' inboxes drop it; a
    /// command's stored reply gaining its events' stream sequence).
    /// It commits without waiting for the disk: on SQLite with
    /// `synchronous=NORMAL` for this statement alone (the next regular
    /// commit syncs the write-ahead log, this change included), on
    /// PostgreSQL with `synchronous_commit = off` for its transaction.
    /// That saves an fsync per relay round and per command.
    ///
    /// On SQLite the pragma, the statement and the pragma that restores the
    /// sync go to the connection as one string: one round trip to sqlx's
    /// worker thread instead of three (its parameters keep their `$N`
    /// numbers across the statements of a string).
    pub async fn execute_relaxed<'q>(
        &self,
        mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<(), sqlx::Error> {
        use sqlx::Execute as _;
        match &self.writer {
            // A rebuildable database never waits for the disk anyway.
            _ if self.durability == Durability::Rebuildable => {
                query.execute(&mut *self.conn().await?).await?;
            }
            Conns::Held(held) => {
                let restore = sqlite_sync(self.durability);
                let sql = format!("PRAGMA synchronous=NORMAL; {}; {restore}", query.sql());
                let arguments = query
                    .take_arguments()
                    .map_err(sqlx::Error::Encode)?
                    .unwrap_or_default();
                let mut conn = held.borrow().await?;
                // Until the string has run to its last pragma (a failed
                // statement stops it, and so may a cancelled future), the
                // next borrower restores the sync first.
                conn.repair_with(restore);
                sqlx::query_with(&sql, arguments)
                    .execute(&mut *conn)
                    .await?;
                conn.repaired();
            }
            Conns::Pool(_) => {
                let mut tx = self.begin().await?;
                tx.execute("SET LOCAL synchronous_commit TO OFF").await?;
                query.execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// A cheap round trip, for readiness. It goes through the readers, so a
    /// long write transaction does not make the service look unhealthy.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.readers.lend().await?)
            .await
            .map(|_| ())
    }

    /// The platform's tables (outbox, inbox, command log, checkpoints) are
    /// created here rather than in each service's migrations, so every
    /// service gets the same ones; the DDL is idempotent.
    async fn create_platform_tables(&self) -> anyhow::Result<()> {
        let serial = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS platform_outbox (
                    position {serial},
                    event_id TEXT NOT NULL UNIQUE,
                    subject TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    traceparent TEXT,
                    created_at TEXT NOT NULL,
                    published_at TEXT,
                    stream_seq BIGINT
                )"
            ),
            "CREATE INDEX IF NOT EXISTS platform_outbox_unpublished
                ON platform_outbox (position) WHERE published_at IS NULL"
                .to_owned(),
            "CREATE TABLE IF NOT EXISTS platform_inbox (
                consumer TEXT NOT NULL,
                event_id TEXT NOT NULL,
                handled_at TEXT NOT NULL,
                PRIMARY KEY (consumer, event_id)
            )"
            .to_owned(),
            "CREATE TABLE IF NOT EXISTS platform_command_log (
                command_id TEXT PRIMARY KEY,
                command TEXT NOT NULL,
                request_digest TEXT,
                reply TEXT NOT NULL,
                created_at TEXT NOT NULL
            )"
            .to_owned(),
            "CREATE TABLE IF NOT EXISTS platform_checkpoint (
                projection TEXT PRIMARY KEY,
                last_seq BIGINT NOT NULL
            )"
            .to_owned(),
            // A projection whose stream was created anew under it, until a
            // replay from the start rebuilds it (`projection::start_over`).
            // Which life of its stream a projection follows (the stream's
            // creation time), so a stream created anew is known at start
            // however many events it already holds (`crate::started_over`).
            "CREATE TABLE IF NOT EXISTS platform_stream_incarnation (
                projection TEXT PRIMARY KEY,
                stream_created TEXT NOT NULL
            )"
            .to_owned(),
            "CREATE TABLE IF NOT EXISTS platform_stream_restart (
                projection TEXT PRIMARY KEY,
                noticed_at TEXT NOT NULL
            )"
            .to_owned(),
            // The first sequence its stream held when a projection was last
            // rebuilt from the start: a stream cut (limits, a purge) past it
            // since holds less than the view was made from.
            "CREATE TABLE IF NOT EXISTS platform_stream_floor (
                projection TEXT PRIMARY KEY,
                first_seq BIGINT NOT NULL
            )"
            .to_owned(),
        ];
        // PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against itself:
        // instances starting together on a fresh database race on the
        // catalog. A transaction-scoped advisory lock serialises them.
        let mut tx = self.begin().await.context("creating the platform tables")?;
        if self.backend == Backend::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(7201507361)")
                .await
                .context("locking for the platform tables")?;
        }
        for sql in statements {
            tx.execute(sql.as_str())
                .await
                .context("creating the platform tables")?;
        }
        add_request_digest(&mut tx, self.backend)
            .await
            .context("adding request_digest to platform_command_log")?;
        tx.commit().await.context("creating the platform tables")?;
        Ok(())
    }
}

/// Adds the command log's `request_digest` to a database made before it
/// existed (its older commands keep none: see `idempotency::Recorded`).
async fn add_request_digest(tx: &mut Tx, backend: Backend) -> Result<(), sqlx::Error> {
    const ADD: &str = "ALTER TABLE platform_command_log ADD COLUMN request_digest TEXT";
    match backend {
        Backend::Postgres => {
            tx.execute(
                "ALTER TABLE platform_command_log ADD COLUMN IF NOT EXISTS request_digest TEXT",
            )
            .await?;
        }
        Backend::Sqlite => {
            let present: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pragma_table_info('platform_command_log') \
                 WHERE name = 'request_digest'",
            )
            .fetch_one(&mut **tx)
            .await?;
            if present == 0 {
                tx.execute(ADD).await?;
            }
        }
    }
    Ok(())
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// The read-only connections of an SQLite file, made lazily: the writer
/// must have created the file and switched it to WAL first.
fn sqlite_readers(url: &str) -> anyhow::Result<AnyPool> {
    AnyPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .max_connections(SQLITE_READERS)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout=10000").await?;
                conn.execute("PRAGMA query_only=ON").await?;
                Ok(())
            })
        })
        .connect_lazy(url)
        .context("opening the SQLite readers")
}

fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database directory {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Now, as stored: RFC 3339 in UTC with microseconds (sorts as text).
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The placeholders of a multi-row `VALUES` list inside `tx`: `rows` rows
/// of `width` parameters, `(…), (…)`, the statement's only parameters.
pub fn values(tx: &Tx, rows: usize, width: usize) -> String {
    let backend = match tx.backend_name() {
        "SQLite" => Backend::Sqlite,
        _ => Backend::Postgres,
    };
    placeholders(backend, 0, rows, width)
}

/// [`values`] after `before` parameters of the statement's own: numbered
/// from `$before+1` on PostgreSQL. SQLite gets anonymous `?` throughout
/// (bound in the order they appear, so the statement's own must be `?`
/// too): sqlx binds `$N` there by looking each name up among all of the
/// statement's, which is quadratic in their number.
pub fn placeholders(backend: Backend, before: usize, rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * (width * 5 + 4));
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=width {
            if c > 1 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => out.push_str(&format!("${}", before + r * width + c)),
            }
        }
        out.push(')');
    }
    out
}

/// Rows touched by a statement.
pub fn affected(result: &AnyQueryResult) -> u64 {
    result.rows_affected()
}
