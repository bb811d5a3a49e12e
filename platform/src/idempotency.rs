//! Idempotent commands: the reply to each command id is stored in the same
//! transaction as its effect, with the command's name and the digest of
//! what it asked; a repeated command gets the first reply back, a command
//! that reuses an id for something else is told so.

use crate::db::{now_text, Tx};

/// What the command log holds for one command id.
#[derive(Debug)]
pub struct Recorded {
    /// The command's name (`place-order`).
    pub command: String,
    /// The digest of what it asked (`command::Asked`); `None` for a
    /// command recorded before digests were kept.
    pub digest: Option<String>,
    /// The reply, as JSON.
    pub reply: String,
}

impl Recorded {
    /// Whether a command named `command` asking `digest` repeats this one.
    /// A record without a digest cannot tell, and is taken as a repeat.
    pub fn repeated_by(&self, command: &str, digest: &str) -> bool {
        self.command == command && self.digest.as_deref().is_none_or(|d| d == digest)
    }
}

/// What the command log holds for `command_id`, if it ran before.
pub async fn recorded(tx: &mut Tx, command_id: &str) -> Result<Option<Recorded>, sqlx::Error> {
    let row: Option<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT command, request_digest, reply FROM platform_command_log WHERE command_id = $1",
    )
    .bind(command_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(command, digest, reply)| Recorded {
        command,
        digest,
        reply,
    }))
}

/// Records the reply of `command_id` (inside the command's transaction).
pub async fn record(
    tx: &mut Tx,
    command_id: &str,
    command: &str,
    digest: &str,
    reply: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO platform_command_log (command_id, command, request_digest, reply, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(command_id)
    .bind(command)
    .bind(digest)
    .bind(reply)
    .bind(now_text())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
