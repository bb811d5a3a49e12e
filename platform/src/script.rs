//! Statements sent to the database together: on SQLite, a [`Script`] is
//! one string, so its statements cost one round trip to sqlx's worker
//! thread instead of one each (a round trip is two thread switches, which
//! is most of what a short statement costs). PostgreSQL runs them one by
//! one, as it cannot take several statements with parameters at once.
//!
//! A script runs every statement, in order, whatever the earlier ones
//! found: put in it what does not depend on an answer (writes whose
//! outcome decides nothing, or a read that is wanted either way), and
//! look at each statement's [`Done`] afterwards.

use std::borrow::Cow;

use futures::TryStreamExt as _;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Either, Executor as _};

use crate::db::Tx;

/// A value bound to a statement's parameter, owned so that statements can
/// be gathered before they run.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    /// SQL `NULL` (as text, which both backends accept for any column).
    Null,
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// One statement and its parameters: `$1`, `$2`… (or anonymous `?`),
/// numbered within the statement.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

impl Statement {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Statement {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next parameter.
    pub fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs it alone; returns the rows it touched.
    pub async fn execute(&self, tx: &mut Tx) -> Result<u64, sqlx::Error> {
        Ok(query(&self.sql, &self.args)
            .execute(&mut **tx)
            .await?
            .rows_affected())
    }

    /// Runs it alone; returns the rows it gave.
    pub async fn rows(&self, tx: &mut Tx) -> Result<Vec<AnyRow>, sqlx::Error> {
        query(&self.sql, &self.args).fetch_all(&mut **tx).await
    }
}

/// What one statement of a script did.
#[derive(Default)]
pub struct Done {
    pub rows_affected: u64,
    pub rows: Vec<AnyRow>,
}

/// Statements to run together, in order, inside a transaction.
#[derive(Debug, Default)]
pub struct Script {
    statements: Vec<Statement>,
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// Adds a statement; returns its index among the script's results.
    pub fn push(&mut self, statement: Statement) -> usize {
        self.statements.push(statement);
        self.statements.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs every statement in order, and says what each did. An error
    /// stops the script there; the caller's transaction is then to be
    /// rolled back.
    pub async fn run(self, tx: &mut Tx) -> Result<Vec<Done>, sqlx::Error> {
        let count = self.statements.len();
        if tx.backend_name() == "SQLite" && count > 1 {
            let (sql, args) = fuse(self.statements);
            let done = collect(tx, &sql, &args).await?;
            if done.len() != count {
                return Err(sqlx::Error::Protocol(format!(
                    "a script of {count} statements reported {}",
                    done.len()
                )));
            }
            return Ok(done);
        }
        let mut all = Vec::with_capacity(count);
        for statement in &self.statements {
            let mut done = collect(tx, &statement.sql, &statement.args).await?;
            all.push(done.pop().unwrap_or_default());
        }
        Ok(all)
    }
}

fn query<'q>(sql: &'q str, args: &'q [Arg]) -> Query<'q, Any, AnyArguments<'q>> {
    args.iter().fold(sqlx::query(sql), |q, arg| match arg {
        Arg::Text(v) => q.bind(v.as_str()),
        Arg::Int(v) => q.bind(*v),
        Arg::Null => q.bind(Option::<String>::None),
    })
}

/// Runs `sql` (one statement or several) and splits what it reports by
/// statement: rows come before the result that ends their statement.
async fn collect(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<Done>, sqlx::Error> {
    let mut stream = conn.fetch_many(query(sql, args));
    let mut all = Vec::new();
    let mut current = Done::default();
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Right(row) => current.rows.push(row),
            Either::Left(result) => {
                current.rows_affected = result.rows_affected();
                all.push(std::mem::take(&mut current));
            }
        }
    }
    Ok(all)
}

/// The statements as one SQLite string whose parameters are numbered
/// across it (sqlx binds `$N` of every statement of a string from the
/// same list), and that list.
fn fuse(statements: Vec<Statement>) -> (String, Vec<Arg>) {
    let length = statements.iter().map(|s| s.sql.len() + 8).sum();
    let mut sql = String::with_capacity(length);
    let mut args = Vec::with_capacity(statements.iter().map(|s| s.args.len()).sum());
    for statement in statements {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        renumber(&statement.sql, args.len(), &mut sql);
        args.extend(statement.args);
    }
    (sql, args)
}

/// Copies `sql` to `out` with every parameter (`$N`, `?N`, or anonymous
/// `?`, counted in order) written as `$(offset + N)`; literals, quoted
/// names and comments are copied as they are.
fn renumber(sql: &str, offset: usize, out: &mut String) {
    use std::fmt::Write as _;
    let bytes = sql.as_bytes();
    let mut anonymous = 0;
    // Everything up to `copied` is in `out`; the scanner only stops at
    // ASCII bytes, so every slice taken falls on a character boundary.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            sigil @ (b'$' | b'?') => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let number = match sql[start + 1..i].parse::<usize>() {
                    Ok(n) => n,
                    Err(_) if sigil == b'?' => {
                        anonymous += 1;
                        anonymous
                    }
                    // A `$` not followed by a number is not a parameter.
                    Err(_) => continue,
                };
                out.push_str(&sql[copied..start]);
                // Writing to a String cannot fail.
                let _ = write!(out, "${}", offset + number);
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renumbered(sql: &str, offset: usize) -> String {
        let mut out = String::new();
        renumber(sql, offset, &mut out);
        out
    }

    #[test]
    fn parameters_are_numbered_after_the_earlier_statements() {
        assert_eq!(
            renumbered("UPDATE t SET a = $1 WHERE b = $2 AND c = $1", 3),
            "UPDATE t SET a = $4 WHERE b = $5 AND c = $4"
        );
        assert_eq!(
            renumbered("INSERT INTO t VALUES (?, ?), (?, ?)", 2),
            "INSERT INTO t VALUES ($3, $4), ($5, $6)"
        );
        assert_eq!(renumbered("SELECT ?2, ?1", 10), "SELECT $12, $11");
    }

    #[test]
    fn literals_names_and_comments_are_left_alone() {
        assert_eq!(
            renumbered("SELECT '$1 ?', \"a?b\", $1 -- $2 ?\n, $2", 1),
            "SELECT '$1 ?', \"a?b\", $2 -- $2 ?\n, $3"
        );
        assert_eq!(
            renumbered("SELECT 'it''s $1', $1", 0),
            "SELECT 'it''s $1', $1"
        );
    }

    #[test]
    fn statements_fuse_into_one_string_with_one_list() {
        let (sql, args) = fuse(vec![
            Statement::new("INSERT INTO a VALUES ($1, $2)")
                .bind("x")
                .bind(1_i64),
            Statement::new("UPDATE b SET v = $1").bind(Some("y")),
            Statement::new("DELETE FROM c WHERE k = ?").bind(None::<String>),
        ]);
        assert_eq!(
            sql,
            "INSERT INTO a VALUES ($1, $2);\nUPDATE b SET v = $3;\nDELETE FROM c WHERE k = $4"
        );
        assert_eq!(
            args,
            vec![Arg::from("x"), Arg::Int(1), Arg::from("y"), Arg::Null]
        );
    }
}
