//! Turns an OCI `linux.seccomp` section into a BPF program: validates actions, flags
//! and argument conditions, resolves names per architecture, and lays the program out
//! as an arch dispatch, a binary search over runs of syscall numbers and per-syscall
//! rule bodies.
//! Pure: it makes no syscalls.

use std::collections::BTreeMap;

use libc::{
    SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD,
    SECCOMP_RET_LOG, SECCOMP_RET_TRACE, SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::arch::{Arch, X32_SYSCALL_BIT};
use crate::bpf::{self, Cond, Label, Program};
use crate::{Error, Filter};

/// What a filter returns for an architecture it has no section for, as libseccomp's
/// default "bad arch" action does.
pub const BAD_ARCH_ACTION: u32 = SECCOMP_RET_KILL_THREAD;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

pub fn compile(s: &LinuxSeccomp) -> Result<Filter, Error> {
    let default = action(s.default_action(), s.default_errno_ret(), "defaultAction")?;
    if default == SECCOMP_RET_USER_NOTIF {
        return Err(Error::NotifyDefault);
    }
    let mut arches = vec![Arch::native()];
    let mut skipped_arches = Vec::new();
    for a in s.architectures().iter().flatten() {
        match Arch::from_oci(*a) {
            Some(a) if !arches.contains(&a) => arches.push(a),
            Some(_) => {}
            None => skipped_arches.push(a.to_string()),
        }
    }
    let entries = s.syscalls().as_deref().unwrap_or_default();
    let mut rules = Vec::new();
    for (i, sc) in entries.iter().enumerate() {
        rules.extend(entry_rules(i, sc)?);
    }
    let notify = rules.iter().any(|r| r.action == SECCOMP_RET_USER_NOTIF);
    if rules
        .iter()
        .any(|r| r.action == SECCOMP_RET_USER_NOTIF && r.name == "write")
    {
        return Err(Error::NotifyWrite);
    }
    if notify && s.listener_path().is_none() {
        return Err(Error::NotifyNeedsListener);
    }
    let flags = filter_flags(s.flags().as_deref().unwrap_or_default(), notify);

    // Rules equal to the default change nothing (runc drops them too); a first match
    // decides, so whatever follows an unconditional rule for a syscall is dead.
    let mut tables: Vec<Table> = vec![BTreeMap::new(); arches.len()];
    let mut skipped = Vec::new();
    for r in &rules {
        let mut known = false;
        for (arch, table) in arches.iter().zip(&mut tables) {
            let Some(nr) = arch.syscall(&r.name) else {
                continue;
            };
            known = true;
            let list = table.entry(nr).or_default();
            let dead = list.last().is_some_and(|prev| prev.conds.is_empty());
            if r.action != default && !dead {
                list.push(r);
            }
        }
        if !known && !skipped.contains(&r.name) {
            skipped.push(r.name.clone());
        }
    }
    // Like runc: with a denying default, a syscall newer than every one the profile names gets
    // ENOSYS, not the default errno, so the C library falls back to an older call (clone3 ->
    // clone, faccessat2 -> faccessat) instead of failing with EPERM.
    let mut enosys = Vec::new();
    if default != SECCOMP_RET_ALLOW && default != SECCOMP_RET_LOG {
        for arch in &arches {
            if let Some(max) = rules.iter().filter_map(|r| arch.syscall(&r.name)).max() {
                enosys.push((*arch, max + 1));
            }
        }
    }
    let sections: Vec<(Arch, Table)> = arches.into_iter().zip(tables).collect();
    let mut layout = Layout::new(default);
    layout.enosys = enosys;
    let instructions = layout.program(&sections);
    if instructions.len() > bpf::MAX_INSNS {
        return Err(Error::TooLong(instructions.len()));
    }
    Ok(Filter {
        instructions,
        flags,
        notify,
        skipped,
        skipped_arches,
    })
}

/// Where the search on `nr` sends a syscall: straight to a `ret`, or to its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Default,
    Ret(u32),
    Body(Label),
}

