//! The native trace schema as a Parquet file: the same columns and rules as the CSV format
//! ([`crate::native`]), for traces too large to re-parse as text every run.
//!
//! Columns: `job_id` INT64, `submit_s` DOUBLE, `tenant` UTF8, `priority` INT32, `devices`
//! DOUBLE, `models` UTF8 (`|`-separated, empty = any), `duration_s` DOUBLE, `job_class` UTF8,
//! and the optional `cpu_milli` INT64, `mem_mib` INT64, `outcome` UTF8, `stated_duration_s`
//! DOUBLE (null = none stated; files written before it existed lack it, which reads the same).
//! Integer columns may be
//! INT32 or INT64 and float columns FLOAT or DOUBLE in files written by other tools; nulls are
//! accepted only in optional columns. Errors name the file, the row (1-based, as "line") and the
//! column. Rows are returned sorted stably by `submit_s`, as the CSV loader does.

use crate::native::{valid_devices, TraceJob, EXPECT_CPU_MILLI, EXPECT_DEVICES, EXPECT_JOB_ID, EXPECT_MEM_MIB, EXPECT_OUTCOME, EXPECT_PRIORITY, EXPECT_SECONDS, EXPECT_TENANT};
use tessera_core::JobOutcome;
use crate::TraceError;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::{Field, Row};
use parquet::schema::parser::parse_message_type;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

const SCHEMA: &str = "message tessera_job {
    REQUIRED INT64 job_id;
    REQUIRED DOUBLE submit_s;
    REQUIRED BYTE_ARRAY tenant (UTF8);
    REQUIRED INT32 priority;
    REQUIRED DOUBLE devices;
    REQUIRED BYTE_ARRAY models (UTF8);
    REQUIRED DOUBLE duration_s;
    REQUIRED BYTE_ARRAY job_class (UTF8);
    REQUIRED INT64 cpu_milli;
    REQUIRED INT64 mem_mib;
    OPTIONAL BYTE_ARRAY outcome (UTF8);
    OPTIONAL DOUBLE stated_duration_s;
}";

/// Rows per row group: large enough for good compression, small enough to bound memory.
const ROW_GROUP_ROWS: usize = 1 << 17;

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> TraceError {
    TraceError::Invalid { path: path.to_path_buf(), line: 0, column: "the Parquet structure".into(), message: e.to_string() }
}

/// Writes jobs as a Parquet file (snappy-compressed), columns as documented above.
pub fn write_native_parquet(path: &Path, jobs: &[TraceJob]) -> Result<(), TraceError> {
    let io = |source| TraceError::Io { path: path.to_path_buf(), source };
    let schema = Arc::new(parse_message_type(SCHEMA).expect("the schema literal parses"));
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let file = File::create(path).map_err(io)?;
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(|e| parquet_error(path, e))?;
    for chunk in jobs.chunks(ROW_GROUP_ROWS) {
        let mut group = writer.next_row_group().map_err(|e| parquet_error(path, e))?;
        let mut column = 0;
        while let Some(mut col) = group.next_column().map_err(|e| parquet_error(path, e))? {
            let written = match column {
                0 => col.typed::<Int64Type>().write_batch(&chunk.iter().map(|j| j.job_id as i64).collect::<Vec<_>>(), None, None),
                1 => col.typed::<DoubleType>().write_batch(&chunk.iter().map(|j| j.submit_s).collect::<Vec<_>>(), None, None),
                2 => col.typed::<ByteArrayType>().write_batch(&texts(chunk, |j| j.tenant.clone()), None, None),
                3 => col.typed::<Int32Type>().write_batch(&chunk.iter().map(|j| j.priority).collect::<Vec<_>>(), None, None),
                4 => col.typed::<DoubleType>().write_batch(&chunk.iter().map(|j| j.devices).collect::<Vec<_>>(), None, None),
                5 => col.typed::<ByteArrayType>().write_batch(&texts(chunk, |j| j.models.join("|")), None, None),
                6 => col.typed::<DoubleType>().write_batch(&chunk.iter().map(|j| j.duration_s).collect::<Vec<_>>(), None, None),
                7 => col.typed::<ByteArrayType>().write_batch(&texts(chunk, |j| j.job_class.clone()), None, None),
                8 => col.typed::<Int64Type>().write_batch(&chunk.iter().map(|j| j.cpu_milli as i64).collect::<Vec<_>>(), None, None),
                9 => col.typed::<Int64Type>().write_batch(&chunk.iter().map(|j| j.mem_mib as i64).collect::<Vec<_>>(), None, None),
                10 => {
                    let present: Vec<ByteArray> =
                        chunk.iter().filter_map(|j| j.outcome.map(|o| ByteArray::from(o.as_str()))).collect();
                    let levels: Vec<i16> = chunk.iter().map(|j| i16::from(j.outcome.is_some())).collect();
                    col.typed::<ByteArrayType>().write_batch(&present, Some(&levels), None)
                }
                _ => {
                    let present: Vec<f64> = chunk.iter().filter_map(|j| j.stated_duration_s).collect();
                    let levels: Vec<i16> = chunk.iter().map(|j| i16::from(j.stated_duration_s.is_some())).collect();
                    col.typed::<DoubleType>().write_batch(&present, Some(&levels), None)
                }
            };
            written.map_err(|e| parquet_error(path, e))?;
            col.close().map_err(|e| parquet_error(path, e))?;
            column += 1;
        }
        group.close().map_err(|e| parquet_error(path, e))?;
    }
    writer.close().map_err(|e| parquet_error(path, e))?;
    Ok(())
}

