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
    let mut mounts = default_mounts(o.privileged)?;
    mounts.extend(shm(i)?);
    mounts.extend(etc_files(i.container_dir)?);
    for m in i.mounts {
        mounts.push(bind(m)?);
    }
    for (destination, options) in &i.tmpfs {
        mounts.push(tmpfs(destination, options)?);
    }
    Ok(mounts)
}

/// `/dev/shm`: a tmpfs of its own (`--shm-size`, 64 MiB by default), the shared one launch
/// chose (`--ipc shareable|container:NAME|host`), or none with `--ipc none`.
fn shm(i: &SpecInput) -> Result<Option<Mount>, SpecError> {
    if i.opts.ipc == "none" {
        return Ok(None);
    }
    if let Some(source) = &i.namespaces.shm {
        let source = source.display().to_string();
        return Ok(Some(mount("/dev/shm", "bind", &source, private_bind())?));
    }
    let size = format!("size={}", i.opts.shm_size.unwrap_or(DEFAULT_SHM_SIZE));
    let shm = ["nosuid", "noexec", "nodev", "mode=1777", &size];
    Ok(Some(kernel_fs("/dev/shm", "tmpfs", "shm", &shm)?))
}

/// Docker's kernel filesystems; `/sys` and its cgroups are writable only when `privileged`.
fn default_mounts(privileged: bool) -> Result<Vec<Mount>, SpecError> {
    let sys = if privileged { "rw" } else { "ro" };
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
    ])
}

/// Leaves `gid=` out of `/dev/pts`'s options (for a user namespace that does not map it).
pub(crate) fn drop_devpts_gid(spec: &mut oci_spec::runtime::Spec) {
    let Some(mounts) = spec.mounts_mut() else {
        return;
    };
    for m in mounts.iter_mut() {
        if m.destination() == std::path::Path::new("/dev/pts") {
            let kept: Option<Vec<String>> = m.options().as_ref().map(|o| {
                o.iter()
                    .filter(|o| !o.starts_with("gid="))
                    .cloned()
                    .collect()
            });
            m.set_options(kept);
        }
    }
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
    check_tmpfs(destination, options)?;
    let user = options.split(',').filter(|o| !o.is_empty());
    let options = TMPFS_DEFAULTS.into_iter().chain(user).map(String::from);
    mount(destination, "tmpfs", "tmpfs", options)
}

/// `DEST[:OPTIONS]` of a `--tmpfs` flag.
pub fn split_tmpfs(flag: &str) -> (String, String) {
    match flag.split_once(':') {
        Some((d, opts)) => (d.to_string(), opts.to_string()),
        None => (flag.to_string(), String::new()),
    }
}

