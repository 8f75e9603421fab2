//! runc's command line, flag for flag, as containerd, podman and runc's own tests call it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    about = "berth's OCI runtime (runc-compatible command line)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for the state of containers
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// Write errors (and debug output) to FILE instead of only stderr
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of the log: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Enable debug output in the log
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not supported: berth-runtime manages cgroupfs directly)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility; ignored
    #[arg(long = "rootless", hide = true)]
    pub rootless_mode: Option<String>,
    /// Accepted for runc compatibility; ignored
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory (holding config.json)
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's init pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master of a terminal container
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3, 4, ...) into the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container ID
    pub id: String,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container (its process waits until `start`)
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create and start a container; in the foreground it forwards signals and exits with its status
    Run {
        /// Detach: return once the container runs
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the container's state after it exits
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Print the state of a container as JSON
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init, or with --all to every process
    Kill {
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything it holds
    Delete {
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// List containers
    List {
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
    },
    /// List the processes of a container (extra args go to ps(1))
    Ps {
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Stream a container's events (OOM) or stats as JSON lines
    Events {
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Change a running container's resource limits
    Update(crate::update::UpdateArgs),
    /// Write a default config.json (runc's defaults)
    Spec {
        #[arg(long)]
        rootless: bool,
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print the runtime-spec features document
    Features,
    /// Run a new process inside a container
    Exec(crate::execcmd::ExecArgs),
}
