//! Where the services keep their state: an SQLite file each in the data
//! dir (the default), or, with `--postgres URL`, a database each on one
//! PostgreSQL server (`<name>_product`, `<name>_checkout`, …), created when
//! missing.
//!
//! The data dir remembers which (`<data-dir>/database`): its JetStream
//! store and the services' databases belong together, so starting it on
//! other databases would pair the events of one shop with the state of
//! another (or with none). Such a start is refused, as is a first start on
//! databases that already hold tables (another shop's, most likely), and a
//! later one whose databases are gone. Empty databases that exist already
//! are used: an administrator made them for a role that may not create
//! databases (as managed PostgreSQL services give applications). A first
//! start claims every database with a `bazaar_shop` table before it writes
//! the marker, so a second shop never takes databases a first one chose,
//! even before its services made their tables.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use contracts::subjects::SERVICES;
use reqwest::Url;
use sqlx::{Connection, Executor, PgConnection};
use tracing::info;

use crate::exit::{unreachable, usage};

/// The file in the data dir that names the databases.
const MARKER: &str = "database";
/// The database name prefix when `--postgres` names no database.
const DEFAULT_NAME: &str = "bazaar";
/// PostgreSQL's identifier limit (63) less the longest suffix (`_warehouse`).
const MAX_NAME: usize = 53;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// PostgreSQL's SQLSTATEs for "permission denied" and "table exists".
const INSUFFICIENT_PRIVILEGE: &str = "42501";
const DUPLICATE_TABLE: &str = "42P07";

/// Each service's `DATABASE_URL`, when it is not the SQLite default.
#[derive(Debug, Default)]
pub struct Databases {
    urls: BTreeMap<&'static str, String>,
    /// `host:port` and the names, for the banner.
    pub postgres: Option<String>,
}

impl Databases {
    pub fn url_of(&self, service: &str) -> Option<&str> {
        self.urls.get(service).map(String::as_str)
    }
}

/// Checks that the data dir's shop keeps its state where asked, creates
/// missing PostgreSQL databases, and names each service's database.
pub async fn prepare(data_dir: &Path, postgres: Option<&str>) -> anyhow::Result<Databases> {
    let server = postgres.map(Server::parse).transpose()?;
    let wanted = match &server {
        None => "sqlite".to_owned(),
        Some(server) => format!("postgres {}", server.describe()),
    };
    let marker = data_dir.join(MARKER);
    let known = match std::fs::read_to_string(&marker) {
        Ok(text) => Some(text.trim().to_owned()),
        // A data dir from before the marker: SQLite, if any service ran.
        Err(e) if e.kind() == ErrorKind::NotFound => SERVICES
            .iter()
            .any(|s| data_dir.join(format!("{s}.db")).exists())
            .then(|| "sqlite".to_owned()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", marker.display())),
    };
    if let Some(known) = &known {
        if known != "sqlite" && !known.starts_with("postgres ") {
            return Err(usage(format!(
                "{} should name where the shop keeps its state (\"sqlite\", or \"postgres \
                 <host:port>/<name>\"), but it holds {:?}: mend it, or use another --data-dir",
                marker.display(),
                known.chars().take(80).collect::<String>(),
            )));
        }
        if *known != wanted {
            return Err(usage(format!(
                "the shop in {} keeps its state in {}, not in {}: its streams and those \
                 databases belong together. Start it as before ({}), or use another \
                 --data-dir for a new shop",
                data_dir.display(),
                human(known),
                human(&wanted),
                how_to_start(known),
            )));
        }
    }
    let Some(server) = server else {
        if known.is_none() {
            write_marker(&marker, &wanted)?;
        }
        return Ok(Databases::default());
    };
    let mut conn = server.connect().await?;
    let fresh = known.is_none();
    if fresh {
        let mut taken = Vec::new();
        for name in server.existing(&mut conn).await? {
            if server.holds_tables(&name).await? {
                taken.push(name);
            } else {
                info!(database = %name, "exists and is empty; using it");
            }
        }
        if !taken.is_empty() {
            return Err(usage(format!(
                "database{} {} already exist{} on {} and hold{} tables, maybe another shop's \
                 state; drop {} or name others (e.g. --postgres {})",
                if taken.len() == 1 { "" } else { "s" },
                taken.join(", "),
                if taken.len() == 1 { "s" } else { "" },
                server.host(),
                if taken.len() == 1 { "s" } else { "" },
                if taken.len() == 1 { "it" } else { "them" },
                server.example_other_name(),
            )));
        }
    }
    let existing = server.existing(&mut conn).await?;
    let missing: Vec<String> = SERVICES
        .iter()
        .map(|s| server.database_of(s))
        .filter(|name| !existing.contains(name))
        .collect();
    if !fresh && !missing.is_empty() {
        // Its service's state is gone while the streams remember it: an
        // empty database would, say, issue invoice numbers again.
        return Err(usage(format!(
            "database{} {} of the shop in {} {} gone from {}: restore {} from a backup, \
             or start a new shop (another --data-dir and database name)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            data_dir.display(),
            if missing.len() == 1 { "is" } else { "are" },
            server.host(),
            if missing.len() == 1 { "it" } else { "them" },
        )));
    }
    for name in &missing {
        match conn
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
        {
            Ok(_) => info!(database = %name, "created"),
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE) =>
            {
                let role = current_user(&mut conn).await;
                return Err(usage(format!(
                    "the role {} may not create databases on {} ({e}): have an administrator \
                     create the shop's databases, empty and owned by it ({}), then start again",
                    role,
                    server.host(),
                    missing
                        .iter()
                        .map(|m| format!("CREATE DATABASE \"{m}\" OWNER {};", quoted(&role)))
                        .collect::<Vec<_>>()
                        .join(" "),
                )));
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create database {name} on {}", server.host()))
            }
        }
    }
    // Once every database is there and this shop's: a first start that
    // failed half-way finds them claimed, and is refused next time.
    if fresh {
        for service in SERVICES {
            server.claim(&server.database_of(service)).await?;
        }
        write_marker(&marker, &wanted)?;
    }
    let urls = SERVICES
        .iter()
        .map(|s| (*s, server.url_of(&server.database_of(s))))
        .collect();
    let _ = conn.close().await;
    Ok(Databases {
        urls,
        postgres: Some(format!("PostgreSQL {} ({}_*)", server.host(), server.name)),
    })
}

