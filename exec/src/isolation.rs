//! Tenants isolated from each other by Unix users, as Slurm does: each tenant's jobs run as the
//! tenant's `run_as` user, and the state directory keeps them out of the journal and of each
//! other's files.
//!
//! A job started for a `run_as` tenant by a daemon running as root gets the user's uid and
//! primary gid and no supplementary groups at all (`setgroups` to the primary gid alone),
//! not `initgroups`: the groups `/etc/group` lists for a role account (`docker`, `disk`,
//! `video`...) can be worth root, and which ones a job holds would then depend on a file
//! outside the executor's configuration. Its environment is cleaned of the daemon's own
//! variables: it is [`job_base_env`] (PATH, HOME, USER, LOGNAME, SHELL, LANG when the daemon
//! has one), then the job's own `env`, then what the executor sets (`TESSERA_*`,
//! `CUDA_VISIBLE_DEVICES`).
//!
//! Files: the state directory, `jobs/` and `checkpoints/` belong to the daemon, mode 0700, or
//! 0711 when jobs run as other users (they may pass through to their own directory, not list
//! or read anything); the journal and its WAL are 0600. Each job's `jobs/<id>` and
//! `checkpoints/<id>` belong to the job's user, mode 0700.

use crate::config::DaemonConfig;
use crate::error::ExecError;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The PATH of a job that runs as a tenant's user, unless its own `env` sets one.
pub const JOB_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A Unix user jobs run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    /// The primary group; the job's only group.
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// The daemon's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The passwd entry of `name` (`getpwnam_r`); `Ok(None)` when there is no such user.
pub fn lookup_user(name: &str) -> Result<Option<RunAs>, String> {
    let cname = CString::new(name).map_err(|_| format!("`{name}` has a NUL byte"))?;
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: `pwd` is written by getpwnam_r; `result` points to it (or is null) and the
        // strings it holds point into `buf`, which outlives their use below.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 {
            return Err(format!("looking up user `{name}`: {}", std::io::Error::from_raw_os_error(rc)));
        }
        if result.is_null() {
            return Ok(None);
        }
        let text = |p: *const libc::c_char| if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() };
        return Ok(Some(RunAs { user: name.to_string(), uid: pwd.pw_uid, gid: pwd.pw_gid, home: text(pwd.pw_dir), shell: text(pwd.pw_shell) }));
    }
}

/// The name of `uid`, for messages.
fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: as in `lookup_user`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        return unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned();
    }
    format!("uid {uid}")
}

/// How this executor's jobs are isolated.
#[derive(Clone, Debug, Default)]
pub struct Isolation {
    /// The user each `run_as` tenant's jobs run as, by tenant name.
    pub run_as: BTreeMap<String, RunAs>,
    /// Switch to the `run_as` user at spawn (the daemon is root); otherwise `run_as` is the
    /// daemon's own user and only the environment is cleaned.
    pub switch_user: bool,
    /// What start-up warns about (`single_user`, no cgroups), also journalled.
    pub warnings: Vec<String>,
    /// The job cgroups, described (`Cgroups::describe`).
    pub cgroups: String,
}

impl Isolation {
    /// The user a job of `tenant` runs as, if its tenant has one.
    pub fn user_of(&self, tenant: &str) -> Option<&RunAs> {
        self.run_as.get(tenant)
    }

    /// Some job runs as a user other than the daemon's.
    pub fn other_users(&self) -> bool {
        self.switch_user && self.run_as.values().any(|u| u.uid != effective_uid())
    }
}

