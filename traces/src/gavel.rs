//! Gavel (OSDI'20) traces and its throughput table; also the plain speed-matrix CSV.
//!
//! Gavel (Narayanan et al., "Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning
//! Workloads", OSDI'20; MIT licence) describes a job by its *job type* (a model and batch size,
//! e.g. `ResNet-18 (batch size 64)`), its *scale factor* (the number of GPUs it trains on) and
//! its work in *steps*. How fast a step runs on each GPU model comes from a measured table.
//!
//! # The throughput table (`simulation_throughputs.json`) → [`Throughputs`]
//!
//! `{ device model: { job key: { "null": steps/s alone, other job key: [this, other] } } }`.
//! A job key is a Python tuple's text, `"('ResNet-18 (batch size 64)', 1)"`: the job type (which
//! holds spaces and parentheses) and the scale factor. `"null"` is the job's throughput when it
//! has its GPUs to itself; every other entry is the pair of throughputs when the job shares its
//! GPUs with the other one (space sharing, Gavel's "packing"). A throughput of `0.0` means Gavel
//! measured no progress: the pair does not fit (e.g. `ResNet-50 (batch size 128)` on more than
//! one K80); [`Throughputs::isolated`] returns it as written and the trace loader refuses a
//! duration from it.
//!
//! Device models are `k80`, `p100`, `v100` and the same with `_unconsolidated`. The JSON does
//! not say what the suffix means. By Gavel's placement vocabulary, a *consolidated* multi-GPU
//! job has all its workers on one server; the `_unconsolidated` tables would be the throughputs
//! with the workers spread over servers. That is an inference from the name (neither the JSON
//! nor the Gavel code that loads it says more), and the data fits it only in part: for scale
//! factor 1 the two tables are identical, and for multi-GPU jobs the consolidated figure is
//! the higher one in 49 of 57 cases on V100 and 50 of 57 on P100, but in only 22 of 51 on K80,
//! so it is no reliable model of a spreading penalty. [`Throughputs::models`] therefore lists
//! the consolidated models only; [`Throughputs::all_models`] lists all. Gavel's V100s are 16 GB
//! cards (its code prices `v100` as AWS `p3.2xlarge`, a V100 with 16 GB), so `v100` maps to the
//! catalogue's `V100-16GB` ([`catalogue_model_name`]).
//!
//! Model arguments of the lookups take Gavel's names (`v100`) or the catalogue's (`V100-16GB`,
//! any case).
//!
//! # Traces (`*.trace`) → [`load_trace`], [`load_trace_rows`]
//!
//! Tab-separated, one job per line, no header; the format is detected per file from the field
//! count of its first line and every line must have the same count (else an error naming it).
//!
//! - **7 fields** (`msr_seed0/<vc>.trace`, Gavel's older MSR-derived traces): job type, command,
//!   steps flag, needs data dir (`0`/`1`), total steps, arrival seconds, scale factor. Note:
//!   this is the column order Gavel's own `parse_trace` for these files uses
//!   (`job_type, command, num_steps_arg, needs_data_dir, total_steps, arrival_time,
//!   scale_factor`), and the data confirms it (the 4th field is `0` exactly for `A3C`, the one
//!   job type that needs no data set; the 7th holds 1 to 64). The column list in
//!   `../shared/traces/README.md` (scale factor 4th, priority weight 7th) is wrong. These files
//!   carry no priority weight: Gavel's default, 1, is used.
//! - **10 fields** (`replay/*.trace`, what Gavel's trace generator writes): job type, command,
//!   working directory, steps flag, needs data dir, total steps, scale factor, priority weight,
//!   SLO (`-1` = none), arrival seconds.
//!
//! Each job becomes a [`TraceJob`]:
//!
//! | job field    | from                                                                      |
//! |--------------|---------------------------------------------------------------------------|
//! | `job_id`     | 1, 2, … in file order                                                      |
//! | `submit_s`   | arrival seconds                                                            |
//! | `tenant`     | the file stem for a 7-field file (the virtual cluster, e.g. `6214e9`); `gavel` for a 10-field one |
//! | `priority`   | the priority weight rounded to the nearest integer (1 for 7-field files); every published job has weight 1 |
//! | `devices`    | the scale factor                                                           |
//! | `models`     | empty (any model; the speed matrix says how fast)                          |
//! | `duration_s` | total steps / [`Throughputs::isolated`] on the reference model for (type, scale factor) |
//! | `job_class`  | [`class_name`]: `"<job type> x<scale factor>"`, e.g. `ResNet-18 (batch size 64) x8` |
//!
//! The class names the pair, not the type alone, because the throughput ratios between models
//! differ by scale factor (a V100 is 7.1× a K80 for ResNet-50 (batch size 64) on 1 GPU but
//! 3.8× on 8), and the speed matrix has one row per class.
//!
//! **Jobs the table cannot time.** [`load_trace`] refuses a job whose (type, scale factor) has
//! no entry for the reference model, or an entry of 0, with an error naming the line. The table
//! measures scale factors 1, 2, 4 and 8, and only 1 for `A3C`, `CycleGAN` and
//! `Recommendation`. The replay traces are fully covered on every model but K80 (11 jobs of
//! `ResNet-50 (batch size 128)` measure 0 there). The MSR traces are not: 13 of their 15 files
//! hold unmeasured jobs, 1,548 of 15,264 in all (on any model): 1,187 multi-GPU jobs of
//! `Recommendation`, `CycleGAN` or `A3C`, and 361 jobs of other scale factors (7, 12, 16, 20,
//! 24, 32, 64). Rather than guess a
//! scaling law, tessera offers [`load_trace_skipping`], which returns those jobs' lines next to
//! the jobs it could time, so that a scenario can say how many it left out, and
//! [`load_trace_rows`], the raw rows.
//!
//! **Unsorted files are repaired:** jobs are returned sorted by `submit_s`, stably (the
//! published traces are already sorted).
//!
//! # The speed matrix
//!
//! [`Throughputs::speed_matrix`] turns the table into `(class, catalogue model, relative speed)`
//! triples: throughput on the model / throughput on the reference model. Pairs the table does
//! not measure, or measures as 0, are left out, and the simulator reads a missing pair as speed
//! 1.0: restrict such a job's `models` if it must not run there.
//!
//! [`load_speed_csv`] reads a plain speed matrix, `job_class,model,relative_speed` (this module
//! is tessera's speed-matrix module for now): columns by name, extra columns ignored, speeds
//! finite and positive, a (class, model) pair given twice is an error naming both lines.

