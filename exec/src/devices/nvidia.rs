//! NVIDIA GPUs through NVML. The library is loaded at run time (`libnvidia-ml.so.1`): on a
//! machine without the driver, discovery finds no GPU and says so once. A job is bound with
//! `CUDA_VISIBLE_DEVICES=<UUID>[,<UUID>...]` (MIG instances by their `MIG-` UUIDs).

use super::{Binding, DeviceBackend, Discovered, ModelChoice, Reading};
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, TemperatureSensor};
use nvml_wrapper::Nvml;
use tessera_core::{DeviceKind, DeviceModel};

pub struct NvidiaBackend {
    nvml: Nvml,
    /// A second handle on the library for the MIG calls `nvml-wrapper` does not wrap.
    raw: Option<nvml_wrapper_sys::bindings::NvmlLib>,
    mig: bool,
}

impl NvidiaBackend {
    /// Loads NVML; `Err` says why there are no NVIDIA GPUs here (no driver, no library).
    pub fn load(mig: bool) -> Result<NvidiaBackend, String> {
        let nvml = Nvml::init().map_err(|e| format!("NVML unavailable ({e}): no NVIDIA GPUs will be offered"))?;
        // SAFETY: loading the same shared library NVML::init just loaded; its symbols are only
        // called with handles NVML gave us.
        let raw = unsafe { nvml_wrapper_sys::bindings::NvmlLib::new("libnvidia-ml.so.1") }.ok();
        Ok(NvidiaBackend { nvml, raw, mig })
    }

    fn mig_children(&self, parent: &nvml_wrapper::Device) -> Vec<nvml_wrapper::Device<'_>> {
        let Some(raw) = &self.raw else { return Vec::new() };
        let enabled = parent.mig_mode().map(|m| m.current == 1).unwrap_or(false);
        if !self.mig || !enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        // SAFETY: the parent handle is live for as long as `self.nvml`; NVML fills `count`
        // and `handle` and returns a status we check.
        unsafe {
            let mut count: std::os::raw::c_uint = 0;
            if raw.nvmlDeviceGetMaxMigDeviceCount(parent.handle(), &mut count) != 0 {
                return out;
            }
            for i in 0..count {
                let mut handle: nvml_wrapper_sys::bindings::nvmlDevice_t = std::ptr::null_mut();
                if raw.nvmlDeviceGetMigDeviceHandleByIndex(parent.handle(), i, &mut handle) == 0 && !handle.is_null() {
                    out.push(nvml_wrapper::Device::new(handle, &self.nvml));
                }
            }
        }
        out
    }
}

/// Maps an NVML product name (and memory) to a built-in catalogue model, if it is one.
pub fn catalogue_name(nvml_name: &str, mem_gib: f64) -> Option<&'static str> {
    let upper = nvml_name.to_ascii_uppercase();
    let tokens: Vec<&str> = upper.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty()).collect();
    let has = |t: &str| tokens.contains(&t);
    if upper.contains("H200") {
        Some("H200")
    } else if upper.contains("H100") {
        Some("H100")
    } else if upper.contains("A100") {
        Some(if mem_gib > 60.0 { "A100-80GB" } else { "A100-40GB" })
    } else if upper.contains("V100") {
        Some(if mem_gib > 24.0 { "V100-32GB" } else { "V100-16GB" })
    } else if upper.contains("P100") {
        Some("P100")
    } else if upper.contains("K80") {
        Some("K80")
    } else if has("T4") {
        Some("T4")
    } else if has("A10") {
        Some("A10")
    } else {
        None
    }
}

/// The catalogue entry for a GPU the catalogue lacks: named as NVML names it, its memory
/// known, its throughput not (undisclosed, as openb's unknown GPUs are).
pub fn unknown_gpu_model(nvml_name: &str, mem_gib: Option<f64>) -> DeviceModel {
    DeviceModel {
        name: nvml_name.trim().replace(' ', "-"),
        kind: DeviceKind::Gpu,
        mem_gib,
        fp16_tflops: None,
        fp32_tflops: None,
        mem_bw_gbps: None,
        undisclosed: true,
    }
}

fn model_of(name: &str, mem_gib: f64) -> ModelChoice {
    match catalogue_name(name, mem_gib) {
        Some(n) => ModelChoice::Known(n.to_string()),
        None => ModelChoice::New(unknown_gpu_model(name, Some(mem_gib))),
    }
}

