//! Executes a command exactly once: its state change, its events (outbox)
//! and its reply (command log) commit in one transaction; a repeated command
//! id gets the first reply back and changes nothing; then the events are
//! published at once so the reply can carry their stream sequence.

use std::fmt::Write as _;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use contracts::commands::{CommandError, ErrorKind, FieldError, Reply, Request};
use sha2::{Digest, Sha256};

use crate::db::{Db, Tx};
use crate::group_commit::NotCommitted;
use crate::idempotency::Recorded;
use crate::outbox::Outbox;

/// What a command decided: its answer and the events it wrote to the outbox.
pub struct Decided<T> {
    pub value: T,
    pub events: Vec<Uuid>,
}

/// Why a command did not happen.
#[derive(Debug)]
pub enum Refusal {
    /// The caller's fault (validation, conflict, not found): nothing stored.
    Rejected(CommandError),
    /// Ours: logged, answered as `unavailable` without internals.
    Failed(anyhow::Error),
}

impl From<CommandError> for Refusal {
    fn from(e: CommandError) -> Self {
        Refusal::Rejected(e)
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Refusal::Failed(e.into())
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        Refusal::Failed(e)
    }
}

/// A command as it was asked: its name, its id, and a digest of who asked
/// what (the actor and the body). A command id seen before answers with
/// the first reply only when name and digest match too; a client that
/// reuses an `Idempotency-Key` for another request is told so, and is
/// never answered with another command's outcome.
#[derive(Debug, Clone)]
pub struct Asked {
    name: &'static str,
    id: String,
    digest: String,
}

impl Asked {
    /// The command `name` carried by `request`.
    pub fn new<B: Serialize>(name: &'static str, request: &Request<B>) -> Asked {
        Asked::of(
            name,
            request.command_id.clone(),
            &(&request.actor, &request.body),
        )
    }

    /// The command `name` with id `id`, asking `what`.
    pub fn of<W: Serialize + ?Sized>(name: &'static str, id: String, what: &W) -> Asked {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        // Serialising plain data cannot fail; if it did, the digest of the
        // name alone still refuses a reuse by another command.
        if let Ok(json) = serde_json::to_vec(what) {
            hasher.update(&json);
        }
        let mut digest = String::with_capacity(64);
        for byte in hasher.finalize() {
            // Writing to a String cannot fail.
            let _ = write!(digest, "{byte:02x}");
        }
        Asked { name, id, digest }
    }
}

/// The answer to a command id reused for a different request.
fn reused_id() -> CommandError {
    CommandError {
        kind: ErrorKind::Invalid,
        message: "this Idempotency-Key was already used for a different request".into(),
        errors: vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "already used for a different request; send a new key with a new request"
                .into(),
        }],
    }
}

/// Runs `decide` inside a transaction, once per command id. On SQLite
/// the transaction is shared with the commands that arrive meanwhile
/// ([`crate::group_commit`]), each inside a savepoint of its own.
pub async fn execute<T, F>(db: &Db, outbox: &Outbox, asked: Asked, decide: F) -> Reply<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + 'static,
    F: for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<Decided<T>, Refusal>> + Send + 'static,
{
    match attempt(db, asked.clone(), decide).await {
        Ok(Attempt::Repeated(reply)) => reply,
        Ok(Attempt::Done(decided)) => {
            crate::fault::point(crate::fault::OUTBOX_AFTER_COMMIT);
            // Published here rather than by the relay, which would race this
            // flush for the rows (then this one finds nothing and reads the
            // sequences back). The relay is woken only if this did not do it.
            let stream_seq = outbox.publish_now(&decided.events).await;
            if stream_seq.is_none() && !decided.events.is_empty() {
                outbox.notify();
            }
            let reply = Reply::Ok {
                value: decided.value,
                stream_seq,
            };
            // A repeat must get this reply, stream sequence included (for
            // read-your-writes); the committed one has none yet. Without
            // waiting for the disk: after a power cut a repeat may get the
            // committed reply, whose caller then answers without waiting
            // for its views, which is all the sequence is for.
            if let (Some(_), Ok(stored)) = (stream_seq, serde_json::to_string(&reply)) {
                let update =
                    sqlx::query("UPDATE platform_command_log SET reply = $1 WHERE command_id = $2");
                if let Err(error) = db
                    .execute_relaxed(update.bind(stored).bind(&asked.id))
                    .await
                {
                    tracing::warn!(command_id = %asked.id, %error,
                        "could not store the reply's stream sequence");
                }
            }
            reply
        }
        Err(Refusal::Rejected(error)) => Reply::Error { error },
        Err(Refusal::Failed(error)) => {
            // A concurrent twin of this command may have won the race on
            // the command log; its reply is the answer.
            if let Ok(Some(reply)) = recorded_reply::<T>(db, &asked).await {
                return reply;
            }
            tracing::error!(command = asked.name, command_id = %asked.id,
                error = %format!("{error:#}"), "command failed");
            Reply::Error {
                error: CommandError::new(
                    ErrorKind::Unavailable,
                    "the command could not be completed; retry later",
                ),
            }
        }
    }
}

