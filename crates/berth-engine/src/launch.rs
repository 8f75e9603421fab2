//! Starting a made container: its snapshot mounted on `rootfs/`, the generated `/etc` files,
//! the working directory, the OCI spec written, and the runtime library's create and start
//! in-process (no exec of berth-runtime). Signals must already be blocked by a foreground caller.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::ocispec::namespaces::{Namespaces, Source};
use crate::ocispec::{self, SpecInput};
use crate::options::{RunOptions, ShareMode};
use crate::record::{Record, State};
use crate::volume::mount_tmpfs;
use berth_image::snapshot;
use berth_image::snapshot::IdMap;
use berth_runtime::create::{self, CreateOptions};
use berth_runtime::state::ContainerState;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Who watches a container being launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watcher {
    /// The user's own `berth run` in the foreground: with `--rm` the container belongs to it and
    /// is killed if it dies (what Docker users expect of `run --rm`: no orphan outlives it).
    Foreground,
    /// A detached container's monitor: the container outlives it (its keeper takes over).
    Monitor,
}

/// A started container: its init's pid, the runtime's state, and the pty master for `-t`.
pub struct Launched {
    pub pid: i32,
    pub state: ContainerState,
    pub master: Option<OwnedFd>,
}

fn now() -> String {
    berth_sys::time::now_rfc3339_nanos()
}

impl Engine {
    /// Where the starting container's shareable namespaces come from (`--network`, `--ipc`,
    /// `--pid`, `--uts`); `container:NAME` needs NAME running (and for IPC, made shareable).
    fn namespaces(&self, rec: &Record, o: &RunOptions) -> Result<Namespaces> {
        let donor = |what: &str, other: &str| -> Result<Record> {
            let r = self.get(other)?;
            if r.state.status != "running" || r.state.pid <= 0 {
                return Err(EngineError::msg(format!(
                    "cannot join {what} of a non running container: {other}"
                )));
            }
            Ok(r)
        };
        let (ipc, shm) = match ShareMode::ipc(&o.ipc).map_err(EngineError::msg)? {
            ShareMode::Host => (Source::Host, Some("/dev/shm".into())),
            ShareMode::Container(other) => {
                let r = donor("IPC", &other)?;
                let shm = self.shm_dir(&r.id);
                if !is_mountpoint(&shm) {
                    return Err(EngineError::msg(format!(
                        "cannot join IPC of container {other}: non-shareable IPC (hint: use --ipc shareable for the donor container)"
                    )));
                }
                (
                    Source::Join(format!("/proc/{}/ns/ipc", r.state.pid).into()),
                    Some(shm),
                )
            }
            ShareMode::Private if o.ipc == "shareable" => {
                (Source::New, Some(self.mount_shm(rec, o)?))
            }
            ShareMode::Private => (Source::New, None),
        };
        let pid = match ShareMode::pid(&o.pid).map_err(EngineError::msg)? {
            ShareMode::Host => Source::Host,
            ShareMode::Container(other) => {
                Source::Join(format!("/proc/{}/ns/pid", donor("PID", &other)?.state.pid).into())
            }
            ShareMode::Private => Source::New,
        };
        let uts = match ShareMode::uts(&o.uts).map_err(EngineError::msg)? {
            ShareMode::Host => Source::Host,
            _ => Source::New,
        };
        let host_cgroupns = ocispec::cgroup::host_namespace(&o.cgroupns)?;
        Ok(Namespaces {
            net: self.net_namespace(rec, o)?,
            ipc,
            pid,
            uts,
            cgroup: if host_cgroupns {
                Source::Host
            } else {
                Source::New
            },
            shm,
        })
    }

    /// A shareable container's `/dev/shm`: a tmpfs on the host at `<container>/shm`, which
    /// containers joining its IPC namespace bind too (unmounted when it ends).
    fn shm_dir(&self, id: &str) -> std::path::PathBuf {
        self.records.dir(id).join("shm")
    }

    fn mount_shm(&self, rec: &Record, o: &RunOptions) -> Result<std::path::PathBuf> {
        let dir = self.shm_dir(&rec.id);
        if is_mountpoint(&dir) {
            return Ok(dir);
        }
        fs::create_dir_all(&dir).map_err(|e| EngineError::io(dir.display(), e))?;
        let size = o.shm_size.unwrap_or(64 << 20);
        nix::mount::mount(
            Some("shm"),
            &dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            Some(format!("mode=1777,size={size}").as_str()),
        )
        .map_err(|e| EngineError::io(format!("mounting {}", dir.display()), e.into()))?;
        Ok(dir)
    }

