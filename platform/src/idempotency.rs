//! Idempotent commands: the reply to each command id is stored in the same
//! transaction as its effect; a repeated command gets the first reply back.

use crate::db::{now_text, Tx};

/// The stored reply of `command_id`, if it ran before.
pub async fn recorded(tx: &mut Tx, command_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT reply FROM platform_command_log WHERE command_id = $1")
        .bind(command_id)
        .fetch_optional(&mut **tx)
        .await
}

/// Records the reply of `command_id` (inside the command's transaction).
pub async fn record(
    tx: &mut Tx,
    command_id: &str,
    command: &str,
    reply: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO platform_command_log (command_id, command, reply, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(command_id)
    .bind(command)
    .bind(reply)
    .bind(now_text())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