enum Attempt<T> {
    Repeated(Reply<T>),
    Done(Decided<T>),
}

/// The command in a transaction of its own (PostgreSQL) or in the next
/// group commit (SQLite); nothing of it is kept unless it is `Done`.
async fn attempt<T, F>(db: &Db, asked: Asked, decide: F) -> Result<Attempt<T>, Refusal>
where
    T: Serialize + DeserializeOwned + Clone + Send + 'static,
    F: for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<Decided<T>, Refusal>> + Send + 'static,
{
    let Some(group) = db.group_commit() else {
        let mut tx = db.begin().await?;
        let attempted = decide_once(&mut tx, &asked, decide).await?;
        if let Attempt::Done(_) = attempted {
            tx.commit().await?;
        }
        return Ok(attempted);
    };
    // The lot runs on its own task: the work owns what it reads.
    let attempted = group
        .run(move |tx| Box::pin(async move { decide_once(tx, &asked, decide).await }))
        .await;
    attempted.map_err(|not| match not {
        NotCommitted::Failed(refusal) => refusal,
        NotCommitted::Lot(error) => {
            Refusal::Failed(anyhow::anyhow!("the command's transaction: {error}"))
        }
        NotCommitted::Lost => {
            Refusal::Failed(anyhow::anyhow!("the command's transaction was lost"))
        }
    })
}

/// The command's reply if its id was seen, else `decide` and its record in
/// the command log; `tx` is neither committed nor rolled back.
async fn decide_once<T, F>(tx: &mut Tx, asked: &Asked, decide: F) -> Result<Attempt<T>, Refusal>
where
    T: Serialize + DeserializeOwned + Clone + Send,
    F: for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<Decided<T>, Refusal>>,
{
    if let Some(stored) = crate::idempotency::recorded(tx, &asked.id).await? {
        return Ok(Attempt::Repeated(answer(&stored, asked)?));
    }
    let decided = decide(tx).await?;
    let stored = serde_json::to_string(&Reply::Ok {
        value: decided.value.clone(),
        stream_seq: None,
    })
    .map_err(anyhow::Error::from)?;
    crate::idempotency::record(tx, &asked.id, asked.name, &asked.digest, &stored).await?;
    Ok(Attempt::Done(decided))
}

async fn recorded_reply<T: DeserializeOwned>(
    db: &Db,
    asked: &Asked,
) -> Result<Option<Reply<T>>, Refusal> {
    let mut tx = db.begin().await?;
    let stored = crate::idempotency::recorded(&mut tx, &asked.id).await?;
    tx.rollback().await?;
    stored.map(|s| answer(&s, asked)).transpose()
}

/// What a command id seen before answers `asked`: the first reply when
/// `asked` repeats that command, else that the id was used for another.
fn answer<T: DeserializeOwned>(stored: &Recorded, asked: &Asked) -> Result<Reply<T>, Refusal> {
    if stored.repeated_by(asked.name, &asked.digest) {
        parse_reply(&stored.reply)
    } else {
        Ok(Reply::Error { error: reused_id() })
    }
}

fn parse_reply<T: DeserializeOwned>(stored: &str) -> Result<Reply<T>, Refusal> {
    serde_json::from_str(stored)
        .map_err(|e| Refusal::Failed(anyhow::anyhow!("stored reply unreadable: {e}")))
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .map(|e| e.is_unique_violation())
        .unwrap_or(false)
}
