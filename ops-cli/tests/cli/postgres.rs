//! `bazaar up --postgres`: a database per service on one PostgreSQL
//! server, remembered by the data dir; empty databases an administrator
//! made are used and claimed; another shop's are refused.

use bazaar_testkit::{
    drop_postgres_database, fake_started_with, postgres_server_url, Backend, TestDb,
};
use nix::sys::signal::Signal;
use sqlx::Connection;

use super::{stderr, Sandbox, Up};

/// The databases `up --postgres` creates, dropped when the test ends.
struct ShopDatabases {
    server: String,
    names: Vec<String>,
}

impl Drop for ShopDatabases {
    fn drop(&mut self) {
        for name in &self.names {
            drop_postgres_database(&self.server, name);
        }
    }
}

/// A role that may not create databases: `up` says what to ask an
/// administrator for, and uses the empty databases they made.
#[tokio::test]
async fn up_on_postgres_uses_empty_databases_an_administrator_made_for_its_role() {
    if !TestDb::backends().await.contains(&Backend::Postgres) {
        return; // Outside CI without PostgreSQL there is nothing to run on.
    }
    let server = postgres_server_url();
    let name = format!("bzdba{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let role = format!("{name}_app");
    let teams = ["product", "checkout", "warehouse", "finance", "edge"];
    // Dropped after the databases it owns (declared before them).
    let _role = PgRole {
        server: server.clone(),
        name: role.clone(),
    };
    let _cleanup = ShopDatabases {
        server: server.clone(),
        names: teams.iter().map(|t| format!("{name}_{t}")).collect(),
    };
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .expect("PostgreSQL");
    sqlx::query(&format!("CREATE ROLE \"{role}\" LOGIN NOCREATEDB"))
        .execute(&mut admin)
        .await
        .expect("a role that may not create databases");
    let mut shop_url = reqwest::Url::parse(&server).expect("TEST_POSTGRES_URL is a URL");
    shop_url.set_path(&format!("/{name}"));
    shop_url.set_username(&role).expect("a user in the URL");
    let _ = shop_url.set_password(None);
    let shop_url = shop_url.to_string();

    // Refused: it may not create them, and is told what to ask for.
    let sandbox = Sandbox::new(true);
    let refused = sandbox.up_once_with(&["--postgres", &shop_url]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!(
            "CREATE DATABASE \"{name}_product\" OWNER \"{role}\";"
        )),
        "{}",
        stderr(&refused)
    );
    assert!(
        !sandbox.data().exists(),
        "a refused start leaves its data dir"
    );

    // The administrator makes them, empty: the shop starts on them.
    for team in teams {
        sqlx::query(&format!(
            "CREATE DATABASE \"{name}_{team}\" OWNER \"{role}\""
        ))
        .execute(&mut admin)
        .await
        .expect("a database made for the role");
    }
    let mut up = Up::start(sandbox, &["--postgres", &shop_url]);
    up.wait_until_up().await;
    let started = fake_started_with(&up.sandbox.data(), "finance-svc-0").expect("started");
    let mut own = reqwest::Url::parse(&shop_url).expect("URL");
    own.set_path(&format!("/{name}_finance"));
    assert_eq!(started["env"]["DATABASE_URL"], own.to_string());
    up.signal(Signal::SIGINT);
    assert!(up.wait_for_exit().await.success(), "{}", up.output());

    // Now this shop's, though its (fake) services made no table: another
    // new shop on them is refused.
    let other = Sandbox::new(true);
    let second = other.up_once_with(&["--postgres", &shop_url]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("hold tables"),
        "{}",
        stderr(&second)
    );
}

/// A PostgreSQL role a test made, dropped at the end.
struct PgRole {
    server: String,
    name: String,
}

impl Drop for PgRole {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS \"{name}\""))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn up_on_postgres_gives_each_service_a_database_and_the_data_dir_remembers_it() {
    if !TestDb::backends().await.contains(&Backend::Postgres) {
        return; // Outside CI without PostgreSQL there is nothing to run on.
    }
    let server = postgres_server_url();
    let name = format!("bzup{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let teams = ["product", "checkout", "warehouse", "finance", "edge"];
    let _cleanup = ShopDatabases {
        server: server.clone(),
        names: teams.iter().map(|t| format!("{name}_{t}")).collect(),
    };
    let mut shop_url = reqwest::Url::parse(&server).expect("TEST_POSTGRES_URL is a URL");
    shop_url.set_path(&format!("/{name}"));
    let shop_url = shop_url.to_string();

    let mut up = Up::start(Sandbox::new(true), &["--postgres", &shop_url]);
    up.wait_until_up().await;
    assert!(
        up.output().contains("databases   PostgreSQL"),
        "{}",
        up.output()
    );
    let data = up.sandbox.data();
    for (instance, team) in [
        ("product-svc-0", "product"),
        ("checkout-svc-0", "checkout"),
        ("warehouse-svc-0", "warehouse"),
        ("finance-svc-0", "finance"),
        ("edge-api-0", "edge"),
    ] {
        let started = fake_started_with(&data, instance).expect("started");
        let mut own = reqwest::Url::parse(&server).expect("URL");
        own.set_path(&format!("/{name}_{team}"));
        assert_eq!(
            started["env"]["DATABASE_URL"],
            own.to_string(),
            "{instance}"
        );
    }
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .expect("PostgreSQL");
    let made: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname")
            .bind(format!("{name}\\_%"))
            .fetch_all(&mut conn)
            .await
            .expect("databases listed");
    let mut expected: Vec<String> = teams.iter().map(|t| format!("{name}_{t}")).collect();
    expected.sort();
    assert_eq!(made.into_iter().map(|(n,)| n).collect::<Vec<_>>(), expected);
    up.signal(Signal::SIGINT);
    assert!(up.wait_for_exit().await.success(), "{}", up.output());

    // Its streams belong to those databases: starting it on SQLite files
    // is refused, and so is a new shop on the same databases (claimed by
    // this one, though its fake services made no tables).
    let sqlite = up.sandbox.up_once();
    assert_eq!(sqlite.status.code(), Some(2), "{}", stderr(&sqlite));
    assert!(
        stderr(&sqlite).contains("keeps its state in PostgreSQL databases"),
        "{}",
        stderr(&sqlite)
    );
    let other = Sandbox::new(true);
    let taken = other.up_once_with(&["--postgres", &shop_url]);
    assert_eq!(taken.status.code(), Some(2), "{}", stderr(&taken));
    assert!(
        stderr(&taken).contains(&format!("{name}_checkout, "))
            && stderr(&taken).contains("hold tables"),
        "{}",
        stderr(&taken)
    );
    assert!(other.up_json().is_none());
    assert!(
        !other.data().exists(),
        "a refused start leaves its new data dir behind"
    );

    // The same shop starts again on its databases.
    up.start_again(&["--postgres", &shop_url]);
    up.wait_until_up().await;
    up.signal(Signal::SIGINT);
    assert!(up.wait_for_exit().await.success(), "{}", up.output());

    // A database that is gone is not made again, empty, under the streams
    // that remember its state.
    sqlx::query(&format!("DROP DATABASE \"{name}_finance\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("a database dropped");
    let gone = up.sandbox.up_once_with(&["--postgres", &shop_url]);
    assert_eq!(gone.status.code(), Some(2), "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains(&format!("{name}_finance of the shop")),
        "{}",
        stderr(&gone)
    );
}
