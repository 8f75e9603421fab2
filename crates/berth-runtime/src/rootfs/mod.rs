//! The container's root filesystem, built inside its new mount namespace: propagation, the rootfs
//! bind, the spec's mounts (targets resolved inside the root), /dev and its default devices,
//! pivot_root (`pivot.rs`), then masked and read-only paths; /dev nodes in `dev.rs`. Runs only in
//! the cloned init process.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::{Mount, Spec};

use crate::error::{Context, Error, Result};
use crate::mountopts::{self, MountOptions};
use berth_sys::root::{self as inroot, Leaf};

mod dev;
mod pivot;

use dev::{create_default_devices, create_spec_devices, dev_symlinks};
pub use pivot::{apply_sysctls, finalize, pivot, unmount_under};

pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: Option<&'a berth_cgroups::Cgroup>,
    pub userns: bool,
    pub new_cgroupns: bool,
    pub new_netns: bool,
    /// False when the container shares the runtime's mount namespace (no pivot, no propagation change).
    pub own_mount_ns: bool,
    /// Bind sources opened (O_PATH) by the runtime before a user namespace existed.
    pub bind_sources: &'a [(PathBuf, OwnedFd)],
}

/// Attaches a detached mount (`open_tree`) on the directory or file `target` is opened on.
fn move_mount(tree: &OwnedFd, target: &OwnedFd) -> Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: two valid fds and empty C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        crate::bail!("move_mount: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Clones every bind-mount source as a detached mount (open_tree), for a container with a user
/// namespace: its root may not reach a source by path (a 0700 directory of the host's root), and a
/// mount from another mount namespace cannot be bound, but a detached one can be attached.
pub fn open_bind_sources(spec: &Spec, bundle: &Path) -> Result<Vec<(PathBuf, OwnedFd)>> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let Some(src) = m.source() else { continue };
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let opts =
            mountopts::parse(m.options().as_deref().unwrap_or_default()).map_err(Error::msg)?;
        let rec = if opts.recursive_bind {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
        let c = CString::new(src.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::msg("bind source has a NUL byte"))?;
        // A detached copy of the source mount: the child attaches it with move_mount, whatever
        // its user namespace may reach by path.
        // SAFETY: valid C string; the result is checked.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                c.as_ptr(),
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec,
            )
        };
        if fd < 0 {
            crate::bail!(
                "bind source {}: {}",
                src.display(),
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: a fresh fd from the kernel.
        out.push((src, unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32)
        }));
    }
    Ok(out)
}