use crate::csv::{self, parse_f64, shorten, Table};
use crate::{TraceError, TraceJob};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The tenant of jobs from a 10-field (generated) trace.
pub const TENANT: &str = "gavel";

/// The header [`load_speed_csv`] requires (columns in any order).
pub const SPEED_HEADER: &str = "job_class,model,relative_speed";

/// The catalogue's name for a Gavel device model: `k80` → `K80`, `p100` → `P100`,
/// `v100` → `V100-16GB` (Gavel's V100s have 16 GB). `None` for any other name, the
/// `_unconsolidated` tables included.
pub fn catalogue_model_name(gavel_model: &str) -> Option<&'static str> {
    match gavel_model {
        "k80" => Some("K80"),
        "p100" => Some("P100"),
        "v100" => Some("V100-16GB"),
        _ => None,
    }
}

/// The speed-matrix class of a Gavel job: `"<job type> x<scale factor>"`.
pub fn class_name(job_type: &str, scale_factor: u32) -> String {
    format!("{job_type} x{scale_factor}")
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Entry {
    isolated: f64,
    /// Other job type → its scale factor → (this job's, the other's) throughput.
    colocated: HashMap<String, BTreeMap<u32, (f64, f64)>>,
}

/// Gavel's throughput table. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Throughputs {
    path: PathBuf,
    /// Gavel model name → job type → scale factor → entry.
    models: BTreeMap<String, HashMap<String, BTreeMap<u32, Entry>>>,
}