fn texts(jobs: &[TraceJob], text: impl Fn(&TraceJob) -> String) -> Vec<ByteArray> {
    jobs.iter().map(|j| ByteArray::from(text(j).into_bytes())).collect()
}

/// Reads a native Parquet trace, with the CSV loader's checks.
pub fn load_native_parquet(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    // The `parquet` crate panics on some malformed files rather than returning an error (a
    // page that uses a dictionary the column chunk never set: "Decoder for dict should have
    // been set", found by fuzz/ and kept in fuzz/corpus/trace_native_parquet/). A bad file
    // must be an error naming it, not a crash, so its panic is caught here. The panic hook
    // still prints the crate's message on stderr before the error is returned.
    match std::panic::catch_unwind(|| read_native_parquet(path)) {
        Ok(result) => result,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(TraceError::Invalid {
                path: path.to_path_buf(),
                line: 0,
                column: "the Parquet structure".into(),
                message: format!("a malformed Parquet file: the Parquet reader failed on it ({reason})"),
            })
        }
    }
}

fn read_native_parquet(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let file = File::open(path).map_err(|source| TraceError::Io { path: path.to_path_buf(), source })?;
    let reader = SerializedFileReader::new(file).map_err(|e| parquet_error(path, e))?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<String> = schema.columns().iter().map(|c| c.name().to_string()).collect();
    let index = |name: &'static str| names.iter().position(|n| n == name);
    let required = ["job_id", "submit_s", "tenant", "priority", "devices", "models", "duration_s", "job_class"];
    let mut col = [0usize; 8];
    for (i, name) in required.iter().enumerate() {
        col[i] = index(name).ok_or(TraceError::MissingColumn { path: path.to_path_buf(), line: 0, column: name })?;
    }
    let (cpu_col, mem_col, outcome_col) = (index("cpu_milli"), index("mem_mib"), index("outcome"));
    let stated_col = index("stated_duration_s");
    let total = reader.metadata().file_metadata().num_rows().max(0) as usize;
    if total == 0 {
        return Err(TraceError::NoJobs { path: path.to_path_buf() });
    }
    let mut jobs = Vec::with_capacity(total);
    let mut first_row_of: HashMap<u64, u64> = HashMap::with_capacity(total);
    let rows = reader.get_row_iter(None).map_err(|e| parquet_error(path, e))?;
    for (i, row) in rows.enumerate() {
        let line = i as u64 + 1;
        let row = row.map_err(|e| parquet_error(path, e))?;
        let cell = Cell { row: &row, path, line };
        let job_id = cell.unsigned(col[0], "job_id", EXPECT_JOB_ID)?;
        let submit_s = cell.seconds(col[1], "submit_s")?;
        let tenant = cell.text(col[2], "tenant", EXPECT_TENANT)?;
        if tenant.is_empty() {
            return Err(cell.bad("tenant", EXPECT_TENANT, ""));
        }
        let priority = cell.integer(col[3], "priority", EXPECT_PRIORITY)?;
        let priority = i32::try_from(priority).map_err(|_| cell.bad("priority", EXPECT_PRIORITY, &priority.to_string()))?;
        let devices = cell.float(col[4], "devices", EXPECT_DEVICES)?;
        if !valid_devices(devices) {
            return Err(cell.bad("devices", EXPECT_DEVICES, &devices.to_string()));
        }
        let models_text = cell.text(col[5], "models", crate::native::EXPECT_MODELS)?;
        let models: Vec<String> = if models_text.is_empty() { Vec::new() } else { models_text.split('|').map(|m| m.trim().to_string()).collect() };
        if models.iter().any(String::is_empty) {
            return Err(cell.bad("models", crate::native::EXPECT_MODELS, &models_text));
        }
        let duration_s = cell.seconds(col[6], "duration_s")?;
        let job_class = cell.text(col[7], "job_class", "text")?;
        let cpu_milli = match cpu_col {
            Some(c) if !cell.is_null(c) => {
                let v = cell.unsigned(c, "cpu_milli", EXPECT_CPU_MILLI)?;
                u32::try_from(v).map_err(|_| cell.bad("cpu_milli", EXPECT_CPU_MILLI, &v.to_string()))?
            }
            _ => 0,
        };
        let mem_mib = match mem_col {
            Some(c) if !cell.is_null(c) => cell.unsigned(c, "mem_mib", EXPECT_MEM_MIB)?,
            _ => 0,
        };
        let outcome = match outcome_col {
            Some(c) if !cell.is_null(c) => {
                let text = cell.text(c, "outcome", EXPECT_OUTCOME)?;
                match text.as_str() {
                    "" => None,
                    t => Some(JobOutcome::parse(t).ok_or_else(|| cell.bad("outcome", EXPECT_OUTCOME, t))?),
                }
            }
            _ => None,
        };
        let stated_duration_s = match stated_col {
            Some(c) if !cell.is_null(c) => Some(cell.seconds(c, "stated_duration_s")?),
            _ => None,
        };
        if let Some(first_line) = first_row_of.insert(job_id, line) {
            return Err(TraceError::DuplicateJobId { path: path.to_path_buf(), line, column: "job_id", job_id, first_line });
        }
        jobs.push(TraceJob { job_id, submit_s, tenant, priority, devices, models, duration_s, job_class, cpu_milli, mem_mib, outcome, stated_duration_s, line });
    }
    if !jobs.windows(2).all(|w| w[0].submit_s <= w[1].submit_s) {
        jobs.sort_by(|a, b| a.submit_s.total_cmp(&b.submit_s));
    }
    Ok(jobs)
}

