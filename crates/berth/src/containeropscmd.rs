//! `export` (a container's filesystem as a tar) and `update` (its resources and restart policy
//! after the fact). Parsing and printing only: the engine's `export` and `update` do the work.

use crate::{CliError, CliResult, Ctx};
use berth_engine::update::UpdateRequest;
use clap::Args;
use std::io::IsTerminal;

#[derive(Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    container: String,
}

#[derive(Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    resources: crate::containers::ResourceFlags,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> CliResult {
    let e = ctx.engine()?;
    match &a.output {
        Some(path) => {
            let tmp = path.with_extension("berth-partial");
            let f = std::fs::File::create(&tmp)
                .map_err(|x| CliError::new(format!("{}: {x}", tmp.display()), 1))?;
            let done = e.export(&a.container, std::io::BufWriter::new(f));
            if let Err(x) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(CliError::status1(x));
            }
            std::fs::rename(&tmp, path)
                .map_err(|x| CliError::new(format!("{}: {x}", path.display()), 1))?;
        }
        None if std::io::stdout().is_terminal() => {
            return Err(CliError::new(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                1,
            ))
        }
        None => e
            .export(&a.container, std::io::stdout().lock())
            .map_err(CliError::status1)?,
    }
    Ok(0)
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> CliResult {
    let r = &a.resources;
    let (memory, memory_swap) = r.memory_bytes().map_err(CliError::usage)?;
    let req = UpdateRequest {
        memory,
        memory_swap,
        cpus: r.cpus,
        cpu_shares: r.cpu_shares,
        cpuset_cpus: r.cpuset_cpus.clone(),
        pids_limit: r.pids_limit,
        blkio_weight: r.blkio_weight,
        cpuset_mems: r.cpuset_mems.clone(),
        memory_reservation: r.reservation_bytes().map_err(CliError::usage)?,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_rt_period: r.cpu_rt_period,
        cpu_rt_runtime: r.cpu_rt_runtime,
        restart: a.restart.clone(),
    };
    let e = ctx.engine()?;
    Ok(crate::containers::each(&a.containers, |c| {
        e.update(c, &req).map(drop)
    }))
}