impl Throughputs {
    /// Reads `simulation_throughputs.json` (or a file of the same shape).
    pub fn load(path: &Path) -> Result<Throughputs, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Throughputs::parse(&text, path)
    }

    /// Parses a throughput table held in memory; `origin` is the name errors give for it.
    pub fn parse(text: &str, origin: &Path) -> Result<Throughputs, TraceError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| TraceError::Json {
                path: origin.to_path_buf(),
                line: e.line() as u64,
                column: e.column() as u64,
                message: e.to_string(),
            })?;
        // Errors about a key name it, and point at where its text first occurs after its
        // enclosing key (serde_json keeps no positions for values).
        let shape = |anchor: &[&str], key: String, message: String| {
            let line = locate(text, anchor);
            TraceError::Invalid {
                path: origin.to_path_buf(),
                line,
                column: key,
                message,
            }
        };
        let serde_json::Value::Object(top) = value else {
            return Err(shape(
                &[],
                "the top level".into(),
                "expected an object of device models".into(),
            ));
        };
        let mut models = BTreeMap::new();
        for (model, jobs) in &top {
            let serde_json::Value::Object(jobs) = jobs else {
                return Err(shape(
                    &[model],
                    format!("model `{model}`"),
                    "expected an object of job keys".into(),
                ));
            };
            let mut table: HashMap<String, BTreeMap<u32, Entry>> = HashMap::new();
            for (key, pairs) in jobs {
                let at = [model.as_str(), key.as_str()];
                let what = format!("key `{key}` of model `{model}`");
                let (job_type, sf) = parse_job_key(key).ok_or_else(|| {
                    shape(
                        &at,
                        what.clone(),
                        "expected a job key like ('ResNet-18 (batch size 64)', 1)".into(),
                    )
                })?;
                let serde_json::Value::Object(pairs) = pairs else {
                    return Err(shape(
                        &at,
                        what,
                        "expected an object with a \"null\" entry".into(),
                    ));
                };
                let mut entry = Entry::default();
                let mut isolated = None;
                for (other, v) in pairs {
                    let at = [model.as_str(), key.as_str(), other.as_str()];
                    if other == "null" {
                        isolated = Some(throughput(v).ok_or_else(|| {
                            shape(
                                &at,
                                format!("key `null` of `{key}` of model `{model}`"),
                                "expected a throughput >= 0 in steps/s".into(),
                            )
                        })?);
                        continue;
                    }
                    let what = format!("key `{other}` of `{key}` of model `{model}`");
                    let (other_type, other_sf) = parse_job_key(other).ok_or_else(|| {
                        shape(
                            &at,
                            what.clone(),
                            "expected a job key like ('ResNet-18 (batch size 64)', 1)".into(),
                        )
                    })?;
                    let pair = match v {
                        serde_json::Value::Array(a) if a.len() == 2 => {
                            throughput(&a[0]).zip(throughput(&a[1]))
                        }
                        _ => None,
                    }
                    .ok_or_else(|| {
                        shape(
                            &at,
                            what,
                            "expected two throughputs >= 0: [this job, the other]".into(),
                        )
                    })?;
                    entry
                        .colocated
                        .entry(other_type)
                        .or_default()
                        .insert(other_sf, pair);
                }
                entry.isolated = isolated.ok_or_else(|| {
                    shape(
                        &at,
                        what.clone(),
                        "has no \"null\" (isolated) throughput".into(),
                    )
                })?;
                if table
                    .entry(job_type)
                    .or_default()
                    .insert(sf, entry)
                    .is_some()
                {
                    return Err(shape(
                        &at,
                        what,
                        "the same job type and scale factor appear twice".into(),
                    ));
                }
            }
            models.insert(model.clone(), table);
        }
        if models.is_empty() {
            return Err(shape(
                &[],
                "the top level".into(),
                "no device models".into(),
            ));
        }
        Ok(Throughputs {
            path: origin.to_path_buf(),
            models,
        })
    }

    /// The file the table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn table(&self, model: &str) -> Option<&HashMap<String, BTreeMap<u32, Entry>>> {
        self.models.get(model).or_else(|| {
            self.models
                .iter()
                .find(|(m, _)| {
                    catalogue_model_name(m).is_some_and(|c| c.eq_ignore_ascii_case(model))
                })
                .map(|(_, t)| t)
        })
    }

    fn entry(&self, model: &str, job_type: &str, scale_factor: u32) -> Option<&Entry> {
        self.table(model)?.get(job_type)?.get(&scale_factor)
    }

    /// Steps per second of `job_type` at `scale_factor` GPUs of `model` (Gavel's or the
    /// catalogue's name) with the GPUs to itself; `None` where the table has no entry. May be
    /// 0.0 (measured, no progress).
    pub fn isolated(&self, model: &str, job_type: &str, scale_factor: u32) -> Option<f64> {
        self.entry(model, job_type, scale_factor)
            .map(|e| e.isolated)
    }

    /// Steps per second of job A and job B when they share `model`'s GPUs, as (A's, B's);
    /// `None` where the table has no such pair.
    pub fn colocated(&self, model: &str, a: (&str, u32), b: (&str, u32)) -> Option<(f64, f64)> {
        self.entry(model, a.0, a.1)?
            .colocated
            .get(b.0)?
            .get(&b.1)
            .copied()
    }

    /// The consolidated device models (Gavel's names, sorted): `k80`, `p100`, `v100`.
    pub fn models(&self) -> Vec<String> {
        self.models
            .keys()
            .filter(|m| !m.ends_with("_unconsolidated"))
            .cloned()
            .collect()
    }

    /// Every device model of the table, the `_unconsolidated` ones included (sorted).
    pub fn all_models(&self) -> Vec<String> {
        self.models.keys().cloned().collect()
    }

    /// Every job type of any model (sorted, each once).
    pub fn job_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self
            .models
            .values()
            .flat_map(|t| t.keys().cloned())
            .collect();
        types.sort();
        types.dedup();
        types
    }

    /// The scale factors `model` measures for `job_type` (ascending).
    pub fn scale_factors(&self, model: &str, job_type: &str) -> Vec<u32> {
        self.table(model)
            .and_then(|t| t.get(job_type))
            .map_or_else(Vec::new, |sfs| sfs.keys().copied().collect())
    }

    /// The speed matrix: for each `(class name, job type, scale factor)` and each consolidated
    /// model with a catalogue name, `(class, catalogue model, throughput there / throughput on
    /// reference_model)`, in the order of `classes`, then models. Pairs without a positive
    /// throughput on the model or on the reference are left out (see the
    /// [module documentation](self)).
    pub fn speed_matrix(
        &self,
        classes: &[(String, String, u32)],
        reference_model: &str,
    ) -> Vec<(String, String, f64)> {
        let mut out = Vec::new();
        for (class, job_type, sf) in classes {
            let Some(reference) = self
                .isolated(reference_model, job_type, *sf)
                .filter(|&t| t > 0.0)
            else {
                continue;
            };
            for (model, table) in &self.models {
                let Some(name) = catalogue_model_name(model) else {
                    continue;
                };
                if let Some(t) = table
                    .get(job_type.as_str())
                    .and_then(|s| s.get(sf))
                    .map(|e| e.isolated)
                {
                    if t > 0.0 {
                        out.push((class.clone(), name.to_string(), t / reference));
                    }
                }
            }
        }
        out
    }
}

