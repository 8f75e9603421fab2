//! The container's mounts, in the order the runtime makes them: Docker's default filesystems
//! (`/proc`, `/dev`, `/sys`, cgroups, a 64 MiB `/dev/shm`…), the generated `/etc` files, then
//! binds and volumes from the record, then `--tmpfs`. Data only: nothing is mounted here.

use super::{SpecError, SpecInput};
use crate::record::MountRecord;
use oci_spec::runtime::{Mount, MountBuilder};
use std::path::Path;

/// Docker's `/dev/shm` size unless `--shm-size` says otherwise.
const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// Options a `--tmpfs` gets before the user's own, which follow and win (`exec` undoes `noexec`).
const TMPFS_DEFAULTS: [&str; 3] = ["nosuid", "nodev", "noexec"];

/// Every mount of the container, defaults first.
pub fn mounts(i: &SpecInput) -> Result<Vec<Mount>, SpecError> {
    let o = i.opts;
    let mut mounts = default_mounts(o.privileged, o.shm_size.unwrap_or(DEFAULT_SHM_SIZE))?;
    mounts.extend(etc_files(i.container_dir)?);
    for m in i.mounts {
        mounts.push(bind(m)?);
    }
    for (destination, options) in &i.tmpfs {
        mounts.push(tmpfs(destination, options)?);
    }
    Ok(mounts)
}

/// Docker's kernel filesystems; `/sys` and its cgroups are writable only when `privileged`.
fn default_mounts(privileged: bool, shm_size: i64) -> Result<Vec<Mount>, SpecError> {
    let sys = if privileged { "rw" } else { "ro" };
    let shm_size = format!("size={shm_size}");
    let dev = ["nosuid", "strictatime", "mode=755", "size=65536k"];
    let pts = [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5",
    ];
    let cgroup = ["nosuid", "noexec", "nodev", "relatime", sys];
    let shm = ["nosuid", "noexec", "nodev", "mode=1777", &shm_size];
    Ok(vec![
        kernel_fs("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        kernel_fs("/dev", "tmpfs", "tmpfs", &dev)?,
        kernel_fs("/dev/pts", "devpts", "devpts", &pts)?,
        kernel_fs(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys],
        )?,
        kernel_fs("/sys/fs/cgroup", "cgroup", "cgroup", &cgroup)?,
        kernel_fs(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        kernel_fs("/dev/shm", "tmpfs", "shm", &shm)?,
    ])
}

fn kernel_fs(
    destination: &str,
    typ: &str,
    source: &str,
    options: &[&str],
) -> Result<Mount, SpecError> {
    mount(
        destination,
        typ,
        source,
        options.iter().map(|s| s.to_string()),
    )
}

/// The generated `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, bound from the
/// container's directory.
fn etc_files(container_dir: &Path) -> Result<Vec<Mount>, SpecError> {
    ["hostname", "hosts", "resolv.conf"]
        .into_iter()
        .map(|name| {
            let source = format!("{}/{name}", container_dir.display());
            mount(&format!("/etc/{name}"), "bind", &source, private_bind())
        })
        .collect()
}

/// A bind mount or volume (`-v`, `--mount`), read-only unless the record says `rw`.
fn bind(m: &MountRecord) -> Result<Mount, SpecError> {
    let read_only = (!m.rw).then(|| "ro".to_string());
    let options = private_bind().chain(read_only);
    mount(&m.destination, "bind", &m.source, options)
}

fn private_bind() -> impl Iterator<Item = String> {
    ["rbind", "rprivate"].into_iter().map(String::from)
}

/// A `--tmpfs DEST[:OPTIONS]` (or `--mount type=tmpfs`): Docker's defaults, then the user's
/// comma-separated options.
fn tmpfs(destination: &str, options: &str) -> Result<Mount, SpecError> {
    let user = options.split(',').filter(|o| !o.is_empty());
    let options = TMPFS_DEFAULTS.into_iter().chain(user).map(String::from);
    mount(destination, "tmpfs", "tmpfs", options)
}

fn mount(
    destination: &str,
    typ: &str,
    source: &str,
    options: impl IntoIterator<Item = String>,
) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.into_iter().collect::<Vec<_>>())
        .build()?)
}
