//! The format registry and its one option check: unknown, missing and ill-kinded options are
//! refused naming the format and the option, text and structured values are read by kind, and
//! the listing is made from the registry.

use serde_json::json;
use std::path::Path;
use tessera_traces::source::{check_options, find, render_formats, GivenOption, OptionKind, OptionValue, DEFAULT_FORMAT, FORMATS};

fn text(pairs: &[(&str, &str)]) -> Vec<(String, GivenOption)> {
    pairs.iter().map(|(k, v)| (k.to_string(), GivenOption::Text(v.to_string()))).collect()
}

fn value(key: &str, v: serde_json::Value) -> Vec<(String, GivenOption)> {
    vec![(key.to_string(), GivenOption::Value(v))]
}

#[test]
fn names_are_unique_and_each_is_found() {
    for (i, format) in FORMATS.iter().enumerate() {
        assert!(FORMATS[..i].iter().all(|f| f.name() != format.name()), "{} is registered twice", format.name());
        assert_eq!(find(format.name()).unwrap().name(), format.name());
        let mut options: Vec<&str> = format.options().iter().map(|o| o.name).collect();
        options.sort();
        options.dedup();
        assert_eq!(options.len(), format.options().len(), "{} declares an option twice", format.name());
    }
    assert!(find(DEFAULT_FORMAT).is_ok(), "the default format is registered");
    let e = find("slurm").err().unwrap();
    assert!(e.contains("unknown trace format `slurm`") && e.contains("native, philly, philly-log"), "{e}");
}

#[test]
fn an_unknown_option_names_the_format_the_option_and_the_known_ones() {
    let gavel = find("gavel").unwrap();
    let e = check_options(gavel, text(&[("throughputs", "t.json"), ("throughput", "t.json")])).unwrap_err();
    assert_eq!((e.format, e.option.as_str()), ("gavel", "throughput"));
    assert!(e.message.contains("gavel") && e.message.contains("no option `throughput`"), "{}", e.message);
    assert!(e.message.contains("throughputs, reference_model, skip_unmeasured"), "{}", e.message);
    // A format without options says so.
    let e = check_options(find("philly").unwrap(), value("work_s", json!({ "a": 1 }))).unwrap_err();
    assert_eq!(e.option, "work_s");
    assert!(e.message.contains("philly") && e.message.contains("takes no options"), "{}", e.message);
}

#[test]
fn a_missing_required_option_names_it_with_its_doc() {
    let e = check_options(find("gavel").unwrap(), text(&[("reference_model", "k80")])).unwrap_err();
    assert_eq!((e.format, e.option.as_str()), ("gavel", "throughputs"));
    assert!(e.message.contains("the gavel trace format needs `throughputs`") && e.message.contains("simulation_throughputs.json"), "{}", e.message);
    let e = check_options(find("pollux").unwrap(), Vec::new()).unwrap_err();
    assert_eq!((e.format, e.option.as_str()), ("pollux", "work_s"));
}

#[test]
fn a_value_of_the_wrong_kind_names_the_kind_expected_and_what_was_found() {
    let gavel = find("gavel").unwrap();
    let base = || text(&[("throughputs", "t.json")]);
    // Structured: a string where a bool goes, a number where a path goes.
    let mut given = base();
    given.extend(value("skip_unmeasured", json!("yes")));
    let e = check_options(gavel, given).unwrap_err();
    assert_eq!(e.option, "skip_unmeasured");
    assert!(e.message.contains("must be true or false, found \"yes\""), "{}", e.message);
    let e = check_options(gavel, value("throughputs", json!(3))).unwrap_err();
    assert!(e.option == "throughputs" && e.message.contains("must be a file path, found 3"), "{}", e.message);
    // Text: read by kind, so `--option skip_unmeasured=1` is refused.
    let mut given = base();
    given.extend(text(&[("skip_unmeasured", "1")]));
    let e = check_options(gavel, given).unwrap_err();
    assert!(e.option == "skip_unmeasured" && e.message.contains("true or false"), "{}", e.message);
    // A table's entry is named by its key within the table.
    let pollux = find("pollux").unwrap();
    let e = check_options(pollux, value("work_s", json!({ "cifar10": 3600, "ncf": -1 }))).unwrap_err();
    assert!(e.option == "work_s.ncf" && e.message.contains("positive numbers"), "{}", e.message);
    let e = check_options(pollux, text(&[("work_s", "cifar10")])).unwrap_err();
    assert_eq!(e.option, "work_s");
    let e = check_options(pollux, text(&[("work_s", "cifar10=0")])).unwrap_err();
    assert_eq!(e.option, "work_s.cifar10");
}