pub fn mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: c_ulong,
    data: Option<&str>,
) -> Result<()> {
    let c = |s: &str| CString::new(s).map_err(|_| Error::msg(format!("{s:?}: NUL byte")));
    let (src_c, fs_c, data_c) = (
        src.map(c).transpose()?,
        fstype.map(c).transpose()?,
        data.filter(|d| !d.is_empty()).map(c).transpose()?,
    );
    let tgt = c(target)?;
    let p = |o: &Option<CString>| o.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: all pointers are valid C strings or null, as mount(2) allows.
    let r = unsafe { libc::mount(p(&src_c), tgt.as_ptr(), p(&fs_c), flags, p(&data_c).cast()) };
    if r < 0 {
        // The errno is kept (callers fall back on some), the sentence as before.
        return Err(Error::Io {
            context: format!(
                "mount {} on {target} (type {})",
                src.unwrap_or("none"),
                fstype.unwrap_or("none"),
            ),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Everything before pivot_root. `before_cgroup` runs once, just before the first cgroup mount (or
/// after the last mount when there is none): the container's cgroup must exist by then.
pub fn prepare(ctx: &RootfsContext, before_cgroup: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let linux = ctx.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty());
    let flag = prop
        .and_then(mountopts::propagation)
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    let rootfs = ctx
        .rootfs
        .to_str()
        .ok_or_else(|| Error::msg("rootfs path is not UTF-8"))?;
    if ctx.own_mount_ns {
        // An unbindable "/" would refuse the rootfs bind below; the requested propagation is
        // applied to the new root after pivot_root (`finalize`).
        let unbindable = flag & libc::MS_UNBINDABLE != 0;
        let first = if unbindable {
            libc::MS_PRIVATE | libc::MS_REC
        } else {
            flag
        };
        mount(None, "/", None, first, None)?;
        if !matches!(prop, None | Some("rslave") | Some("rprivate")) {
            make_parent_mount_private(ctx.rootfs)?;
        }
        mount(
            Some(rootfs),
            rootfs,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?;
    }
    let root_fd = std::fs::File::open(ctx.rootfs).with_ctx(|| format!("open rootfs {rootfs}"))?;
    let root_fd = OwnedFd::from(root_fd);
    let mut dev_is_tmpfs = false;
    let mut cgroup_ready = false;
    for m in ctx.spec.mounts().iter().flatten() {
        if m.destination() == Path::new("/dev") && !is_bind(m) {
            dev_is_tmpfs = true;
        }
        if !cgroup_ready && matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2")) {
            before_cgroup()?;
            cgroup_ready = true;
        }
        mount_one(ctx, &root_fd, m).with_ctx(|| format!("mount {}", m.destination().display()))?;
    }
    if !cgroup_ready {
        before_cgroup()?;
    }
    if dev_is_tmpfs {
        create_default_devices(ctx, &root_fd)?;
    }
    create_spec_devices(ctx, &root_fd)?;
    if dev_is_tmpfs {
        dev_symlinks(&root_fd)?;
    }
    Ok(())
}

pub(super) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Makes the mount that holds `rootfs` private if it is shared: pivot_root refuses a new root whose
/// parent mount is shared, and the rootfs bind below would otherwise propagate to the host. That
/// mount is the rootfs itself when it is a mount point (containerd mounts the image's overlay
/// there), else the one holding its directory.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx("read mountinfo")?;
    let mut best: Option<(&str, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let mp = f[4];
        let shared = f[6..]
            .iter()
            .take_while(|x| **x != "-")
            .any(|x| x.starts_with("shared:"));
        if rootfs.starts_with(mp) && best.is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        mount(None, mp, None, libc::MS_PRIVATE, None)?;
    }
    Ok(())
}

fn mount_one(ctx: &RootfsContext, root: &OwnedFd, m: &Mount) -> Result<()> {
    let opts = mountopts::parse(m.options().as_deref().unwrap_or_default()).map_err(Error::msg)?;
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "" });
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, root, m, &opts);
    }
    if opts.bind || typ == "bind" {
        return mount_bind(ctx, root, m, &opts);
    }
    if typ == "proc" || typ == "sysfs" {
        refuse_symlink_target(root, m.destination(), typ)?;
    }
    let fd = inroot::open_or_create(root.as_raw_fd(), m.destination(), Leaf::Dir)?;
    let target = inroot::proc_fd_path(&fd);
    // A read-only /dev is made read-only after its device nodes exist (`finalize`).
    let flags = if m.destination() == Path::new("/dev") {
        opts.flags & !libc::MS_RDONLY
    } else {
        opts.flags
    };
    let src = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let res = mount(Some(&src), &target, Some(typ), flags, Some(&opts.data));
    match res {
        Err(e) if typ == "sysfs" && (ctx.userns || !ctx.new_netns) => {
            // Without its own network namespace (or in a user namespace) sysfs cannot be mounted: bind the host's.
            let _ = e;
            mount(
                Some("/sys"),
                &target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )?;
            // Opened again: the first handle names the directory under the new mount, and a
            // remount needs the mount's own root.
            let bound = inroot::open_or_create(root.as_raw_fd(), m.destination(), Leaf::Dir)?;
            remount_bind(&inroot::proc_fd_path(&bound), opts.flags | libc::MS_REC)?;
        }
        Err(e) if typ == "mqueue" && ctx.userns => {
            let _ = e;
            mount(Some("/dev/mqueue"), &target, None, libc::MS_BIND, None)?;
        }
        r => r?,
    }
    drop(fd);
    finish_mount(root, m.destination(), &opts)
}