/// One row's fields, read with the conversions other tools' files need.
struct Cell<'a> {
    row: &'a Row,
    path: &'a Path,
    line: u64,
}

impl Cell<'_> {
    fn field(&self, i: usize) -> &Field {
        self.row.get_column_iter().nth(i).map(|(_, f)| f).unwrap_or(&Field::Null)
    }

    fn is_null(&self, i: usize) -> bool {
        matches!(self.field(i), Field::Null)
    }

    fn bad(&self, column: &'static str, expected: &'static str, found: &str) -> TraceError {
        TraceError::BadField { path: self.path.to_path_buf(), line: self.line, column, expected, found: found.to_string() }
    }

    fn integer(&self, i: usize, column: &'static str, expected: &'static str) -> Result<i64, TraceError> {
        match *self.field(i) {
            Field::Byte(v) => Ok(v.into()),
            Field::Short(v) => Ok(v.into()),
            Field::Int(v) => Ok(v.into()),
            Field::Long(v) => Ok(v),
            Field::UByte(v) => Ok(v.into()),
            Field::UShort(v) => Ok(v.into()),
            Field::UInt(v) => Ok(v.into()),
            Field::ULong(v) => i64::try_from(v).map_err(|_| self.bad(column, expected, &v.to_string())),
            ref other => Err(self.bad(column, expected, &other.to_string())),
        }
    }

    fn unsigned(&self, i: usize, column: &'static str, expected: &'static str) -> Result<u64, TraceError> {
        if let Field::ULong(v) = *self.field(i) {
            return Ok(v);
        }
        let v = self.integer(i, column, expected)?;
        u64::try_from(v).map_err(|_| self.bad(column, expected, &v.to_string()))
    }

    fn float(&self, i: usize, column: &'static str, expected: &'static str) -> Result<f64, TraceError> {
        match *self.field(i) {
            Field::Double(v) => Ok(v),
            Field::Float(v) => Ok(v.into()),
            _ => self.integer(i, column, expected).map(|v| v as f64),
        }
    }

    fn seconds(&self, i: usize, column: &'static str) -> Result<f64, TraceError> {
        let v = self.float(i, column, EXPECT_SECONDS)?;
        if v.is_finite() && v >= 0.0 {
            Ok(v + 0.0)
        } else {
            Err(self.bad(column, EXPECT_SECONDS, &v.to_string()))
        }
    }

    fn text(&self, i: usize, column: &'static str, expected: &'static str) -> Result<String, TraceError> {
        match self.field(i) {
            Field::Str(s) => Ok(s.clone()),
            other => Err(self.bad(column, expected, &other.to_string())),
        }
    }
}
