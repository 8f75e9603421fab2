//! `exec`: a new process in a running container. Parsing only; `Engine::exec` does the work.

use crate::{CliError, CliResult, Ctx};
use berth_engine::exec::ExecRequest;
use berth_engine::EngineError;
use clap::Args;

#[derive(Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Override the key sequence for detaching (with -i -t; ctrl-p,ctrl-q by default): the
    /// command runs on
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn exec(ctx: &Ctx, a: ExecArgs) -> CliResult {
    // Docker reads the files first: `-e` overrides them.
    let mut env = crate::containers::read_kv_files("--env-file", &a.env_file)?;
    env.extend(a.env);
    let req = ExecRequest {
        command: a.command,
        env: crate::containers::resolve_env(env),
        workdir: a.workdir,
        user: a.user,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
        // Docker's default: ctrl-p ctrl-q leaves an `exec -it` running.
        detach_keys: Some(a.detach_keys.unwrap_or_else(|| "ctrl-p,ctrl-q".into())),
    };
    match ctx.engine()?.exec(&a.container, &req) {
        Ok(code) => Ok(code.clamp(0, 255) as u8),
        // Docker's `exec` into a stopped container is an error response: status 1.
        Err(e @ EngineError::NotRunning(_)) => Err(CliError::new(e.to_string(), 1)),
        Err(e) => Err(e.into()),
    }
}