/// An absolute mount point, and the values of a tmpfs's numeric options, checked before the kernel sees them (it answers a
/// bad one with a bare EINVAL at the start): sizes (`size`, `nr_blocks`, `nr_inodes`: a number
/// with k/m/g, `size` also a percentage), `mode` (octal), `uid`/`gid` (numbers). Other options
/// pass as given.
pub fn check_tmpfs(destination: &str, options: &str) -> Result<(), SpecError> {
    if !destination.starts_with('/') {
        return Err(SpecError::TmpfsDestination(destination.into()));
    }
    let bad = |option: &str, why| SpecError::TmpfsOption {
        destination: destination.into(),
        option: option.into(),
        why,
    };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let Some((key, value)) = option.split_once('=') else {
            continue;
        };
        let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let sized = |v: &str, percent: bool| {
            let n = v.strip_suffix(|c: char| "kKmMgG".contains(c) || (percent && c == '%'));
            digits(n.unwrap_or(v))
        };
        let ok = match key {
            "size" => sized(value, true),
            "nr_blocks" | "nr_inodes" => sized(value, false),
            "mode" => !value.is_empty() && value.bytes().all(|b| (b'0'..=b'7').contains(&b)),
            "uid" | "gid" => digits(value),
            _ => true,
        };
        if !ok {
            let why = match key {
                "mode" => "not an octal mode (e.g. 1777)",
                "uid" | "gid" => "not a number",
                _ => "not a size (a number, optionally with k, m or g, e.g. 64m)",
            };
            return Err(bad(option, why));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocispec::tests::input;
    use crate::options::RunOptions;

    #[test]
    fn tmpfs_option_values_are_checked_before_the_kernel_sees_them() {
        for ok in [
            "",
            "size=64m",
            "size=50%,mode=1777",
            "nr_inodes=1k,uid=0,gid=0",
            "exec,noatime",
        ] {
            assert!(check_tmpfs("/t", ok).is_ok(), "{ok}");
        }
        for bad in [
            "size=abc",
            "size=",
            "mode=999",
            "uid=x",
            "nr_inodes=5%",
            "size=-1",
        ] {
            let err = check_tmpfs("/t", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --tmpfs /t: option"), "{err}");
        }
        assert!(matches!(
            check_tmpfs("t", ""),
            Err(SpecError::TmpfsDestination(_))
        ));
        assert_eq!(split_tmpfs("/t:size=1m"), ("/t".into(), "size=1m".into()));
        assert_eq!(split_tmpfs("/t"), ("/t".into(), String::new()));
    }

    /// (destination, type, source, options) of each mount.
    fn summary(mounts: &[Mount]) -> Vec<(String, String, String, String)> {
        let text = |p: &Option<std::path::PathBuf>| p.as_ref().unwrap().display().to_string();
        mounts
            .iter()
            .map(|m| {
                (
                    m.destination().display().to_string(),
                    m.typ().clone().unwrap(),
                    text(m.source()),
                    m.options().as_ref().unwrap().join(","),
                )
            })
            .collect()
    }

    fn mounts_for(o: &RunOptions) -> Vec<(String, String, String, String)> {
        summary(&mounts(&input(o)).unwrap())
    }

    fn find(all: &[(String, String, String, String)], dest: &str) -> String {
        all.iter().find(|m| m.0 == dest).unwrap().3.clone()
    }

    #[test]
    fn default_mounts_are_dockers_in_order() {
        let all = mounts_for(&RunOptions::default());
        let dests: Vec<&str> = all.iter().map(|m| m.0.as_str()).collect();
        let want = [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/hostname",
            "/etc/hosts",
            "/etc/resolv.conf",
        ];
        assert_eq!(dests, want);
        assert_eq!(find(&all, "/proc"), "nosuid,noexec,nodev");
        assert_eq!(
            find(&all, "/dev"),
            "nosuid,strictatime,mode=755,size=65536k"
        );
        let pts = "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5";
        assert_eq!(find(&all, "/dev/pts"), pts);
    }

    #[test]
    fn sys_and_cgroups_are_writable_only_when_privileged() {
        let all = mounts_for(&RunOptions::default());
        assert_eq!(find(&all, "/sys"), "nosuid,noexec,nodev,ro");
        assert_eq!(
            find(&all, "/sys/fs/cgroup"),
            "nosuid,noexec,nodev,relatime,ro"
        );
        let o = RunOptions {
            privileged: true,
            ..RunOptions::default()
        };
        let all = mounts_for(&o);
        assert_eq!(find(&all, "/sys"), "nosuid,noexec,nodev,rw");
        assert_eq!(
            find(&all, "/sys/fs/cgroup"),
            "nosuid,noexec,nodev,relatime,rw"
        );
    }

    #[test]
    fn dev_shm_is_64_mib_unless_shm_size_says_otherwise() {
        let shm = |o: &RunOptions| find(&mounts_for(o), "/dev/shm");
        assert_eq!(
            shm(&RunOptions::default()),
            "nosuid,noexec,nodev,mode=1777,size=67108864"
        );
        let o = RunOptions {
            shm_size: Some(1 << 30),
            ..RunOptions::default()
        };
        assert_eq!(shm(&o), "nosuid,noexec,nodev,mode=1777,size=1073741824");
    }

    #[test]
    fn etc_files_are_bound_from_the_container_directory() {
        let all = mounts_for(&RunOptions::default());
        let hosts = all.iter().find(|m| m.0 == "/etc/hosts").unwrap();
        let source = "/var/lib/berth/containers/c0ffee/hosts";
        assert_eq!((hosts.1.as_str(), hosts.2.as_str()), ("bind", source));
        assert_eq!(hosts.3, "rbind,rprivate");
    }

    #[test]
    fn binds_and_volumes_follow_and_are_read_only_unless_rw() {
        let o = RunOptions::default();
        let records = [
            MountRecord {
                source: "/srv/data".into(),
                destination: "/data".into(),
                rw: true,
                ..MountRecord::default()
            },
            MountRecord {
                source: "/srv/conf".into(),
                destination: "/etc/app".into(),
                rw: false,
                ..MountRecord::default()
            },
        ];
        let i = SpecInput {
            mounts: &records,
            ..input(&o)
        };
        let all = summary(&mounts(&i).unwrap());
        let binds: Vec<_> = all[10..]
            .iter()
            .map(|m| (&m.0[..], &m.2[..], &m.3[..]))
            .collect();
        assert_eq!(
            binds,
            [
                ("/data", "/srv/data", "rbind,rprivate"),
                ("/etc/app", "/srv/conf", "rbind,rprivate,ro")
            ]
        );
    }

    #[test]
    fn tmpfs_gets_dockers_defaults_before_the_users_options() {
        let o = RunOptions::default();
        let i = SpecInput {
            tmpfs: vec![
                ("/run".into(), String::new()),
                ("/tmp".into(), "size=64k,,exec".into()),
            ],
            ..input(&o)
        };
        let all = summary(&mounts(&i).unwrap());
        let tmpfs: Vec<_> = all[10..]
            .iter()
            .map(|m| (&m.0[..], &m.1[..], &m.3[..]))
            .collect();
        assert_eq!(
            tmpfs,
            [
                ("/run", "tmpfs", "nosuid,nodev,noexec"),
                ("/tmp", "tmpfs", "nosuid,nodev,noexec,size=64k,exec")
            ]
        );
    }
}
