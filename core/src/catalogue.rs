//! The device catalogue: one unified descriptor for every kind of device.
//!
//! Figures are vendor datasheet peaks (dense, no sparsity). `fp16_tflops` is the best FP16
//! (or bfloat16 on TPUs) rate the device offers, tensor cores included where it has them,
//! because that is what mixed-precision training gets. A figure the vendor does not publish
//! is `None`, never a guess.

use crate::ids::ModelId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Gpu,
    Tpu,
    Cpu,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceModel {
    /// The name scenarios and traces use, e.g. "V100-32GB".
    pub name: String,
    pub kind: DeviceKind,
    /// Device memory; `None` for a CPU socket, whose memory belongs to the node.
    pub mem_gib: Option<f64>,
    pub fp16_tflops: Option<f64>,
    pub fp32_tflops: Option<f64>,
    pub mem_bw_gbps: Option<f64>,
    /// True for entries whose figures are not public (e.g. Alibaba's undisclosed "G2").
    #[serde(default)]
    pub undisclosed: bool,
}

/// Built-in entries: (name, kind, mem GiB, FP16/BF16 TFLOPS, FP32 TFLOPS, memory GB/s).
/// Sources: NVIDIA datasheets (K80 per GK210 die as nvidia-smi exposes it, P100 PCIe,
/// V100 SXM2, T4, A10, A100 SXM, H100 SXM, H200 SXM), Google Cloud TPU system architecture
/// pages (v4, v5e), Intel ARK for the Xeon Platinum 8380 (40 cores x 2.3 GHz x 32 FP32
/// FLOP/cycle with two AVX-512 FMA units; 8 channels of DDR4-3200).
const BUILT_IN: &[(&str, DeviceKind, Option<f64>, Option<f64>, Option<f64>, Option<f64>)] = &[
    // Kepler has no fast FP16 path; frameworks run FP16 at the FP32 rate there.
    ("K80", DeviceKind::Gpu, Some(12.0), Some(4.37), Some(4.37), Some(240.0)),
    ("P100", DeviceKind::Gpu, Some(16.0), Some(18.7), Some(9.3), Some(732.0)),
    ("V100-16GB", DeviceKind::Gpu, Some(16.0), Some(125.0), Some(15.7), Some(900.0)),
    ("V100-32GB", DeviceKind::Gpu, Some(32.0), Some(125.0), Some(15.7), Some(900.0)),
    ("T4", DeviceKind::Gpu, Some(16.0), Some(65.0), Some(8.1), Some(320.0)),
    ("A10", DeviceKind::Gpu, Some(24.0), Some(125.0), Some(31.2), Some(600.0)),
    ("A100-40GB", DeviceKind::Gpu, Some(40.0), Some(312.0), Some(19.5), Some(1555.0)),
    ("A100-80GB", DeviceKind::Gpu, Some(80.0), Some(312.0), Some(19.5), Some(2039.0)),
    ("H100", DeviceKind::Gpu, Some(80.0), Some(989.4), Some(67.0), Some(3350.0)),
    ("H200", DeviceKind::Gpu, Some(141.0), Some(989.4), Some(67.0), Some(4800.0)),
    // Google publishes bf16 peaks for TPUs, not FP32.
    ("TPU-v4", DeviceKind::Tpu, Some(32.0), Some(275.0), None, Some(1200.0)),
    ("TPU-v5e", DeviceKind::Tpu, Some(16.0), Some(197.0), None, Some(819.0)),
    ("Xeon-8380", DeviceKind::Cpu, None, None, Some(2.94), Some(204.8)),
];

/// Other spellings traces and people use for built-in entries.
const ALIASES: &[(&str, &str)] = &[
    ("V100", "V100-16GB"),
    ("V100M16", "V100-16GB"),
    ("V100M32", "V100-32GB"),
    ("A100", "A100-40GB"),
    ("H100-80GB", "H100"),
    ("TPUv4", "TPU-v4"),
    ("CPU", "Xeon-8380"),
];

/// At most this many models in one run, so that a set of allowed models is one `u64` bitmask.
pub const MAX_MODELS: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub struct Catalogue {
    models: Vec<DeviceModel>,
    aliases: Vec<(String, ModelId)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogueError {
    Duplicate(String),
    Full,
}

impl std::fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogueError::Duplicate(name) => write!(f, "device model `{name}` is already in the catalogue"),
            CatalogueError::Full => write!(f, "the catalogue holds at most {MAX_MODELS} device models"),
        }
    }
}

impl std::error::Error for CatalogueError {}

impl Default for Catalogue {
    fn default() -> Self {
        Self::built_in()
    }
}

