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
        .oom_score_adj(o.oom_score_adj)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocispec::security::confinement;
    use crate::ocispec::tests::input;
    use crate::options::RunOptions;

    fn process_for(o: &RunOptions) -> Process {
        process(&input(o), &confinement(o).unwrap()).unwrap()
    }

    fn ulimit_err(u: &str) -> String {
        ulimit(u).unwrap_err().to_string()
    }

    #[test]
    fn process_runs_the_command_as_the_resolved_user() {
        let p = process_for(&RunOptions::default());
        assert_eq!(p.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(p.env().as_deref(), Some(&["PATH=/bin".to_string()][..]));
        assert_eq!(p.cwd().to_str(), Some("/srv"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[10, 20][..]));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.console_size(), None);
        assert_eq!(p.oom_score_adj(), Some(0));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
    }

    #[test]
    fn tty_gets_a_terminal_of_80_by_24() {
        let o = RunOptions {
            tty: true,
            ..RunOptions::default()
        };
        let p = process_for(&o);
        assert_eq!(p.terminal(), Some(true));
        let size = p.console_size().unwrap();
        assert_eq!((size.width(), size.height()), (80, 24));
    }

    #[test]
    fn no_new_privileges_false_reaches_the_process() {
        let o = RunOptions {
            security_opts: vec!["no-new-privileges=false".into()],
            ..RunOptions::default()
        };
        assert_eq!(process_for(&o).no_new_privileges(), Some(false));
    }

    #[test]
    fn nofile_is_1024_unless_a_ulimit_replaces_it() {
        let kinds = |r: Vec<PosixRlimit>| -> Vec<_> {
            r.iter().map(|r| (r.typ(), r.soft(), r.hard())).collect()
        };
        let default = kinds(rlimits(&[]).unwrap());
        assert_eq!(default, [(PosixRlimitType::RlimitNofile, 1024, 1024)]);
        let set = rlimits(&["nproc=5".into(), "nofile=10:20".into(), "NPROC=7".into()]).unwrap();
        assert_eq!(
            kinds(set),
            [
                (PosixRlimitType::RlimitNofile, 10, 20),
                (PosixRlimitType::RlimitNproc, 7, 7)
            ]
        );
    }

    #[test]
    fn ulimit_takes_soft_and_hard_and_negative_is_unlimited() {
        let r = ulimit("core=-1").unwrap();
        assert_eq!(
            (r.typ(), r.soft(), r.hard()),
            (PosixRlimitType::RlimitCore, u64::MAX, u64::MAX)
        );
        let r = ulimit("memlock=-1:-1").unwrap();
        assert_eq!((r.soft(), r.hard()), (u64::MAX, u64::MAX));
        let r = ulimit("stack=8").unwrap();
        assert_eq!(
            (r.typ(), r.soft(), r.hard()),
            (PosixRlimitType::RlimitStack, 8, 8)
        );
    }

    #[test]
    fn ulimit_errors_name_the_flag_and_the_fault() {
        let expected = [
            (
                "nofile",
                r#"invalid --ulimit "nofile": expected name=soft[:hard]"#,
            ),
            (
                "nofile=a",
                r#"invalid --ulimit "nofile=a": "a" is not a number"#,
            ),
            (
                "nofile=1:",
                r#"invalid --ulimit "nofile=1:": "" is not a number"#,
            ),
            (
                "nofile=30:20",
                r#"invalid --ulimit "nofile=30:20": soft limit above hard limit"#,
            ),
            (
                "core=1:-1",
                r#"invalid --ulimit "core=1:-1": soft limit above hard limit"#,
            ),
            (
                "bogus=1",
                r#"invalid --ulimit "bogus=1": unknown limit "bogus""#,
            ),
        ];
        for (u, message) in expected {
            assert_eq!(ulimit_err(u), message);
        }
    }
}