/// proc and sysfs must be mounted on a real directory: a symlink there (even one that stays inside
/// the root) could point a fresh procfs at a path that masking does not cover.
fn refuse_symlink_target(root: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    if let Ok(fd) = inroot::open(root.as_raw_fd(), dest, libc::O_NOFOLLOW) {
        // SAFETY: stat is plain data; fstat fills it from a valid fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFLNK
        {
            crate::bail!(
                "{typ} must be mounted on ordinary directory: {} is a symlink",
                dest.display()
            );
        }
    }
    Ok(())
}

/// Propagation and recursive attributes, applied to the mount now on top at `dest`.
fn finish_mount(root: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clr == 0 {
        return Ok(());
    }
    let fd = inroot::open(root.as_raw_fd(), dest, 0).with_ctx(|| dest.display().to_string())?;
    let target = inroot::proc_fd_path(&fd);
    for p in &opts.propagation {
        mount(None, &target, None, *p, None)?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        mount_setattr(&fd, opts.rec_set, opts.rec_clr)?;
    }
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr(fd: &OwnedFd, set: u64, clr: u64) -> Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: fd is valid, attr lives across the call, the size matches the struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(Error::msg(format!(
            "mount_setattr: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn remount_bind(target: &str, flags: c_ulong) -> Result<()> {
    let keep = libc::MS_RDONLY
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | libc::MS_NOATIME
        | libc::MS_NODIRATIME
        | libc::MS_RELATIME
        | libc::MS_STRICTATIME;
    if flags & keep == 0 {
        return Ok(());
    }
    // Keep the flags the kernel locks on the source (in a user namespace they cannot be cleared).
    let locked = locked_flags(target);
    mount(
        None,
        target,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | (flags & (keep | libc::MS_REC)) | locked,
        None,
    )
}

pub(super) fn locked_flags(target: &str) -> c_ulong {
    let Ok(c) = CString::new(target) else {
        return 0;
    };
    // SAFETY: statvfs is plain old data; the pointer is valid.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string, st a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let mut f = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms;
        }
    }
    f
}

fn mount_bind(ctx: &RootfsContext, root: &OwnedFd, m: &Mount, opts: &MountOptions) -> Result<()> {
    let src = m
        .source()
        .as_ref()
        .ok_or_else(|| Error::msg("bind mount without a source"))?;
    let src: PathBuf = if src.is_absolute() {
        src.clone()
    } else {
        ctx.bundle.join(src)
    };
    // In a user namespace the source may be out of reach by path: use the fd the runtime opened
    // for it before the namespace existed (see `BindSources`).
    let pre = ctx
        .bind_sources
        .iter()
        .find(|(p, _)| *p == src)
        .map(|(_, fd)| fd);
    let is_dir = match pre {
        Some(fd) => {
            // SAFETY: stat is plain data; fstat fills it from a valid fd.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
                crate::bail!(
                    "bind source {}: {}",
                    src.display(),
                    std::io::Error::last_os_error()
                );
            }
            st.st_mode & libc::S_IFMT == libc::S_IFDIR
        }
        None => std::fs::metadata(&src)
            .with_ctx(|| format!("bind source {}", src.display()))?
            .is_dir(),
    };
    let leaf = if is_dir { Leaf::Dir } else { Leaf::File };
    let fd = inroot::open_or_create(root.as_raw_fd(), m.destination(), leaf)?;
    let target = inroot::proc_fd_path(&fd);
    let rec = if opts.recursive_bind { libc::MS_REC } else { 0 };
    match pre {
        Some(tree) => move_mount(tree, &fd)?,
        None => mount(
            Some(&src.to_string_lossy()),
            &target,
            None,
            libc::MS_BIND | rec,
            None,
        )?,
    }
    drop(fd);
    // The bind is now on top: reach it again to change its flags.
    let fd = inroot::open(root.as_raw_fd(), m.destination(), 0)
        .with_ctx(|| m.destination().display().to_string())?;
    let target = inroot::proc_fd_path(&fd);
    let mut flags = opts.flags & !(libc::MS_REMOUNT | libc::MS_BIND);
    if ctx.userns {
        flags |= locked_flags(&target);
    }
    remount_bind(&target, flags)?;
    drop(fd);
    finish_mount(root, m.destination(), opts)
}