/// A throughput: a finite number >= 0.
fn throughput(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|t| t.is_finite() && *t >= 0.0)
}

/// Parses a job key, the text of a Python tuple `('<job type>', <scale factor>)` (the type
/// quoted with `'` or `"`), into the type and a scale factor >= 1.
pub fn parse_job_key(key: &str) -> Option<(String, u32)> {
    let inner = key.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (quoted, sf) = inner.rsplit_once(',')?;
    let sf: u32 = sf.trim().parse().ok().filter(|&sf| sf >= 1)?;
    let quoted = quoted.trim();
    let q = quoted.chars().next()?;
    if !(q == '\'' || q == '"') || quoted.len() < 3 || !quoted.ends_with(q) {
        return None;
    }
    let job_type = &quoted[1..quoted.len() - 1];
    (!job_type.trim().is_empty()).then(|| (job_type.to_string(), sf))
}

/// The 1-based line where the JSON string keys `path` occur one after another in `text` (each
/// searched after the previous), or where the deepest one found is; 1 when none is found.
fn locate(text: &str, path: &[&str]) -> u64 {
    let mut at = 0;
    for key in path {
        match text[at..].find(&format!("\"{key}\"")) {
            Some(i) => at += i,
            None => break,
        }
    }
    1 + text[..at].matches('\n').count() as u64
}

/// One job line of a Gavel trace, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct GavelRow {
    /// The 1-based line of the file.
    pub line: u64,
    pub job_type: String,
    /// GPUs the job trains on.
    pub scale_factor: u32,
    pub total_steps: u64,
    pub arrival_s: f64,
    /// 1.0 in 7-field files, which carry none.
    pub priority_weight: f64,
    /// The SLO in seconds, where a 10-field file gives one (`-1` there means none).
    pub slo_s: Option<f64>,
    pub needs_data_dir: bool,
    /// The file's format: 7 (MSR) or 10 (generated) fields.
    pub fields: usize,
}

/// A job [`load_trace_skipping`] left out: its (type, scale factor) has no positive isolated
/// throughput on the reference model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmeasured {
    pub line: u64,
    pub job_type: String,
    pub scale_factor: u32,
}