/// The role a connection runs as (as the server resolved it: the URL's
/// user, `PGUSER` or the OS user).
async fn current_user(conn: &mut PgConnection) -> String {
    sqlx::query_as::<_, (String,)>("SELECT current_user::text")
        .fetch_one(conn)
        .await
        .map_or_else(|_| "the role".to_owned(), |(role,)| role)
}

/// An identifier quoted for SQL.
fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn write_marker(marker: &Path, what: &str) -> anyhow::Result<()> {
    std::fs::write(marker, format!("{what}\n"))
        .with_context(|| format!("cannot write {}", marker.display()))
}

fn human(marker: &str) -> String {
    match marker.strip_prefix("postgres ") {
        Some(place) => format!("PostgreSQL databases {place}_*"),
        None => "SQLite files".to_owned(),
    }
}

fn how_to_start(marker: &str) -> String {
    match marker.strip_prefix("postgres ") {
        Some(place) => format!("--postgres postgres://USER@{place}"),
        None => "without --postgres".to_owned(),
    }
}

/// A PostgreSQL server and the prefix of the shop's database names.
struct Server {
    url: Url,
    name: String,
}

impl Server {
    fn parse(text: &str) -> anyhow::Result<Server> {
        let url = Url::parse(text).map_err(|e| {
            usage(format!(
                "--postgres: {e}; expected e.g. postgres://postgres@127.0.0.1:5432/shop"
            ))
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(usage(format!(
                "--postgres: {}: expected a postgres:// URL",
                redacted(&url)
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(usage(format!("--postgres: {}: no host", redacted(&url))));
        }
        let name = match url.path().trim_start_matches('/') {
            "" => DEFAULT_NAME.to_owned(),
            name => name.to_owned(),
        };
        let valid = name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(usage(format!(
                "--postgres: database name {name:?}: the shop's databases are named after it \
                 ({name}_product, …), so it must be 1 to {MAX_NAME} of a-z, 0-9 and _, \
                 starting with a letter"
            )));
        }
        Ok(Server { url, name })
    }

    fn host(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        format!("{host}:{}", self.url.port().unwrap_or(5432))
    }

    /// Where the databases are, without credentials: `host:port/name`.
    fn describe(&self) -> String {
        format!("{}/{}", self.host(), self.name)
    }

    fn example_other_name(&self) -> String {
        let mut url = self.url.clone();
        url.set_path(&format!("/{}_2", self.name));
        redacted(&url)
    }

    fn database_of(&self, service: &str) -> String {
        let team = service
            .strip_suffix("-svc")
            .or_else(|| service.strip_suffix("-api"))
            .unwrap_or(service);
        format!("{}_{team}", self.name)
    }

    fn url_of(&self, database: &str) -> String {
        let mut url = self.url.clone();
        url.set_path(&format!("/{database}"));
        url.to_string()
    }

    /// A connection to the server's `postgres` database, to create others.
    async fn connect(&self) -> anyhow::Result<PgConnection> {
        self.connect_to("postgres").await
    }

    /// Whether `database` holds any table, view or sequence of its own
    /// (outside PostgreSQL's system schemas, and not an extension's), whoever
    /// owns it.
    async fn holds_tables(&self, database: &str) -> anyhow::Result<bool> {
        let mut conn = self.connect_to(database).await?;
        let (holds,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' \
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
             AND d.objid = c.oid AND d.deptype = 'e'))",
        )
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("cannot look into database {database} on {}", self.host()))?;
        let _ = conn.close().await;
        Ok(holds)
    }

