//! Operations on an existing container: start, kill, delete, pause/resume, update, ps. Each loads
//! the state, derives the live status, checks the operation is allowed in it, and acts.

use std::path::Path;

use crate::error::{Context, Error, Result};
use crate::state::{self, ContainerState, Status};

/// Opens the start gate; runs poststart hooks (failures are warnings, per the spec).
pub fn start(root: &Path, id: &str) -> Result<()> {
    let st = ContainerState::load(root, id)?;
    match st.status(root) {
        Status::Created => {}
        s => crate::bail!("container {id:?} cannot be started: it is {s}"),
    }
    let fifo = st.dir(root).join(state::EXEC_FIFO);
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| Error::msg(format!("container {id:?}: its init is gone ({e})")))?;
    open_gate(root, &st, f)
}

/// `start` for a container this process has just created (`run`, the engine): through the gate
/// `create` kept open, without reading `state.json` back or checking the status.
pub fn start_created(root: &Path, created: crate::create::Created) -> Result<ContainerState> {
    let crate::create::Created { state, gate, .. } = created;
    // The gate is read-write, so a write to it cannot tell that the init is gone (an OOM kill or
    // a stray signal since `Ready`): ask, as `start`'s open of a fifo without readers would.
    if !state.init_alive() {
        crate::bail!("container {:?}: its init is gone", state.id);
    }
    open_gate(root, &state, std::fs::File::from(gate))?;
    Ok(state)
}

/// Removes `exec.fifo` (the container now reads as running) and writes the byte the init waits
/// for; then the poststart hooks.
fn open_gate(root: &Path, st: &ContainerState, mut f: std::fs::File) -> Result<()> {
    let id = &st.id;
    let fifo = st.dir(root).join(state::EXEC_FIFO);
    std::fs::remove_file(&fifo).with_ctx(|| format!("remove {}", fifo.display()))?;
    use std::io::Write;
    f.write_all(b"0")
        .with_ctx(|| format!("container {id:?}: open start gate"))?;
    drop(f);
    if let Some(h) = st.config.hooks() {
        if h.poststart().as_ref().is_some_and(|v| !v.is_empty()) {
            wait_for_exec(st);
        }
        let json = serde_json::to_vec(&st.to_oci_json(Status::Running)).ctx("state json")?;
        if let Err(e) = crate::create::run_hooks("poststart", h.poststart(), &json) {
            crate::warn(&format!("berth-runtime: warning: {e}"));
        }
    }
    Ok(())
}

