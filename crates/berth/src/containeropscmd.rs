//! `export` (a container's filesystem as a tar) and `update` (its resources and restart policy
//! after the fact). Parsing and printing only: the engine's `export` and `update` do the work.

use crate::{CliError, CliResult, Ctx};
use berth_engine::options::parse_bytes;
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
    /// Memory limit
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
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
    let bytes = |s: &Option<String>| -> Result<Option<i64>, CliError> {
        s.as_deref()
            .map(|v| if v == "-1" { Ok(-1) } else { parse_bytes(v) })
            .transpose()
            .map_err(CliError::usage)
    };
    let req = UpdateRequest {
        memory: bytes(&a.memory)?,
        memory_swap: bytes(&a.memory_swap)?,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        blkio_weight: a.blkio_weight,
        restart: a.restart.clone(),
    };
    let e = ctx.engine()?;
    Ok(crate::containers::each(&a.containers, |c| {
        e.update(c, &req).map(drop)
    }))
}