/// /sys/fs/cgroup: cgroup2 itself with a new cgroup namespace on v2; otherwise a tmpfs holding a bind of
/// each controller's container cgroup (v1) or a bind of the container's own cgroup dir (v2).
fn mount_cgroup(ctx: &RootfsContext, root: &OwnedFd, m: &Mount, opts: &MountOptions) -> Result<()> {
    let fd = inroot::open_or_create(root.as_raw_fd(), m.destination(), Leaf::Dir)?;
    let target = inroot::proc_fd_path(&fd);
    let ro = opts.flags & libc::MS_RDONLY;
    let base = opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    let Some(cg) = ctx.cgroup else { return Ok(()) };
    let v1 = cg.v1_mounts();
    if v1.is_empty() {
        let own = if ctx.new_cgroupns {
            match mount(Some("cgroup2"), &target, Some("cgroup2"), opts.flags, None) {
                Ok(()) => false,
                // In a user namespace the kernel may refuse cgroup2 itself (EPERM, or EBUSY on
                // a delegated subtree): bind the container's own directory instead, as runc
                // falls back.
                Err(e) if ctx.userns && matches!(e.errno(), Some(libc::EPERM | libc::EBUSY)) => {
                    true
                }
                Err(e) => return Err(e),
            }
        } else {
            true
        };
        if !own {
            return Ok(());
        }
        if let Some(dir) = cg.paths().first() {
            mount(
                Some(&dir.to_string_lossy()),
                &target,
                None,
                libc::MS_BIND,
                None,
            )?;
            // `fd` is the directory under the bind: reach the bind itself to change its flags.
            drop(fd);
            let fd = inroot::open(root.as_raw_fd(), m.destination(), libc::O_DIRECTORY)
                .ctx("cgroup bind")?;
            remount_bind(&inroot::proc_fd_path(&fd), opts.flags)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )?;
    drop(fd);
    let dir =
        inroot::open(root.as_raw_fd(), m.destination(), libc::O_DIRECTORY).ctx("cgroup tmpfs")?;
    for (name, host_dir) in &v1 {
        let cname = CString::new(name.as_str()).map_err(|_| Error::msg("cgroup name has NUL"))?;
        // SAFETY: valid dir fd (fresh tmpfs, nothing to race with) and C string.
        unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), 0o755) };
        let t = format!("{}/{name}", inroot::proc_fd_path(&dir));
        mount(
            Some(&host_dir.to_string_lossy()),
            &t,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?;
        if name.contains(',') {
            for part in name.split(',') {
                let link = CString::new(part).unwrap_or_default();
                // SAFETY: valid C strings and a valid dir fd.
                unsafe { libc::symlinkat(cname.as_ptr(), dir.as_raw_fd(), link.as_ptr()) };
            }
        }
    }
    // One recursive attribute change for the whole tree instead of a remount per controller
    // (`dir` is the tmpfs's root, under which every bind now sits).
    let mut attrs = 0;
    for (ms, attr) in [
        (libc::MS_RDONLY, 0x1),
        (libc::MS_NOSUID, 0x2),
        (libc::MS_NODEV, 0x4),
        (libc::MS_NOEXEC, 0x8),
    ] {
        if (base | ro) & ms != 0 {
            attrs |= attr;
        }
    }
    if attrs != 0 {
        mount_setattr(&dir, attrs, 0)?;
    }
    Ok(())
}
