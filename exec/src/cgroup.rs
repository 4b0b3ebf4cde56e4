//! Each run of a job in a cgroup of its own, with the memory and CPU limits of its request.
//!
//! Why a cgroup and not only the process group: a job can leave its process group (`setsid`,
//! a daemonising tool), and then a signal to the group misses it. Every process the job starts
//! is born inside its cgroup and cannot leave it (moving out needs write access to another
//! cgroup's `cgroup.procs`, which only root has), so stopping the job kills the cgroup's
//! members until none is left.
//!
//! The job joins its cgroup in the forked child before `exec` (`process::spawn` writes the
//! child's pid into `cgroup.procs` files opened before the fork): moving it from the parent
//! after spawn would leave a window in which the job could fork, and on cgroup v1 a process
//! created before the move stays where it was born, outside the limits and out of reach.
//!
//! Layout: `<hierarchy>/tessera/<scope>/job-<id>-run-<n>`, where `<scope>` is a hash of the
//! state directory, so that several executors on one machine (and tests) never share a
//! cgroup, and an executor restarted on the same state directory finds the cgroups of the
//! jobs it adopts by name. cgroup v2 (the unified hierarchy, where
//! `/sys/fs/cgroup/cgroup.controllers` exists) is used when present, else the v1 `memory`,
//! `cpu`, `freezer` and `pids` hierarchies that are mounted.

use crate::error::ExecError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The root of the cgroup file systems.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// CFS period for CPU quotas (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;
/// The kernel's smallest CFS quota.
const CPU_MIN_QUOTA_US: u64 = 1_000;
/// How long a stop keeps killing a cgroup's members before it gives up (a process in
/// uninterruptible sleep cannot die until its I/O ends).
const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// `[daemon] cgroups`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupMode {
    /// Cgroups where the hierarchy is writable; process groups only otherwise (said at start).
    #[default]
    Auto,
    /// Process groups only.
    Off,
    /// Refuse to start where cgroups cannot be written.
    Required,
}

/// The limits of one run, from its request; 0 means none of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub mem_mib: u64,
    /// Thousandths of a core over the whole job, as `JobSubmission::cpu_milli`.
    pub cpu_milli: u32,
}

/// A v1 controller tessera uses: memory (limit, OOM count), cpu (CFS quota), freezer (a
/// stop freezes the cgroup so that nothing forks between reading its members and killing
/// them), pids (a member list where there is no freezer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Cpu,
    Freezer,
    Pids,
}

impl Controller {
    const ALL: [Controller; 4] = [Controller::Memory, Controller::Cpu, Controller::Freezer, Controller::Pids];

    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Freezer => "freezer",
            Controller::Pids => "pids",
        }
    }
}

/// Where this executor's job cgroups live, or why there are none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cgroups {
    /// `/sys/fs/cgroup/tessera/<scope>`, with the memory, cpu and pids controllers enabled
    /// for its children.
    V2 { scope: PathBuf },
    /// `<mount>/tessera/<scope>` in each v1 hierarchy found writable.
    V1 { scopes: Vec<(Controller, PathBuf)> },
    /// Jobs are process groups only.
    None { why: String },
}

/// One run's cgroup (one directory per v1 hierarchy, or one v2 directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCgroup {
    v2: bool,
    dirs: Vec<(Controller, PathBuf)>,
}

/// The scope of the executor whose state directory is `state_dir`.
pub fn scope_name(state_dir: &Path) -> String {
    let canonical = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let digest = Sha256::digest(std::os::unix::ffi::OsStrExt::as_bytes(canonical.as_os_str()));
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The mount points of the v1 hierarchies of `controllers`, from /proc/self/mounts.
fn v1_mounts() -> Vec<(Controller, PathBuf)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, mount, fstype, options, ..] = fields[..] else { continue };
        if fstype != "cgroup" {
            continue;
        }
        for c in Controller::ALL {
            if options.split(',').any(|o| o == c.name()) && !found.iter().any(|(f, _)| *f == c) {
                found.push((c, PathBuf::from(mount)));
            }
        }
    }
    found
}