/// Splits the number space into runs `(first nr, target)` in ascending order: gaps
/// become `Default` runs, and neighbouring numbers with the same plain `ret` merge.
fn runs(targets: &[(u32, Target)]) -> Vec<(u32, Target)> {
    let mut runs: Vec<(u32, Target)> = Vec::new();
    let mut next: u64 = 0; // first number not yet covered
    for &(nr, t) in targets {
        if u64::from(nr) > next {
            runs.push((next as u32, Target::Default));
        }
        let extends = u64::from(nr) == next
            && matches!(t, Target::Ret(_))
            && runs.last().is_some_and(|(_, last)| *last == t);
        if !extends {
            runs.push((nr, t));
        }
        next = u64::from(nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        runs.push((next as u32, Target::Default));
    }
    runs
}

/// Each syscall number's rules, in config order.
type Table<'r> = BTreeMap<u32, Vec<&'r Rule>>;

/// One syscall name with one action and the conditions (all must hold) that select it.
#[derive(Debug)]
struct Rule {
    name: String,
    action: u32,
    conds: Vec<ArgCond>,
}

#[derive(Clone, Copy, Debug)]
struct ArgCond {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

/// The rules one `syscalls[i]` entry stands for. When two conditions name the same
/// argument, runc (and so everyone's profiles) treats each condition as its own rule,
/// OR-ed rather than AND-ed; so do we.
fn entry_rules(i: usize, sc: &LinuxSyscall) -> Result<Vec<Rule>, Error> {
    if sc.names().is_empty() {
        return Err(Error::NoNames(i));
    }
    let mut conds = Vec::new();
    for n in sc.names() {
        if n.is_empty() {
            return Err(Error::NoNames(i));
        }
    }
    let first = &sc.names()[0];
    let action = action(sc.action(), sc.errno_ret(), &format!("syscall {first:?}"))?;
    for a in sc.args().iter().flatten() {
        conds.push(arg_cond(first, a)?);
    }
    let repeated = (0..6).any(|ix| conds.iter().filter(|c| c.index == ix).count() > 1);
    let groups: Vec<Vec<ArgCond>> = if repeated {
        conds.iter().map(|c| vec![*c]).collect()
    } else {
        vec![conds]
    };
    let mut rules = Vec::new();
    for name in sc.names() {
        for g in &groups {
            rules.push(Rule {
                name: name.clone(),
                action,
                conds: g.clone(),
            });
        }
    }
    Ok(rules)
}

fn arg_cond(name: &str, a: &LinuxSeccompArg) -> Result<ArgCond, Error> {
    if a.index() > 5 {
        return Err(Error::ArgIndex {
            name: name.to_string(),
            index: a.index(),
        });
    }
    Ok(ArgCond {
        index: a.index() as u32,
        op: a.op(),
        value: a.value(),
        value_two: a.value_two().unwrap_or(0),
    })
}

/// The `SECCOMP_RET_*` value for an action. errnoRet is the data of ERRNO and TRACE
/// (EPERM when unset, as runc does) and ignored by the others, as runc does.
fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<u32, Error> {
    let data = || match errno {
        None => Ok(libc::EPERM as u32),
        Some(e) if e <= u16::MAX as u32 => Ok(e),
        Some(e) => Err(Error::ErrnoRange {
            field: field.to_string(),
            value: e,
        }),
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => SECCOMP_RET_ERRNO | data()?,
        LinuxSeccompAction::ScmpActTrace => SECCOMP_RET_TRACE | data()?,
        LinuxSeccompAction::ScmpActNotify => SECCOMP_RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActLog => SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => SECCOMP_RET_ALLOW,
    })
}

/// seccomp(2) flags. A notify filter needs a listener; TSYNC then needs TSYNC_ESRCH,
/// as the kernel cannot report both a listener fd and a failing thread's id.
fn filter_flags(flags: &[LinuxSeccompFilterFlag], notify: bool) -> u32 {
    let mut bits = 0;
    for f in flags {
        bits |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        } as u32;
    }
    if notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 {
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
        }
    }
    bits
}

/// Code generation state: the program and one shared `ret` per distinct action.
struct Layout {
    p: Program,
    default: u32,
    rets: Vec<(u32, Label)>,
    /// Per arch, the first syscall number answered with ENOSYS (see `compile`).
    enosys: Vec<(Arch, u32)>,
}

