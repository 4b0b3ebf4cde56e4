//! tessera-traces: loaders from cluster-trace formats into tessera's native job schema.
//!
//! The native format ([`native`]) is the one every other loader maps into and the one the
//! executor exports, so that the simulator can replay what really ran.
//!
//! Every loader reports a broken input as a [`TraceError`] that names the file, the line and
//! (where there is one) the column, so that a person can open the file at the right place.
//! Loaders never drop a row silently: a row they cannot read is an error, not a skip.

pub(crate) mod csv;
pub mod format;
pub mod gavel;
pub mod itp;
pub mod native;
pub mod native_format;
pub mod native_parquet;
pub mod openb;
pub mod philly;
pub mod pollux;
pub mod source;
pub mod stats;
pub mod tiresias;

pub use native::{load_native_csv, write_native_csv, write_native_csv_with_extras, TraceJob};
pub use native_parquet::{load_native_parquet, write_native_parquet};

use std::io;
use std::path::PathBuf;

/// Why a trace could not be loaded. Lines are 1-based and count physical lines of the file
/// (a quoted field spanning lines counts each), so they match what an editor shows.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// No header line at all (the file is empty or holds only blank lines).
    #[error("{}: the file is empty: expected a header line `{expected_header}`", path.display())]
    Empty {
        path: PathBuf,
        expected_header: &'static str,
    },

    /// A header but not one job: a trace with no jobs is almost always a truncated file.
    #[error("{}: the file has a header but no jobs", path.display())]
    NoJobs { path: PathBuf },

    /// A required column is absent from the header line.
    #[error("{}: line {line}, column `{column}`: required column is missing from the header", path.display())]
    MissingColumn {
        path: PathBuf,
        line: u64,
        column: &'static str,
    },

    /// A required column appears twice in the header, so which one to read is ambiguous.
    #[error("{}: line {line}, column `{column}`: the column appears more than once in the header", path.display())]
    DuplicateColumn { path: PathBuf, line: u64, column: String },

    /// A field that does not hold what its column promises.
    #[error("{}: line {line}, column `{column}`: expected {expected}, found {found:?}", path.display())]
    BadField {
        path: PathBuf,
        line: u64,
        column: &'static str,
        /// What the column must hold, e.g. "a number of seconds >= 0".
        expected: &'static str,
        /// The field as written (cut after 80 characters).
        found: String,
    },

    /// A job id used by an earlier row.
    #[error("{}: line {line}, column `{column}`: job id {job_id} was already used on line {first_line}", path.display())]
    DuplicateJobId {
        path: PathBuf,
        line: u64,
        column: &'static str,
        job_id: u64,
        first_line: u64,
    },

    /// A row with more or fewer fields than the header.
    #[error("{}: line {line}: expected {expected} fields as in the header, found {found}", path.display())]
    FieldCount {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },

    /// Malformed CSV: an unterminated quote, text after a closing quote, bytes that are not UTF-8.
    #[error("{}: line {line}: {message}", path.display())]
    Syntax { path: PathBuf, line: u64, message: String },

    /// A value that is well-formed but wrong in its context (a field of a JSON record, a
    /// reference to something the trace does not define, a time before its job's start).
    #[error("{}: line {line}, {column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        /// The column, JSON field or key at fault, e.g. "column `gpu_milli`" or "field `attempts`".
        column: String,
        message: String,
    },

    /// A JSON file that does not parse, or whose shape is not the one the format documents.
    #[error("{}: line {line}, column {column}: {message}", path.display())]
    Json { path: PathBuf, line: u64, column: u64, message: String },
}

impl TraceError {
    /// The 1-based line the error is about, when it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            TraceError::Io { .. } | TraceError::Empty { .. } | TraceError::NoJobs { .. } => None,
            TraceError::MissingColumn { line, .. }
            | TraceError::DuplicateColumn { line, .. }
            | TraceError::BadField { line, .. }
            | TraceError::DuplicateJobId { line, .. }
            | TraceError::FieldCount { line, .. }
            | TraceError::Syntax { line, .. }
            | TraceError::Invalid { line, .. }
            | TraceError::Json { line, .. } => Some(*line),
        }
    }
}