    /// Mounts the snapshot, writes the generated files and the spec, creates and starts the
    /// container through the runtime library. Signals must already be blocked by a foreground caller.
    pub fn launch(&self, rec: &mut Record, o: &RunOptions, watcher: Watcher) -> Result<Launched> {
        // Under the container's lock: a `cp` into a stopped container mounts the same snapshot.
        // Released before the clone: the init is a fork of this process and would hold it.
        // The start is recorded first (a hold): a process killed before the record says the
        // container runs leaves a hold whose dead owner tells the next command to tear down what
        // was half made.
        let rootfs = self.rootfs(&rec.id);
        {
            let _lock = self.records.lock(&rec.id)?;
            self.hold_for_start(rec)?;
            let mut mount = self.snapshots.mounts(&rec.id).map_err(EngineError::other)?;
            if !is_mountpoint(&rootfs) {
                // `--rm` deletes the writable layer with the container: overlay need not sync
                // it to disk, at its unmount either (a journal commit on the hot path of
                // `docker run --rm`), as podman mounts its `--rm` containers.
                if rec.auto_remove {
                    snapshot::make_volatile(&mut mount);
                }
                snapshot::mount(&mount, &rootfs).map_err(EngineError::other)?;
            }
        }
        berth_runtime::trace("engine: snapshot mounted");
        let launched = self.launch_mounted(rec, o, watcher);
        if launched.is_err() {
            self.disconnect_user_mode(&rec.id);
            self.unmount_rootfs(&rec.id);
            unmount(&self.shm_dir(&rec.id));
            self.started(rec);
            if let Ok(_lock) = self.records.lock(&rec.id) {
                let _ = self.records.save(rec);
            }
        }
        launched
    }

