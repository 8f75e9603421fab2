//! `container prune`, `rename`, and the `container` group's names for diff, commit and cp.
//! Parsing and printing only; the engine does the work.

use crate::changecmd::{CommitArgs, CpArgs, DiffArgs};
use crate::format::human_size;
use crate::{CliError, CliResult, Ctx};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
}

#[derive(Args)]
pub struct PruneArgs {
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
    match c {
        ContainerCommand::Prune(a) => prune(ctx, a),
        ContainerCommand::Rename(a) => rename(ctx, a),
        ContainerCommand::Diff(a) => crate::changecmd::diff(ctx, a),
        ContainerCommand::Commit(a) => crate::changecmd::commit(ctx, a),
        ContainerCommand::Cp(a) => crate::changecmd::cp(ctx, a),
    }
}

pub fn rename(ctx: &Ctx, a: RenameArgs) -> CliResult {
    let e = ctx.engine().map_err(|e| CliError::new(e.message, 1))?;
    berth_engine::rename::rename(&e, &a.container, &a.new_name).map_err(CliError::status1)?;
    Ok(0)
}

/// Removes every container that is not running (through the engine's `rm`, which refuses one that
/// started meanwhile); prints their IDs and the writable-layer bytes freed.
pub fn prune(ctx: &Ctx, a: PruneArgs) -> CliResult {
    if !a.force && !crate::volumecmd::confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let e = ctx.engine().map_err(|e| CliError::new(e.message, 1))?;
    let mut gone = Vec::new();
    let mut bytes = 0;
    for r in e.list() {
        if matches!(r.state.status.as_str(), "running" | "paused" | "restarting") {
            continue;
        }
        let size = berth_engine::changes::upper_size(&e, &r.id);
        if let Ok(id) = e.remove(&r.id, false, false) {
            gone.push(id);
            bytes += size;
        }
    }
    if !gone.is_empty() {
        println!("Deleted Containers:\n{}\n", gone.join("\n"));
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}