impl DeviceBackend for NvidiaBackend {
    fn name(&self) -> &'static str {
        "nvidia"
    }

    fn discover(&self) -> Result<Vec<Discovered>, String> {
        let count = self.nvml.device_count().map_err(|e| format!("NVML device count: {e}"))?;
        let mut out = Vec::new();
        for i in 0..count {
            let dev = self.nvml.device_by_index(i).map_err(|e| format!("NVML device {i}: {e}"))?;
            let uuid = dev.uuid().map_err(|e| format!("NVML device {i} uuid: {e}"))?;
            let name = dev.name().unwrap_or_else(|_| "unknown-gpu".into());
            let mem_gib = dev.memory_info().map(|m| m.total as f64 / (1u64 << 30) as f64).unwrap_or(0.0);
            let children = self.mig_children(&dev);
            if children.is_empty() {
                out.push(Discovered { name: format!("gpu{i}"), uuid: Some(uuid), model: model_of(&name, mem_gib), cores: Vec::new() });
                continue;
            }
            for (j, mig) in children.iter().enumerate() {
                let mig_uuid = mig.uuid().map_err(|e| format!("NVML MIG {i}/{j} uuid: {e}"))?;
                let mig_mem = mig.memory_info().map(|m| m.total as f64 / (1u64 << 30) as f64).ok();
                let base = catalogue_name(&name, mem_gib).map(str::to_string).unwrap_or_else(|| name.replace(' ', "-"));
                let mig_name = format!("{base}-MIG-{:.0}gb", mig_mem.unwrap_or(0.0));
                out.push(Discovered {
                    name: format!("gpu{i}-mig{j}"),
                    uuid: Some(mig_uuid),
                    model: ModelChoice::New(unknown_gpu_model(&mig_name, mig_mem)),
                    cores: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    fn bind(&self, devices: &[&Discovered]) -> Binding {
        let uuids: Vec<&str> = devices.iter().filter_map(|d| d.uuid.as_deref()).collect();
        Binding { env: vec![("CUDA_VISIBLE_DEVICES".into(), uuids.join(","))], cpus: None }
    }

    fn health(&self, devices: &[&Discovered]) -> Vec<Reading> {
        devices
            .iter()
            .map(|d| {
                let Some(uuid) = &d.uuid else { return Reading { error: Some("no UUID".into()), ..Reading::default() } };
                let dev = match self.nvml.device_by_uuid(uuid.as_str()) {
                    Ok(dev) => dev,
                    Err(e) => return Reading { error: Some(format!("{uuid} not found: {e}")), ..Reading::default() },
                };
                let mem = dev.memory_info().ok();
                Reading {
                    mem_used_fraction: mem.as_ref().map(|m| m.used as f64 / m.total.max(1) as f64),
                    mem_used_mib: mem.as_ref().map(|m| m.used >> 20),
                    mem_total_mib: mem.as_ref().map(|m| m.total >> 20),
                    temp_c: dev.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
                    utilization: dev.utilization_rates().ok().map(|u| u.gpu as f64 / 100.0),
                    ecc_uncorrected: dev.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile).ok(),
                    load_per_core: None,
                    error: None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_names_map_to_catalogue_models() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", 79.6, Some("H100")),
            ("NVIDIA H200", 140.0, Some("H200")),
            ("NVIDIA A100-SXM4-40GB", 39.5, Some("A100-40GB")),
            ("NVIDIA A100-SXM4-80GB", 79.2, Some("A100-80GB")),
            ("Tesla V100-SXM2-32GB", 31.7, Some("V100-32GB")),
            ("Tesla V100-PCIE-16GB", 15.8, Some("V100-16GB")),
            ("Tesla T4", 15.0, Some("T4")),
            ("NVIDIA A10", 22.0, Some("A10")),
            ("Tesla P100-PCIE-16GB", 16.0, Some("P100")),
            ("Tesla K80", 11.2, Some("K80")),
            ("NVIDIA GeForce RTX 4090", 24.0, None),
            ("NVIDIA A40", 44.0, None),
        ];
        for (name, mem, want) in cases {
            assert_eq!(catalogue_name(name, mem), want, "{name}");
        }
        let m = unknown_gpu_model("NVIDIA GeForce RTX 4090", Some(24.0));
        assert!(m.undisclosed && m.fp16_tflops.is_none());
        assert_eq!(m.name, "NVIDIA-GeForce-RTX-4090");
    }

    #[test]
    fn without_a_driver_loading_says_why() {
        match NvidiaBackend::load(true) {
            Ok(b) => println!("NVML present: {} GPUs", b.discover().map(|d| d.len()).unwrap_or(0)),
            Err(why) => assert!(why.contains("NVML unavailable"), "{why}"),
        }
    }
}
