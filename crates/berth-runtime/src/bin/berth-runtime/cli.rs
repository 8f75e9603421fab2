//! runc's command line, flag for flag, as containerd, podman and runc's own tests call it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    about = "Open Container Initiative runtime (berth's, with runc's command line)",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub g: Globals,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Args, Debug)]
pub struct Globals {
    /// Directory for the state of containers (an ordinary user's: under $XDG_RUNTIME_DIR)
    #[arg(long, global = true, default_value_os_t = berth_runtime::rootless::default_state_root())]
    pub root: PathBuf,
    /// Also write errors to FILE (and, with --debug, the debug lines instead of stderr)
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
    Start(IdArg),
    /// Create and start a container; in the foreground it forwards signals and exits with its status
    Run(RunArgs),
    /// Print the state of a container as JSON
    State(IdArg),
    /// Send a signal (default SIGTERM) to the container's init, or with --all to every process
    Kill(KillArgs),
    /// Delete a container and everything it holds
    Delete(DeleteArgs),
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
    /// Checkpoint a running container (not supported: berth-runtime has no CRIU integration)
    Checkpoint(CheckpointArgs),
    /// Restore a container from a checkpoint (not supported: no CRIU integration)
    Restore(CheckpointArgs),
}

/// runc's checkpoint/restore flags, accepted so that callers get a clear error, not a usage one.
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// Other CRIU options runc takes (accepted and ignored)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[derive(Args, Debug)]
pub struct IdArg {
    /// Container ID
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Detach: return once the container runs
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container ID
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container ID
    pub id: String,
}

/// Help laid out as runc's (NAME, USAGE, then the options), which scripts and runc's tests read.
fn help_template(name: &str) -> String {
    format!("NAME:\n   {name} - {{about}}\n\nUSAGE:\n   {{usage}}\n\n{{all-args}}")
}

/// The name we were started as: help and `--version` use it, so a berth-runtime installed as
/// `runc` (as drop-in runtimes are, for tools that look for that name) calls itself runc.
pub fn bin_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "berth-runtime".into())
}

/// The whole command line, with runc's help layout for every command.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let bin = bin_name();
    Cli::command()
        .bin_name(&bin)
        .help_template(help_template(&bin))
        .mut_subcommands(|s| {
            let t = help_template(&format!("{bin} {}", s.get_name()));
            s.help_template(t)
        })
}

/// Parses with the full parser (help, every command).
pub fn parse_full(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let m = command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&m)
}

/// The lifecycle commands containerd and podman call for every container, parsed with a clap
/// command that holds only the one subcommand (building all sixteen costs ~0.2 ms per call).
/// Anything unusual (help, errors, other commands) returns None and goes through `parse_full`.
pub fn parse_fast(args: &[std::ffi::OsString]) -> Option<Cli> {
    use clap::{Command, FromArgMatches};
    let name = subcommand_name(args)?;
    let sub = match name {
        "create" => CreateArgs::augment_args(Command::new("create")),
        "run" => RunArgs::augment_args(Command::new("run")),
        "start" => IdArg::augment_args(Command::new("start")),
        "state" => IdArg::augment_args(Command::new("state")),
        "kill" => KillArgs::augment_args(Command::new("kill")),
        "delete" => DeleteArgs::augment_args(Command::new("delete")),
        _ => return None,
    };
    let cmd = Globals::augment_args(Command::new("berth-runtime").disable_version_flag(true))
        .subcommand(sub);
    let m = cmd.try_get_matches_from(args).ok()?;
    let g = Globals::from_arg_matches(&m).ok()?;
    let (_, sm) = m.subcommand()?;
    let cmd = match name {
        "create" => Cmd::Create(CreateArgs::from_arg_matches(sm).ok()?),
        "run" => Cmd::Run(RunArgs::from_arg_matches(sm).ok()?),
        "start" => Cmd::Start(IdArg::from_arg_matches(sm).ok()?),
        "state" => Cmd::State(IdArg::from_arg_matches(sm).ok()?),
        "kill" => Cmd::Kill(KillArgs::from_arg_matches(sm).ok()?),
        _ => Cmd::Delete(DeleteArgs::from_arg_matches(sm).ok()?),
    };
    Some(Cli { g, cmd: Some(cmd) })
}

/// The first word that is not a global flag or a global flag's value.
fn subcommand_name(args: &[std::ffi::OsString]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        match a {
            "--root" | "--log" | "--log-format" | "--rootless" | "--criu" => {
                it.next()?;
            }
            "--debug" | "--systemd-cgroup" => {}
            _ if a.starts_with("--") && a.contains('=') => {}
            _ if a.starts_with('-') => return None,
            _ => return Some(a),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn both(line: &str) -> (String, String) {
        let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
        let fast = parse_fast(&args).expect("fast path");
        let slow = Cli::try_parse_from(&args).unwrap();
        (format!("{fast:?}"), format!("{slow:?}"))
    }

    #[test]
    fn fast_path_parses_like_the_full_parser() {
        for line in [
            "berth-runtime --root /r --log /l --log-format json create --bundle /b --pid-file /p --console-socket /s --no-pivot --no-new-keyring --preserve-fds 2 id1",
            "berth-runtime --root=/r create -b /b id1",
            "berth-runtime --debug run -d --keep -b /b id2",
            "berth-runtime start id3",
            "berth-runtime --root /r state id3",
            "berth-runtime kill -a id4 KILL",
            "berth-runtime kill id4",
            "berth-runtime --systemd-cgroup delete -f id5",
        ] {
            let (fast, slow) = both(line);
            assert_eq!(fast, slow, "{line}");
        }
    }

    #[test]
    fn unusual_lines_take_the_full_parser() {
        for line in [
            "berth-runtime -v",
            "berth-runtime create --help",
            "berth-runtime create",
            "berth-runtime list",
            "berth-runtime create --bogus x",
        ] {
            let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            assert!(parse_fast(&args).is_none(), "{line}");
        }
    }
}
