//! The container's process in the spec: who it runs as, what it runs, its environment and
//! terminal, its rlimits (Docker's nofile default and `--ulimit`), and the confinement decided by
//! `security`. It reads no files and decides no security policy itself.

use super::security::Confinement;
use super::{from_name, SpecError, SpecInput};
use crate::user::ResolvedUser;
use oci_spec::runtime::{
    BoxBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, User,
    UserBuilder,
};

/// Docker's default open-file limit (soft and hard), unless `--ulimit nofile=…` says otherwise.
const DEFAULT_NOFILE: u64 = 1024;

/// The process to run: `SpecInput`'s command, environment and user, confined by `confinement`.
pub fn process(i: &SpecInput, confinement: &Confinement) -> Result<Process, SpecError> {
    let o = i.opts;
    let mut process = ProcessBuilder::default()
        .terminal(o.tty)
        .user(user(&i.user)?)
        .args(i.args.clone())
        .env(i.env.clone())
        .cwd(&i.cwd)
        .capabilities(confinement.capability_sets())
        .rlimits(rlimits(&o.ulimits)?)
        .no_new_privileges(confinement.no_new_privileges)
        .oom_score_adj(0)
        .build()?;
    if o.tty {
        // The size a terminal starts with until the client sends its own.
        process.set_console_size(Some(
            BoxBuilder::default().height(24u64).width(80u64).build()?,
        ));
    }
    Ok(process)
}

fn user(u: &ResolvedUser) -> Result<User, SpecError> {
    Ok(UserBuilder::default()
        .uid(u.uid)
        .gid(u.gid)
        .additional_gids(u.additional_gids.clone())
        .build()?)
}

/// Docker's nofile default, then each `--ulimit` in order (a later one replaces an earlier one
/// of the same kind, the default included).
pub fn rlimits(ulimits: &[String]) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut rlimits = vec![rlimit(
        PosixRlimitType::RlimitNofile,
        DEFAULT_NOFILE,
        DEFAULT_NOFILE,
    )?];
    for u in ulimits {
        let r = ulimit(u)?;
        rlimits.retain(|x| x.typ() != r.typ());
        rlimits.push(r);
    }
    Ok(rlimits)
}

/// Parses `--ulimit nofile=1024:2048` (or `nofile=1024`: soft and hard the same; a negative
/// value is unlimited).
pub fn ulimit(u: &str) -> Result<PosixRlimit, SpecError> {
    let (name, values) = u
        .split_once('=')
        .ok_or_else(|| SpecError::UlimitSyntax(u.into()))?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let number = |v: &str| {
        v.parse::<i64>().map_err(|_| SpecError::UlimitNumber {
            ulimit: u.into(),
            value: v.into(),
        })
    };
    let (soft, hard) = (number(soft)?, number(hard)?);
    if soft > hard {
        return Err(SpecError::UlimitSoftAboveHard(u.into()));
    }
    let typ = from_name(&format!("RLIMIT_{}", name.to_ascii_uppercase())).ok_or_else(|| {
        SpecError::UlimitName {
            ulimit: u.into(),
            name: name.into(),
        }
    })?;
    let unlimited_if_negative = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    rlimit(
        typ,
        unlimited_if_negative(soft),
        unlimited_if_negative(hard),
    )
}

fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> Result<PosixRlimit, SpecError> {
    Ok(PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()?)
}
