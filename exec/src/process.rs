//! The process supervisor's primitives: launching a job through a small shell wrapper in its
//! own session and process group, signalling the group, and watching processes that are ours
//! (children) or adopted after a restart (polled through /proc).
//!
//! Every run goes through the wrapper `/bin/sh -c WRAPPER`: it runs the warm-up commands,
//! then the job's command in the background, forwards SIGTERM to it, and writes the command's
//! exit status to `exit_file` (written to a temporary name, then renamed, so a reader sees
//! all of it or nothing). An executor restarted after a crash is no longer the parent of the
//! jobs it adopts and cannot wait for them; this file is how it learns how they ended.

use crate::cgroup::Limits;
use crate::isolation::RunAs;
use std::ffi::{CString, OsString};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WRAPPER: &str = r#"exit_file=$1; n=$2; shift 2
record() { printf '%s\n' "$1" > "$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"; }
i=0
while [ "$i" -lt "$n" ]; do
  /bin/sh -c "$1" || { st=$?; record "$st"; exit "$st"; }
  shift; i=$((i+1))
done
"$@" &
child=$!
trap 'signalled=1; kill -TERM "$child" 2>/dev/null' TERM
st=
while :; do
  signalled=0
  wait "$child"; r=$?
  if [ "$r" -eq 127 ] && [ -n "$st" ]; then break; fi
  st=$r
  [ "$signalled" = 1 ] || break
done
record "$st"
exit "$st"
"#;

/// Everything needed to start one run of a job.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    pub program: String,
    pub args: Vec<String>,
    /// Added to the daemon's environment, or the whole environment with `env_clear`.
    pub env: Vec<(String, String)>,
    /// Start from an empty environment instead of the daemon's.
    pub env_clear: bool,
    /// Run as this user: its uid, its primary gid, no supplementary group (needs root). The
    /// output files are created for it, and the working directory is entered as it.
    pub user: Option<RunAs>,
    /// Memory and CPU limits for the run's cgroup (where the host gives it one).
    pub limits: Limits,
    /// `cgroup.procs` files the child joins before exec (filled in by the host).
    pub cgroup_procs: Vec<PathBuf>,
    pub workdir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub exit_file: PathBuf,
    pub cpus: Option<Vec<usize>>,
    pub warmup: Vec<String>,
}

/// A started run.
#[derive(Debug)]
pub struct Launched {
    pub pid: i32,
    /// The process group (= pid: the wrapper leads its own session).
    pub pgid: i32,
    /// Start time in clock ticks since boot (/proc/<pid>/stat field 22): with the pid it
    /// names the process uniquely, so a reused pid is never mistaken for the job.
    pub start_ticks: u64,
    pub child: tokio::process::Child,
}

/// Finds `program` the way exec would (in `PATH` unless it has a `/`), so a job whose
/// command does not exist fails to start instead of running a shell that exits 127.
pub fn resolve_program(program: &str, path_env: Option<&str>, workdir: &Path) -> Result<PathBuf, String> {
    let executable = |p: &Path| {
        std::fs::metadata(p).map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0).unwrap_or(false)
    };
    if program.contains('/') {
        let p = if Path::new(program).is_absolute() { PathBuf::from(program) } else { workdir.join(program) };
        return if executable(&p) { Ok(p) } else { Err(format!("`{program}` is not an executable file")) };
    }
    let path = path_env.map(str::to_string).or_else(|| std::env::var("PATH").ok()).unwrap_or_else(|| "/usr/bin:/bin".into());
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(program);
        if executable(&p) {
            return Ok(p);
        }
    }
    Err(format!("`{program}` not found in PATH ({path})"))
}

/// Opens (appending) an output file the daemon hands the job: never through a link and only a
/// regular file (the job's user owns the directory and could plant a link to a file of the
/// daemon's, or a FIFO that would block it), created 0600 and given to `owner`.
fn open_output(path: &Path, owner: Option<&RunAs>) -> Result<std::fs::File, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if let Some(u) = owner {
        std::os::unix::fs::fchown(&file, Some(u.uid), Some(u.gid)).map_err(|e| format!("{}: chown to `{}`: {e}", path.display(), u.user))?;
    }
    Ok(file)
}