fn write_file(path: &Path, value: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(value.as_bytes()).map_err(|e| format!("writing `{value}` to {}: {e}", path.display()))
}

fn mkdir(path: &Path) -> Result<(), String> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl Cgroups {
    /// Finds and prepares this executor's cgroup scope. `Auto` falls back to process groups
    /// (`Cgroups::None` with the reason) where cgroups cannot be written; `Required` refuses.
    pub fn detect(mode: CgroupMode, state_dir: &Path) -> Result<Cgroups, ExecError> {
        if mode == CgroupMode::Off {
            return Ok(Cgroups::None { why: "`[daemon] cgroups = \"off\"`".into() });
        }
        let scope = scope_name(state_dir);
        match Self::prepare(Path::new(CGROUP_ROOT), &scope) {
            Ok(c) => Ok(c),
            Err(why) if mode == CgroupMode::Required => {
                Err(ExecError::invalid("cgroups", format!("`cgroups = \"required\"`, but job cgroups cannot be created here: {why}")))
            }
            Err(why) => Ok(Cgroups::None { why }),
        }
    }

    fn prepare(root: &Path, scope: &str) -> Result<Cgroups, String> {
        if root.join("cgroup.controllers").exists() {
            // Controllers are handed down level by level; the top's may be refused where
            // this process is not allowed to change it, and then the children get none.
            let base = root.join("tessera");
            let dir = base.join(scope);
            mkdir(&base)?;
            mkdir(&dir)?;
            let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            for level in [root, base.as_path(), dir.as_path()] {
                for c in ["memory", "cpu", "pids"] {
                    if available.split_whitespace().any(|a| a == c) {
                        // One at a time: one missing controller must not keep the others off.
                        let _ = write_file(&level.join("cgroup.subtree_control"), &format!("+{c}"));
                    }
                }
            }
            let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if !enabled.split_whitespace().any(|c| c == "memory") {
                return Err(format!("the memory controller could not be enabled for {} (cgroup.subtree_control: `{}`)", dir.display(), enabled.trim()));
            }
            return Ok(Cgroups::V2 { scope: dir });
        }
        let mounts = v1_mounts();
        if mounts.is_empty() {
            return Err("no cgroup v2 hierarchy at /sys/fs/cgroup and no v1 memory, cpu, freezer or pids hierarchy mounted".into());
        }
        let mut scopes = Vec::new();
        let mut refused = Vec::new();
        for (c, mount) in mounts {
            let dir = mount.join("tessera").join(scope);
            match mkdir(&mount.join("tessera")).and_then(|_| mkdir(&dir)) {
                Ok(()) => scopes.push((c, dir)),
                Err(e) => refused.push(e),
            }
        }
        if !scopes.iter().any(|(c, _)| *c == Controller::Memory) {
            let why = if refused.is_empty() { "the v1 memory hierarchy is not mounted".to_string() } else { refused.join("; ") };
            return Err(format!("no writable v1 memory cgroup: {why}"));
        }
        Ok(Cgroups::V1 { scopes })
    }

    pub fn is_enabled(&self) -> bool {
        !matches!(self, Cgroups::None { .. })
    }

    /// For the start-up log and the journal.
    pub fn describe(&self) -> String {
        match self {
            Cgroups::V2 { scope } => format!("cgroup v2 under {}", scope.display()),
            Cgroups::V1 { scopes } => {
                let names: Vec<&str> = scopes.iter().map(|(c, _)| c.name()).collect();
                let dir = scopes.first().map(|(_, d)| d.display().to_string()).unwrap_or_default();
                format!("cgroup v1 ({}) under {dir}", names.join(", "))
            }
            Cgroups::None { why } => format!("no cgroups ({why}): jobs are process groups only; a process that leaves its job's group is not stopped with it, and memory and CPU requests are not enforced"),
        }
    }

    /// The runs (job, run) whose cgroups exist in this executor's scope.
    pub fn existing_runs(&self) -> Vec<(u64, u32)> {
        let dir = match self {
            Cgroups::V2 { scope } => scope,
            Cgroups::V1 { scopes } => match scopes.first() {
                Some((_, d)) => d,
                None => return Vec::new(),
            },
            Cgroups::None { .. } => return Vec::new(),
        };
        let mut runs = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("job-")) else { continue };
            let Some((job, run)) = rest.split_once("-run-") else { continue };
            if let (Ok(job), Ok(run)) = (job.parse(), run.parse()) {
                runs.push((job, run));
            }
        }
        runs.sort_unstable();
        runs
    }

    /// The cgroup of run `run` of job `job` (whether it exists or not); `None` without cgroups.
    pub fn job(&self, job: u64, run: u32) -> Option<JobCgroup> {
        let name = format!("job-{job}-run-{run}");
        match self {
            Cgroups::V2 { scope } => Some(JobCgroup { v2: true, dirs: vec![(Controller::Memory, scope.join(name))] }),
            Cgroups::V1 { scopes } => Some(JobCgroup { v2: false, dirs: scopes.iter().map(|(c, d)| (*c, d.join(&name))).collect() }),
            Cgroups::None { .. } => None,
        }
    }
}

