//! The container commands: run, create, start, stop, kill, rm, restart, ps, logs, wait, and the
//! container half of inspect. Parsing and printing only; the engine does the work.

use crate::format::{ago, print_rows};
use crate::progress::Reporter;
use crate::{CliError, CliResult, Ctx};
use berth_engine::images::PullPolicy;
use berth_engine::listing::{status_text, ContainerFilter};
use berth_engine::mountspec;
use berth_engine::options::{parse_bytes, RunOptions};
use berth_engine::reconcile::Listing;
use berth_engine::record::Record;
use berth_engine::{Engine, EngineError};
use clap::{ArgAction, Args};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;

/// The resource flags `run`/`create` and `update` share, as Docker's.
#[derive(Args, Clone)]
pub struct ResourceFlags {
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU real-time period in microseconds (cgroup v1)
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// Limit CPU real-time runtime in microseconds (cgroup v1)
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
}

impl ResourceFlags {
    /// `--memory` and `--memory-swap` in bytes (-1: unlimited swap).
    pub fn memory_bytes(&self) -> Result<(Option<i64>, Option<i64>), String> {
        let bytes = |s: &Option<String>| {
            s.as_deref()
                .map(|v| if v == "-1" { Ok(-1) } else { parse_bytes(v) })
                .transpose()
        };
        Ok((bytes(&self.memory)?, bytes(&self.memory_swap)?))
    }

    /// `--memory-reservation` in bytes.
    pub fn reservation_bytes(&self) -> Result<Option<i64>, String> {
        self.memory_reservation
            .as_deref()
            .map(parse_bytes)
            .transpose()
    }
}

#[derive(Args, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Bind mount a volume (HOST:CTR[:ro], NAME:CTR, or CTR)
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=…,target=…[,readonly])
    #[arg(long)]
    mount: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    #[command(flatten)]
    resources: ResourceFlags,
    #[command(flatten)]
    cgroup: crate::runflags::CgroupFlags,
    /// Add a host device to the container
    #[arg(long)]
    device: Vec<String>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    ulimit: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Security options (seccomp=FILE|unconfined, no-new-privileges[=false]); berth sets
    /// no-new-privileges unless told no-new-privileges=false (images that need setuid)
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Set meta data on a container
    #[arg(short, long)]
    label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    label_file: Vec<String>,
    /// Suppress the pull output
    #[arg(short, long)]
    quiet: bool,
    /// Restart policy to apply when a container exits (no, on-failure[:N], always, unless-stopped)
    #[arg(long, default_value = "no")]
    restart: String,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<u64>,
    /// Pull image before running (always, missing, never)
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Connect a container to a network (bridge, none, host, container:NAME, or a network's name)
    #[arg(long, alias = "net", default_value = "default")]
    network: String,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// Publish a container's port(s) to the host ([IP:][HOSTPORT:]CTRPORT[/PROTO])
    #[arg(short, long)]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<std::net::IpAddr>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip, ip may be host-gateway)
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Logging driver for the container (json-file, local, none)
    #[arg(long = "log-driver", default_value = "json-file")]
    log_driver: String,
    /// Set namespaced kernel parameters (NAME=VALUE)
    #[arg(long)]
    sysctl: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    group_add: Vec<String>,
    /// IPC mode to use (private, shareable, none, host, container:NAME)
    #[arg(long, default_value = "private")]
    ipc: String,
    /// PID namespace to use (host, container:NAME)
    #[arg(long, default_value = "")]
    pid: String,
    /// UTS namespace to use (host)
    #[arg(long, default_value = "")]
    uts: String,
    /// User namespace to use: host (root is the host's root) or auto (a fresh range of ids)
    #[arg(long, default_value = "")]
    userns: String,
    /// Container UID to host UID mapping (CONTAINER_ID:HOST_ID:SIZE)
    #[arg(long)]
    uidmap: Vec<String>,
    /// Container GID to host GID mapping (CONTAINER_ID:HOST_ID:SIZE)
    #[arg(long)]
    gidmap: Vec<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(
        long = "oom-score-adj",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    oom_score_adj: i32,
    /// Add a rule to the cgroup allowed devices list ("c 1:3 mr")
    #[arg(long = "device-cgroup-rule")]
    device_cgroup_rule: Vec<String>,
    /// Mount volumes from the specified container(s) (CONTAINER[:ro|rw])
    #[arg(long = "volumes-from")]
    volumes_from: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    cidfile: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set)]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s)
    #[arg(long = "health-interval")]
    health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s)
    #[arg(long = "health-timeout")]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    health_retries: Option<u32>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period")]
    health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 5s)
    #[arg(long = "health-start-interval")]
    health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// IMAGE [COMMAND] [ARG...]: everything after the image belongs to the command, dashes included
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1.., trailing_var_arg = true)]
    image_and_command: Vec<String>,
    #[arg(skip)]
    image: String,
    #[arg(skip)]
    command: Vec<String>,
}