/// poststart hooks run after the user's process is executed: wait until the init is no longer the
/// runtime binary (or gone), for at most five seconds.
fn wait_for_exec(st: &ContainerState) {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata("/proc/self/exe") else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline && st.init_alive() {
        match std::fs::metadata(format!("/proc/{}/exe", st.pid)) {
            Ok(m) if m.ino() == me.ino() && m.dev() == me.dev() => {}
            _ => return,
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let st = ContainerState::load(root, id)?;
    let status = st.status(root);
    if status == Status::Stopped && !all {
        crate::bail!("container {id:?} is not running");
    }
    if all {
        if let Some(cg) = &st.cgroup {
            cg.kill_all(sig)?;
            return Ok(());
        }
    }
    // SAFETY: kill(2) on a pid we verified is our init (same start time).
    if unsafe { libc::kill(st.pid, sig) } != 0 {
        return Err(Error::msg(format!(
            "container {id:?}: kill: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Removes a stopped container (or, with force, kills it first): processes, cgroup, state, then poststop hooks.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    crate::id::validate(id)?;
    let st = match ContainerState::load(root, id) {
        Ok(s) => s,
        Err(e) => {
            let dir = state::container_dir(root, id);
            if dir.exists() {
                // Half-made (create was killed): nothing to run hooks for, just remove it.
                std::fs::remove_dir_all(&dir).with_ctx(|| dir.display().to_string())?;
                return Ok(());
            }
            if force {
                return Ok(());
            }
            return Err(e);
        }
    };
    let status = st.status(root);
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&st)?,
        s if force => {
            if s == Status::Paused {
                if let Some(cg) = &st.cgroup {
                    let _ = cg.thaw();
                }
            }
            kill_and_wait(&st)?
        }
        s => crate::bail!("container {id:?} cannot be deleted: it is {s} (use --force)"),
    }
    destroy(root, &st)
}

fn kill_and_wait(st: &ContainerState) -> Result<()> {
    if let Some(cg) = st.cgroup.as_ref().filter(|cg| !cg.preexisted()) {
        if cg.procs().is_ok_and(|p| p.len() > 1) {
            let _ = cg.kill_all(libc::SIGKILL);
        }
    }
    // A pidfd taken before the signal is readable the moment the init exits (no polling sleep).
    // SAFETY: pidfd_open on our verified init pid; the result is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, st.pid, 0) } as i32;
    // SAFETY: signalling our verified init pid.
    unsafe { libc::kill(st.pid, libc::SIGKILL) };
    if pidfd >= 0 {
        let mut pfd = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; then closing our own fd.
        unsafe {
            libc::poll(&mut pfd, 1, 10_000);
            libc::close(pidfd);
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while st.init_alive() {
        if std::time::Instant::now() > deadline {
            crate::bail!(
                "container {:?}: init {} did not die after SIGKILL",
                st.id,
                st.pid
            );
        }
        // Reap it if it is our child (run --keep, tests); otherwise its parent will.
        // SAFETY: non-blocking waitpid on a specific pid.
        unsafe { libc::waitpid(st.pid, std::ptr::null_mut(), libc::WNOHANG) };
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Ok(())
}

pub fn destroy(root: &Path, st: &ContainerState) -> Result<()> {
    // A cgroup that existed before the container (shared with others) is never emptied; it is
    // removed only if nothing is left in it.
    let plan = crate::namespaces::Plan::from_spec(&st.config);
    if let Some(cg) = st.cgroup.as_ref().filter(|cg| !cg.preexisted()) {
        // Processes left behind when there was no pid namespace of its own die with the
        // container. With one, the kernel killed them all before the init could be reaped.
        let pid_ns_emptied = plan.clone_flags & libc::CLONE_NEWPID != 0 && !st.init_alive();
        if !pid_ns_emptied {
            let _ = cg.kill_all(libc::SIGKILL);
        }
        if cg.destroy().is_err() {
            // Someone moved a process of their own into one of the hierarchies (kill_all lists
            // one, and was skipped with a pid namespace): it goes too, then try again.
            let _ = cg.signal_stragglers(libc::SIGKILL);
            cg.destroy()?;
        }
    }
    if let Some(cg) = &st.cgroup {
        if cg.preexisted() {
            cg.destroy_unified()?;
        }
        // Not on a failed create (the caller's directory, frozen say, must stay for its next try).
        // Best effort: the directory is not ours, and an error here must not block the delete.
        let _ = cg.remove_preexisting_if_unused();
    }
    if !plan.has_mount_ns() {
        crate::rootfs::unmount_under(&st.rootfs)?;
    }
    let dir = st.dir(root);
    std::fs::remove_dir_all(&dir).with_ctx(|| format!("remove {}", dir.display()))?;
    if let Some(h) = st.config.hooks() {
        let json = serde_json::to_vec(&st.to_oci_json(Status::Stopped)).ctx("state json")?;
        if let Err(e) = crate::create::run_hooks("poststop", h.poststop(), &json) {
            crate::warn(&format!("berth-runtime: warning: {e}"));
        }
    }
    Ok(())
}

/// Why a container without a cgroup (rootless, nothing delegated) cannot be frozen.
const NO_FREEZER: &str = "container has no cgroup to freeze: a rootless container gets one only where the user was delegated cgroups";

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let st = ContainerState::load(root, id)?;
    match st.status(root) {
        Status::Running | Status::Created => {}
        s => crate::bail!("container {id:?} cannot be paused: it is {s}"),
    }
    st.cgroup
        .as_ref()
        .ok_or_else(|| Error::msg(NO_FREEZER))?
        .freeze()?;
    Ok(())
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let st = ContainerState::load(root, id)?;
    match st.status(root) {
        Status::Paused => {}
        s => crate::bail!("container {id:?} cannot be resumed: it is {s}, not paused"),
    }
    st.cgroup
        .as_ref()
        .ok_or_else(|| Error::msg(NO_FREEZER))?
        .thaw()?;
    Ok(())
}

/// `update`, as runc's: only what the request sets changes (an absent or zero value keeps the
/// current one), and the device rules are never rewritten. They were fixed at create, where the
/// default allow list joined the spec's; containerd's shim sends the spec's whole `resources`,
/// whose device list alone (deny all) would take /dev/null away from a running container.
pub fn update(root: &Path, id: &str, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let mut st = ContainerState::load(root, id)?;
    if st.status(root) == Status::Stopped {
        crate::bail!("container {id:?} is stopped: nothing to update");
    }
    let mut change = res.clone();
    change.set_devices(None);
    if change.pids().as_ref().is_some_and(|p| p.limit() == 0) {
        change.set_pids(None);
    }
    st.cgroup
        .as_ref()
        .ok_or_else(|| Error::msg("container has no cgroup"))?
        .apply(&change)?;
    if let Some(linux) = st.config.linux_mut() {
        let merged = merge_resources(linux.resources().as_ref(), &change)?;
        linux.set_resources(Some(merged));
    }
    st.save(root)
}

/// The container's recorded resources with `change` laid over them: objects merge key by key,
/// a null, zero or empty string in `change` keeps the recorded value, anything else replaces it.
fn merge_resources(
    recorded: Option<&oci_spec::runtime::LinuxResources>,
    change: &oci_spec::runtime::LinuxResources,
) -> Result<oci_spec::runtime::LinuxResources> {
    fn lay(dst: &mut serde_json::Value, src: &serde_json::Value) {
        match (dst, src) {
            (serde_json::Value::Object(d), serde_json::Value::Object(s)) => {
                for (k, v) in s {
                    lay(d.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
            (_, serde_json::Value::Null) => {}
            (_, serde_json::Value::Number(n)) if n.as_f64() == Some(0.0) => {}
            (_, serde_json::Value::String(s)) if s.is_empty() => {}
            (d, s) => *d = s.clone(),
        }
    }
    let mut merged = serde_json::to_value(recorded).ctx("update: recorded resources")?;
    if merged.is_null() {
        merged = serde_json::json!({});
    }
    lay(
        &mut merged,
        &serde_json::to_value(change).ctx("update: resources")?,
    );
    serde_json::from_value(merged).ctx("update: merged resources")
}

/// Pids of every process in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let st = ContainerState::load(root, id)?;
    match &st.cgroup {
        Some(cg) => Ok(cg.procs()?),
        None => Ok(if st.init_alive() {
            vec![st.pid]
        } else {
            vec![]
        }),
    }
}

/// All container ids under the root, sorted.
pub fn list(root: &Path) -> Result<Vec<ContainerState>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_ctx(|| root.display().to_string()),
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Ok(st) = ContainerState::load(root, &name) {
            out.push(st);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::merge_resources;
    use oci_spec::runtime::LinuxResources;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_update_changes_only_what_it_sets() {
        let recorded = res(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
            "memory": {"limit": 67108864, "swap": 67108864},
            "cpu": {"shares": 2, "cpus": "0-1"},
        }));
        let change = res(serde_json::json!({
            "memory": {"limit": 100663296},
            "cpu": {"shares": 0, "quota": 50000, "cpus": ""},
        }));
        let merged =
            serde_json::to_value(merge_resources(Some(&recorded), &change).unwrap()).unwrap();
        assert_eq!(merged["memory"]["limit"], 100663296);
        assert_eq!(merged["memory"]["swap"], 67108864);
        assert_eq!(merged["cpu"]["shares"], 2);
        assert_eq!(merged["cpu"]["quota"], 50000);
        assert_eq!(merged["cpu"]["cpus"], "0-1");
        assert_eq!(merged["devices"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn an_update_of_a_container_without_resources_records_the_change() {
        let change = res(serde_json::json!({"pids": {"limit": 10}}));
        let merged = serde_json::to_value(merge_resources(None, &change).unwrap()).unwrap();
        assert_eq!(merged["pids"]["limit"], 10);
    }
}
