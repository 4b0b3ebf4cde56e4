//! tessera's own schema as a trace format: CSV ([`crate::native`]) or Parquet
//! ([`crate::native_parquet`]), told apart by the file's extension.

use crate::format::{Options, TraceFormat};
use crate::source::LoadedTrace;
use crate::TraceError;
use std::path::Path;

pub struct Native;

impl TraceFormat for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn description(&self) -> &'static str {
        "tessera's own schema: CSV, or Parquet when the file ends in .parquet"
    }

    fn load(&self, path: &Path, _: &Options) -> Result<LoadedTrace, TraceError> {
        let parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        let jobs = if parquet { crate::load_native_parquet(path)? } else { crate::load_native_csv(path)? };
        Ok(LoadedTrace { jobs, ..LoadedTrace::default() })
    }

    fn native_columns(&self) -> bool {
        true
    }
}