/// Resolves the tenants' `run_as` users for a daemon running as `daemon_uid`, and checks that
/// the tenants are isolated from each other: with two tenants or more, each must run as its
/// own user, none as root, unless `single_user` acknowledges that they are not (a warning).
pub fn resolve(config: &DaemonConfig, daemon_uid: u32) -> Result<Isolation, ExecError> {
    let mut iso = Isolation { switch_user: daemon_uid == 0, ..Isolation::default() };
    for (i, t) in config.tenants.iter().enumerate() {
        let Some(user) = &t.run_as else { continue };
        let key = format!("tenants[{i}].run_as");
        let found = lookup_user(user).map_err(|e| ExecError::invalid(key.as_str(), format!("tenant `{}`: {e}", t.name)))?;
        let found = found.ok_or_else(|| ExecError::invalid(key.as_str(), format!("tenant `{}` runs as user `{user}`, which does not exist on this machine", t.name)))?;
        if daemon_uid != 0 && found.uid != daemon_uid {
            return Err(ExecError::invalid(
                key,
                format!(
                    "tenant `{}` runs as user `{user}`, but the daemon runs as `{}`, not root: only root can start a job as another user (run the daemon as root, or leave `run_as` out)",
                    t.name,
                    user_name(daemon_uid)
                ),
            ));
        }
        iso.run_as.insert(t.name.clone(), found);
    }
    if config.tenants.len() >= 2 {
        // Tenants by the uid their jobs would run as.
        let mut by_uid: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for t in &config.tenants {
            let uid = iso.run_as.get(&t.name).map_or(daemon_uid, |u| u.uid);
            by_uid.entry(uid).or_default().push(&t.name);
        }
        let mut shared: Vec<String> = Vec::new();
        for (uid, tenants) in &by_uid {
            let quoted = tenants.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
            if tenants.len() > 1 {
                shared.push(format!("tenants {quoted} would all run as `{}`", user_name(*uid)));
            } else if *uid == 0 {
                shared.push(format!("tenant {quoted} would run as root, which can signal and read every job"));
            }
        }
        if !shared.is_empty() {
            if !config.single_user {
                return Err(ExecError::invalid(
                    "tenants",
                    format!(
                        "{}: their jobs could signal each other and read each other's output. Give each tenant its own `run_as = \"<unix user>\"` (with the daemon running as root), or set `[daemon] single_user = true` to run them as one user knowingly",
                        shared.join("; ")
                    ),
                ));
            }
            iso.warnings.push(format!("single_user = true: {}; tenants are not isolated from each other", shared.join("; ")));
        }
    }
    Ok(iso)
}

/// Creates the state directory and its `jobs/` and `checkpoints/` if needed and sets their
/// modes: 0700, or 0711 where jobs run as other users (who must pass through to their own
/// directories); the journal and its WAL and shared-memory files 0600. A state directory that
/// belongs to another user is refused: whoever owns it can swap the journal.
pub fn secure_state_dir(state_dir: &Path, journal: &Path, other_users: bool) -> Result<(), ExecError> {
    let io = |p: &Path, e: std::io::Error| ExecError::invalid("state_dir", format!("{}: {e}", p.display()));
    std::fs::create_dir_all(state_dir).map_err(|e| io(state_dir, e))?;
    let uid = effective_uid();
    let owner = std::fs::metadata(state_dir).map_err(|e| io(state_dir, e))?.uid();
    if owner != uid {
        return Err(ExecError::invalid("state_dir", format!("{} belongs to `{}`, not to the daemon's user `{}`", state_dir.display(), user_name(owner), user_name(uid))));
    }
    let dir_mode = if other_users { 0o711 } else { 0o700 };
    for dir in [state_dir.to_path_buf(), state_dir.join("jobs"), state_dir.join("checkpoints")] {
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode)).map_err(|e| io(&dir, e))?;
    }
    // Created 0600 before SQLite opens it: SQLite gives the WAL and shared-memory files the
    // database file's mode, so none of them is ever readable by others, not even briefly.
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(journal).map_err(|e| io(journal, e))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = journal.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

/// Whether `user` can pass through every directory above `path` (owner, group or other
/// execute bit, with the primary group only, as its jobs run): otherwise its jobs could not
/// reach their own directories. ACLs are not read.
pub fn check_reachable(path: &Path, user: &RunAs) -> Result<(), String> {
    let canonical = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for dir in canonical.ancestors() {
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mode = meta.mode();
        let can = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can && user.uid != 0 {
            return Err(format!("user `{}` cannot pass through {} (mode {:o}), so its jobs could not reach their directories under {}", user.user, dir.display(), mode & 0o7777, path.display()));
        }
    }
    Ok(())
}

