//! What a trace format is to the rest of tessera: a name, a line saying what it reads, the
//! options it takes, and a loader. Each format implements [`TraceFormat`] in its own module and
//! is listed once, in [`crate::source::FORMATS`]; the scenario file and `tessera trace` know
//! formats only through that list, so adding one touches its own file and that list.
//!
//! Options arrive as text (`--option KEY=VALUE`) or as structured values (the keys of a
//! scenario's `[workload.trace]` beside `format` and `path`) and are checked against the
//! format's declaration in one place, [`check_options`].

use crate::source::LoadedTrace;
use crate::TraceError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use tessera_core::DeviceModel;

/// A workload trace format. Only [`name`](TraceFormat::name),
/// [`description`](TraceFormat::description) and [`load`](TraceFormat::load) are required.
pub trait TraceFormat: Sync {
    /// The name a scenario's `format` and `tessera trace -f` give (`philly-log`).
    fn name(&self) -> &'static str;

    /// One line: what files the format reads.
    fn description(&self) -> &'static str;

    /// The options the format takes beside the file; [`check_options`] holds every load to it.
    fn options(&self) -> &'static [OptionSpec] {
        &[]
    }

    /// Reads the trace at `path`; `options` were checked against [`options`](TraceFormat::options)
    /// and their paths resolved.
    fn load(&self, path: &Path, options: &Options) -> Result<LoadedTrace, TraceError>;

    /// Whether `path` may also be a directory of trace files.
    fn reads_directories(&self) -> bool {
        false
    }

    /// The trace files a load of `path` reads (for a directory, each file it reads, in the
    /// order it reads them), so that a validation record can hash them.
    fn input_files(&self, path: &Path) -> Result<Vec<PathBuf>, TraceError> {
        Ok(vec![path.to_path_buf()])
    }

    /// Device models the format's jobs may name that the built-in catalogue lacks, known
    /// without reading a file (a scenario's catalogue is built before its workload).
    fn catalogue_models(&self) -> Vec<DeviceModel> {
        Vec::new()
    }

    /// Whether the file's columns are the native schema's own, so that an error about a job
    /// can name the column as written rather than the field it was read into.
    fn native_columns(&self) -> bool {
        false
    }
}

impl fmt::Debug for dyn TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for dyn TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Formats are told apart by name: the registry refuses two of one name.
impl PartialEq for dyn TraceFormat {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

/// What an option holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// A file; relative paths in a scenario are resolved against the scenario's directory.
    Path,
    Text,
    /// A finite number > 0.
    Number,
    Bool,
    /// Names mapped to finite numbers > 0 (`{ cifar10 = 3600, ncf = 1800 }`, or
    /// `cifar10=3600,ncf=1800` as text).
    NumberTable,
}

impl OptionKind {
    /// What a value of this kind looks like, for messages.
    pub fn expected(self) -> &'static str {
        match self {
            OptionKind::Path => "a file path",
            OptionKind::Text => "a string",
            OptionKind::Number => "a positive number",
            OptionKind::Bool => "true or false",
            OptionKind::NumberTable => "a table of positive numbers, { NAME = NUMBER, ... }",
        }
    }

    /// The placeholder of `KEY=VALUE` in the listing.
    pub fn placeholder(self) -> &'static str {
        match self {
            OptionKind::Path => "PATH",
            OptionKind::Text => "TEXT",
            OptionKind::Number => "NUMBER",
            OptionKind::Bool => "true|false",
            OptionKind::NumberTable => "NAME=NUMBER,...",
        }
    }
}

/// One option a format declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    pub required: bool,
    /// One line for the listing; for an optional option, what its absence means.
    pub doc: &'static str,
}

/// A checked option's value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OptionValue {
    Path(PathBuf),
    Text(String),
    Number(f64),
    Bool(bool),
    NumberTable(BTreeMap<String, f64>),
}

/// An option as given, before [`check_options`].
#[derive(Clone, Debug, PartialEq)]
pub enum GivenOption {
    /// From a command line's `KEY=VALUE`: read according to the option's kind.
    Text(String),
    /// From a structured file (a scenario's TOML, converted): must already be of the kind.
    Value(serde_json::Value),
}

/// A format's options, checked against its declaration: every required one present, none
/// unknown, each of its kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Options {
    values: BTreeMap<&'static str, OptionValue>,
}

impl Options {
    pub fn get(&self, name: &str) -> Option<&OptionValue> {
        self.values.get(name)
    }

    pub fn path(&self, name: &str) -> Option<&Path> {
        match self.values.get(name) {
            Some(OptionValue::Path(p)) => Some(p),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(OptionValue::Text(t)) => Some(t),
            _ => None,
        }
    }

    pub fn number(&self, name: &str) -> Option<f64> {
        match self.values.get(name) {
            Some(OptionValue::Number(v)) => Some(*v),
            _ => None,
        }
    }

    /// A bool option; absent is false.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(OptionValue::Bool(true)))
    }

    pub fn number_table(&self, name: &str) -> Option<&BTreeMap<String, f64>> {
        match self.values.get(name) {
            Some(OptionValue::NumberTable(t)) => Some(t),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &OptionValue)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    /// The paths of path-kind options, in option name order.
    pub fn paths(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        self.values.iter().filter_map(|(k, v)| match v {
            OptionValue::Path(p) => Some((*k, p.as_path())),
            _ => None,
        })
    }

    /// Joins every relative path-kind option to `base` (a scenario's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for value in self.values.values_mut() {
            if let OptionValue::Path(p) = value {
                *p = base.join(&*p);
            }
        }
    }
}

