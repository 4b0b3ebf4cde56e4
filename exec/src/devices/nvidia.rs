//! NVIDIA GPUs through NVML. The library is loaded at run time (`libnvidia-ml.so.1` from the
//! dynamic loader's path, or `gpu.nvml_library`): on a machine without the driver, discovery
//! finds no GPU and says so once. A job is bound with
//! `CUDA_VISIBLE_DEVICES=<UUID>[,<UUID>...]` (MIG instances by their `MIG-` UUIDs).
//!
//! Xid errors (NVML's critical Xid events) are read by a thread of their own, blocked in
//! `nvmlEventSetWait` on every GPU that supports them; each health reading carries the Xids
//! that arrived since the previous one (journalled one by one) and every distinct Xid seen
//! since the executor started. [`xid_verdict`] says which cordon the device
//! (`health.fatal_xids`): a GPU that needs a reset stays out of service until the executor is
//! restarted after the reset, since NVML does not say that a reset happened.

use super::{Binding, DeviceBackend, Discovered, ModelChoice, Reading};
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, TemperatureSensor};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tessera_core::{DeviceKind, DeviceModel};

pub struct NvidiaBackend {
    nvml: Nvml,
    /// A second handle on the library for the MIG calls `nvml-wrapper` does not wrap.
    raw: Option<nvml_wrapper_sys::bindings::NvmlLib>,
    mig: bool,
    /// Xids per GPU UUID, filled by the watcher thread.
    xids: Arc<Mutex<HashMap<String, XidLog>>>,
    /// MIG instance UUID -> its GPU's UUID (Xids are reported per GPU).
    parents: Mutex<HashMap<String, String>>,
    /// Tells the watcher thread to end (checked at least every `XID_WAIT_MS`).
    stop_watch: Arc<AtomicBool>,
}

impl Drop for NvidiaBackend {
    fn drop(&mut self) {
        self.stop_watch.store(true, Ordering::Relaxed);
    }
}

/// How long the watcher blocks in one `nvmlEventSetWait`, so it notices it should stop.
const XID_WAIT_MS: u32 = 500;
/// Xids kept per GPU between two readings (a storm of one code repeats it).
const XID_NEW_KEPT: usize = 64;

#[derive(Clone, Debug, Default)]
struct XidLog {
    /// Since the previous reading, in order (at most `XID_NEW_KEPT`).
    new: Vec<u64>,
    /// Every distinct code since the executor started.
    seen: BTreeSet<u64>,
}

impl XidLog {
    fn record(&mut self, xid: u64) {
        if self.new.len() < XID_NEW_KEPT {
            self.new.push(xid);
        }
        self.seen.insert(xid);
    }
}

/// What NVIDIA's Xid catalogue says an Xid means, for the common ones.
pub fn xid_meaning(xid: u64) -> &'static str {
    match xid {
        13 => "graphics engine exception (usually the application)",
        31 => "GPU memory page fault (usually the application)",
        43 => "GPU stopped processing (the application was reset)",
        45 => "preemptive cleanup after an earlier error",
        48 => "double-bit ECC error",
        61 | 62 => "internal micro-controller error",
        63 => "ECC page retirement or row remapping recorded",
        64 => "ECC page retirement or row remapping recording failure",
        68 => "video processor exception",
        69 => "graphics engine class error",
        74 => "NVLink error",
        79 => "GPU has fallen off the bus",
        92 => "high single-bit ECC error rate",
        94 => "contained ECC error",
        95 => "uncontained ECC error",
        109 => "context switch timeout",
        119 => "GSP RPC timeout",
        120 => "GSP error",
        _ => "see NVIDIA's Xid catalogue",
    }
}

/// What the executor does about one Xid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XidVerdict {
    /// Take the device out of service (`DeviceFailed`): it needs a reset.
    pub cordon: bool,
    pub message: String,
}