impl Catalogue {
    /// The real models tessera knows without being told.
    pub fn built_in() -> Catalogue {
        let models = BUILT_IN
            .iter()
            .map(|&(name, kind, mem, fp16, fp32, bw)| DeviceModel {
                name: name.to_string(),
                kind,
                mem_gib: mem,
                fp16_tflops: fp16,
                fp32_tflops: fp32,
                mem_bw_gbps: bw,
                undisclosed: false,
            })
            .collect();
        let mut catalogue = Catalogue { models, aliases: Vec::new() };
        for &(alias, target) in ALIASES {
            let id = catalogue.lookup(target).expect("alias targets a built-in model");
            catalogue.aliases.push((alias.to_string(), id));
        }
        catalogue
    }

    /// Adds a model (a scenario's own, or a trace's undisclosed code).
    pub fn add(&mut self, model: DeviceModel) -> Result<ModelId, CatalogueError> {
        if self.lookup(&model.name).is_some() {
            return Err(CatalogueError::Duplicate(model.name));
        }
        if self.models.len() >= MAX_MODELS {
            return Err(CatalogueError::Full);
        }
        self.models.push(model);
        Ok(ModelId((self.models.len() - 1) as u16))
    }

    /// Finds a model by name or alias, ignoring ASCII case.
    pub fn lookup(&self, name: &str) -> Option<ModelId> {
        self.models
            .iter()
            .position(|m| m.name.eq_ignore_ascii_case(name))
            .map(|i| ModelId(i as u16))
            .or_else(|| self.aliases.iter().find(|(a, _)| a.eq_ignore_ascii_case(name)).map(|&(_, id)| id))
    }

    pub fn get(&self, id: ModelId) -> &DeviceModel {
        &self.models[id.index()]
    }

    pub fn name(&self, id: ModelId) -> &str {
        &self.models[id.index()].name
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (ModelId, &DeviceModel)> {
        self.models.iter().enumerate().map(|(i, m)| (ModelId(i as u16), m))
    }

    /// Names of all models, for error messages that say what was expected.
    pub fn names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }
}

/// A set of device models as a bitmask; the empty set means "any model".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelSet(pub u64);

impl ModelSet {
    pub const ANY: ModelSet = ModelSet(0);

    pub fn only(model: ModelId) -> ModelSet {
        ModelSet(1 << model.0)
    }

    pub fn with(self, model: ModelId) -> ModelSet {
        ModelSet(self.0 | (1 << model.0))
    }

    pub fn is_any(self) -> bool {
        self.0 == 0
    }

    pub fn allows(self, model: ModelId) -> bool {
        self.0 == 0 || self.0 & (1 << model.0) != 0
    }

    /// The single model this set names, if it names exactly one.
    pub fn single(self) -> Option<ModelId> {
        (self.0.count_ones() == 1).then(|| ModelId(self.0.trailing_zeros() as u16))
    }

    pub fn iter(self) -> impl Iterator<Item = ModelId> {
        (0..MAX_MODELS as u16).filter(move |&i| self.0 & (1 << i) != 0).map(ModelId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_has_the_models_the_issue_names() {
        let c = Catalogue::built_in();
        for name in ["K80", "P100", "V100-16GB", "V100-32GB", "T4", "A10", "A100-40GB", "A100-80GB", "H100", "H200", "TPU-v4", "Xeon-8380"] {
            let id = c.lookup(name).unwrap_or_else(|| panic!("{name} missing"));
            let m = c.get(id);
            assert!(m.fp16_tflops.is_some() || m.fp32_tflops.is_some(), "{name} has no throughput");
            assert!(m.mem_bw_gbps.unwrap() > 0.0);
        }
        assert_eq!(c.lookup("v100m32"), c.lookup("V100-32GB"));
        assert!(c.get(c.lookup("H200").unwrap()).mem_gib.unwrap() > c.get(c.lookup("H100").unwrap()).mem_gib.unwrap());
    }

    #[test]
    fn adding_a_duplicate_is_refused() {
        let mut c = Catalogue::built_in();
        let t4 = c.get(c.lookup("T4").unwrap()).clone();
        assert_eq!(c.add(t4), Err(CatalogueError::Duplicate("T4".into())));
    }

    #[test]
    fn model_sets() {
        let a = ModelId(3);
        let b = ModelId(7);
        assert!(ModelSet::ANY.allows(a));
        let s = ModelSet::only(a).with(b);
        assert!(s.allows(b) && !s.allows(ModelId(4)));
        assert_eq!(s.single(), None);
        assert_eq!(ModelSet::only(b).single(), Some(b));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![a, b]);
    }
}
