//! Joining a container's cgroup from the inside. On cgroup v1, a single-threaded process that writes
//! "0" to each controller's `tasks` file moves itself without taking the kernel's global
//! threadgroup lock; the parent's write of a pid to `cgroup.procs` takes it and waits for an RCU
//! grace period (5-35 ms here), which would dominate start-up. The files are opened by the parent
//! (before the clone, or once the cgroup exists and passed with `Go`), so nothing depends on the
//! child's view of the filesystem, and the opens (tens of microseconds each on cgroupfs) stay off
//! the child's path.

use std::io::Write;
use std::os::fd::OwnedFd;

use crate::error::{Context, Result};

pub struct SelfJoin {
    files: Vec<(OwnedFd, String)>,
    /// The `tasks` files the parent passes with `Go` once it has made the cgroup (the child is
    /// cloned before that): their paths, for the count and for error messages.
    deferred: Vec<std::path::PathBuf>,
}

/// `exec --cgroup [CONTROLLER[,CONTROLLER]:]PATH`: sub-cgroups of the container's cgroup to join,
/// per controller or for all.
#[derive(Debug, Default)]
pub struct SubCgroups {
    all: Option<std::path::PathBuf>,
    by_controller: Vec<(String, std::path::PathBuf)>,
}

impl SubCgroups {
    pub fn parse(specs: &[String], cg: &berth_cgroups::Cgroup) -> Result<SubCgroups> {
        let known: Vec<String> = cg
            .v1_mounts()
            .into_iter()
            .flat_map(|(n, _)| n.split(',').map(str::to_string).collect::<Vec<_>>())
            .collect();
        let mut out = SubCgroups::default();
        for spec in specs {
            let (ctrls, path) = match spec.split_once(':') {
                Some((c, p)) => (Some(c), p),
                None => (None, spec.as_str()),
            };
            let rel = std::path::Path::new(path.trim_start_matches('/'));
            if rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                crate::bail!("exec --cgroup: {path} is not a sub cgroup path");
            }
            match ctrls {
                None => out.all = Some(rel.to_path_buf()),
                Some(cs) => {
                    for c in cs.split(',') {
                        if !known.iter().any(|k| k == c) {
                            crate::bail!("exec --cgroup: unknown controller {c:?}");
                        }
                        out.by_controller.push((c.to_string(), rel.to_path_buf()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The sub path for a controller directory named like `cpu,cpuacct` (None: the container's own).
    fn for_controller_dir(&self, name: Option<&str>) -> Option<&std::path::Path> {
        let name = name?;
        let specific = self
            .by_controller
            .iter()
            .find(|(c, _)| name.split(',').any(|n| n == c))
            .map(|(_, p)| p.as_path());
        specific
            .or(self.all.as_deref())
            .filter(|p| !p.as_os_str().is_empty())
    }
}

fn controller_dir_name(cg: &berth_cgroups::Cgroup, dir: &std::path::Path) -> Option<String> {
    cg.v1_mounts()
        .into_iter()
        .find(|(_, d)| d == dir)
        .map(|(n, _)| n)
}

/// The cgroup2 directory a child is cloned into with CLONE_INTO_CGROUP: the container's cgroup on
/// a v2 host, its unified directory on a hybrid one. No migration, no global lock.
pub struct IntoCgroup {
    pub fd: OwnedFd,
}

impl IntoCgroup {
    /// Opens (creating it if `create`) the directory; None where there is no cgroup2 directory.
    pub fn open(cg: &berth_cgroups::Cgroup, create: bool) -> Result<Option<IntoCgroup>> {
        Self::open_sub(cg, create, &SubCgroups::default())
    }

    /// Like `open`; on v2, `exec --cgroup PATH` clones into that (existing) sub-cgroup instead.
    pub fn open_sub(
        cg: &berth_cgroups::Cgroup,
        create: bool,
        sub: &SubCgroups,
    ) -> Result<Option<IntoCgroup>> {
        let dir = if cg.hierarchy().is_v2() {
            let sub = sub.all.as_deref().filter(|p| !p.as_os_str().is_empty());
            match (cg.paths().into_iter().next(), sub) {
                (Some(d), Some(s)) => {
                    let d = d.join(s);
                    if !d.join("cgroup.procs").exists() {
                        crate::bail!("exec: adding pid to cgroups: open {}/cgroup.procs: no such file or directory", d.display());
                    }
                    Some(d)
                }
                (d, _) => d,
            }
        } else {
            cg.unified_dir()
        };
        let Some(dir) = dir else { return Ok(None) };
        if create {
            cg.create_unified()?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .with_ctx(|| format!("cgroup {}", dir.display()))?;
        Ok(Some(IntoCgroup {
            fd: OwnedFd::from(f),
        }))
    }
}

impl SelfJoin {
    /// Opens `tasks` of every v1 controller; on v2 there is nothing to open and the parent
    /// writes `cgroup.procs` instead.
    pub fn open(cg: &berth_cgroups::Cgroup) -> Result<SelfJoin> {
        Self::open_sub(cg, &SubCgroups::default())
    }

    /// Like `open`, into sub-cgroups of the container's (`exec --cgroup`).
    pub fn open_sub(cg: &berth_cgroups::Cgroup, sub: &SubCgroups) -> Result<SelfJoin> {
        let mut files = Vec::new();
        if !cg.hierarchy().is_v2() {
            // A hybrid host's cgroup2 directory has no `tasks`: the child is cloned straight
            // into it (see `IntoCgroup`).
            for dir in cg.controller_paths() {
                let name = controller_dir_name(cg, &dir);
                let dir = match sub.for_controller_dir(name.as_deref()) {
                    Some(s) => {
                        let d = dir.join(s);
                        if !d.join("cgroup.procs").exists() {
                            crate::bail!("exec: adding pid to cgroups: open {}/cgroup.procs: no such file or directory", d.display());
                        }
                        d
                    }
                    None => dir,
                };
                let path = dir.join("tasks");
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .with_ctx(|| format!("cgroup {}", path.display()))?;
                files.push((OwnedFd::from(f), path.display().to_string()));
            }
        }
        Ok(SelfJoin {
            files,
            deferred: Vec::new(),
        })
    }

    /// Nothing to join: a rootless container without a cgroup.
    pub fn none() -> SelfJoin {
        SelfJoin {
            files: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// For a child cloned before its cgroup existed: the parent opens the v1 `tasks` files once it
    /// has made the cgroup and passes them with `Go` (`send_to`), off the child's critical path.
    pub fn deferred(cg: &berth_cgroups::Cgroup) -> SelfJoin {
        let deferred = if cg.hierarchy().is_v2() {
            Vec::new()
        } else {
            cg.controller_paths()
                .into_iter()
                .map(|d| d.join("tasks"))
                .collect()
        };
        SelfJoin {
            files: Vec::new(),
            deferred,
        }
    }

    /// In the parent, after `Go`: passes the `tasks` files this join (made by `open`) holds to a
    /// child whose join was `deferred`, for the same cgroup.
    pub fn pass(&self, chan: &crate::sync::Channel) -> Result<()> {
        use std::os::fd::AsRawFd;
        let fds: Vec<i32> = self.files.iter().map(|(f, _)| f.as_raw_fd()).collect();
        chan.send_fds(&fds)
    }

    pub fn by_child(&self) -> bool {
        !self.files.is_empty() || !self.deferred.is_empty()
    }

    /// In the child: move this (single-threaded) process into every controller's cgroup.
    pub fn join(&self, chan: &crate::sync::Channel) -> Result<()> {
        let passed = if self.deferred.is_empty() {
            Vec::new()
        } else {
            chan.recv_fds(self.deferred.len())?
        };
        for (fd, path) in passed.into_iter().zip(&self.deferred) {
            std::fs::File::from(fd)
                .write_all(b"0")
                .with_ctx(|| format!("join cgroup {}", path.display()))?;
        }
        for (fd, path) in &self.files {
            let mut f = std::fs::File::from(fd.try_clone().with_ctx(|| path.clone())?);
            f.write_all(b"0")
                .with_ctx(|| format!("join cgroup {path}"))?;
        }
        Ok(())
    }
}