/// Creates a job's directory (output or checkpoints) for its user: owned by it, mode 0700.
pub fn prepare_job_dir(dir: &Path, owner: Option<&RunAs>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some(u) = owner {
        // lchown: never follows a link (the directory is created here, under a directory
        // only the daemon can write, but that costs nothing to keep true).
        std::os::unix::fs::lchown(dir, Some(u.uid), Some(u.gid))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The environment a `run_as` job starts from, before its own `env` and the executor's
/// variables: PATH ([`JOB_PATH`]), HOME, USER, LOGNAME and SHELL of its user, LANG when the
/// daemon has one.
pub fn job_base_env(user: &RunAs) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), JOB_PATH.to_string()),
        ("HOME".to_string(), user.home.clone()),
        ("USER".to_string(), user.user.clone()),
        ("LOGNAME".to_string(), user.user.clone()),
        ("SHELL".to_string(), user.shell.clone()),
    ];
    if let Ok(lang) = std::env::var("LANG") {
        env.push(("LANG".to_string(), lang));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TenantEntry;

    fn config(tenants: &[(&str, Option<&str>)], single_user: bool) -> DaemonConfig {
        let mut c = DaemonConfig::new("/nonexistent");
        c.tenants = tenants.iter().map(|(n, u)| TenantEntry { name: n.to_string(), run_as: u.map(str::to_string) }).collect();
        c.single_user = single_user;
        c
    }

    fn message(r: Result<Isolation, ExecError>) -> (String, String) {
        match r {
            Err(ExecError::Invalid { field, message }) => (field, message),
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn root_is_found_and_a_missing_user_is_an_error_naming_tenant_and_user() {
        let root = lookup_user("root").unwrap().expect("every Unix machine has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_user("tsr-no-such-user-9").unwrap(), None);
        let (field, m) = message(resolve(&config(&[("team-a", Some("tsr-no-such-user-9"))], false), 0));
        assert_eq!(field, "tenants[0].run_as");
        assert!(m.contains("`team-a`") && m.contains("`tsr-no-such-user-9`") && m.contains("does not exist"), "{m}");
    }

    #[test]
    fn a_daemon_that_is_not_root_cannot_run_as_another_user_but_may_name_its_own() {
        // `root` is another user for a daemon running as uid 4242.
        let (field, m) = message(resolve(&config(&[("team-a", Some("root"))], false), 4242));
        assert_eq!(field, "tenants[0].run_as");
        assert!(m.contains("not root") && m.contains("`team-a`") && m.contains("`root`"), "{m}");
        let own = resolve(&config(&[("team-a", Some("root"))], false), 0).unwrap();
        assert_eq!(own.user_of("team-a").map(|u| u.uid), Some(0));
    }

    #[test]
    fn several_tenants_sharing_a_user_are_refused_unless_single_user() {
        let (field, m) = message(resolve(&config(&[("team-a", None), ("team-b", None)], false), 4242));
        assert_eq!(field, "tenants");
        assert!(m.contains("`team-a`, `team-b`") && m.contains("single_user = true") && m.contains("run_as"), "{m}");
        // As root, even one tenant left to the daemon's user would be root.
        let (_, m) = message(resolve(&config(&[("team-a", None), ("team-b", None)], false), 0));
        assert!(m.contains("would all run as `root`"), "{m}");
        let iso = resolve(&config(&[("team-a", None), ("team-b", None)], true), 4242).unwrap();
        assert_eq!(iso.warnings.len(), 1);
        assert!(iso.warnings[0].contains("single_user = true") && iso.warnings[0].contains("not isolated"), "{:?}", iso.warnings);
        // One tenant, or none, needs nothing.
        assert!(resolve(&config(&[("team-a", None)], false), 0).unwrap().warnings.is_empty());
        assert!(resolve(&config(&[], false), 0).unwrap().warnings.is_empty());
    }

    #[test]
    fn the_base_environment_is_the_users() {
        let root = lookup_user("root").unwrap().unwrap();
        let env = job_base_env(&root);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some(JOB_PATH));
        assert_eq!(get("USER"), Some("root"));
        assert_eq!(get("HOME"), Some(root.home.as_str()));
        assert!(env.iter().all(|(k, _)| ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG"].contains(&k.as_str())), "{env:?}");
    }

    #[test]
    fn the_state_directory_and_journal_are_the_daemons_alone() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let journal = state.join("journal.sqlite");
        secure_state_dir(&state, &journal, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("jobs")), 0o700);
        assert_eq!(mode(&journal), 0o600);
        secure_state_dir(&state, &journal, true).unwrap();
        assert_eq!(mode(&state), 0o711);
        assert_eq!(mode(&state.join("checkpoints")), 0o711);
        assert_eq!(mode(&journal), 0o600);
    }
}
