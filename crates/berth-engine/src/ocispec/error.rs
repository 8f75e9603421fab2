//! Why a spec could not be made from the user's flags. Each message is the sentence users see
//! (and tests grep): Docker's own where Docker has one. Sources are kept (the io error behind
//! `--device` and a seccomp file); nothing here decides an exit code.

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `flag` is `--cap-add` or `--cap-drop`.
    #[error("invalid {flag}: unknown capability {name:?}")]
    UnknownCapability { flag: &'static str, name: String },
    #[error("invalid --security-opt {0:?}")]
    SecurityOpt(String),
    #[error("--security-opt seccomp={path}: {source}")]
    SeccompFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--security-opt seccomp={path}: {source}")]
    SeccompProfile {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid --ulimit {0:?}: expected name=soft[:hard]")]
    UlimitSyntax(String),
    #[error("invalid --ulimit {ulimit:?}: {value:?} is not a number")]
    UlimitNumber { ulimit: String, value: String },
    #[error("invalid --ulimit {0:?}: soft limit above hard limit")]
    UlimitSoftAboveHard(String),
    #[error("invalid --ulimit {ulimit:?}: unknown limit {name:?}")]
    UlimitName { ulimit: String, name: String },
    #[error("invalid --device {0:?}")]
    DeviceSyntax(String),
    #[error("invalid --device {0:?}: expected /dev/host[:/dev/container[:rwm]]")]
    DevicePath(String),
    #[error("--device {path}: {source}")]
    DeviceStat {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--device {0}: not a device node")]
    NotADevice(String),
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooSmall,
    #[error("You should always set the Memory limit when using Memoryswap limit")]
    SwapWithoutMemory,
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    #[error(
        "range of CPUs is from 0.01 to {online:.2}, as there are only {online} CPUs available"
    )]
    CpusOutOfRange { online: f64 },
    #[error("Invalid value {value} for {what}")]
    CpusetSyntax { what: &'static str, value: String },
    #[error("Requested {what} are not available - requested {requested}, available: {available}")]
    CpusetUnavailable {
        what: &'static str,
        requested: String,
        available: String,
    },
    #[error("invalid --tmpfs {destination}: option {option:?}: {why}")]
    TmpfsOption {
        destination: String,
        option: String,
        why: &'static str,
    },
    #[error("SHM size can not be less than 0")]
    ShmSize,
    #[error("Invalid value {0}, range for oom score adj is [-1000, 1000]")]
    OomScoreAdj(i64),
    #[error("invalid --tmpfs {0:?}: the mount point must be an absolute path")]
    TmpfsDestination(String),
    #[error("invalid --blkio-weight {0}: range is 10 to 1000")]
    BlkioWeight(u16),
    #[error("Minimum memory limit should be larger than memory reservation limit, see usage")]
    ReservationAboveMemory,
    #[error("Conflicting options: Nano CPUs and CPU Period cannot both be set")]
    CpusAndPeriod,
    #[error("Conflicting options: Nano CPUs and CPU Quota cannot both be set")]
    CpusAndQuota,
    #[error("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)")]
    CpuPeriodRange,
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuotaRange,
    #[error("invalid --device-cgroup-rule {0:?}: expected TYPE MAJOR:MINOR ACCESS (c 1:3 mr, b *:* rwm, a)")]
    DeviceCgroupRule(String),
    #[error("invalid --sysctl {0:?}: expected NAME=VALUE")]
    SysctlSyntax(String),
    #[error("sysctl {0:?} is not allowed: only namespaced ones are (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)")]
    SysctlNotNamespaced(String),
    #[error("sysctl {0:?} is not allowed in the host's network namespace")]
    SysctlHostNetwork(String),
    #[error("sysctl {0:?} is not allowed in the host's IPC namespace")]
    SysctlHostIpc(String),
    #[error("invalid {flag} {value:?}: expected /dev/PATH:VALUE")]
    BlkioDeviceSyntax { flag: &'static str, value: String },
    #[error("invalid {flag} {value:?}: the rate must be a positive number")]
    BlkioRate { flag: &'static str, value: String },
    #[error("invalid --blkio-weight-device {0:?}: the weight must be 10 to 1000")]
    BlkioWeightDevice(String),
    #[error("{flag} {path}: {source}")]
    BlkioDeviceStat {
        flag: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {path}: not a block device")]
    NotABlockDevice { flag: &'static str, path: String },
    #[error("invalid --memory-swappiness {0}: valid memory swappiness range is 0-100")]
    Swappiness(i64),
    #[error("invalid --cgroup-parent {0:?}: \"..\" would lead outside the cgroup root")]
    CgroupParent(String),
    #[error("invalid --cgroupns {0:?}: expected host or private")]
    Cgroupns(String),
    #[error("--cpu-rt-runtime/--cpu-rt-period: this kernel has no real-time group scheduling (no cpu.rt_runtime_us; cgroup v2 has none)")]
    NoRealtime,
    #[error("--cpu-rt-runtime {runtime} cannot be higher than --cpu-rt-period {period}")]
    RealtimeAbovePeriod { runtime: i64, period: u64 },
    #[error("invalid --cpu-rt-runtime {0}: expected -1 (unlimited) or more")]
    RealtimeRuntime(i64),
    #[error("--cpu-rt-runtime {runtime}: cgroup parent {parent} has a real-time budget of {budget} (cpu.rt_runtime_us)")]
    RealtimeAboveParent {
        runtime: i64,
        parent: String,
        budget: i64,
    },
    #[error("invalid --annotation {0:?}: expected KEY=VALUE")]
    AnnotationSyntax(String),
    #[error(
        "invalid --annotation {0:?}: keys under org.berth. and io.github.berth. are berth's own"
    )]
    AnnotationReserved(String),
    /// oci-spec refused a value (a builder's own check): a bug in this module, not in the flags.
    #[error("OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}
