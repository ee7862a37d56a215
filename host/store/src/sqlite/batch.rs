//! Several write statements sent to SQLite in one call.
//!
//! sqlx runs each statement as a round trip to the connection's worker thread; a step's commit
//! writes to five tables, and those round trips, not SQLite, were most of its cost. A [`Batch`]
//! joins the statements into one SQL text executed by one call (sqlx binds anonymous `?`
//! parameters across the statements in order), inside the caller's transaction.
//!
//! Only anonymous `?` parameters may be used: a numbered `?N` indexes the whole batch's values.

use sqlx::SqliteConnection;

use super::db_error;
use crate::StoreError;

/// One bound value.
pub(super) enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Bind {
    fn from(s: String) -> Bind {
        Bind::Text(Some(s))
    }
}
impl From<&str> for Bind {
    fn from(s: &str) -> Bind {
        Bind::Text(Some(s.to_owned()))
    }
}
impl From<Option<String>> for Bind {
    fn from(s: Option<String>) -> Bind {
        Bind::Text(s)
    }
}
impl From<Option<&str>> for Bind {
    fn from(s: Option<&str>) -> Bind {
        Bind::Text(s.map(str::to_owned))
    }
}
impl From<i64> for Bind {
    fn from(i: i64) -> Bind {
        Bind::Int(Some(i))
    }
}
impl From<Option<i64>> for Bind {
    fn from(i: Option<i64>) -> Bind {
        Bind::Int(i)
    }
}

/// Statements to run in one call, in order.
#[derive(Default)]
pub(super) struct Batch {
    sql: String,
    values: Vec<Bind>,
}

impl Batch {
    /// Adds `sql` (one statement, `?` parameters) with its values in parameter order.
    pub(super) fn push(&mut self, sql: &str, values: impl IntoIterator<Item = Bind>) {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
        self.values.extend(values);
    }

    /// Adds `INSERT INTO {head} VALUES (?, …), …` for `rows`, in statements of at most
    /// [`ROWS_PER_INSERT`] rows (far below SQLite's 32,766 parameters per statement).
    pub(super) fn insert_rows(&mut self, head: &str, columns: usize, rows: Vec<Vec<Bind>>) {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Bind>> = rows.by_ref().take(ROWS_PER_INSERT).collect();
            let tuple = format!("({})", vec!["?"; columns].join(", "));
            let sql = format!("{head} VALUES {}", vec![tuple.as_str(); chunk.len()].join(", "));
            self.push(&sql, chunk.into_iter().flatten());
        }
    }

    pub(super) async fn execute(self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        if self.sql.is_empty() {
            return Ok(());
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for value in self.values {
            query = match value {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        query.execute(&mut *conn).await.map_err(db_error)?;
        Ok(())
    }
}

/// Rows per multi-row `INSERT`.
pub(super) const ROWS_PER_INSERT: usize = 500;