/// An option the format refuses: unknown, missing, of the wrong kind or given twice.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct OptionError {
    pub format: &'static str,
    /// The option at fault, as given; `work_s.cifar10` for one entry of a table.
    pub option: String,
    /// The whole message, naming the format and the option.
    pub message: String,
}

/// Checks options as given against `format`'s declaration: the one place an unknown option, a
/// missing required one, a value of the wrong kind or an option given twice is refused. Text
/// values are read according to the option's kind; a table given as text more than once (a
/// repeated `--work APP=SECONDS`) gathers its entries.
pub fn check_options(
    format: &dyn TraceFormat,
    given: impl IntoIterator<Item = (String, GivenOption)>,
) -> Result<Options, OptionError> {
    let name = format.name();
    let declared = format.options();
    let error = |option: &str, message: String| OptionError { format: name, option: option.to_string(), message };
    let mut values: BTreeMap<&'static str, OptionValue> = BTreeMap::new();
    for (key, value) in given {
        let Some(spec) = declared.iter().find(|o| o.name == key) else {
            let known = if declared.is_empty() {
                "it takes no options".to_string()
            } else {
                format!("its options are: {}", declared.iter().map(|o| o.name).collect::<Vec<_>>().join(", "))
            };
            return Err(error(&key, format!("the {name} trace format has no option `{key}`; {known}")));
        };
        let wrong = |option: &str, found: &str| {
            error(option, format!("the {name} trace format's option `{option}` must be {}, found {found}", spec.kind.expected()))
        };
        let parsed = match &value {
            GivenOption::Value(v) => from_value(spec, v).map_err(|(option, found)| wrong(&option, &found))?,
            GivenOption::Text(t) => from_text(spec, t).map_err(|(option, found)| wrong(&option, &found))?,
        };
        match (values.get_mut(spec.name), parsed, &value) {
            (None, parsed, _) => {
                values.insert(spec.name, parsed);
            }
            (Some(OptionValue::NumberTable(table)), OptionValue::NumberTable(more), GivenOption::Text(_)) => {
                for (entry, v) in more {
                    if table.insert(entry.clone(), v).is_some() {
                        return Err(error(&format!("{key}.{entry}"), format!("the {name} trace format's option `{key}` names `{entry}` twice")));
                    }
                }
            }
            (Some(_), _, _) => return Err(error(&key, format!("the {name} trace format's option `{key}` is given more than once"))),
        }
    }
    if let Some(spec) = declared.iter().find(|o| o.required && !values.contains_key(o.name)) {
        return Err(error(spec.name, format!("the {name} trace format needs `{}`: {}", spec.name, spec.doc)));
    }
    Ok(Options { values })
}

/// Up to 40 characters of a value as written, for messages.
fn shown(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if s.len() < text.len() {
        s.push_str("...");
    }
    s
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

type Refusal = (String, String);

fn from_value(spec: &OptionSpec, value: &serde_json::Value) -> Result<OptionValue, Refusal> {
    use serde_json::Value;
    let found = || (spec.name.to_string(), shown(&value.to_string()));
    Ok(match (spec.kind, value) {
        (OptionKind::Path, Value::String(s)) if !s.is_empty() => OptionValue::Path(PathBuf::from(s)),
        (OptionKind::Text, Value::String(s)) => OptionValue::Text(s.clone()),
        (OptionKind::Number, Value::Number(n)) if n.as_f64().is_some_and(positive) => OptionValue::Number(n.as_f64().unwrap()),
        (OptionKind::Bool, Value::Bool(b)) => OptionValue::Bool(*b),
        (OptionKind::NumberTable, Value::Object(entries)) => {
            let mut table = BTreeMap::new();
            for (entry, v) in entries {
                match v.as_f64().filter(|v| positive(*v)) {
                    Some(v) => table.insert(entry.clone(), v),
                    None => return Err((format!("{}.{entry}", spec.name), shown(&v.to_string()))),
                };
            }
            OptionValue::NumberTable(table)
        }
        _ => return Err(found()),
    })
}

fn from_text(spec: &OptionSpec, text: &str) -> Result<OptionValue, Refusal> {
    let found = || (spec.name.to_string(), format!("{:?}", shown(text)));
    let number = |t: &str| t.trim().parse::<f64>().ok().filter(|v| positive(*v));
    Ok(match spec.kind {
        OptionKind::Path if !text.is_empty() => OptionValue::Path(PathBuf::from(text)),
        OptionKind::Path => return Err(found()),
        OptionKind::Text => OptionValue::Text(text.to_string()),
        OptionKind::Number => OptionValue::Number(number(text).ok_or_else(found)?),
        OptionKind::Bool => match text {
            "true" => OptionValue::Bool(true),
            "false" => OptionValue::Bool(false),
            _ => return Err(found()),
        },
        OptionKind::NumberTable => {
            let mut table = BTreeMap::new();
            for item in text.split(',') {
                let (entry, v) = item.split_once('=').ok_or_else(found)?;
                let entry = entry.trim();
                let v = number(v).ok_or_else(|| (format!("{}.{entry}", spec.name), format!("{:?}", shown(v))))?;
                if entry.is_empty() || table.insert(entry.to_string(), v).is_some() {
                    return Err(found());
                }
            }
            OptionValue::NumberTable(table)
        }
    })
}