/// Whether Xid `xid` cordons its GPU, given `health.fatal_xids`, and what to say about it.
pub fn xid_verdict(xid: u64, fatal_xids: &[u64]) -> XidVerdict {
    let meaning = xid_meaning(xid);
    if fatal_xids.contains(&xid) {
        XidVerdict { cordon: true, message: format!("Xid {xid} ({meaning}): the GPU needs a reset (health.fatal_xids)") }
    } else {
        XidVerdict { cordon: false, message: format!("Xid {xid} ({meaning}): not in health.fatal_xids, the GPU stays in service") }
    }
}

/// One event set with critical Xid events registered for the GPUs of these indices.
fn register_xid_events<'n>(nvml: &'n Nvml, indices: &[u32]) -> Result<nvml_wrapper::EventSet<'n>, String> {
    let mut set = nvml.create_event_set().map_err(|e| format!("event set: {e}"))?;
    for &i in indices {
        let dev = nvml.device_by_index(i).map_err(|e| format!("GPU {i}: {e}"))?;
        set = dev.register_events(EventTypes::CRITICAL_XID_ERROR, set).map_err(|e| format!("GPU {i}: {}", e.error))?;
    }
    Ok(set)
}

/// Blocks in NVML's event wait for critical Xids on every GPU that reports them, recording
/// each in `log` by GPU UUID, until `stop`. Runs on a thread of its own with its own NVML
/// handle (NVML counts its initialisations), as an event set borrows the handle it came from.
fn watch_xids(library: PathBuf, log: Arc<Mutex<HashMap<String, XidLog>>>, stop: Arc<AtomicBool>) {
    let nvml = match Nvml::builder().lib_path(library.as_os_str()).init() {
        Ok(n) => n,
        Err(e) => return tracing::warn!("Xid errors are not watched: NVML from {}: {e}", library.display()),
    };
    let Ok(count) = nvml.device_count() else { return tracing::warn!("Xid errors are not watched: no device count") };
    let register = |indices: &[u32]| register_xid_events(&nvml, indices);
    // Each GPU on its own first (a failed registration frees the set), then all together.
    let mut watched = Vec::new();
    for i in 0..count {
        let supported = nvml.device_by_index(i).and_then(|d| d.supported_event_types()).is_ok_and(|t| t.contains(EventTypes::CRITICAL_XID_ERROR));
        match (supported, register(&[i])) {
            (true, Ok(_)) => watched.push(i),
            (true, Err(e)) => tracing::warn!("Xid errors of GPU {i} are not watched: {e}"),
            (false, _) => tracing::info!("GPU {i} does not report Xid events"),
        }
    }
    if watched.is_empty() {
        return;
    }
    let set = match register(&watched) {
        Ok(set) => set,
        Err(e) => return tracing::warn!("Xid errors are not watched: {e}"),
    };
    while !stop.load(Ordering::Relaxed) {
        match set.wait(XID_WAIT_MS) {
            Ok(event) => {
                let xid = match event.event_data {
                    Some(XidError::Value(x)) => x,
                    Some(XidError::Unknown) | None => continue,
                };
                match event.device.uuid() {
                    Ok(uuid) => log.lock().unwrap_or_else(|p| p.into_inner()).entry(uuid).or_default().record(xid),
                    Err(e) => tracing::warn!("Xid {xid} on a GPU whose UUID NVML cannot give ({e})"),
                }
            }
            Err(NvmlError::Timeout) => {}
            Err(e) => {
                // A lost GPU shows in its health reading; do not spin on the error.
                tracing::debug!("NVML event wait: {e}");
                std::thread::sleep(std::time::Duration::from_millis(XID_WAIT_MS as u64));
            }
        }
    }
}