/// Starts a run: checks the program and working directory, then spawns the wrapper in a
/// new session, with the CPU affinity applied, the run's cgroup joined and the job's user
/// taken on before exec.
pub fn spawn(spec: &LaunchSpec) -> Result<Launched, String> {
    if !spec.workdir.is_dir() {
        return Err(format!("working directory {} does not exist", spec.workdir.display()));
    }
    let path_env = spec.env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
    resolve_program(&spec.program, path_env, &spec.workdir)?;
    let stdout = open_output(&spec.stdout, spec.user.as_ref())?;
    let stderr = open_output(&spec.stderr, spec.user.as_ref())?;
    let _ = std::fs::remove_file(&spec.exit_file);
    // Opened here, written in the child: the child must not allocate or open by path there.
    let cgroup_files = spec
        .cgroup_procs
        .iter()
        .map(|p| std::fs::OpenOptions::new().write(true).open(p).map_err(|e| format!("joining cgroup: {}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    let cgroup_fds: Vec<libc::c_int> = cgroup_files.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(WRAPPER).arg("tessera-job").arg(&spec.exit_file).arg(spec.warmup.len().to_string());
    cmd.args(&spec.warmup).arg(&spec.program).args(&spec.args);
    if spec.env_clear {
        cmd.env_clear();
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(std::process::Stdio::null()).stdout(stdout).stderr(stderr);
    // As another user the working directory is entered after the switch (below), so that the
    // job cannot start in a directory its user could not enter.
    let ids = spec.user.as_ref().map(|u| (u.uid, u.gid));
    let workdir = match ids {
        Some(_) => Some(CString::new(spec.workdir.as_os_str().as_bytes()).map_err(|_| "the working directory has a NUL byte".to_string())?),
        None => {
            cmd.current_dir(&spec.workdir);
            None
        }
    };
    let cpus = spec.cpus.clone();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setsid, sched_setaffinity, getpid, write, setgroups,
    // setgid, setuid, chdir) on data prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(cpus) = &cpus {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for &c in cpus {
                    libc::CPU_SET(c, &mut set);
                }
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Before exec, so that everything the job starts is born inside its cgroup.
            let pid = libc::getpid();
            for &fd in &cgroup_fds {
                crate::cgroup::write_pid(fd, pid)?;
            }
            if let Some((uid, gid)) = ids {
                // Groups first: once the uid is dropped they can no longer be changed.
                if libc::setgroups(1, &gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(dir) = &workdir {
                if libc::chdir(dir.as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    drop(cgroup_files);
    let pid = child.id().ok_or("the process exited before its pid was read")? as i32;
    let start_ticks = proc_stat(pid).map(|s| s.start_ticks).unwrap_or(0);
    Ok(Launched { pid, pgid: pid, start_ticks, child })
}

/// What /proc/<pid>/stat says that matters here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub pgid: i32,
    pub start_ticks: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: parse after the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); pgid is field 5, starttime field 22.
    Some(ProcStat { state: fields.first()?.chars().next()?, pgid: fields.get(2)?.parse().ok()?, start_ticks: fields.get(19)?.parse().ok()? })
}

/// Whether the process that started at `start_ticks` with this pid still runs (a zombie
/// has ended).
pub fn is_alive(pid: i32, start_ticks: u64) -> bool {
    matches!(proc_stat(pid), Some(s) if s.start_ticks == start_ticks && s.state != 'Z' && s.state != 'X')
}

/// The group leader whose environment carries `TESSERA_RUN_TOKEN=token`: finds a run whose
/// pid was never journalled (the executor died between spawning it and recording it).
pub fn find_by_token(token: &str) -> Option<(i32, u64)> {
    let needle: Vec<u8> = format!("TESSERA_RUN_TOKEN={token}").into_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else { continue };
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_slice()) {
            if let Some(stat) = proc_stat(pid) {
                if stat.pgid == pid && stat.state != 'Z' {
                    return Some((pid, stat.start_ticks));
                }
            }
        }
    }
    None
}

/// Sends `signal` to a whole process group; a group already gone is not an error.
pub fn signal_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// The exit status the wrapper recorded, if it finished. Read without following a link and
/// only from a regular file: the job's user owns the directory, and a FIFO there would block
/// the daemon.
pub fn read_exit_status(path: &Path) -> Option<i32> {
    use std::io::Read;
    let mut file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.by_ref().take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Waits until an adopted process (not our child) has ended, polling /proc.
pub async fn wait_adopted(pid: i32, start_ticks: u64, poll: Duration) {
    while is_alive(pid, start_ticks) {
        tokio::time::sleep(poll).await;
    }
}

/// Path helper for environment values.
pub fn os(p: &Path) -> String {
    String::from_utf8_lossy(OsString::from(p).as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, program: &str, args: &[&str]) -> LaunchSpec {
        LaunchSpec {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("TESSERA_RUN_TOKEN".into(), format!("test-{}", std::process::id()))],
            env_clear: false,
            user: None,
            limits: Limits::default(),
            cgroup_procs: Vec::new(),
            workdir: dir.to_path_buf(),
            stdout: dir.join("out"),
            stderr: dir.join("err"),
            exit_file: dir.join("exit"),
            cpus: None,
            warmup: vec![],
        }
    }

    #[tokio::test]
    async fn the_wrapper_records_the_exit_status_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "sh", &["-c", "echo hello; echo oops >&2; exit 7"]);
        s.warmup = vec!["echo warm".into()];
        let mut l = spawn(&s).unwrap();
        assert_eq!(proc_stat(l.pid).unwrap().pgid, l.pid, "the job leads its own group");
        l.child.wait().await.unwrap();
        assert_eq!(read_exit_status(&s.exit_file), Some(7));
        assert_eq!(std::fs::read_to_string(dir.path().join("out")).unwrap(), "warm\nhello\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("err")).unwrap(), "oops\n");
    }

    #[tokio::test]
    async fn a_failing_warmup_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "sh", &["-c", "echo ran"]);
        s.warmup = vec!["exit 3".into()];
        let mut l = spawn(&s).unwrap();
        l.child.wait().await.unwrap();
        assert_eq!(read_exit_status(&s.exit_file), Some(3));
        assert_eq!(std::fs::read_to_string(dir.path().join("out")).unwrap(), "");
    }

    #[tokio::test]
    async fn sigterm_to_the_group_reaches_the_job_and_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "sh", &["-c", "trap 'echo got-term; exit 5' TERM; while :; do sleep 0.05; done"]);
        let mut l = spawn(&s).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        signal_group(l.pgid, libc::SIGTERM);
        l.child.wait().await.unwrap();
        assert_eq!(read_exit_status(&s.exit_file), Some(5));
        assert!(std::fs::read_to_string(dir.path().join("out")).unwrap().contains("got-term"));
    }

    #[tokio::test]
    async fn a_missing_program_or_workdir_fails_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let e = spawn(&spec(dir.path(), "no-such-program-tessera", &[])).unwrap_err();
        assert!(e.contains("not found in PATH"), "{e}");
        let mut s = spec(dir.path(), "true", &[]);
        s.workdir = dir.path().join("missing");
        assert!(spawn(&s).unwrap_err().contains("does not exist"));
    }

    #[tokio::test]
    async fn affinity_pins_the_job_and_the_token_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let core = crate::devices::cpu::allowed_cores()[0];
        let mut s = spec(dir.path(), "sh", &["-c", "grep Cpus_allowed_list /proc/self/status; sleep 1"]);
        s.cpus = Some(vec![core]);
        s.env = vec![("TESSERA_RUN_TOKEN".into(), format!("affinity-{}", std::process::id()))];
        let mut l = spawn(&s).unwrap();
        let found = find_by_token(&format!("affinity-{}", std::process::id()));
        assert_eq!(found, Some((l.pid, l.start_ticks)));
        assert!(is_alive(l.pid, l.start_ticks));
        assert!(!is_alive(l.pid, l.start_ticks + 1), "another start time is another process");
        l.child.wait().await.unwrap();
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert_eq!(out.trim(), format!("Cpus_allowed_list:\t{core}"));
    }
}
