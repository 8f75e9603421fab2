//! `diff`, `commit` and `cp`: what a container changed, that change as a new image, and files in and
//! out of a container. Parsing and printing only; the engine does the work.

use crate::format::human_size;
use crate::{CliError, CliResult, Ctx};
use berth_engine::commit::CommitOptions;
use berth_engine::copy::{self, CpPath};
use berth_engine::Engine;
use clap::{ArgAction, Args};

/// The engine, for commands whose failures exit 1.
fn engine(ctx: &Ctx) -> Result<Engine, CliError> {
    ctx.engine().map_err(|e| CliError::new(e.message, 1))
}

#[derive(Args)]
pub struct DiffArgs {
    container: String,
}

#[derive(Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH or - (a tar stream on stdin)
    #[arg(allow_hyphen_values = true)]
    src: String,
    /// DEST_PATH, - (a tar stream on stdout) or CONTAINER:DEST_PATH
    #[arg(allow_hyphen_values = true)]
    dest: String,
}

pub fn diff(ctx: &Ctx, a: DiffArgs) -> CliResult {
    let e = engine(ctx)?;
    let rec = e.get(&a.container).map_err(CliError::status1)?;
    let mut out = String::new();
    for c in berth_engine::changes::changes(&e, &rec).map_err(CliError::status1)? {
        out.push_str(&format!("{} /{}\n", c.kind.letter(), c.path.display()));
    }
    print!("{out}");
    Ok(0)
}

pub fn commit(ctx: &Ctx, a: CommitArgs) -> CliResult {
    let e = engine(ctx)?;
    let o = CommitOptions {
        message: a.message,
        author: a.author,
        changes: a.change,
        pause: a.pause,
        reference: a.reference,
    };
    let img = berth_engine::commit::commit(&e, &a.container, &o).map_err(CliError::status1)?;
    println!("{}", img.id);
    Ok(0)
}

/// Docker's split of a `cp` argument: `NAME:PATH` names a container unless it is an absolute path
/// or starts with `.`.
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') && !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

pub fn cp(ctx: &Ctx, a: CpArgs) -> CliResult {
    let (src_ctr, src) = split(&a.src);
    let (dst_ctr, dst) = split(&a.dest);
    let e = engine(ctx)?;
    match (src_ctr, dst_ctr) {
        (Some(_), Some(_)) => Err(CliError::new(
            "copying between containers is not supported",
            1,
        )),
        (None, None) => Err(CliError::new(
            "must specify at least one container source",
            1,
        )),
        (Some(c), None) => {
            let rec = e.get(c).map_err(CliError::status1)?;
            let sp = CpPath::parse(src, true);
            if dst == "-" {
                let out = std::io::stdout().lock();
                copy::copy_out_stream(&e, &rec, &sp, out, a.follow_link)
                    .map_err(CliError::status1)?;
                return Ok(0);
            }
            let n = copy::copy_out(&e, &rec, &sp, &CpPath::parse(dst, false), a.follow_link)
                .map_err(CliError::status1)?;
            if !a.quiet {
                eprintln!("Successfully copied {} to {dst}", human_size(n));
            }
            Ok(0)
        }
        (None, Some(c)) => {
            let rec = e.get(c).map_err(CliError::status1)?;
            let dp = CpPath::parse(dst, true);
            if src == "-" {
                let input = std::io::stdin().lock();
                copy::copy_in_stream(&e, &rec, input, &dp, a.archive).map_err(CliError::status1)?;
                return Ok(0);
            }
            let sp = CpPath::parse(src, false);
            let n = copy::copy_in(&e, &rec, &sp, &dp, a.follow_link, a.archive)
                .map_err(CliError::status1)?;
            if !a.quiet {
                eprintln!("Successfully copied {} to {c}:{dst}", human_size(n));
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn cp_arguments_split_like_docker() {
        assert_eq!(split("c1:/etc"), (Some("c1"), "/etc"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("-"), (None, "-"));
    }
}
