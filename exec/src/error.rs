//! The executor's one error type; the API maps its variants to HTTP statuses
//! (`NotFound` 404, `Invalid` 400, `Refused` and `Gate` 403, `Journal` and `Io` 500,
//! `ShuttingDown` 503).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error("not found: {0}")]
    NotFound(String),
    /// Bad input: `field` is the dotted path of the offending key (`devices.share`), or the
    /// file and line where a parse failed.
    #[error("invalid `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("journal: {0}")]
    Journal(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("policy gate: {0}")]
    Gate(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl ExecError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ExecError {
        ExecError::Invalid { field: field.into(), message: message.into() }
    }
}

impl From<rusqlite::Error> for ExecError {
    fn from(e: rusqlite::Error) -> Self {
        ExecError::Journal(e.to_string())
    }
}
