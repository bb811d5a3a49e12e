//! A fresh database per test: a SQLite file, or a PostgreSQL database
//! created for the test and dropped afterwards.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use tokio::sync::OnceCell;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The database engines every store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A database that lives as long as the test: `url()` is a `DATABASE_URL`.
#[derive(Debug)]
pub struct TestDb {
    backend: Backend,
    url: String,
    /// The PostgreSQL server URL and the database to drop.
    created: Option<(String, String)>,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// The backends to run store tests on: SQLite always, PostgreSQL when
    /// `$TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
    /// answers. With `CI=true` an unreachable PostgreSQL panics instead,
    /// because CI must test both.
    pub async fn backends() -> Vec<Backend> {
        static REACHABLE: OnceCell<Result<(), String>> = OnceCell::const_new();
        let reachable = REACHABLE
            .get_or_init(|| async {
                ping(&postgres_server_url())
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        match reachable {
            Ok(()) => vec![Backend::Sqlite, Backend::Postgres],
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!(
                    "CI=true but PostgreSQL at {} is unreachable ({e}); CI must test both backends",
                    postgres_server_url()
                )
            }
            Err(_) => vec![Backend::Sqlite],
        }
    }

    /// A database on the backend `BAZAAR_TEST_DB` names (`sqlite`, the
    /// default, or `postgres`).
    pub async fn default() -> TestDb {
        match std::env::var("BAZAAR_TEST_DB").as_deref() {
            Ok("postgres") => TestDb::new(Backend::Postgres).await,
            Ok("sqlite") | Ok("") | Err(_) => TestDb::new(Backend::Sqlite).await,
            Ok(other) => panic!("BAZAAR_TEST_DB={other:?}: expected sqlite or postgres"),
        }
    }

    /// The backend `BAZAAR_TEST_DB` names, for tests that start services.
    pub fn default_backend() -> Backend {
        match std::env::var("BAZAAR_TEST_DB").as_deref() {
            Ok("postgres") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    pub async fn new(backend: Backend) -> TestDb {
        let made = match backend {
            Backend::Sqlite => sqlite(),
            Backend::Postgres => postgres().await,
        };
        made.unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e:#}"))
    }

    pub async fn sqlite() -> TestDb {
        TestDb::new(Backend::Sqlite).await
    }

    pub async fn postgres() -> TestDb {
        TestDb::new(Backend::Postgres).await
    }

    /// A connection URL for sqlx (and for a service's `DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.created.take() {
            drop_postgres_database(&server, &name);
        }
    }
}

/// Drops database `name` on the PostgreSQL `server`, even while clients
/// are connected. Runs inside or outside a runtime (a thread with its own
/// runtime works in both). Best effort: a database left behind only costs
/// disk space.
pub fn drop_postgres_database(server: &str, name: &str) {
    let (server, name) = (server.to_owned(), name.to_owned());
    let dropper = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let drop_db = async {
                let mut conn = PgConnection::connect(&server).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await?;
                conn.close().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), drop_db).await;
        });
    });
    let _ = dropper.join();
}

/// The PostgreSQL server tests use: `$TEST_POSTGRES_URL`, by default
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn postgres_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

async fn ping(url: &str) -> anyhow::Result<()> {
    let connect = tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(url));
    let conn = connect
        .await
        .context("timed out")?
        .context("cannot connect")?;
    conn.close().await.context("cannot close")
}

fn sqlite() -> anyhow::Result<TestDb> {
    let dir = tempfile::Builder::new()
        .prefix("bazaar-db-")
        .tempdir()
        .context("cannot create a temp dir")?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    Ok(TestDb {
        backend: Backend::Sqlite,
        url,
        created: None,
        _dir: Some(dir),
    })
}

async fn postgres() -> anyhow::Result<TestDb> {
    let server = postgres_server_url();
    let name = format!("bazaar_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&server))
        .await
        .context("timed out connecting")?
        .with_context(|| format!("cannot connect to {server}"))?;
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .context("cannot create the database")?;
    let _ = conn.close().await;
    let mut url = reqwest::Url::parse(&server).with_context(|| format!("not a URL: {server}"))?;
    url.set_path(&format!("/{name}"));
    Ok(TestDb {
        backend: Backend::Postgres,
        url: url.to_string(),
        created: Some((server, name)),
        _dir: None,
    })
}

/// Runs `case` once per backend of [`TestDb::backends`], one after the
/// other: how store-touching tests cover SQLite and PostgreSQL alike.
pub async fn on_every_backend<F, Fut>(case: F)
where
    F: Fn(Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in TestDb::backends().await {
        case(backend).await;
    }
}