/// Reads a Gavel trace's rows as written, in file order, without the throughput table. See the
/// [module documentation](self) for the two formats.
pub fn load_trace_rows(path: &Path) -> Result<Vec<GavelRow>, TraceError> {
    let data = csv::read(path)?;
    parse_trace_rows(&data, path)
}

const EXPECT_LINE: &str = "one job per line (there is no header), 7 or 10 tab-separated fields";

/// [`load_trace_rows`] for a trace held in memory; `origin` is the name errors give for it.
pub fn parse_trace_rows(data: &[u8], origin: &Path) -> Result<Vec<GavelRow>, TraceError> {
    let text = csv::text(data, origin)?;
    let mut rows = Vec::with_capacity(text.len() / 180);
    let mut width: Option<(usize, u64)> = None;
    let mut fields: Vec<&str> = Vec::with_capacity(10);
    for (i, raw) in text.split('\n').enumerate() {
        let line = i as u64 + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        fields.clear();
        fields.extend(raw.split('\t'));
        let n = fields.len();
        let invalid = |column: &str, message: String| TraceError::Invalid {
            path: origin.to_path_buf(),
            line,
            column: column.to_string(),
            message,
        };
        match width {
            None if n == 7 || n == 10 => width = Some((n, line)),
            None => {
                return Err(invalid(
                    "fields",
                    format!(
                        "expected 7 (MSR) or 10 (generated trace) tab-separated fields, found {n}"
                    ),
                ))
            }
            Some((w, first)) if w != n => {
                return Err(invalid(
                    "fields",
                    format!("expected {w} tab-separated fields as on line {first}, found {n}"),
                ))
            }
            Some(_) => {}
        }
        // Field positions: (needs data dir, total steps, arrival, scale factor, weight, SLO).
        let (dd, steps, arrival, sf, weight, slo) = if n == 7 {
            (3, 4, 5, 6, None, None)
        } else {
            (4, 5, 9, 6, Some(7), Some(8))
        };
        let bad = |c: usize, name: &'static str, expected: &'static str| TraceError::BadField {
            path: origin.to_path_buf(),
            line,
            column: name,
            expected,
            found: shorten(fields[c]),
        };
        let job_type = fields[0].trim();
        if job_type.is_empty() {
            return Err(bad(
                0,
                "job type",
                "a job type, e.g. `ResNet-18 (batch size 64)`",
            ));
        }
        let needs_data_dir = match fields[dd].trim() {
            "0" => false,
            "1" => true,
            _ => return Err(bad(dd, "needs data dir", "0 or 1")),
        };
        let total_steps: u64 = fields[steps]
            .trim()
            .parse()
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| bad(steps, "total steps", "an integer number of steps >= 1"))?;
        let arrival_s = csv::seconds(fields[arrival].trim())
            .ok_or_else(|| bad(arrival, "arrival", csv::EXPECT_SECONDS))?;
        let scale_factor: u32 = fields[sf]
            .trim()
            .parse()
            .ok()
            .filter(|&s| s >= 1)
            .ok_or_else(|| bad(sf, "scale factor", "an integer number of GPUs >= 1"))?;
        let priority_weight = match weight {
            None => 1.0,
            Some(c) => parse_f64(fields[c].trim())
                .filter(|w| w.is_finite() && *w > 0.0 && *w < i32::MAX as f64)
                .ok_or_else(|| bad(c, "priority weight", "a number > 0"))?,
        };
        let slo_s = match slo {
            None => None,
            Some(c) => {
                let text = fields[c].trim();
                let x = text
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && (*x == -1.0 || *x > 0.0))
                    .ok_or_else(|| bad(c, "SLO", "-1 (none) or a number of seconds > 0"))?;
                (x > 0.0).then_some(x)
            }
        };
        rows.push(GavelRow {
            line,
            job_type: job_type.to_string(),
            scale_factor,
            total_steps,
            arrival_s,
            priority_weight,
            slo_s,
            needs_data_dir,
            fields: n,
        });
    }
    if rows.is_empty() {
        return Err(TraceError::Empty {
            path: origin.to_path_buf(),
            expected_header: EXPECT_LINE,
        });
    }
    Ok(rows)
}