impl Layout {
    fn new(default: u32) -> Layout {
        Layout {
            p: Program::default(),
            default,
            rets: Vec::new(),
            enosys: Vec::new(),
        }
    }

    fn ret_label(&mut self, action: u32) -> Label {
        if let Some((_, l)) = self.rets.iter().find(|(a, _)| *a == action) {
            return *l;
        }
        let l = self.p.label();
        self.rets.push((action, l));
        l
    }

    /// `ld arch`, one branch per audit token, then each token's section.
    fn program(mut self, sections: &[(Arch, Table)]) -> Vec<libc::sock_filter> {
        let mut by_audit: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, (arch, _)) in sections.iter().enumerate() {
            match by_audit.iter_mut().find(|(a, _)| *a == arch.audit()) {
                Some((_, v)) => v.push(i),
                None => by_audit.push((arch.audit(), vec![i])),
            }
        }
        let bad_arch = self.ret_label(BAD_ARCH_ACTION);
        let starts: Vec<Label> = by_audit.iter().map(|_| self.p.label()).collect();
        self.p.load(OFF_ARCH);
        for ((audit, _), start) in by_audit.iter().zip(&starts) {
            let next = self.p.label();
            self.p.branch(Cond::Eq, *audit, *start, next);
            self.p.place(next);
        }
        self.p.jump(bad_arch);
        for ((_, members), start) in by_audit.iter().zip(starts) {
            self.p.place(start);
            self.p.load(OFF_NR);
            let members: Vec<&(Arch, Table)> = members.iter().map(|i| &sections[*i]).collect();
            self.audit_section(&members, bad_arch);
        }
        self.place_rets();
        self.p.assemble()
    }

    /// Places the pending `ret` labels here; code before must not fall through.
    fn place_rets(&mut self) {
        for (action, l) in std::mem::take(&mut self.rets) {
            self.p.place(l);
            self.p.ret(action);
        }
    }

    /// Runs `emit` with its own `ret` labels, placed right after its code so the jumps
    /// to them stay within 8-bit offsets (no trampolines). `emit` must end in a `ret`.
    fn with_local_rets(&mut self, emit: impl FnOnce(&mut Self)) {
        let outer = std::mem::take(&mut self.rets);
        emit(self);
        self.place_rets();
        self.rets = outer;
    }

    /// The arches sharing one audit token: only x86_64 and x32, which the x32 bit in
    /// `nr` tells apart. Without x32 listed, an x32 call is a bad arch, except nr -1,
    /// which tracers use to skip a call.
    fn audit_section(&mut self, members: &[&(Arch, Table)], bad_arch: Label) {
        let x32 = members.iter().find(|(a, _)| *a == Arch::X32);
        let x64 = members.iter().find(|(a, _)| *a == Arch::X86_64);
        if x32.is_none() && x64.is_none() {
            let (arch, table) = members[0];
            return self.syscalls(*arch, table);
        }
        let (hi, lo) = (self.p.label(), self.p.label());
        self.p.branch(Cond::Ge, X32_SYSCALL_BIT, hi, lo);
        self.p.place(hi);
        match x32 {
            Some((arch, table)) => self.syscalls(*arch, table),
            None => {
                let default = self.ret_label(self.default);
                self.p.branch(Cond::Eq, u32::MAX, default, bad_arch);
            }
        }
        self.p.place(lo);
        match x64 {
            Some((arch, table)) => self.syscalls(*arch, table),
            None => self.p.jump(bad_arch),
        }
    }

    /// Binary search on `nr` (in A) over runs of numbers that end the same way, so a
    /// dense allow-list costs a few instructions per run rather than per syscall.
    fn syscalls(&mut self, arch: Arch, table: &Table) {
        let mut bodies = Vec::new();
        let targets: Vec<(u32, Target)> = table
            .iter()
            .filter(|(_, rules)| !rules.is_empty())
            .map(|(nr, rules)| match rules.as_slice() {
                [only] if only.conds.is_empty() => (*nr, Target::Ret(only.action)),
                _ => {
                    let l = self.p.label();
                    bodies.push((l, rules));
                    (*nr, Target::Body(l))
                }
            })
            .collect();
        let mut runs = runs(&targets);
        if let Some(&(_, from)) = self.enosys.iter().find(|(a, _)| *a == arch) {
            if let Some(last) = runs
                .last_mut()
                .filter(|(start, t)| *start == from && *t == Target::Default)
            {
                last.1 = Target::Ret(SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
            }
        }
        self.tree(&runs);
        for (l, rules) in bodies {
            self.p.place(l);
            self.with_local_rets(|me| me.body(arch, rules));
        }
    }

    /// `runs` start at 0 and cover every number; each ends where the next starts.
    fn tree(&mut self, runs: &[(u32, Target)]) {
        match runs {
            [] => self.p.ret(self.default),
            [(_, Target::Default)] => self.p.ret(self.default),
            [(_, Target::Ret(action))] => self.p.ret(*action),
            [(_, Target::Body(l))] => self.p.jump(*l),
            _ => {
                let mid = runs.len() / 2;
                let (lo, hi) = (self.p.label(), self.p.label());
                self.p.branch(Cond::Ge, runs[mid].0, hi, lo);
                self.p.place(lo);
                self.tree(&runs[..mid]);
                self.p.place(hi);
                self.tree(&runs[mid..]);
            }
        }
    }

    /// One syscall's rules in order: the first whose conditions all hold decides.
    fn body(&mut self, arch: Arch, rules: &[&Rule]) {
        for r in rules {
            let (ok, fail) = (self.ret_label(r.action), self.p.label());
            for (i, c) in r.conds.iter().enumerate() {
                let pass = if i + 1 == r.conds.len() {
                    ok
                } else {
                    self.p.label()
                };
                self.arg(arch, c, pass, fail);
                if pass != ok {
                    self.p.place(pass);
                }
            }
            if r.conds.is_empty() {
                self.p.jump(ok);
            }
            self.p.place(fail);
        }
        self.p.ret(self.default);
    }

    /// `if cond(args[i]) goto t else goto f`, unsigned and 64-bit wide where the arch's
    /// arguments are, comparing the high word first.
    fn arg(&mut self, arch: Arch, c: &ArgCond, t: Label, f: Label) {
        use LinuxSeccompOperator as O;
        let base = OFF_ARGS + 8 * c.index;
        let (lo_off, hi_off) = if cfg!(target_endian = "little") {
            (base, base + 4)
        } else {
            (base + 4, base)
        };
        let (v, mask) = match c.op {
            O::ScmpCmpMaskedEq => (c.value_two, c.value),
            _ => (c.value, u64::MAX),
        };
        let (v_hi, v_lo, m_hi, m_lo) = (hi(v), v as u32, hi(mask), mask as u32);
        // Each op is a positive test and whether to swap the targets (NE, LT, LE).
        let (op, t, f) = match c.op {
            O::ScmpCmpEq | O::ScmpCmpMaskedEq => (Cond::Eq, t, f),
            O::ScmpCmpNe => (Cond::Eq, f, t),
            O::ScmpCmpGt => (Cond::Gt, t, f),
            O::ScmpCmpGe => (Cond::Ge, t, f),
            O::ScmpCmpLt => (Cond::Ge, f, t),
            O::ScmpCmpLe => (Cond::Gt, f, t),
        };
        if arch.args_are_64bit() {
            let lo_word = self.p.label();
            self.p.load(hi_off);
            if op == Cond::Eq {
                if m_hi != u32::MAX {
                    self.p.and(m_hi);
                }
                self.p.branch(Cond::Eq, v_hi, lo_word, f);
            } else {
                let equal = self.p.label();
                self.p.branch(Cond::Gt, v_hi, t, equal);
                self.p.place(equal);
                self.p.branch(Cond::Eq, v_hi, lo_word, f);
            }
            self.p.place(lo_word);
        }
        self.p.load(lo_off);
        if m_lo != u32::MAX {
            self.p.and(m_lo);
        }
        self.p.branch(op, v_lo, t, f);
    }
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}