impl JobCgroup {
    /// Creates the cgroup (a leftover of a failed start of the same run is reused) and
    /// writes its limits.
    pub fn create(&self, limits: Limits) -> Result<(), String> {
        for (_, dir) in &self.dirs {
            mkdir(dir)?;
        }
        let mem_bytes = limits.mem_mib.saturating_mul(1 << 20);
        // Below the kernel's smallest quota a request would be refused; it gets the smallest.
        let quota_us = (limits.cpu_milli as u64 * CPU_PERIOD_US / 1000).max(CPU_MIN_QUOTA_US);
        if self.v2 {
            let dir = &self.dirs[0].1;
            if limits.mem_mib > 0 {
                write_file(&dir.join("memory.max"), &mem_bytes.to_string())?;
                // The limit is on memory, not memory plus swap: past it the job is OOM-killed
                // instead of swapping the machine to a crawl.
                if dir.join("memory.swap.max").exists() {
                    write_file(&dir.join("memory.swap.max"), "0")?;
                }
            }
            if limits.cpu_milli > 0 {
                write_file(&dir.join("cpu.max"), &format!("{quota_us} {CPU_PERIOD_US}"))?;
            }
            return Ok(());
        }
        for (c, dir) in &self.dirs {
            match c {
                Controller::Memory if limits.mem_mib > 0 => {
                    write_file(&dir.join("memory.limit_in_bytes"), &mem_bytes.to_string())?;
                    // memory+swap no larger than memory: no swapping past the limit (written
                    // after it, since the kernel keeps memsw >= memory).
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write_file(&memsw, &mem_bytes.to_string())?;
                    }
                }
                Controller::Cpu if limits.cpu_milli > 0 => {
                    write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write_file(&dir.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process writes its pid into to join this cgroup.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.join("cgroup.procs")).collect()
    }

    /// The directory of the given controller (v2: the one directory).
    pub fn dir(&self, controller: Controller) -> Option<&Path> {
        if self.v2 {
            return self.dirs.first().map(|(_, d)| d.as_path());
        }
        self.dirs.iter().find(|(c, _)| *c == controller).map(|(_, d)| d.as_path())
    }

    pub fn exists(&self) -> bool {
        self.dirs.iter().any(|(_, d)| d.is_dir())
    }

    /// The processes in the cgroup (in every hierarchy: they agree unless someone moved one).
    pub fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = Vec::new();
        for (_, dir) in &self.dirs {
            let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    fn freeze(&self, frozen: bool) -> bool {
        if self.v2 {
            let file = self.dirs[0].1.join("cgroup.freeze");
            return file.exists() && write_file(&file, if frozen { "1" } else { "0" }).is_ok();
        }
        let Some(dir) = self.dir(Controller::Freezer) else { return false };
        if write_file(&dir.join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" }).is_err() {
            return false;
        }
        if frozen {
            // FREEZING until every member is frozen; a short wait, then kill regardless.
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(200) {
                if std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        true
    }

    /// SIGKILLs every member until none is left: v2 writes `cgroup.kill` where the kernel has
    /// it; otherwise the cgroup is frozen (so that nothing forks between reading the members
    /// and killing them), each member killed, the cgroup thawed (a frozen process dies only
    /// once thawed), and again while any is left. Returns how many processes were signalled.
    pub fn kill_all(&self) -> Result<usize, String> {
        let t0 = Instant::now();
        let mut signalled = 0;
        if self.v2 && self.dirs[0].1.join("cgroup.kill").exists() {
            let pids = self.pids();
            if !pids.is_empty() {
                signalled = pids.len();
                write_file(&self.dirs[0].1.join("cgroup.kill"), "1")?;
            }
        }
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(signalled);
            }
            if t0.elapsed() > KILL_DEADLINE {
                return Err(format!("processes {pids:?} are still in {} after {KILL_DEADLINE:?} of SIGKILL", self.dirs[0].1.display()));
            }
            let froze = self.freeze(true);
            for pid in self.pids() {
                // SAFETY: kill(2) on a pid; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                signalled += 1;
            }
            if froze {
                self.freeze(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// How many times the kernel's OOM killer killed a process of this cgroup (v1
    /// `memory.oom_control`, v2 `memory.events`: `oom_kill N`).
    pub fn oom_kills(&self) -> u64 {
        let file = match (self.v2, self.dir(Controller::Memory)) {
            (true, Some(d)) => d.join("memory.events"),
            (false, Some(d)) => d.join("memory.oom_control"),
            (_, None) => return 0,
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    /// Removes the (empty) cgroup; one already gone is not an error.
    pub fn remove(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        for (_, dir) in &self.dirs {
            match std::fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(format!("{}: {e}", dir.display())),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Writes `pid` in decimal to `fd` without allocating: called in the forked child before
/// exec, where only async-signal-safe calls are allowed.
pub(crate) fn write_pid(fd: libc::c_int, pid: libc::pid_t) -> std::io::Result<()> {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let mut n = pid.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &buf[i..];
    // SAFETY: write(2) from a live stack buffer of the given length.
    let written = unsafe { libc::write(fd, digits.as_ptr().cast(), digits.len()) };
    if written < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_stable_per_state_directory_and_differs_between_them() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        assert_eq!(scope_name(a.path()), scope_name(a.path()));
        assert_eq!(scope_name(a.path()).len(), 16);
        assert_ne!(scope_name(a.path()), scope_name(b.path()));
    }

    #[test]
    fn the_mode_parses_from_its_three_words() {
        #[derive(Deserialize)]
        struct T {
            cgroups: CgroupMode,
        }
        for (text, mode) in [("auto", CgroupMode::Auto), ("off", CgroupMode::Off), ("required", CgroupMode::Required)] {
            assert_eq!(toml::from_str::<T>(&format!("cgroups = '{text}'")).unwrap().cgroups, mode);
        }
        assert!(toml::from_str::<T>("cgroups = 'yes'").is_err());
    }

    #[test]
    fn off_is_process_groups_only_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cgroups::detect(CgroupMode::Off, dir.path()).unwrap();
        assert!(!c.is_enabled());
        assert!(c.describe().contains("process groups only"), "{}", c.describe());
        assert_eq!(c.job(1, 1), None);
    }

    #[test]
    fn a_pid_is_written_in_decimal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("procs");
        for pid in [0, 7, 42, 1_234_567, i32::MAX] {
            let f = std::fs::File::create(&path).unwrap();
            write_pid(std::os::fd::AsRawFd::as_raw_fd(&f), pid).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), pid.to_string());
        }
    }
}