/// Reads a Gavel trace into jobs timed on `reference_model` (Gavel's or the catalogue's name,
/// e.g. `v100`). A job the table cannot time on that model is an error naming its line. See the
/// [module documentation](self).
pub fn load_trace(
    path: &Path,
    throughputs: &Throughputs,
    reference_model: &str,
) -> Result<Vec<TraceJob>, TraceError> {
    let rows = load_trace_rows(path)?;
    let (jobs, skipped) = convert(path, &rows, throughputs, reference_model, false)?;
    debug_assert!(skipped.is_empty());
    Ok(jobs)
}

/// [`load_trace`], but a job the table cannot time on `reference_model` is left out and
/// returned in the second list instead of failing the load. Other errors still fail it.
pub fn load_trace_skipping(
    path: &Path,
    throughputs: &Throughputs,
    reference_model: &str,
) -> Result<(Vec<TraceJob>, Vec<Unmeasured>), TraceError> {
    let rows = load_trace_rows(path)?;
    convert(path, &rows, throughputs, reference_model, true)
}

fn convert(
    path: &Path,
    rows: &[GavelRow],
    throughputs: &Throughputs,
    reference_model: &str,
    skip: bool,
) -> Result<(Vec<TraceJob>, Vec<Unmeasured>), TraceError> {
    if throughputs.table(reference_model).is_none() {
        return Err(TraceError::Invalid {
            path: throughputs.path.clone(),
            line: 0,
            column: format!("model `{reference_model}`"),
            message: format!(
                "the reference model is not in the throughput table, which has {}",
                throughputs.all_models().join(", ")
            ),
        });
    }
    let tenant = tenant_of(path);
    let mut jobs = Vec::with_capacity(rows.len());
    let mut skipped = Vec::new();
    let mut classes: HashMap<(&str, u32), String> = HashMap::new();
    for row in rows {
        let rate = throughputs.isolated(reference_model, &row.job_type, row.scale_factor);
        let Some(rate) = rate.filter(|&r| r > 0.0) else {
            if skip {
                skipped.push(Unmeasured {
                    line: row.line,
                    job_type: row.job_type.clone(),
                    scale_factor: row.scale_factor,
                });
                continue;
            }
            let why = if rate.is_some() {
                "measures 0 steps/s for"
            } else {
                "has no entry for"
            };
            let measured = throughputs.scale_factors(reference_model, &row.job_type);
            let measured = if measured.is_empty() {
                "no scale factor of this type".to_string()
            } else {
                format!("scale factors {measured:?}")
            };
            return Err(TraceError::Invalid {
                path: path.to_path_buf(),
                line: row.line,
                column: "job type and scale factor".into(),
                message: format!(
                    "the throughput table {} ({}, {}) on `{reference_model}` (it measures {measured}), so the job's duration is unknown",
                    why,
                    row.job_type,
                    row.scale_factor
                ),
            });
        };
        let tenant = match &tenant {
            Some(stem) if row.fields == 7 => stem.as_str(),
            _ => TENANT,
        };
        let mut job = TraceJob::new(
            jobs.len() as u64 + 1 + skipped.len() as u64,
            row.arrival_s,
            tenant,
            f64::from(row.scale_factor),
            row.total_steps as f64 / rate,
        );
        job.priority = row.priority_weight.round() as i32;
        job.job_class = classes
            .entry((row.job_type.as_str(), row.scale_factor))
            .or_insert_with(|| class_name(&row.job_type, row.scale_factor))
            .clone();
        job.line = row.line;
        jobs.push(job);
    }
    csv::sort_by_submit(&mut jobs);
    Ok((jobs, skipped))
}

fn tenant_of(path: &Path) -> Option<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Reads a speed matrix CSV (`job_class,model,relative_speed`) into `(class, model, speed)`
/// triples in file order. See the [module documentation](self).
pub fn load_speed_csv(path: &Path) -> Result<Vec<(String, String, f64)>, TraceError> {
    let data = csv::read(path)?;
    parse_speed_csv(&data, path)
}

