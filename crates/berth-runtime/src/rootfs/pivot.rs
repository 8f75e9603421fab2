//! Entering the new root and finishing it: pivot_root (or MS_MOVE + chroot, hiding the host's
//! proc and sysfs), then read-only and masked paths, a read-only root or /dev, the root's
//! propagation and sysctls. Runs in the container's init after its mounts are made.

use std::path::Path;

use oci_spec::runtime::Spec;

use super::{is_bind, locked_flags, mount};
use crate::error::{Context, Error, Result};
use crate::mountopts;

/// Makes `rootfs` the root: pivot_root(".", ".") then detach the old root, or MS_MOVE + chroot.
pub fn pivot(rootfs: &Path, no_pivot: bool, own_mount_ns: bool) -> Result<()> {
    std::env::set_current_dir(rootfs).with_ctx(|| format!("chdir {}", rootfs.display()))?;
    if !own_mount_ns {
        nix::unistd::chroot(".").ctx("chroot")?;
    } else if no_pivot {
        hide_host_proc_and_sys(rootfs)?;
        mount(Some("."), "/", None, libc::MS_MOVE, None)?;
        nix::unistd::chroot(".").ctx("chroot")?;
    } else {
        let old = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx("open /")?;
        nix::unistd::pivot_root(".", ".").ctx("pivot_root")?;
        nix::unistd::fchdir(&old).ctx("fchdir old root")?;
        mount(None, ".", None, libc::MS_SLAVE | libc::MS_REC, None)?;
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).ctx("detach old root")?;
    }
    std::env::set_current_dir("/").ctx("chdir /")
}

/// Without pivot_root the old root's mounts stay in the namespace, above the chroot. A fully visible
/// procfs or sysfs there would let the container mount a fresh, unmasked one (the kernel allows a
/// new proc mount only if one is fully visible): detach them, or cover them when that fails.
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx("read mountinfo")?;
    let mut points: Vec<String> = Vec::new();
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let fstype = f.get(dash + 1).copied().unwrap_or_default();
        let mp = f.get(4).copied().unwrap_or_default();
        if (fstype == "proc" || fstype == "sysfs") && !Path::new(mp).starts_with(rootfs) {
            points.push(mp.replace("\\040", " "));
        }
    }
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for mp in points {
        if nix::mount::umount2(mp.as_str(), nix::mount::MntFlags::MNT_DETACH).is_err() {
            mount(
                Some("tmpfs"),
                &mp,
                Some("tmpfs"),
                libc::MS_RDONLY,
                Some("size=0"),
            )?;
        }
    }
    Ok(())
}

/// Unmounts everything under `rootfs` (deepest first): what a container without a mount namespace
/// of its own left in the runtime's mount table.
pub fn unmount_under(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx("read mountinfo")?;
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| Path::new(mp).starts_with(rootfs))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for mp in points {
        let _ = nix::mount::umount2(mp, nix::mount::MntFlags::MNT_DETACH);
    }
    Ok(())
}

/// After pivot_root: masked and read-only paths, read-only root, root propagation.
pub fn finalize(spec: &Spec, own_mount_ns: bool) -> Result<()> {
    if !own_mount_ns {
        return Ok(());
    }
    let ro_dev = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/dev") && !is_bind(m));
    if let Some(m) = ro_dev {
        let opts =
            mountopts::parse(m.options().as_deref().unwrap_or_default()).map_err(Error::msg)?;
        if opts.flags & libc::MS_RDONLY != 0 {
            mount(
                None,
                "/dev",
                None,
                libc::MS_REMOUNT | opts.flags,
                Some(&opts.data),
            )?;
        }
    }
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(p)?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(p)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let locked = locked_flags("/");
        mount(
            None,
            "/",
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
            None,
        )?;
    }
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
    {
        if let Some(f) = mountopts::propagation(p) {
            mount(None, "/", None, f, None)?;
        }
    }
    Ok(())
}

fn readonly_path(p: &str) -> Result<()> {
    match mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None) {
        Err(_) if !Path::new(p).exists() => return Ok(()),
        r => r?,
    }
    let locked = locked_flags(p);
    mount(
        None,
        p,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | locked,
        None,
    )
}

fn mask_path(p: &str) -> Result<()> {
    let meta = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if meta.is_dir() {
        mount(Some("tmpfs"), p, Some("tmpfs"), libc::MS_RDONLY, None)
    } else {
        match mount(Some("/dev/null"), p, None, libc::MS_BIND, None) {
            Err(_) if !Path::new("/dev/null").exists() => Ok(()),
            r => r,
        }
    }
}

/// Writes each sysctl under /proc/sys (validated earlier to be namespaced).
pub fn apply_sysctls(spec: &Spec) -> Result<()> {
    for (k, v) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v.as_bytes()).with_ctx(|| format!("sysctl {k}={v}"))?;
    }
    Ok(())
}