impl NvidiaBackend {
    /// Loads NVML from `library` (`gpu.nvml_library`: a path, or a file name the dynamic loader
    /// searches for, by default `libnvidia-ml.so.1`); `Err` says why there are no NVIDIA GPUs
    /// here (no driver, no library), naming the library.
    pub fn load(mig: bool, library: &Path) -> Result<NvidiaBackend, String> {
        let nvml = Nvml::builder()
            .lib_path(library.as_os_str())
            .init()
            .map_err(|e| format!("NVML unavailable from {} ({e}): no NVIDIA GPUs will be offered", library.display()))?;
        // SAFETY: loading the same shared library Nvml's init just loaded (the loader hands back
        // the same instance); its symbols are only called with handles NVML gave us.
        let raw = match unsafe { nvml_wrapper_sys::bindings::NvmlLib::new(library.as_os_str()) } {
            Ok(raw) => Some(raw),
            Err(e) => {
                tracing::warn!("MIG instances will not be offered: {}: {e}", library.display());
                None
            }
        };
        let xids: Arc<Mutex<HashMap<String, XidLog>>> = Arc::default();
        let stop_watch = Arc::new(AtomicBool::new(false));
        let (log, stop, library) = (xids.clone(), stop_watch.clone(), library.to_path_buf());
        if let Err(e) = std::thread::Builder::new().name("tessera-xid".into()).spawn(move || watch_xids(library, log, stop)) {
            tracing::warn!("Xid errors are not watched: no thread ({e})");
        }
        Ok(NvidiaBackend { nvml, raw, mig, xids, parents: Mutex::default(), stop_watch })
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

/// The registry's constructor: NVML when `gpu.enabled` asks for it. With `auto`, a machine
/// without the driver runs without GPUs (said once); with `true` that is an error.
pub fn from_config(config: &crate::config::DaemonConfig) -> Result<Option<Box<dyn DeviceBackend>>, crate::error::ExecError> {
    use crate::config::GpuEnabled;
    match config.gpu.enabled {
        GpuEnabled::Off => Ok(None),
        enabled => match NvidiaBackend::load(config.gpu.mig, config.gpu.nvml_library()) {
            Ok(b) => Ok(Some(Box::new(b))),
            Err(why) if enabled == GpuEnabled::On => Err(crate::error::ExecError::Refused(format!("gpu.enabled = true, but {why}"))),
            Err(why) => {
                tracing::info!("{why}");
                eprintln!("tessera-exec: {why}");
                Ok(None)
            }
        },
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
            if children.is_empty() && self.mig && dev.mig_mode().is_ok_and(|m| m.current == 1) {
                // CUDA runs work on a GPU in MIG mode only inside its instances: offered whole,
                // it would be a device no job can use.
                tracing::warn!("GPU {i} ({uuid}) is in MIG mode but has no MIG instance: not offered until instances are created and the executor restarts");
                continue;
            }
            if children.is_empty() {
                out.push(Discovered { name: format!("gpu{i}"), uuid: Some(uuid), model: model_of(&name, mem_gib), cores: Vec::new(), node: None });
                continue;
            }
            for (j, mig) in children.iter().enumerate() {
                let mig_uuid = mig.uuid().map_err(|e| format!("NVML MIG {i}/{j} uuid: {e}"))?;
                self.parents.lock().unwrap_or_else(|p| p.into_inner()).insert(mig_uuid.clone(), uuid.clone());
                let mig_mem = mig.memory_info().map(|m| m.total as f64 / (1u64 << 30) as f64).ok();
                let base = catalogue_name(&name, mem_gib).map(str::to_string).unwrap_or_else(|| name.replace(' ', "-"));
                let mig_name = format!("{base}-MIG-{:.0}gb", mig_mem.unwrap_or(0.0));
                out.push(Discovered {
                    name: format!("gpu{i}-mig{j}"),
                    uuid: Some(mig_uuid),
                    model: ModelChoice::New(unknown_gpu_model(&mig_name, mig_mem)),
                    cores: Vec::new(),
                    node: None,
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
        // The Xids that arrived since the last poll, taken once per GPU and given to each of
        // its devices (a GPU's MIG instances share its Xids).
        let parents = self.parents.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut xids: HashMap<String, XidLog> = HashMap::new();
        {
            let mut log = self.xids.lock().unwrap_or_else(|p| p.into_inner());
            for (gpu, entry) in log.iter_mut() {
                xids.insert(gpu.clone(), XidLog { new: std::mem::take(&mut entry.new), seen: entry.seen.clone() });
            }
        }
        devices
            .iter()
            .map(|d| {
                let Some(uuid) = &d.uuid else { return Reading { error: Some("no UUID".into()), ..Reading::default() } };
                let gpu_xids = xids.get(parents.get(uuid).unwrap_or(uuid)).cloned().unwrap_or_default();
                let (xids_new, xids_seen) = (gpu_xids.new, gpu_xids.seen.into_iter().collect::<Vec<u64>>());
                let dev = match self.nvml.device_by_uuid(uuid.as_str()) {
                    Ok(dev) => dev,
                    Err(e) => return Reading { error: Some(format!("{uuid} not found: {e}")), xids_new, xids_seen, ..Reading::default() },
                };
                let mem = dev.memory_info().ok();
                // A MIG instance's temperature and ECC counters are its GPU's (NVML may not
                // answer them for the instance's handle): one die, one reading.
                let parent = || parents.get(uuid).and_then(|p| self.nvml.device_by_uuid(p.as_str()).ok());
                let temp = |d: &nvml_wrapper::Device| d.temperature(TemperatureSensor::Gpu).ok().map(f64::from);
                let ecc = |d: &nvml_wrapper::Device| d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile).ok();
                Reading {
                    mem_used_fraction: mem.as_ref().map(|m| m.used as f64 / m.total.max(1) as f64),
                    mem_used_mib: mem.as_ref().map(|m| m.used >> 20),
                    mem_total_mib: mem.as_ref().map(|m| m.total >> 20),
                    temp_c: temp(&dev).or_else(|| parent().as_ref().and_then(temp)),
                    utilization: dev.utilization_rates().ok().map(|u| u.gpu as f64 / 100.0),
                    ecc_uncorrected: ecc(&dev).or_else(|| parent().as_ref().and_then(ecc)),
                    load_per_core: None,
                    xids_new,
                    xids_seen,
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
    fn fatal_xids_cordon_and_others_are_only_journalled() {
        let fatal = crate::config::DEFAULT_FATAL_XIDS;
        for xid in [48, 64, 74, 79, 94, 95, 119, 120] {
            let v = xid_verdict(xid, fatal);
            assert!(v.cordon, "Xid {xid}: {v:?}");
            assert!(v.message.starts_with(&format!("Xid {xid} (")) && v.message.contains("needs a reset"), "{}", v.message);
        }
        for xid in [13, 31, 43, 45, 63, 92, 999] {
            let v = xid_verdict(xid, fatal);
            assert!(!v.cordon, "Xid {xid}: {v:?}");
            assert!(v.message.contains("stays in service"), "{}", v.message);
        }
        assert!(xid_verdict(79, fatal).message.contains("fallen off the bus"));
        assert!(xid_verdict(48, fatal).message.contains("double-bit ECC"));
        // The list is the configuration's: an operator can add an application Xid or drop one.
        assert!(xid_verdict(13, &[13]).cordon);
        assert!(!xid_verdict(79, &[]).cordon);
    }

    #[test]
    fn a_xid_log_keeps_order_and_distinct_codes_and_is_bounded() {
        let mut log = XidLog::default();
        for x in [79, 13, 79] {
            log.record(x);
        }
        assert_eq!(log.new, vec![79, 13, 79]);
        assert_eq!(log.seen.iter().copied().collect::<Vec<_>>(), vec![13, 79]);
        for _ in 0..1000 {
            log.record(31);
        }
        assert_eq!(log.new.len(), XID_NEW_KEPT);
        assert_eq!(log.seen.len(), 3);
    }

    #[test]
    fn without_a_driver_loading_says_why() {
        match NvidiaBackend::load(true, Path::new(crate::config::DEFAULT_NVML_LIBRARY)) {
            Ok(b) => println!("NVML present: {} GPUs", b.discover().map(|d| d.len()).unwrap_or(0)),
            Err(why) => assert!(why.contains("NVML unavailable from libnvidia-ml.so.1"), "{why}"),
        }
    }

    #[test]
    fn a_configured_library_that_is_not_there_is_named() {
        let missing = Path::new("/nonexistent/tessera-test/libnvidia-ml.so.1");
        match NvidiaBackend::load(true, missing) {
            Ok(_) => panic!("loaded NVML from {}, which does not exist", missing.display()),
            Err(why) => assert!(why.contains("NVML unavailable from /nonexistent/tessera-test/libnvidia-ml.so.1"), "expected the path in: {why}"),
        }
    }
}