/// [`load_speed_csv`] for text held in memory; `origin` is the name errors give for it.
pub fn parse_speed_csv(
    data: &[u8],
    origin: &Path,
) -> Result<Vec<(String, String, f64)>, TraceError> {
    const COLUMNS: [&str; 3] = ["job_class", "model", "relative_speed"];
    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, SPEED_HEADER)?;
    let col = t.columns(&COLUMNS, &[true; 3])?;
    let mut out = Vec::new();
    let mut first_line_of: HashMap<(String, String), u64> = HashMap::new();
    while t.next_row()? {
        let line = t.line();
        let field = |c: usize| t.get(col[c]);
        let bad = |c: usize, expected: &'static str| t.bad(col[c], COLUMNS[c], expected);
        let class = field(0);
        if class.is_empty() {
            return Err(bad(0, "a job class"));
        }
        let model = field(1);
        if model.is_empty() {
            return Err(bad(1, "a device model name"));
        }
        let speed = parse_f64(field(2))
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| bad(2, "a relative speed > 0"))?;
        let key = (class.to_string(), model.to_string());
        if let Some(&first) = first_line_of.get(&key) {
            return Err(TraceError::Invalid {
                path: origin.to_path_buf(),
                line,
                column: "columns `job_class`, `model`".into(),
                message: format!(
                    "class `{}` on model `{}` was already given on line {first}",
                    shorten(class),
                    shorten(model)
                ),
            });
        }
        first_line_of.insert(key.clone(), line);
        out.push((key.0, key.1, speed));
    }
    if out.is_empty() {
        return Err(t.no_jobs());
    }
    Ok(out)
}

/// Gavel `.trace` files as a trace format, timed by Gavel's throughput table.
pub struct Gavel;

impl crate::format::TraceFormat for Gavel {
    fn name(&self) -> &'static str {
        "gavel"
    }

    fn description(&self) -> &'static str {
        "Gavel .trace files, timed by Gavel's throughput table"
    }

    fn options(&self) -> &'static [crate::format::OptionSpec] {
        use crate::format::{OptionKind, OptionSpec};
        &[
            OptionSpec {
                name: "throughputs",
                kind: OptionKind::Path,
                required: true,
                doc: "the throughput table (simulation_throughputs.json)",
            },
            OptionSpec {
                name: "reference_model",
                kind: OptionKind::Text,
                required: false,
                doc: "the device model a job's work is measured on (default v100: the table measures every job type there, while some have a throughput of 0 on a K80)",
            },
            OptionSpec {
                name: "skip_unmeasured",
                kind: OptionKind::Bool,
                required: false,
                doc: "leave out (and count) jobs the throughput table cannot time, instead of failing (default false)",
            },
        ]
    }

    fn load(&self, path: &Path, options: &crate::format::Options) -> Result<crate::source::LoadedTrace, TraceError> {
        load_timed(path, options)
    }
}

fn load_timed(path: &Path, options: &crate::format::Options) -> Result<crate::source::LoadedTrace, TraceError> {
    // check_options made sure a required option is there.
    let table_path = options.path("throughputs").expect("throughputs is a required option");
    let table = Throughputs::load(table_path)?;
    let reference = options.text("reference_model").unwrap_or("v100");
    let mut notes = Vec::new();
    let mut jobs = if options.flag("skip_unmeasured") {
        let (jobs, skipped) = load_trace_skipping(path, &table, reference)?;
        if !skipped.is_empty() {
            let lines: Vec<String> = skipped.iter().take(10).map(|u| u.line.to_string()).collect();
            notes.push(format!(
                "{} jobs left out because the throughput table cannot time them on {reference} (lines {}{})",
                skipped.len(),
                lines.join(", "),
                if skipped.len() > 10 { ", ..." } else { "" }
            ));
        }
        jobs
    } else {
        load_trace(path, &table, reference)?
    };
    // Each class once, with the job type and scale factor its name encodes.
    let mut classes: Vec<(String, String, u32)> = Vec::new();
    for job in &jobs {
        if classes.iter().any(|(c, _, _)| *c == job.job_class) {
            continue;
        }
        let (job_type, sf) = job.job_class.rsplit_once(" x").expect("gavel class names are `<type> x<sf>`");
        classes.push((job.job_class.clone(), job_type.to_string(), sf.parse().expect("a scale factor")));
    }
    let speed = table.speed_matrix(&classes, reference);
    // A job runs only where Gavel measured its class: elsewhere its speed is unknown.
    for job in &mut jobs {
        job.models = speed.iter().filter(|(c, _, _)| *c == job.job_class).map(|(_, m, _)| m.clone()).collect();
    }
    let reference_name = catalogue_model_name(reference).unwrap_or(reference);
    notes.push(format!("work measured on {reference_name}; each job may run only on the models Gavel measured for its class"));
    Ok(crate::source::LoadedTrace { jobs, speed, notes, ..Default::default() })
}
