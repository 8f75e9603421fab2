//! berth-runtime: runc's command line over the berth runtime library, for containerd, podman and
//! Kubernetes. Parses, calls the library, prints; errors are one line on stderr (and in --log).

mod cli;
mod events;
mod execcmd;
mod update;

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;

use berth_runtime::create::{self, CreateOptions};
use berth_runtime::error::{Context, Error, Result};
use berth_runtime::ops;
use berth_runtime::state::{ContainerState, Status};
use cli::{Cli, Cmd, CreateArgs};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match cli::parse_fast(&args) {
        Some(c) => Ok(c),
        None => cli::parse_full(&args),
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            let what = e
                .get(clap::error::ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            berth_runtime::warn(&format!(
                "{}: No help topic for '{what}': not a command (see --help for the commands)",
                cli::bin_name()
            ));
            std::process::exit(1);
        }
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    if cli.g.debug {
        set_debug_log(&cli);
    }
    berth_runtime::trace("arguments parsed");
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            log_error(&cli, &e);
            1
        }
    };
    std::process::exit(code);
}

/// One log line in runc's shapes: logrus text (`time=… level=… msg=…`) or JSON.
fn log_line(json: bool, level: &str, msg: &str) -> String {
    let time = berth_sys::time::now_rfc3339_nanos();
    if json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time={time:?} level={level} msg={msg:?}")
    }
}

/// `--debug`: the create path's phases as debug lines, to --log if given, else to stderr.
fn set_debug_log(cli: &Cli) {
    let json = cli.g.log_format == "json";
    let file = match &cli.g.log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok(),
        // A close-on-exec copy of our stderr: the container's init, which logs too, later puts
        // its terminal or stdio on fd 2, and debug lines must not land in the container's output.
        None => std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from),
    };
    berth_runtime::set_debug_sink(Box::new(move |msg| {
        if let Some(f) = &file {
            let mut f: &std::fs::File = f;
            let _ = writeln!(f, "{}", log_line(json, "debug", msg));
        }
    }));
}

fn log_error(cli: &Cli, e: &Error) {
    berth_runtime::warn(&format!("berth-runtime: {e}"));
    if let Some(path) = &cli.g.log {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(
                f,
                "{}",
                log_line(cli.g.log_format == "json", "error", &e.to_string())
            );
        }
    }
}

fn hierarchy(cli: &Cli) -> Result<berth_cgroups::Hierarchy> {
    if cli.g.systemd_cgroup {
        return Err(Error::msg("--systemd-cgroup: systemd cgroup management is not supported; berth-runtime manages cgroupfs directly (drop the flag)"));
    }
    Ok(berth_cgroups::Hierarchy::detect()?)
}

fn create_options(cli: &Cli, a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        root: cli.g.root.clone(),
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        proxy_terminal: false,
        parent_death_signal: None,
    }
}

fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.g.version {
        println!(
            "{} version {}\ncommit: {}\nspec: 1.1.0",
            cli::bin_name(),
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_COMMIT").unwrap_or("unknown")
        );
        return Ok(0);
    }
    if cli.g.log_format != "text" && cli.g.log_format != "json" {
        berth_runtime::bail!("--log-format {:?}: must be text or json", cli.g.log_format);
    }
    let Some(cmd) = &cli.cmd else {
        cli::command().print_help().ctx("help")?;
        return Ok(0);
    };
    let root = cli.g.root.as_path();
    match cmd {
        Cmd::Create(a) => {
            let h = hierarchy(cli)?;
            create::create(create_options(cli, a), &h)?;
        }
        Cmd::Start(a) => ops::start(root, &a.id)?,
        Cmd::Run(r) => return run(cli, &r.create, r.detach, r.keep),
        Cmd::State(a) => {
            let st = ContainerState::load(root, &a.id)?;
            let json = st.to_oci_json(st.status(root));
            println!("{}", serde_json::to_string_pretty(&json).ctx("state")?);
        }
        Cmd::Kill(k) => ops::kill(root, &k.id, parse_signal(&k.signal)?, k.all)?,
        Cmd::Delete(d) => ops::delete(root, &d.id, d.force)?,
        Cmd::List { quiet, format } => list(root, *quiet, format)?,
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps(root, id, format, ps_args)?,
        Cmd::Pause { id } => ops::pause(root, id)?,
        Cmd::Resume { id } => ops::resume(root, id)?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => events::run(root, id, *stats, interval)?,
        Cmd::Update(a) => update::run(root, a)?,
        Cmd::Spec { rootless, bundle } => {
            berth_runtime::defaults::write_spec(bundle, *rootless).ctx("spec")?
        }
        Cmd::Features => println!(
            "{}",
            serde_json::to_string_pretty(&berth_runtime::features::features()).ctx("features")?
        ),
        Cmd::Checkpoint(c) | Cmd::Restore(c) => {
            if c.parent_path.as_ref().is_some_and(|p| p.is_absolute()) {
                berth_runtime::bail!("--parent-path must be relative to --image-path");
            }
            if let (Some(parent), Some(image)) = (&c.parent_path, &c.image_path) {
                if !image.join(parent).is_dir() {
                    berth_runtime::bail!(
                        "invalid --parent-path {}: not a directory under --image-path",
                        parent.display()
                    );
                }
            }
            berth_runtime::bail!(
                "checkpoint/restore is not supported: berth-runtime has no CRIU integration"
            );
        }
        Cmd::Exec(a) => {
            berth_runtime::exec::reexec_from_sealed_memfd()?;
            // Like runc: a failure of exec itself is 255, so it never looks like the process's status.
            return execcmd::run(root, a).or_else(|e| {
                log_error(cli, &Error::msg(format!("exec failed: {e}")));
                Ok(255)
            });
        }
    }
    Ok(0)
}