    fn launch_mounted(
        &self,
        rec: &mut Record,
        o: &RunOptions,
        watcher: Watcher,
    ) -> Result<Launched> {
        // Volumes made with the local driver's options get their tmpfs or bind first.
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            if let Some(name) = &m.name {
                crate::volume::mount_if_asked(self, name)?;
            }
        }
        let dir = self.records.dir(&rec.id);
        let rootfs = self.rootfs(&rec.id);
        self.connect_user_mode(rec, o)?;
        let namespaces = self.namespaces(rec, o)?;
        self.write_etc_files(rec, o, &[])?;
        let mut user = crate::user::resolve(&rootfs, &rec.user).map_err(EngineError::other)?;
        for gid in crate::user::group_ids(&rootfs, &o.group_add)? {
            if gid != user.gid && !user.additional_gids.contains(&gid) {
                user.additional_gids.push(gid);
            }
        }
        make_workdir(&rootfs, &rec.working_dir, rec.idmap.as_ref())?;
        // A bare name (kept in the record as Docker keeps it in Config.Env) has no value: it is
        // not in the process's environment, which holds KEY=VALUE only.
        let mut env: Vec<String> = rec
            .env
            .iter()
            .filter(|e| e.contains('='))
            .cloned()
            .collect();
        // Docker sets HOSTNAME (after PATH) unless the user did.
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            let at = env
                .iter()
                .position(|e| e.starts_with("PATH="))
                .map_or(0, |i| i + 1);
            env.insert(at, format!("HOSTNAME={}", rec.hostname));
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!(
                "HOME={}",
                if user.home.is_empty() {
                    "/"
                } else {
                    &user.home
                }
            ));
        }
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let tmpfs: Vec<(String, String)> = o
            .tmpfs
            .iter()
            .map(|t| ocispec::split_tmpfs(t))
            .chain(mount_tmpfs(&o.mounts)?)
            .collect();
        let mut spec = ocispec::spec(&SpecInput {
            opts: o,
            args,
            env,
            cwd: rec.working_dir.clone(),
            user,
            hostname: rec.hostname.clone(),
            container_dir: &dir,
            cgroup_path: ocispec::cgroup::path(&rec.id, &o.cgroup_parent)?,
            mounts: &rec.mounts,
            tmpfs,
            namespaces,
        })?;
        if crate::rootless::is_rootless()? {
            rootless_spec(&mut spec, &rec.id);
        }
        if let Some(map) = &rec.idmap {
            ocispec::namespaces::add_user_namespace(&mut spec, map)?;
            let reachable = self.reachable_rootfs(&rec.id, &rootfs, map)?;
            spec.set_root(Some(
                oci_spec::runtime::RootBuilder::default()
                    .path(reachable)
                    .readonly(o.read_only)
                    .build()
                    .map_err(ocispec::SpecError::from)?,
            ));
        }
        crate::record::write_atomic(
            &dir.join("config.json"),
            &serde_json::to_vec(&spec).expect("spec serializes"),
        )
        .map_err(|e| EngineError::msg(format!("{}: {e}", dir.display())))?;
        berth_runtime::trace("engine: spec written");
        let h = berth_cgroups::Hierarchy::detect().map_err(EngineError::other)?;
        let mut created = create::create(
            CreateOptions {
                root: self.runtime_root.clone(),
                id: rec.id.clone(),
                bundle: dir.clone(),
                pid_file: None,
                console_socket: None,
                no_pivot: false,
                no_new_keyring: false,
                preserve_fds: 0,
                // A terminal is proxied by whoever watches: the pty master comes back here.
                proxy_terminal: rec.tty,
                parent_death_signal: (watcher == Watcher::Foreground && rec.auto_remove)
                    .then_some(libc::SIGKILL),
            },
            &h,
        )?;
        let pid = created.state.pid;
        rec.state = State {
            status: "running".into(),
            pid,
            started_at: now(),
            monitor_pid: std::process::id() as i32,
            monitor_start: berth_sys::process::start_time(std::process::id() as i32),
            keeper_pid: rec.state.keeper_pid,
            keeper_start: rec.state.keeper_start,
            restart_count: rec.state.restart_count,
            ..State::default()
        };
        // From here the record says it runs: a dead owner is the watcher's case, not a hold's.
        self.started(rec);
        self.records.save(rec)?;
        // Its networks are joined while it waits to start: its program finds them from its
        // first instruction, and a published port already taken means it never starts.
        let joined = self.attach_networks(rec, pid).and_then(|endpoints| {
            if !endpoints.is_empty() {
                self.write_etc_files(rec, o, &endpoints)?;
            }
            berth_runtime::trace("engine: networks joined");
            Ok(())
        });
        let master = created.master.take();
        let started = joined.and_then(|()| {
            berth_runtime::ops::start_created(&self.runtime_root, created).map_err(Into::into)
        });
        let state = match started {
            Ok(st) => st,
            Err(e) => {
                let _ = berth_runtime::ops::delete(&self.runtime_root, &rec.id, true);
                self.detach_networks(rec);
                return Err(e);
            }
        };
        self.emit(crate::events::Event::container(rec, "start"));
        Ok(Launched { pid, state, master })
    }
}

/// What changes in a rootless container's spec: its cgroup goes under the user's delegated
/// cgroup v2 subtree (`<parent>/berth-<id>`) if they have one, else the spec names none (the
/// runtime then runs without, and a limit asked for is an error that says why); with one id
/// (no subordinate ids) devpts takes no gid=5, unmapped then (as runc's rootless spec and
/// podman leave it out).
pub(crate) fn rootless_spec(spec: &mut oci_spec::runtime::Spec, id: &str) {
    let delegated = crate::rootless::delegated_cgroup_parent();
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(delegated.map(|p| format!("{p}{}", cgroup_path(id)).into()));
    }
    if !crate::rootless::gid_mapped(5) {
        ocispec::mounts::drop_devpts_gid(spec);
    }
}

/// A container's cgroup without `--cgroup-parent`: `/berth-<id>`, directly under each
/// hierarchy's root. No parent is shared between containers by default: a shared `/berth` would
/// be created by one container and outlive it whenever another was running at its end (the
/// runtime removes only parents it made), and removing it later would race with the next
/// container's create. A `--cgroup-parent` is the user's to share (`ocispec::cgroup::path`).
pub fn cgroup_path(id: &str) -> String {
    format!("/berth-{id}")
}

