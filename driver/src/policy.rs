//! Building a policy: one function for the simulator, the executor, the gate, the API's policy
//! change and `validate`, so that a spec means the same policy wherever it is built.

use tessera_core::policy::SpeedTable;
use tessera_core::validation::{PolicyFingerprint, SpeedCell};
use tessera_core::{Catalogue, ClassId, ModelId, Policy, PolicyError, PolicySpec};

/// What a spec is built against. The simulator takes it from the scenario (the workload's
/// tenants and classes, its speed matrix, the cluster's models); the executor from `exec.toml`
/// (`[[daemon.tenants]]`, `[[speed]]`, `speed_table`) and the devices it found.
#[derive(Clone, Copy)]
pub struct PolicyContext<'a> {
    pub catalogue: &'a Catalogue,
    /// The device models the fleet has (any order, repeats allowed).
    pub fleet_models: &'a [ModelId],
    /// Tenant names by tenant id.
    pub tenants: &'a [String],
    /// Job class names by class id.
    pub classes: &'a [String],
    /// The class x model speed matrix (dense over `classes` and the catalogue).
    pub speeds: &'a SpeedTable,
}

/// A policy built from its spec in a context, with the fingerprint of what was built.
pub struct BuiltPolicy {
    pub policy: Policy,
    pub fingerprint: PolicyFingerprint,
}

/// Builds `spec` against `ctx`: tenant names resolved against the tenant table, the speed
/// matrix given to every part that weighs speeds. The error names the spec's key.
pub fn build_policy(spec: &PolicySpec, ctx: &PolicyContext<'_>) -> Result<BuiltPolicy, PolicyError> {
    let policy = Policy::from_spec_with_tenants(spec, ctx.tenants)?.with_speeds(ctx.speeds.clone());
    let fingerprint = fingerprint(spec, &policy, ctx);
    Ok(BuiltPolicy { policy, fingerprint })
}

/// What of `ctx` the built `policy` can depend on, by names.
fn fingerprint(spec: &PolicySpec, policy: &Policy, ctx: &PolicyContext<'_>) -> PolicyFingerprint {
    let tenants = if policy.uses_tenants() { ctx.tenants.to_vec() } else { Vec::new() };
    let (mut models, mut speeds) = (Vec::new(), Vec::new());
    if policy.uses_speeds() {
        let mut ids: Vec<ModelId> = ctx.fleet_models.to_vec();
        ids.sort_unstable();
        ids.dedup();
        for (c, class) in ctx.classes.iter().enumerate() {
            for &m in &ids {
                let relative = ctx.speeds.speed(ClassId(c as u32), m);
                if relative != 1.0 {
                    speeds.push(SpeedCell { class: class.clone(), model: ctx.catalogue.name(m).to_string(), relative });
                }
            }
        }
        models = ids.iter().map(|&m| ctx.catalogue.name(m).to_string()).collect();
        models.sort();
        speeds.sort_by(|a, b| (&a.class, &a.model).cmp(&(&b.class, &b.model)));
    }
    PolicyFingerprint { spec: spec.clone(), tenants, models, speeds }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_parts() -> (Catalogue, Vec<ModelId>, Vec<String>, Vec<String>) {
        let catalogue = Catalogue::built_in();
        let v100 = catalogue.lookup("V100-16GB").unwrap();
        let k80 = catalogue.lookup("K80").unwrap();
        (catalogue, vec![v100, k80, v100], vec!["team-a".into(), "team-b".into()], vec!["resnet50".into(), "bert".into()])
    }

    #[test]
    fn the_fingerprint_holds_what_the_policy_can_depend_on() {
        let (catalogue, fleet, tenants, classes) = ctx_parts();
        let mut speeds = SpeedTable::uniform(classes.len(), catalogue.len());
        speeds.set(ClassId(0), catalogue.lookup("V100-16GB").unwrap(), 2.1);
        speeds.set(ClassId(1), catalogue.lookup("T4").unwrap(), 3.0); // not in the fleet
        let ctx = PolicyContext { catalogue: &catalogue, fleet_models: &fleet, tenants: &tenants, classes: &classes, speeds: &speeds };

        let fifo = build_policy(&PolicySpec::named("fifo"), &ctx).unwrap().fingerprint;
        assert!(fifo.tenants.is_empty() && fifo.models.is_empty() && fifo.speeds.is_empty(), "{fifo:?}");

        let mut hetero = PolicySpec::named("fifo");
        hetero.placement = Some("hetero".into());
        let f = build_policy(&hetero, &ctx).unwrap().fingerprint;
        assert_eq!(f.models, vec!["K80".to_string(), "V100-16GB".to_string()]);
        assert_eq!(f.speeds, vec![SpeedCell { class: "resnet50".into(), model: "V100-16GB".into(), relative: 2.1 }]);
        assert!(f.tenants.is_empty());

        let mut quota = PolicySpec::named("fair-share");
        quota.tenant_weights = Some([("team-b".to_string(), 2.0)].into_iter().collect());
        let f = build_policy(&quota, &ctx).unwrap().fingerprint;
        assert_eq!(f.tenants, tenants);
    }

    #[test]
    fn a_different_speed_is_named() {
        let (catalogue, fleet, tenants, classes) = ctx_parts();
        let v100 = catalogue.lookup("V100-16GB").unwrap();
        let mut validated = SpeedTable::uniform(classes.len(), catalogue.len());
        validated.set(ClassId(0), v100, 2.1);
        let here = SpeedTable::uniform(classes.len(), catalogue.len());
        let spec = PolicySpec::named("gavel");
        let built = |speeds: &SpeedTable| {
            build_policy(&spec, &PolicyContext { catalogue: &catalogue, fleet_models: &fleet, tenants: &tenants, classes: &classes, speeds }).unwrap().fingerprint
        };
        let record = built(&validated);
        assert_eq!(record.difference(&record), None);
        let why = record.difference(&built(&here)).unwrap();
        assert_eq!(why, "speed matrix: V100-16GB/resnet50 is 1.0 here, 2.1 in the record");
    }

    #[test]
    fn an_unknown_tenant_is_refused_naming_the_key() {
        let (catalogue, fleet, tenants, classes) = ctx_parts();
        let speeds = SpeedTable::uniform(classes.len(), catalogue.len());
        let mut spec = PolicySpec::named("fifo");
        spec.quota_devices = Some([("team-z".to_string(), 4)].into_iter().collect());
        let e = build_policy(&spec, &PolicyContext { catalogue: &catalogue, fleet_models: &fleet, tenants: &tenants, classes: &classes, speeds: &speeds }).err().unwrap();
        assert_eq!(e.key, "quota_devices");
        assert!(e.message.contains("team-z") && e.message.contains("team-a"), "{}", e.message);
    }
}