#[test]
fn text_and_structured_values_check_to_the_same_options() {
    let gavel = find("gavel").unwrap();
    let from_text = check_options(gavel, text(&[("throughputs", "t.json"), ("reference_model", "k80"), ("skip_unmeasured", "true")])).unwrap();
    let mut given = value("throughputs", json!("t.json"));
    given.extend(value("reference_model", json!("k80")));
    given.extend(value("skip_unmeasured", json!(true)));
    let from_value = check_options(gavel, given).unwrap();
    assert_eq!(from_text, from_value);
    assert_eq!(from_text.path("throughputs"), Some(Path::new("t.json")));
    assert_eq!(from_text.text("reference_model"), Some("k80"));
    assert!(from_text.flag("skip_unmeasured"));
    // Repeated table text gathers its entries (`--work a=1 --work b=2`); a repeat of anything
    // else, or of an entry, is refused.
    let pollux = find("pollux").unwrap();
    let options = check_options(pollux, text(&[("work_s", "a=1"), ("work_s", "b=2.5,c=3")])).unwrap();
    let table = options.number_table("work_s").unwrap();
    assert_eq!(table.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("a", 1.0), ("b", 2.5), ("c", 3.0)]);
    let e = check_options(pollux, text(&[("work_s", "a=1"), ("work_s", "a=2")])).unwrap_err();
    assert!(e.option == "work_s.a" && e.message.contains("twice"), "{}", e.message);
    let e = check_options(gavel, text(&[("throughputs", "a.json"), ("throughputs", "b.json")])).unwrap_err();
    assert!(e.option == "throughputs" && e.message.contains("more than once"), "{}", e.message);
}

#[test]
fn path_options_are_resolved_by_kind() {
    let gavel = find("gavel").unwrap();
    let mut options = check_options(gavel, text(&[("throughputs", "t.json"), ("reference_model", "sub/k80")])).unwrap();
    options.resolve_paths(Path::new("/scenarios"));
    assert_eq!(options.path("throughputs"), Some(Path::new("/scenarios/t.json")));
    // A text option that looks like a path is left as written.
    assert_eq!(options.get("reference_model"), Some(&OptionValue::Text("sub/k80".into())));
}

#[test]
fn the_listing_names_every_format_and_option_from_the_registry() {
    let listing = render_formats();
    for format in FORMATS {
        let line = listing.lines().find(|l| l.split_whitespace().next() == Some(format.name()));
        let line = line.unwrap_or_else(|| panic!("{} is not listed:\n{listing}", format.name()));
        assert!(line.contains(format.description()), "{line}");
        for option in format.options() {
            let usage = format!("{}={}", option.name, option.kind.placeholder());
            let required = if option.required { "(required)" } else { "(optional)" };
            assert!(listing.contains(&format!("{usage} {required}: {}", option.doc)), "{usage} missing:\n{listing}");
        }
    }
    assert_eq!(listing.lines().filter(|l| !l.starts_with(' ')).count(), FORMATS.len(), "{listing}");
    assert_eq!(OptionKind::NumberTable.placeholder(), "NAME=NUMBER,...");
}