impl RunArgs {
    /// Splits the positional words into the image and its command.
    pub fn split(mut self) -> RunArgs {
        let mut words = std::mem::take(&mut self.image_and_command).into_iter();
        self.image = words.next().unwrap_or_default();
        self.command = words.collect();
        self
    }
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach the container's STDIN (as -a -i; input reaches it when it was made with -i)
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container (with -a -i on a -t container)
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", alias = "time")]
    time: Option<u64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Filter output based on conditions provided (status=, name= (a regular expression), id=,
    /// label=, ancestor=, exited=, health=, network=, volume=, before=, since=)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-like template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long)]
    tail: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs since timestamp (RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    until: Option<String>,
    container: String,
}

#[derive(Args)]
pub struct AttachArgs {
    /// Proxy received signals to the container's process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set)]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    container: String,
}

#[derive(Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

/// The lines of `--env-file`/`--label-file` files (`flag`), as Docker reads them: blank lines
/// and `#` comments skipped.
pub(crate) fn read_kv_files(flag: &str, files: &[String]) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| EngineError::msg(format!("{flag} {f}: {e}")))?;
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            out.push(l.to_string());
        }
    }
    Ok(out)
}

/// `-e NAME` (and an env file's bare `NAME` line) take this process's value, as the docker CLI
/// does; a name unset here stays bare, and the engine keeps it so, as Docker does. The engine checks the
/// rest.
pub(crate) fn resolve_env(entries: Vec<String>) -> Vec<String> {
    entries
        .into_iter()
        .map(|e| match std::env::var(&e) {
            Ok(v) if !e.is_empty() && !e.contains('=') => format!("{e}={v}"),
            _ => e,
        })
        .collect()
}

/// `-a/--attach` values, lower-cased and checked (`stdin`, `stdout`, `stderr`).
fn attach_streams(list: &[String]) -> Result<Vec<String>, EngineError> {
    list.iter()
        .map(|s| match s.to_ascii_lowercase().as_str() {
            v @ ("stdin" | "stdout" | "stderr") => Ok(v.to_string()),
            _ => Err(EngineError::msg(format!(
                "invalid argument {s:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
            ))),
        })
        .collect()
}

