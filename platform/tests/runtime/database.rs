//! The database layer itself.

use bazaar_testkit::{Backend, TestDb};
use platform::{Db, Secret};

use crate::support::on_every_backend;

#[tokio::test]
async fn instances_starting_together_on_a_fresh_database_all_start() {
    on_every_backend(|backend: Backend| async move {
        // Arrange: a database no instance has touched yet.
        let fresh = TestDb::new(backend).await;
        let url = Secret::new(fresh.url());

        // Act: six instances connect (and create the platform tables) at once.
        let attempts: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Db::connect(&url).await.map(|_| ()) })
            })
            .collect();

        // Assert: every one of them started.
        for attempt in attempts {
            if let Err(error) = attempt.await.expect("connect task panicked") {
                panic!("{backend:?}: an instance failed to start: {error:#}");
            }
        }
    })
    .await;
}
