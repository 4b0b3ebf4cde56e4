//! The speed matrix: job class x device model -> throughput relative to the reference device,
//! built from a scenario's sources into the core's dense [`SpeedTable`] (looked up on every
//! rate change of every running job, so indexed by `(class, model)`, not by names).

use crate::scenario::{Scenario, ScenarioError};
use crate::workload::Workload;
pub use tessera_core::policy::SpeedTable;
use tessera_core::{Catalogue, ClassId};

/// The speed matrix for a workload, as the core's [`SpeedTable`] (the simulator's world and
/// the placements that weigh speeds read the same table), from the least to the most specific
/// source: the trace's own speeds (Gavel's table), then the scenario's `speed_table` file,
/// then its `[[speed]]` entries. Entries for classes the workload does not have are ignored
/// (one scenario file may serve several traces); unknown models and non-positive speeds are
/// errors naming their key.
pub fn build(s: &Scenario, workload: &Workload, catalogue: &Catalogue) -> Result<SpeedTable, ScenarioError> {
    let mut matrix = SpeedTable::uniform(workload.classes.len(), catalogue.len());
    // Every source is checked, even the scenario's entries (validated at load, but a
    // scenario can be built in code).
    let mut apply = |key: String, class: &str, model: &str, relative: f64| -> Result<(), ScenarioError> {
        let model = s.lookup_model(catalogue, &format!("{key}.model"), model)?;
        if !(relative.is_finite() && relative > 0.0) {
            return Err(ScenarioError::invalid(&s.path, format!("{key}.relative"), format!("expected a positive number, found {relative}")));
        }
        if let Some(class) = workload.classes.iter().position(|c| c == class) {
            matrix.set(ClassId(class as u32), model, relative);
        }
        Ok(())
    };
    for (class, model, relative) in &workload.speed {
        apply("workload.trace".into(), class, model, *relative)?;
    }
    if let Some(table) = &s.speed_table {
        for (class, model, relative) in load_speed_table(s, table)? {
            apply("speed_table".into(), &class, &model, relative)?;
        }
    }
    for (i, e) in s.speed.iter().enumerate() {
        apply(format!("speed[{i}]"), &e.class, &e.model, e.relative)?;
    }
    Ok(matrix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(speed: &str) -> Result<Scenario, ScenarioError> {
        let text = format!(
            "name = \"t\"\n[[cluster.nodes]]\ndevices = {{ model = \"V100-32GB\" }}\n\
             [workload]\nsynthetic = {{ jobs = 10, interarrival = {{ dist = \"constant\", value = 1 }}, \
             duration = {{ dist = \"constant\", value = 5 }}, classes = [\"resnet50\", \"bert\"] }}\n\
             [[policies]]\nname = \"fifo\"\n{speed}"
        );
        Scenario::from_toml_str(&text, Path::new("speed.toml"))
    }

    #[test]
    fn entries_land_in_their_cells_and_the_rest_is_one() {
        let s = scenario(
            "[[speed]]\nclass = \"resnet50\"\nmodel = \"V100-32GB\"\nrelative = 2.0\n\
             [[speed]]\nclass = \"not-in-workload\"\nmodel = \"T4\"\nrelative = 0.5\n",
        )
        .unwrap();
        let (catalogue, _) = crate::workload::build_cluster(&s).unwrap();
        let w = crate::workload::build_workload(&s, &catalogue, 1).unwrap();
        let m = build(&s, &w, &catalogue).unwrap();
        let v100 = catalogue.lookup("V100-32GB").unwrap();
        let t4 = catalogue.lookup("T4").unwrap();
        assert_eq!(m.speed(ClassId(0), v100), 2.0);
        assert_eq!(m.speed(ClassId(1), v100), 1.0);
        assert_eq!(m.speed(ClassId(0), t4), 1.0);
        assert_eq!(m.speed(ClassId(99), t4), 1.0, "out of range is the default, not a panic");
    }

    #[test]
    fn unknown_models_and_bad_speeds_are_errors() {
        let e = scenario("[[speed]]\nclass = \"bert\"\nmodel = \"V200\"\nrelative = 2.0\n").unwrap_err();
        assert_eq!(e.key(), Some("speed[0].model"), "{e}");
        assert!(e.to_string().contains("V100-32GB"), "{e}");
        let e = scenario("[[speed]]\nclass = \"bert\"\nmodel = \"T4\"\nrelative = 0\n").unwrap_err();
        assert_eq!(e.key(), Some("speed[0].relative"), "{e}");
        assert!(e.location().is_some());
        let e = scenario("[[speed]]\nclass = \"bert\"\nmodel = \"T4\"\nrelative = nan\n").unwrap_err();
        assert_eq!(e.key(), Some("speed[0].relative"), "{e}");
    }

    #[test]
    fn build_rechecks_entries_made_in_code() {
        let mut s = scenario("").unwrap();
        s.speed.push(crate::scenario::SpeedEntry { class: "bert".into(), model: "T4".into(), relative: -1.0 });
        let (catalogue, _) = crate::workload::build_cluster(&s).unwrap();
        let w = crate::workload::build_workload(&s, &catalogue, 1).unwrap();
        assert_eq!(build(&s, &w, &catalogue).unwrap_err().key(), Some("speed[0].relative"));
    }
}

/// Reads a speed table file: Gavel's throughput JSON (every job type and scale factor it
/// measures, as classes `"<type> x<sf>"`, relative to `reference_model`) or a CSV
/// `job_class,model,relative_speed`.
fn load_speed_table(s: &Scenario, table: &crate::scenario::SpeedTableSpec) -> Result<Vec<(String, String, f64)>, ScenarioError> {
    tessera_driver::speed::load_speed_table(table).map_err(|e| ScenarioError::invalid(&s.path, "speed_table.path", e.to_string()))
}
