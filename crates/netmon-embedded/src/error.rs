//! Errors of the embedded adapters, and how SQLite failures map onto the ports' [`StoreError`].

use netmon_core::ports::StoreError;
use rusqlite::ErrorCode;

/// Failures opening or migrating the embedded database. Per-operation failures use the ports'
/// [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database has schema version {found} but this build knows only up to {known}: it was \
         written by a newer netmon"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("the database is not a netmon database or is damaged: {0}")]
    Corrupt(String),
    #[error("store worker thread: {0}")]
    Worker(String),
    #[error("cannot create the database file {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
}

/// Maps SQLite errors by what the caller should do: busy/locked and I/O are worth retrying,
/// a malformed file or an undecodable column is not.
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::TypeMismatch => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Unavailable(e.to_string()),
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// `?`-friendly conversion; `From` cannot be implemented between two foreign types.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(store_error)
    }
}
