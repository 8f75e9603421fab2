//! `container …`: Docker's management group for containers. Every subcommand is the top-level
//! command of the same name (the same arguments, the same handler), plus `container ls`,
//! `container inspect` (containers only), `container prune` and `rename`. Parsing and printing
//! only; the engine does the work.

use crate::changecmd::{CommitArgs, CpArgs, DiffArgs};
use crate::containers::{
    AttachArgs, KillArgs, LogsArgs, PortArgs, PsArgs, RmArgs, RunArgs, StartArgs, StopArgs,
    WaitArgs,
};
use crate::execcmd::ExecArgs;
use crate::format::human_size;
use crate::imagecmd::ContainerInspectArgs;
use crate::observe::{PauseArgs, TopArgs};
use crate::statscmd::StatsArgs;
use crate::{CliError, CliResult, Ctx};
use berth_engine::filters::Filters;
use berth_engine::prune::PRUNE_FILTERS;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Execute a command in a running container
    Exec(Box<ExecArgs>),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
}

#[derive(Args)]
pub struct PruneArgs {
    /// Provide filter values (until=<timestamp|duration>, label=<key>[=<value>], label!=…)
    #[arg(long)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Args)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn run(ctx: &Ctx, c: ContainerCommand) -> CliResult {
    use crate::containers as c_;
    let plain = |r: Result<(), CliError>| r.map(|()| 0);
    match c {
        ContainerCommand::Attach(a) => c_::attach(ctx, a),
        ContainerCommand::Commit(a) => crate::changecmd::commit(ctx, a),
        ContainerCommand::Cp(a) => crate::changecmd::cp(ctx, a),
        ContainerCommand::Create(a) => c_::create(ctx, a.split()),
        ContainerCommand::Diff(a) => crate::changecmd::diff(ctx, a),
        ContainerCommand::Exec(a) => crate::execcmd::exec(ctx, *a),
        ContainerCommand::Inspect(a) => plain(crate::imagecmd::inspect_containers(ctx, a)),
        ContainerCommand::Kill(a) => c_::kill(ctx, a),
        ContainerCommand::Logs(a) => c_::logs(ctx, a),
        ContainerCommand::Ls(a) => c_::ps(ctx, a),
        ContainerCommand::Pause(a) => crate::observe::pause(ctx, a, false),
        ContainerCommand::Port(a) => c_::port(ctx, a),
        ContainerCommand::Prune(a) => prune(ctx, a),
        ContainerCommand::Rename(a) => rename(ctx, a),
        ContainerCommand::Restart(a) => c_::restart(ctx, a),
        ContainerCommand::Rm(a) => c_::rm(ctx, a),
        ContainerCommand::Run(a) => c_::run(ctx, a.split()),
        ContainerCommand::Start(a) => c_::start(ctx, a),
        ContainerCommand::Stats(a) => crate::statscmd::stats(ctx, a),
        ContainerCommand::Stop(a) => c_::stop(ctx, a),
        ContainerCommand::Top(a) => crate::observe::top(ctx, a),
        ContainerCommand::Unpause(a) => crate::observe::pause(ctx, a, true),
        ContainerCommand::Wait(a) => c_::wait(ctx, a),
    }
}

pub fn rename(ctx: &Ctx, a: RenameArgs) -> CliResult {
    let e = ctx.engine().map_err(|e| CliError::new(e.message, 1))?;
    berth_engine::rename::rename(&e, &a.container, &a.new_name).map_err(CliError::status1)?;
    Ok(0)
}

/// `container prune`: Docker's question, then the IDs removed and the bytes freed.
pub fn prune(ctx: &Ctx, a: PruneArgs) -> CliResult {
    let filters = parse_filters(&a.filter)?;
    if !a.force && !crate::prompt::confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let e = ctx.engine().map_err(|e| CliError::new(e.message, 1))?;
    let (text, bytes) = prune_containers(&e, &filters)?;
    if !text.is_empty() {
        println!("{text}");
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}

/// `--filter` of the prune commands, checked before anything is asked or removed.
pub fn parse_filters(raw: &[String]) -> Result<Filters, CliError> {
    Filters::parse(raw, PRUNE_FILTERS).map_err(|x| CliError::new(x.to_string(), 1))
}

/// Prunes containers; returns Docker's `Deleted Containers:` section (empty when none went)
/// and the bytes freed. Shared with `system prune`.
pub fn prune_containers(
    e: &berth_engine::Engine,
    filters: &Filters,
) -> Result<(String, u64), CliError> {
    let (gone, bytes) = e.prune_containers(filters).map_err(CliError::status1)?;
    if gone.is_empty() {
        return Ok((String::new(), bytes));
    }
    let mut text = String::from("Deleted Containers:\n");
    for id in gone {
        text.push_str(&id);
        text.push('\n');
    }
    Ok((text, bytes))
}