    /// Marks `database` as this shop's with a table of its own: another
    /// shop's first start then finds it holding tables, and of two first
    /// starts at once only one can create it.
    async fn claim(&self, database: &str) -> anyhow::Result<()> {
        let mut conn = self.connect_to(database).await?;
        let made = conn
            .execute(
                "CREATE TABLE bazaar_shop (claimed_at timestamptz NOT NULL DEFAULT now()); \
                 INSERT INTO bazaar_shop DEFAULT VALUES",
            )
            .await;
        let _ = conn.close().await;
        match made {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_TABLE) => {
                Err(usage(format!(
                    "database {database} on {} was just claimed by another shop starting on \
                     it; name other databases (another --postgres name)",
                    self.host()
                )))
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "cannot create a table in database {database} on {}",
                    self.host()
                )
            }),
        }
    }

    async fn connect_to(&self, database: &str) -> anyhow::Result<PgConnection> {
        let url = self.url_of(database);
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&url)).await {
            Ok(Ok(conn)) => Ok(conn),
            // The server answered and refused (no such role, a wrong
            // password): the URL is wrong, not the server away.
            Ok(Err(e @ sqlx::Error::Database(_))) => Err(usage(format!(
                "PostgreSQL at {} refused the connection: {e}",
                self.host()
            ))),
            Ok(Err(e)) => Err(unreachable(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                self.host()
            ))),
            Err(_) => Err(unreachable(format!(
                "PostgreSQL at {} did not answer within {CONNECT_TIMEOUT:?}",
                self.host()
            ))),
        }
    }

    /// Which of the shop's databases exist.
    async fn existing(&self, conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
        let names: Vec<String> = SERVICES.iter().map(|s| self.database_of(s)).collect();
        let found: Vec<(String,)> = sqlx::query_as(
            "SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname",
        )
        .bind(&names)
        .fetch_all(conn)
        .await
        .with_context(|| format!("cannot list the databases on {}", self.host()))?;
        Ok(found.into_iter().map(|(name,)| name).collect())
    }
}

/// A URL fit for a message: without its password.
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_team_gets_a_database_named_after_the_urls() {
        let server = Server::parse("postgres://shop:s3cret@db.example:6543/acme?sslmode=require")
            .expect("a good URL");
        assert_eq!(server.describe(), "db.example:6543/acme");
        assert_eq!(server.database_of("edge-api"), "acme_edge");
        assert_eq!(
            server.url_of(&server.database_of("checkout-svc")),
            "postgres://shop:s3cret@db.example:6543/acme_checkout?sslmode=require"
        );
        let default = Server::parse("postgresql://postgres@127.0.0.1").expect("a good URL");
        assert_eq!(default.describe(), "127.0.0.1:5432/bazaar");
    }

    #[test]
    fn names_and_urls_that_cannot_work_are_refused_without_the_password() {
        for bad in [
            "mysql://root@127.0.0.1/shop",
            "postgres://u:s3cret@127.0.0.1/Shop",
            "postgres://u:s3cret@127.0.0.1/my-shop",
            "postgres://u:s3cret@127.0.0.1/1shop",
            "127.0.0.1:5432",
        ] {
            let error = Server::parse(bad).err().expect("refused").to_string();
            assert!(error.starts_with("--postgres"), "{bad}: {error}");
            assert!(!error.contains("s3cret"), "{bad}: {error}");
        }
        let long = format!("postgres://u@h/{}", "a".repeat(MAX_NAME + 1));
        assert!(Server::parse(&long).is_err());
    }
}