/// Creates the working directory inside the root when the image lacks it, as Docker does
/// (owned by the container's root: the host id it maps to in a user namespace).
fn make_workdir(rootfs: &Path, dir: &str, idmap: Option<&IdMap>) -> Result<()> {
    use std::os::fd::AsRawFd;
    let root = fs::File::open(rootfs)
        .map_err(|e| EngineError::msg(format!("{}: {e}", rootfs.display())))?;
    let err = |e: std::io::Error| EngineError::msg(format!("working directory {dir}: {e}"));
    let existed = berth_sys::root::open(root.as_raw_fd(), Path::new(dir), 0).is_ok();
    let fd = berth_sys::root::open_or_create(
        root.as_raw_fd(),
        Path::new(dir),
        berth_sys::root::Leaf::Dir,
    )
    .map_err(err)?;
    if let (false, Some(map)) = (existed, idmap) {
        let owner = map.host_uid(0).zip(map.host_gid(0));
        let (uid, gid) = owner.ok_or_else(|| EngineError::msg("the id map does not map root"))?;
        // An O_PATH handle: chown through its /proc link, which names that very directory.
        std::os::unix::fs::chown(berth_sys::root::proc_fd_path(&fd), Some(uid), Some(gid))
            .map_err(err)?;
    }
    Ok(())
}

impl Engine {
    /// Where a user-namespaced container's root is bound for the runtime: its store path is
    /// behind directories only the host's root may enter, and the container's root binds it
    /// by path. `<runroot>-userns/<id>/rootfs`, the `<id>` directory the container's root's
    /// alone (0700), its parent only traversable (0711).
    fn reachable_rootfs(&self, id: &str, rootfs: &Path, map: &IdMap) -> Result<std::path::PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |e| EngineError::io(p, e)
        };
        let base = self.userns_dir();
        let (uid, gid) = map
            .host_uid(0)
            .zip(map.host_gid(0))
            .ok_or_else(|| EngineError::msg("the id map does not map root"))?;
        searchable_by_others(&base, uid)?;
        fs::create_dir_all(&base).map_err(io(&base))?;
        fs::set_permissions(&base, fs::Permissions::from_mode(0o711)).map_err(io(&base))?;
        let own = base.join(id);
        let target = own.join("rootfs");
        fs::create_dir_all(&target).map_err(io(&target))?;
        std::os::unix::fs::chown(&own, Some(uid), Some(gid)).map_err(io(&own))?;
        fs::set_permissions(&own, fs::Permissions::from_mode(0o700)).map_err(io(&own))?;
        if !is_mountpoint(&target) {
            nix::mount::mount(
                Some(rootfs),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                EngineError::io(
                    format!("bind {} for the user namespace", target.display()),
                    e.into(),
                )
            })?;
        }
        Ok(target)
    }

    fn userns_dir(&self) -> std::path::PathBuf {
        let mut name = self.runroot.file_name().unwrap_or_default().to_os_string();
        name.push("-userns");
        self.runroot.with_file_name(name)
    }

    /// Unmounts the container's root (and its bind for a user namespace, whose directory goes).
    pub(crate) fn unmount_rootfs(&self, id: &str) {
        unmount(&self.rootfs(id));
        let own = self.userns_dir().join(id);
        unmount(&own.join("rootfs"));
        // Empty once unmounted: remove_dir never reaches into a root still bound there.
        let _ = fs::remove_dir(own.join("rootfs"));
        let _ = fs::remove_dir(&own);
    }
}

/// The container's root (host uid `uid`) must walk down to `dir` on its own: every existing
/// directory above it must let others search it (Docker's userns-remap has the same rule for its
/// root's parents). Checked before anything is made, so a refusal leaves nothing behind.
fn searchable_by_others(dir: &Path, uid: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for parent in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(parent) else {
            continue;
        };
        if meta.mode() & 0o001 == 0 {
            return Err(EngineError::msg(format!(
                "user namespace: the container's root (uid {uid} on the host) cannot reach {}: {} is mode {:04o} (other users need search permission, o+x, on each directory above the runroot)",
                dir.display(),
                parent.display(),
                meta.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Whether the container's rootfs directory has its overlay mounted: a mount has a device of its
/// own (two stats instead of reading the whole mount table on the start path).
pub fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(p), p.parent().map(fs::metadata)) {
        (Ok(me), Some(Ok(parent))) => me.dev() != parent.dev(),
        _ => false,
    }
}

pub fn unmount(p: &Path) {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: unmounting by a NUL-terminated path; failure (not mounted) is fine.
    while unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {}
}