/// create + start; in the foreground, wait with signals forwarded and exit with the container's status.
fn run(cli: &Cli, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    let h = hierarchy(cli)?;
    if !detach {
        // Before the clone: no signal (SIGCHLD above all) can slip past our wait.
        berth_runtime::signals::block_all();
    }
    let mut opts = create_options(cli, a);
    // A terminal in the foreground without a console socket: we hold the pty master ourselves.
    opts.proxy_terminal = !detach;
    let mut created = create::create(opts, &h)?;
    let master = created.master.take();
    let st = match ops::start_created(&cli.g.root, created) {
        Ok(st) => st,
        Err(e) => {
            let _ = ops::delete(&cli.g.root, &a.id, true);
            return Err(e);
        }
    };
    if detach {
        return Ok(0);
    }
    berth_runtime::trace("started");
    let code = match master {
        Some(m) => berth_runtime::ttyproxy::proxy(m, st.pid)?,
        None => berth_runtime::signals::forward_until_exit(st.pid)?,
    };
    berth_runtime::trace("container exited");
    if !keep {
        ops::destroy(&cli.g.root, &st)?;
    }
    berth_runtime::trace("destroyed");
    Ok(code)
}

pub fn parse_signal(s: &str) -> Result<i32> {
    berth_sys::signal::parse_signal(s)
        .ok_or_else(|| berth_runtime::error::Error::msg(format!("invalid signal {s:?}")))
}

fn list(root: &Path, quiet: bool, format: &str) -> Result<()> {
    let all = ops::list(root)?;
    if quiet {
        for st in &all {
            println!("{}", st.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<_> = all
                .iter()
                .map(|st| {
                    let status = st.status(root);
                    serde_json::json!({
                        "ociVersion": "1.1.0", "id": st.id, "pid": if status == Status::Stopped { 0 } else { st.pid },
                        "status": status.to_string(), "bundle": st.bundle, "rootfs": st.rootfs, "created": st.created,
                        "annotations": st.annotations(), "owner": st.owner,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        "table" => {
            println!(
                "{:<12} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for st in &all {
                let status = st.status(root);
                let pid = if status == Status::Stopped { 0 } else { st.pid };
                let owner = if st.owner.is_empty() {
                    "root"
                } else {
                    &st.owner
                };
                println!(
                    "{:<12} {:<8} {:<10} {:<40} {:<31} {owner}",
                    st.id,
                    pid,
                    status,
                    st.bundle.display(),
                    st.created
                );
            }
        }
        f => berth_runtime::bail!("list --format {f:?}: must be table or json"),
    }
    Ok(())
}

fn ps(root: &Path, id: &str, format: &str, args: &[String]) -> Result<()> {
    let pids = ops::pids(root, id)?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids).ctx("ps")?);
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if args.is_empty() {
                vec!["-ef".into()]
            } else {
                args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .ctx("run ps")?;
            if !out.status.success() {
                berth_runtime::bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| Error::msg("ps: no PID column in its output"))?;
            println!("{header}");
            for l in lines {
                if let Some(p) = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok())
                {
                    if pids.contains(&p) {
                        println!("{l}");
                    }
                }
            }
            Ok(())
        }
        f => berth_runtime::bail!("ps --format {f:?}: must be table or json"),
    }
}
