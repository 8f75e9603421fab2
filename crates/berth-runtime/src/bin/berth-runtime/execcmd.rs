//! `exec`: builds the process to run from `-p process.json` or from the container's own process
//! with the command line's overrides, then hands it to the library.

use std::path::PathBuf;

use clap::Args;
use oci_spec::runtime::{Capability, Process};

use berth_runtime::error::{Context, Error, Result};
use berth_runtime::exec::ExecOptions;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Allocate a pseudo-TTY (needs --console-socket)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Detach from the process
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variables (KEY=VALUE)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// JSON file with the whole process (runtime-spec `process`)
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Add a capability to the process's sets
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Join a sub-cgroup of the container's: [CONTROLLER[,CONTROLLER]:]PATH (repeatable)
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// Accepted for runc compatibility
    #[arg(long = "apparmor", hide = true)]
    pub apparmor: Option<String>,
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn build_process(a: &ExecArgs, base: &Process) -> Result<Process> {
    if let Some(path) = &a.process {
        let data =
            std::fs::read(path).with_ctx(|| format!("exec: process file {}", path.display()))?;
        // Like runc, fields left out take their zero values (user 0:0, cwd "/").
        let mut v: serde_json::Value = serde_json::from_slice(&data)
            .with_ctx(|| format!("exec: process file {}", path.display()))?;
        berth_runtime::spec::drop_unknown_capabilities(&mut v);
        if let Some(obj) = v.as_object_mut() {
            obj.entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
            obj.entry("cwd").or_insert_with(|| serde_json::json!("/"));
        }
        return serde_json::from_value(v)
            .with_ctx(|| format!("exec: process file {}", path.display()));
    }
    if a.command.is_empty() {
        return Err(Error::msg(
            "exec: no command given (usage: exec [flags] ID COMMAND [ARG...])",
        ));
    }
    let mut p = base.clone();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(c) = &a.cwd {
        p.set_cwd(c.clone());
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = u
            .split_once(':')
            .map_or((u.as_str(), None), |(x, y)| (x, Some(y)));
        user.set_uid(
            uid.parse()
                .map_err(|_| Error::msg(format!("exec: --user {u:?}: uid must be a number")))?,
        );
        user.set_gid(
            gid.map(|g| g.parse())
                .transpose()
                .map_err(|_| Error::msg(format!("exec: --user {u:?}: gid must be a number")))?
                .unwrap_or(0),
        );
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(c.clone()))
                .map_err(|_| Error::msg(format!("exec: --cap {c:?}: unknown capability")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            caps.set_inheritable(add(caps.inheritable()));
            caps.set_ambient(add(caps.ambient()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

pub fn run(root: &std::path::Path, a: &ExecArgs) -> Result<i32> {
    let st = berth_runtime::state::ContainerState::load(root, &a.id)?;
    let base = st.config.process().clone().unwrap_or_default();
    let process = build_process(a, &base)?;
    berth_runtime::exec::exec(ExecOptions {
        root: root.to_path_buf(),
        id: a.id.clone(),
        process,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups: a.cgroup.clone(),
        detach_keys: None,
    })
}
