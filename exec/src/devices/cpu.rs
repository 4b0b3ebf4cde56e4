//! CPU devices: groups of `cores_per_device` online cores, taken from the process's allowed
//! CPU set (so a daemon started under `taskset` or a cgroup offers only what it may use).
//! A job is pinned to its cores with `sched_setaffinity` before exec.

use super::{Binding, DeviceBackend, Discovered, ModelChoice, Reading};
use tessera_core::{DeviceKind, DeviceModel};

/// The catalogue model CPU devices get unless the configuration names another.
pub const CPU_CORE_MODEL: &str = "cpu-core";

pub struct CpuBackend {
    /// Cores per device.
    pub cores_per_device: usize,
    /// At most this many devices; `None`: all.
    pub max_devices: Option<usize>,
    /// A catalogue name to use instead of `cpu-core`.
    pub model: Option<String>,
}

/// The cores this process may run on, from `sched_getaffinity`.
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            return (0..n).collect();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// The catalogue entry for a CPU core group: kind CPU, no figures (tessera does not guess).
pub fn cpu_core_model() -> DeviceModel {
    DeviceModel {
        name: CPU_CORE_MODEL.into(),
        kind: DeviceKind::Cpu,
        mem_gib: None,
        fp16_tflops: None,
        fp32_tflops: None,
        mem_bw_gbps: None,
        undisclosed: false,
    }
}

/// Node memory from /proc/meminfo: (total MiB, available MiB).
pub fn meminfo_mib() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()).map(|kib| kib / 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// One-minute load average from /proc/loadavg.
pub fn loadavg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// The registry's constructor: `cpu.devices` core groups (none when it is 0).
pub fn from_config(config: &crate::config::DaemonConfig) -> Result<Option<Box<dyn DeviceBackend>>, crate::error::ExecError> {
    let max_devices = match config.cpu.devices {
        crate::config::CpuDevices::All => None,
        crate::config::CpuDevices::Count(n) => Some(n as usize),
    };
    if max_devices == Some(0) {
        return Ok(None);
    }
    Ok(Some(Box::new(CpuBackend { cores_per_device: config.cpu.cores_per_device as usize, max_devices, model: config.cpu.model.clone() })))
}

impl DeviceBackend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn discover(&self) -> Result<Vec<Discovered>, String> {
        let cores = allowed_cores();
        if cores.is_empty() {
            return Err("no CPU core is allowed to this process".into());
        }
        let model = match &self.model {
            Some(m) => ModelChoice::Known(m.clone()),
            None => ModelChoice::New(cpu_core_model()),
        };
        let per = self.cores_per_device.max(1);
        let mut devices: Vec<Discovered> = cores
            .chunks_exact(per)
            .enumerate()
            .map(|(i, c)| Discovered { name: format!("cpu{i}"), uuid: None, model: model.clone(), cores: c.to_vec(), node: None })
            .collect();
        if devices.is_empty() {
            return Err(format!("{} allowed cores make no device of {per} cores", cores.len()));
        }
        if let Some(max) = self.max_devices {
            if max > devices.len() {
                return Err(format!("{max} CPU devices asked, but {} cores make only {} devices of {per}", cores.len(), devices.len()));
            }
            devices.truncate(max);
        }
        Ok(devices)
    }

    fn bind(&self, devices: &[&Discovered]) -> Binding {
        let cpus: Vec<usize> = devices.iter().flat_map(|d| d.cores.iter().copied()).collect();
        Binding { env: Vec::new(), cpus: if cpus.is_empty() { None } else { Some(cpus) } }
    }

    fn health(&self, devices: &[&Discovered]) -> Vec<Reading> {
        let mem = meminfo_mib();
        let cores = allowed_cores().len().max(1);
        let load = loadavg_1m().map(|l| l / cores as f64);
        let reading = match mem {
            Some((total, avail)) => Reading {
                mem_used_fraction: Some(1.0 - avail as f64 / total.max(1) as f64),
                mem_used_mib: Some(total.saturating_sub(avail)),
                mem_total_mib: Some(total),
                load_per_core: load,
                ..Reading::default()
            },
            None => Reading { error: Some("/proc/meminfo unreadable".into()), ..Reading::default() },
        };
        devices.iter().map(|_| reading.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_the_allowed_cores_and_pins_to_them() {
        let all = allowed_cores();
        assert!(!all.is_empty());
        let b = CpuBackend { cores_per_device: 1, max_devices: None, model: None };
        let d = b.discover().unwrap();
        assert_eq!(d.len(), all.len());
        assert_eq!(d[0].cores, vec![all[0]]);
        let bound = b.bind(&[&d[0]]);
        assert_eq!(bound.cpus, Some(vec![all[0]]));
        let too_many = CpuBackend { cores_per_device: 1, max_devices: Some(all.len() + 1), model: None };
        assert!(too_many.discover().unwrap_err().contains("asked"));
        let r = b.health(&[&d[0]]);
        let used = r[0].mem_used_fraction.unwrap();
        assert!((0.0..=1.0).contains(&used), "{used}");
        assert!(r[0].load_per_core.unwrap() >= 0.0);
    }
}