fn options(a: &RunArgs) -> Result<RunOptions, EngineError> {
    let bytes = |s: &Option<String>| -> Result<Option<i64>, EngineError> {
        s.as_deref()
            .map(|v| if v == "-1" { Ok(-1) } else { parse_bytes(v) })
            .transpose()
            .map_err(EngineError::msg)
    };
    let (memory, memory_swap) = a.resources.memory_bytes().map_err(EngineError::msg)?;
    let mut env = read_kv_files("--env-file", &a.env_file)?;
    env.extend(a.env.iter().cloned());
    let env = resolve_env(env);
    // Docker reads the label files first: `--label` overrides them.
    let mut labels = BTreeMap::new();
    for l in read_kv_files("--label-file", &a.label_file)?
        .iter()
        .chain(&a.label)
    {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    berth_engine::options::parse_restart(&a.restart).map_err(EngineError::msg)?;
    if a.rm && a.restart != "no" {
        return Err(EngineError::msg(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    a.pull.parse::<PullPolicy>()?;
    if a.detach && !a.attach.is_empty() {
        return Err(EngineError::msg(
            "conflicting options: cannot specify both --attach and --detach",
        ));
    }
    if let Some(k) = &a.detach_keys {
        berth_engine::attach::DetachKeys::parse(k).map_err(EngineError::msg)?;
    }
    let mut o = RunOptions {
        image: a.image.clone(),
        name: a.name.clone(),
        cmd: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        domainname: a.domainname.clone(),
        labels,
        tty: a.tty,
        interactive: a.interactive || a.attach.iter().any(|s| s.eq_ignore_ascii_case("stdin")),
        detach: a.detach,
        auto_remove: a.rm,
        memory,
        memory_swap,
        cpus: a.resources.cpus,
        cpu_shares: a.resources.cpu_shares,
        cpuset_cpus: a.resources.cpuset_cpus.clone(),
        cpuset_mems: a.resources.cpuset_mems.clone(),
        pids_limit: a.resources.pids_limit,
        blkio_weight: a.resources.blkio_weight,
        devices: a.device.clone(),
        ulimits: a.ulimit.clone(),
        read_only: a.read_only,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        security_opts: a.security_opt.clone(),
        init: a.init,
        restart: a.restart.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        network: a.network.clone(),
        network_aliases: a.network_alias.clone(),
        ip: a.ip,
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        expose: a.expose.clone(),
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_option.clone(),
        add_hosts: a.add_host.clone(),
        log_driver: a.log_driver.clone(),
        sysctls: a.sysctl.clone(),
        group_add: a.group_add.clone(),
        ipc: a.ipc.clone(),
        pid: a.pid.clone(),
        uts: a.uts.clone(),
        userns: a.userns.clone(),
        uidmap: a.uidmap.clone(),
        gidmap: a.gidmap.clone(),
        oom_kill_disable: a.oom_kill_disable,
        oom_score_adj: a.oom_score_adj,
        memory_reservation: a.resources.reservation_bytes().map_err(EngineError::msg)?,
        cpu_period: a.resources.cpu_period,
        cpu_quota: a.resources.cpu_quota,
        cpu_rt_period: a.resources.cpu_rt_period,
        cpu_rt_runtime: a.resources.cpu_rt_runtime,
        device_cgroup_rules: a.device_cgroup_rule.clone(),
        volumes_from: a.volumes_from.clone(),
        cidfile: a.cidfile.clone(),
        no_sig_proxy: !a.sig_proxy,
        attach: attach_streams(&a.attach)?,
        detach_keys: a.detach_keys.clone(),
        health: berth_engine::options::HealthOptions {
            cmd: a.health_cmd.clone(),
            interval: a.health_interval.clone(),
            timeout: a.health_timeout.clone(),
            retries: a.health_retries,
            start_period: a.health_start_period.clone(),
            start_interval: a.health_start_interval.clone(),
            disable: a.no_healthcheck,
        },
        // Docker's CLI sends relative sources (`-v ./dir:/x`) as absolute paths.
        volumes: a
            .volume
            .iter()
            .map(|v| mountspec::absolute_volume_flag(v))
            .collect::<Result<_, _>>()?,
        tmpfs: a.tmpfs.clone(),
        mounts: a
            .mount
            .iter()
            .map(|m| mountspec::absolute_mount_flag(m))
            .collect::<Result<_, _>>()?,
        log_opts: a.log_opt.clone(),
        shm_size: bytes(&a.shm_size)?,
        ..RunOptions::default()
    };
    a.cgroup.apply(&mut o)?;
    Ok(o)
}

/// The image for `run`/`create`, pulled per `--pull` (progress on stderr: stdout is the
/// container's).
fn image_for(e: &Engine, a: &RunArgs) -> Result<berth_image::images::ImageRecord, EngineError> {
    let policy: PullPolicy = a.pull.parse()?;
    if !a.quiet && policy != PullPolicy::Never && e.image(&a.image).is_err() {
        eprintln!("Unable to find image '{}' locally", a.image);
    }
    let reporter = Reporter::with_stream(a.quiet, true);
    e.image_for(&a.image, policy, a.platform.as_deref(), &reporter)
        .map(|(img, _)| img)
}

/// `run`: returns the exit status to leave with.
pub fn run(ctx: &Ctx, a: RunArgs) -> CliResult {
    berth_runtime::trace("run: start");
    let o = options(&a)?;
    check_cidfile(&o)?;
    let e = ctx.engine()?;
    let image = image_for(&e, &a)?;
    berth_runtime::trace("run: image found");
    let mut rec = e.create(&o, &image)?;
    print_warnings(&e);
    write_cidfile(&o, &rec.id)?;
    berth_runtime::trace("run: container created");
    if a.detach {
        if let Err(x) = berth_engine::monitor::start_detached(&e, &mut rec) {
            e.remove_after_failed_start(&rec);
            return Err(x.into());
        }
        println!("{}", rec.id);
        return Ok(0);
    }
    if o.tty {
        // A terminal goes through the monitor, so ctrl-p ctrl-q can leave the container running.
        return attach_tty(&e, &mut rec, &o, o.interactive);
    }
    let result = berth_engine::monitor::run_foreground(&e, &mut rec, &o);
    berth_runtime::trace("run: finished");
    if o.auto_remove {
        let _ = e.remove_files(&rec, true);
        berth_runtime::trace("run: removed");
    }
    match result {
        Ok(code) => Ok(code.clamp(0, 255) as u8),
        Err(x) => Err(x.into()),
    }
}

pub fn create(ctx: &Ctx, a: RunArgs) -> CliResult {
    let o = options(&a)?;
    check_cidfile(&o)?;
    let e = ctx.engine()?;
    let image = image_for(&e, &a)?;
    let rec = e.create(&o, &image)?;
    print_warnings(&e);
    write_cidfile(&o, &rec.id)?;
    println!("{}", rec.id);
    Ok(0)
}

/// `--cidfile`: refused if the file exists (another container may own it), as Docker does.
fn check_cidfile(o: &RunOptions) -> Result<(), CliError> {
    match &o.cidfile {
        Some(f) if std::path::Path::new(f).exists() => Err(CliError::new(
            format!("Container ID file found, make sure the other container isn't running or delete {f}"),
            125,
        )),
        _ => Ok(()),
    }
}

fn write_cidfile(o: &RunOptions, id: &str) -> Result<(), CliError> {
    let Some(f) = &o.cidfile else { return Ok(()) };
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(f)
        .and_then(|mut file| file.write_all(id.as_bytes()))
        .map_err(|e| CliError::new(format!("failed to write the container ID to {f}: {e}"), 125))
}

/// What the engine noted for the user, on stderr as Docker's CLI prints a daemon's warnings.
pub fn print_warnings(e: &Engine) {
    for w in e.take_warnings() {
        eprintln!("WARNING: {w}");
    }
}

pub fn start(ctx: &Ctx, a: StartArgs) -> CliResult {
    if let Some(k) = &a.detach_keys {
        berth_engine::attach::DetachKeys::parse(k).map_err(|x| CliError::new(x, 125))?;
    }
    let e = ctx.engine()?;
    let mut last = 0;
    for c in &a.containers {
        let mut rec = e.get(c)?;
        if rec.state.status == "running" {
            println!("{c}");
            continue;
        }
        let mut o = e.options(&rec)?;
        e.user_started(&mut rec)?;
        if a.attach || a.interactive {
            // Input only with -i, as Docker's `start -a` leaves a `-i` container's stdin alone.
            o.interactive = a.interactive;
            if a.detach_keys.is_some() {
                o.detach_keys = a.detach_keys.clone();
            }
            if rec.tty {
                // As `run -t`: under a monitor, so the detach keys leave it running.
                last = attach_tty(&e, &mut rec, &o, a.interactive)?.into();
                continue;
            }
            last = berth_engine::monitor::run_foreground(&e, &mut rec, &o)?;
        } else {
            berth_engine::monitor::start_detached(&e, &mut rec)?;
            println!("{c}");
        }
    }
    Ok(last.clamp(0, 255) as u8)
}

/// `stop`/`restart -s SIGNAL` as a number; None for the container's own stop signal.
fn stop_signal(a: &StopArgs) -> Result<Option<i32>, CliError> {
    a.signal
        .as_deref()
        .map(|s| {
            berth_engine::lifecycle::signal_number(s)
                .ok_or_else(|| CliError::new(format!("invalid signal: {s}"), 125))
        })
        .transpose()
}

pub fn stop(ctx: &Ctx, a: StopArgs) -> CliResult {
    let e = ctx.engine()?;
    let sig = stop_signal(&a)?;
    Ok(each(&a.containers, |c| {
        e.get(c).and_then(|mut r| e.stop_with(&mut r, sig, a.time))
    }))
}

pub fn restart(ctx: &Ctx, a: StopArgs) -> CliResult {
    let e = ctx.engine()?;
    let sig = stop_signal(&a)?;
    for c in &a.containers {
        let mut rec = e.get(c)?;
        e.stop_with(&mut rec, sig, a.time)?;
        let mut rec = e.get(c)?;
        e.user_started(&mut rec)?;
        berth_engine::monitor::start_detached(&e, &mut rec)?;
        println!("{c}");
    }
    Ok(0)
}

pub fn kill(ctx: &Ctx, a: KillArgs) -> CliResult {
    let e = ctx.engine()?;
    let sig = berth_engine::lifecycle::signal_number(&a.signal)
        .ok_or_else(|| CliError::new(format!("invalid signal: {}", a.signal), 125))?;
    Ok(each(&a.containers, |c| {
        let r = e.get(c)?;
        e.kill(&r, sig)?;
        // As Docker's: a SIGKILL returns once the container's run is recorded as ended (a
        // restart policy may start it again), so a `rm` right after it does not find it running.
        if sig == libc::SIGKILL {
            e.wait_run_ended(&r, KILL_WAIT);
        }
        Ok(())
    }))
}

/// How long a `kill` with SIGKILL waits for the container's end to be recorded.
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn rm(ctx: &Ctx, a: RmArgs) -> CliResult {
    let e = ctx.engine()?;
    Ok(each(&a.containers, |c| {
        e.remove(c, a.force, a.volumes).map(drop)
    }))
}

/// Runs `op` on each named container as Docker does: the name on success, an error line for
/// each failure, and status 1 if any failed.
pub fn each(containers: &[String], op: impl Fn(&str) -> Result<(), EngineError>) -> u8 {
    let mut failed = false;
    for c in containers {
        match op(c) {
            Ok(()) => println!("{c}"),
            Err(x) => {
                eprintln!("Error: {x}");
                failed = true;
            }
        }
    }
    u8::from(failed)
}

pub fn wait(ctx: &Ctx, a: WaitArgs) -> CliResult {
    let e = ctx.engine()?;
    for c in &a.containers {
        let rec = e.get(c)?;
        e.wait_stopped(&rec.id, None);
        let code = e
            .records
            .load(&rec.id)
            .map(|r| r.state.exit_code)
            .unwrap_or(0);
        println!("{code}");
    }
    Ok(0)
}

/// Docker's PORTS column: each published port, then each exposed one left unpublished
/// (`0.0.0.0:8080->80/tcp, 443/tcp`).
fn ports_text(e: &Engine, listing: &Listing, r: &Record) -> String {
    let mut published: Vec<berth_net::PortMapping> = e.listed_ports(listing, r);
    published.sort_by_key(|p| (p.container_port, p.proto, p.host_port));
    let mut out: Vec<String> = published.iter().map(|p| p.to_string()).collect();
    for key in &r.exposed_ports {
        if !published
            .iter()
            .any(|p| format!("{}/{}", p.container_port, p.proto) == *key)
        {
            out.push(key.clone());
        }
    }
    out.join(", ")
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`: each published port as `80/tcp -> 0.0.0.0:8080`.
pub fn port(ctx: &Ctx, a: PortArgs) -> CliResult {
    let e = ctx.engine()?;
    let r = e.get(&a.container)?;
    let want = a.private_port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut lines = Vec::new();
    for p in e.published_ports(&r) {
        let key = format!("{}/{}", p.container_port, p.proto);
        match &want {
            Some(w) if *w != key => {}
            Some(_) => lines.push(format!("{}:{}", p.host_ip, p.host_port)),
            None => lines.push(format!("{key} -> {}:{}", p.host_ip, p.host_port)),
        }
    }
    if lines.is_empty() {
        if let Some(w) = want {
            return Err(CliError::new(
                format!("No public port '{w}' published for {}", a.container),
                1,
            ));
        }
    }
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

#[derive(Args)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    private_port: Option<String>,
}

pub fn ps(ctx: &Ctx, a: PsArgs) -> CliResult {
    let e = ctx.engine()?;
    let mut rows = Vec::new();
    let mut listing = e.listing();
    let mut all = std::mem::take(&mut listing.records);
    // Newest first, as Docker lists them; -n/-l keep the last created, in every state.
    all.sort_by(|x, y| y.created.cmp(&x.created));
    let last = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n >= 0)
    };
    if let Some(n) = last {
        all.truncate(n as usize);
    }
    let filter = ContainerFilter::from_flags(&a.filter).map_err(|x| CliError::new(x, 125))?;
    filter.check(&all).map_err(|x| CliError::new(x, 125))?;
    for r in &all {
        let active = matches!(r.state.status.as_str(), "running" | "paused" | "restarting");
        if !a.all && last.is_none() && !active && !filter.names_stopped() {
            continue;
        }
        if !filter.matches(r, &all) {
            continue;
        }
        let mut command = std::iter::once(r.path.clone())
            .chain(r.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        if !a.no_trunc && command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        let id = if a.no_trunc {
            r.id.clone()
        } else {
            r.id[..12].to_string()
        };
        let size = if a.size {
            let (rw, total) = e.container_sizes(r);
            format!(
                "{} (virtual {})",
                crate::format::human_size(rw),
                crate::format::human_size(total)
            )
        } else {
            String::new()
        };
        rows.push(json!({"ID": id, "Image": r.image, "Command": format!("\"{command}\""), "CreatedAt": r.created, "Size": size,
            "Networks": r.networks.iter().map(|n| n.network.clone()).collect::<Vec<_>>().join(","),
            "RunningFor": ago(Some(&r.created)), "Status": status_text(r), "State": r.state.status, "Ports": ports_text(&e, &listing, r), "Names": r.name,
            "Labels": r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")}));
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let mut columns = vec![
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
    ];
    if a.size {
        columns.push(("SIZE", "Size"));
    }
    print_rows(&rows, a.format.as_deref(), &columns).map_err(|x| CliError::new(x, 125))?;
    Ok(0)
}

/// A `--since`/`--until` value (Docker's timetypes: a duration back from now, a date, an RFC 3339
/// time or Unix seconds) as seconds since the epoch.
fn parse_time_flag(flag: &str, s: &str) -> Result<i64, CliError> {
    berth_sys::timestamp::parse_timestamp(s, crate::format::now())
        .map_err(|x| CliError::new(format!("invalid value for \"{flag}\": {x}"), 125))
}

/// Starts a `-t` container under its monitor and attaches this terminal to it.
fn attach_tty(e: &Engine, rec: &mut Record, o: &RunOptions, stdin: bool) -> CliResult {
    std::env::set_var(berth_engine::attach::ATTACH_FIRST, "1");
    let started = berth_engine::monitor::start_detached(e, rec);
    std::env::remove_var(berth_engine::attach::ATTACH_FIRST);
    if let Err(x) = started {
        e.remove_after_failed_start(rec);
        return Err(x.into());
    }
    session(e, &rec.id, stdin, o.detach_keys.as_deref())
}

/// An attached terminal session: the container's status when it exits, 0 on detach.
fn session(e: &Engine, id: &str, stdin: bool, detach_keys: Option<&str>) -> CliResult {
    let keys = match detach_keys {
        Some(k) => berth_engine::attach::DetachKeys::parse(k).map_err(|x| CliError::new(x, 1))?,
        None => berth_engine::attach::DetachKeys::default(),
    };
    let rec = e
        .records
        .load(id)
        .map_err(|x| CliError::new(x.to_string(), 1))?;
    let forward = |sig: i32| {
        if let Ok(r) = e.records.load(id) {
            let _ = e.kill(&r, sig);
        }
    };
    let proxy: Option<&dyn Fn(i32)> = if rec.tty { None } else { Some(&forward) };
    let ended = berth_engine::attach::attach_with(&e.runroot, id, stdin, rec.tty, proxy, &keys)
        .map_err(|x| CliError::new(format!("attach: {x}"), 1))?;
    match ended {
        berth_engine::attach::Ended::Exited(code) => Ok(code.clamp(0, 255) as u8),
        berth_engine::attach::Ended::Detached => {
            eprintln!();
            Ok(0)
        }
        berth_engine::attach::Ended::Closed => {
            e.wait_stopped(id, Some(std::time::Duration::from_secs(5)));
            Ok(e.records
                .load(id)
                .map(|r| r.state.exit_code.clamp(0, 255) as u8)
                .unwrap_or(0))
        }
    }
}

/// `attach`: joins a running container's streams through its monitor's attach socket: output
/// (stdout and stderr apart), input when it was started with `-i`, signals forwarded when it has
/// no terminal (`--sig-proxy`), ctrl-p ctrl-q to leave it running; exits with its status.
pub fn attach(ctx: &Ctx, a: AttachArgs) -> CliResult {
    let e = ctx.engine()?;
    let rec = e.get(&a.container)?;
    if rec.state.status != "running" {
        return Err(CliError::new(
            "You cannot attach to a stopped container, start it first",
            1,
        ));
    }
    if !a.sig_proxy && !rec.tty {
        // Without the proxy, ctrl-c ends only this client, as with Docker.
        return session_no_proxy(&e, &rec, !a.no_stdin);
    }
    session(
        &e,
        &rec.id,
        rec.open_stdin && !a.no_stdin,
        a.detach_keys.as_deref(),
    )
}

fn session_no_proxy(e: &Engine, rec: &Record, stdin: bool) -> CliResult {
    match berth_engine::attach::attach(&e.runroot, &rec.id, rec.open_stdin && stdin, rec.tty, None)
        .map_err(|x| CliError::new(format!("attach: {x}"), 1))?
    {
        berth_engine::attach::Ended::Exited(code) => Ok(code.clamp(0, 255) as u8),
        _ => Ok(0),
    }
}

pub fn logs(ctx: &Ctx, a: LogsArgs) -> CliResult {
    let e = ctx.engine()?;
    let rec = e.get(&a.container)?;
    let path = e.log_path(&rec.id);
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time_flag("since", s))
        .transpose()?;
    if rec.log_driver == "none" {
        return Err(CliError::new(
            "configured logging driver does not support reading",
            1,
        ));
    }
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time_flag("until", s))
        .transpose()?;
    let mut entries = berth_engine::logs::read_all(&path);
    // What -f goes on from: everything read now, shown or filtered out.
    let read = entries.len();
    if let Some(t) = since {
        entries.retain(|x| crate::format::parse_rfc3339(&x.time).is_some_and(|et| et >= t));
    }
    if let Some(t) = until {
        entries.retain(|x| crate::format::parse_rfc3339(&x.time).is_some_and(|et| et <= t));
    }
    if let Some(n) = a.tail.as_deref().filter(|t| *t != "all") {
        let n: usize = n
            .parse()
            .map_err(|_| CliError::new(format!("invalid --tail {n:?}"), 125))?;
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let print = |x: &berth_engine::logs::Entry| {
        // Docker's --details puts the entry's attributes (`k=v,…`, from log-opts berth does not
        // take, so none) and a space before the line; timestamps go before both.
        let details = if a.details { " " } else { "" };
        let line = if a.timestamps {
            format!("{} {details}{}", x.time, x.log)
        } else {
            format!("{details}{}", x.log)
        };
        if x.stream == "stderr" {
            let _ = std::io::stderr().write_all(line.as_bytes());
        } else {
            let _ = std::io::stdout().write_all(line.as_bytes());
        }
    };
    entries.iter().for_each(print);
    if a.follow && until.is_none() {
        let mut seen = read;
        loop {
            let all = berth_engine::logs::read_all(&path);
            if all.len() > seen {
                all[seen..].iter().for_each(print);
                seen = all.len();
                let _ = std::io::stdout().flush();
            }
            let running = e
                .get(&rec.id)
                .map(|r| matches!(r.state.status.as_str(), "running" | "restarting"))
                .unwrap_or(false);
            if !running {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    Ok(0)
}
