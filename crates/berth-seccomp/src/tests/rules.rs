//! Semantics of compiled rules: actions, errno data, argument conditions, arches, notify
//! and validation errors, each checked by running the program on synthetic calls.

use libc::{
    SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD,
    SECCOMP_RET_LOG, SECCOMP_RET_TRACE, SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF,
};

use super::sim::{filter, run, spec, Call};
use crate::Error;

pub const X86_64: u32 = 0xc000_003e;
pub const I386: u32 = 0x4000_0003;
pub const AARCH64: u32 = 0xc000_00b7;
const X32_BIT: u32 = 0x4000_0000;
const MKDIR: u32 = 83;
const READ: u32 = 0;
const ERRNO_38: u32 = SECCOMP_RET_ERRNO | 38;

fn allow_but(rule: &str) -> String {
    format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{rule}]}}"#)
}

fn mkdir_errno_if(args: &str) -> crate::Filter {
    filter(&allow_but(&format!(
        r#"{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"args":[{args}]}}"#
    )))
}

fn mkdir(arg0: u64) -> Call {
    Call::new(X86_64, MKDIR).arg(0, arg0)
}

#[test]
fn errno_rule_returns_its_errno_and_others_get_the_default() {
    let f = filter(&allow_but(
        r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}"#,
    ));
    assert_eq!(run(&f, Call::new(X86_64, MKDIR)), ERRNO_38);
    assert_eq!(run(&f, Call::new(X86_64, READ)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, Call::new(X86_64, 100_000)), SECCOMP_RET_ALLOW);
    assert!(!f.uses_notify());
    assert_eq!(f.flags(), 0);
}

#[test]
fn errno_without_errno_ret_is_eperm_and_default_errno_ret_applies() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(run(&f, Call::new(X86_64, READ)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, Call::new(X86_64, MKDIR)), SECCOMP_RET_ERRNO | 1);
    assert_eq!(run(&f, Call::new(X86_64, 1)), ERRNO_38);
}

#[test]
fn each_action_maps_to_its_kernel_value() {
    let cases = [
        ("SCMP_ACT_KILL", SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", SECCOMP_RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", SECCOMP_RET_TRAP),
        ("SCMP_ACT_TRACE", SECCOMP_RET_TRACE | 1),
        ("SCMP_ACT_LOG", SECCOMP_RET_LOG),
    ];
    for (name, want) in cases {
        let f = filter(&allow_but(&format!(
            r#"{{"names":["mkdir"],"action":"{name}"}}"#
        )));
        assert_eq!(run(&f, Call::new(X86_64, MKDIR)), want, "{name}");
    }
    let f = filter(&allow_but(
        r#"{"names":["mkdir"],"action":"SCMP_ACT_TRACE","errnoRet":7}"#,
    ));
    assert_eq!(run(&f, Call::new(X86_64, MKDIR)), SECCOMP_RET_TRACE | 7);
}

#[test]
fn eq_and_ne_compare_both_words_of_64bit_args() {
    let f = mkdir_errno_if(r#"{"index":0,"value":4294967301,"op":"SCMP_CMP_EQ"}"#);
    assert_eq!(run(&f, mkdir(0x1_0000_0005)), ERRNO_38);
    assert_eq!(run(&f, mkdir(5)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, mkdir(0x1_0000_0006)), SECCOMP_RET_ALLOW);
    let f = mkdir_errno_if(r#"{"index":0,"value":4294967301,"op":"SCMP_CMP_NE"}"#);
    assert_eq!(run(&f, mkdir(0x1_0000_0005)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, mkdir(5)), ERRNO_38);
    assert_eq!(run(&f, mkdir(0x2_0000_0005)), ERRNO_38);
}

#[test]
fn masked_eq_masks_with_value_and_compares_to_value_two() {
    // (arg & 0xff000000000000ff) == 0x1200000000000034
    let f = mkdir_errno_if(
        r#"{"index":0,"value":18374686479671623935,"valueTwo":1297036692682702900,
            "op":"SCMP_CMP_MASKED_EQ"}"#,
    );
    assert_eq!(run(&f, mkdir(0x12ab_cdef_0000_1234)), ERRNO_38);
    assert_eq!(run(&f, mkdir(0x12ab_cdef_0000_1235)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, mkdir(0x13ab_cdef_0000_1234)), SECCOMP_RET_ALLOW);
}

#[test]
fn ordering_ops_are_unsigned_64bit() {
    let v = 0x1_0000_0000u64;
    let probes = [0xffff_ffff, v, v + 1, 0x2_0000_0000, u64::MAX, 0];
    type Holds = fn(u64, u64) -> bool;
    let ops: [(&str, Holds); 4] = [
        ("SCMP_CMP_GT", |a, b| a > b),
        ("SCMP_CMP_GE", |a, b| a >= b),
        ("SCMP_CMP_LT", |a, b| a < b),
        ("SCMP_CMP_LE", |a, b| a <= b),
    ];
    for (op, holds) in ops {
        let f = mkdir_errno_if(&format!(r#"{{"index":0,"value":{v},"op":"{op}"}}"#));
        for a in probes {
            let want = if holds(a, v) {
                ERRNO_38
            } else {
                SECCOMP_RET_ALLOW
            };
            assert_eq!(run(&f, mkdir(a)), want, "{op} arg {a:#x}");
        }
    }
}

#[test]
fn conditions_in_one_entry_are_anded_on_distinct_args() {
    let f = mkdir_errno_if(
        r#"{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":3,"value":2,"op":"SCMP_CMP_EQ"}"#,
    );
    assert_eq!(run(&f, mkdir(1).arg(3, 2)), ERRNO_38);
    assert_eq!(run(&f, mkdir(1)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, mkdir(0).arg(3, 2)), SECCOMP_RET_ALLOW);
}

#[test]
fn conditions_repeating_an_arg_are_ored_like_runc() {
    let f = mkdir_errno_if(
        r#"{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}"#,
    );
    assert_eq!(run(&f, mkdir(1)), ERRNO_38);
    assert_eq!(run(&f, mkdir(2)), ERRNO_38);
    assert_eq!(run(&f, mkdir(3)), SECCOMP_RET_ALLOW);
}

#[test]
fn first_matching_entry_decides() {
    let f = filter(&allow_but(
        r#"{"names":["mkdir"],"action":"SCMP_ACT_TRAP","args":[{"index":1,"value":7,"op":"SCMP_CMP_EQ"}]},
           {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
           {"names":["mkdir"],"action":"SCMP_ACT_KILL"}"#,
    ));
    assert_eq!(run(&f, mkdir(0).arg(1, 7)), SECCOMP_RET_TRAP);
    assert_eq!(run(&f, mkdir(0).arg(1, 8)), ERRNO_38);
}

#[test]
fn rules_equal_to_the_default_are_dropped() {
    let base = filter(&allow_but(
        r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}"#,
    ));
    let more = filter(&allow_but(
        r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
           {"names":["read","write"],"action":"SCMP_ACT_ALLOW"}"#,
    ));
    assert_eq!(base.len(), more.len());
}

#[test]
fn unlisted_arch_is_killed() {
    let f = filter(&allow_but(
        r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}"#,
    ));
    assert_eq!(run(&f, Call::new(AARCH64, READ)), crate::BAD_ARCH_ACTION);
    assert_eq!(run(&f, Call::new(I386, READ)), SECCOMP_RET_KILL_THREAD);
}

#[test]
fn x32_calls_are_killed_unless_x32_is_listed() {
    let rule = r#"{"names":["mkdir","ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":38}"#;
    let f = filter(&allow_but(rule));
    assert_eq!(
        run(&f, Call::new(X86_64, MKDIR | X32_BIT)),
        SECCOMP_RET_KILL_THREAD
    );
    assert_eq!(
        run(&f, Call::new(X86_64, READ | X32_BIT)),
        SECCOMP_RET_KILL_THREAD
    );
    // nr -1 is how tracers skip a call; it must not count as x32.
    assert_eq!(run(&f, Call::new(X86_64, u32::MAX)), SECCOMP_RET_ALLOW);

    let f = filter(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"],
            "syscalls":[{rule}]}}"#
    ));
    assert_eq!(run(&f, Call::new(X86_64, MKDIR | X32_BIT)), ERRNO_38);
    assert_eq!(
        run(&f, Call::new(X86_64, 514 | X32_BIT)),
        ERRNO_38,
        "x32 ioctl"
    );
    assert_eq!(
        run(&f, Call::new(X86_64, 16 | X32_BIT)),
        SECCOMP_RET_ALLOW,
        "64-bit ioctl nr"
    );
    assert_eq!(run(&f, Call::new(X86_64, 16)), ERRNO_38);
    assert_eq!(
        run(&f, Call::new(X86_64, READ | X32_BIT)),
        SECCOMP_RET_ALLOW
    );
}

#[test]
fn listed_arches_use_their_own_numbers() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_AARCH64"],
            "syscalls":[{"names":["getppid","open"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(run(&f, Call::new(X86_64, 110)), SECCOMP_RET_ALLOW);
    assert_eq!(
        run(&f, Call::new(X86_64, 2)),
        SECCOMP_RET_ALLOW,
        "x86_64 open"
    );
    assert_eq!(
        run(&f, Call::new(I386, 64)),
        SECCOMP_RET_ALLOW,
        "i386 getppid"
    );
    assert_eq!(run(&f, Call::new(I386, 5)), SECCOMP_RET_ALLOW, "i386 open");
    assert_eq!(
        run(&f, Call::new(I386, 110)),
        SECCOMP_RET_ERRNO | 38,
        "i386 iopl: newer than any named i386 syscall, so ENOSYS"
    );
    assert_eq!(
        run(&f, Call::new(I386, 20)),
        SECCOMP_RET_ERRNO | 1,
        "i386 getpid"
    );
    assert_eq!(run(&f, Call::new(AARCH64, 173)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, Call::new(AARCH64, 2)), SECCOMP_RET_ERRNO | 1);
    assert!(f.skipped().is_empty(), "open is known on some arches");
}

#[test]
fn args_of_32bit_arches_compare_the_low_word_only() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],
            "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38,
            "args":[{"index":1,"value":4294967295,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert_eq!(run(&f, Call::new(I386, 39).arg(1, 0xffff_ffff)), ERRNO_38);
    assert_eq!(
        run(&f, Call::new(I386, 39).arg(1, 0xfffe)),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(
        run(&f, Call::new(X86_64, MKDIR).arg(1, 0xffff_ffff)),
        ERRNO_38
    );
    assert_eq!(
        run(&f, Call::new(X86_64, MKDIR).arg(1, u64::MAX)),
        SECCOMP_RET_ALLOW
    );
}

#[test]
fn notify_sets_the_listener_flag_and_returns_user_notif() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
            "flags":["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(f.uses_notify());
    assert_eq!(run(&f, Call::new(X86_64, MKDIR)), SECCOMP_RET_USER_NOTIF);
    let want = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        | libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    assert_eq!(f.flags() as libc::c_ulong, want);
}

#[test]
fn flags_map_to_seccomp_flags() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    let want = libc::SECCOMP_FILTER_FLAG_LOG
        | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    assert_eq!(f.flags() as libc::c_ulong, want);
    let bad = r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#;
    assert!(serde_json::from_str::<oci_spec::runtime::LinuxSeccomp>(bad).is_err());
}

#[test]
fn unknown_names_are_skipped_and_reported() {
    let f = filter(&allow_but(
        r#"{"names":["mkdir","no_such_call","no_such_call"],"action":"SCMP_ACT_ERRNO"}"#,
    ));
    assert_eq!(f.skipped(), ["no_such_call".to_string()]);
    assert_eq!(run(&f, Call::new(X86_64, MKDIR)), SECCOMP_RET_ERRNO | 1);
}

#[test]
fn bad_profiles_are_refused_with_a_named_field() {
    let err = |json: &str| crate::compile(&spec(json)).unwrap_err().to_string();
    assert_eq!(
        err(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x"}"#),
        "seccomp: defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
    );
    assert_eq!(
        err(&allow_but(
            r#"{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}"#
        )),
        "seccomp: SCMP_ACT_NOTIFY needs listenerPath"
    );
    assert_eq!(
        err(&allow_but(
            r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}"#
        )),
        "seccomp: syscall \"mkdir\": errnoRet 70000 does not fit in 16 bits"
    );
    assert_eq!(
        err(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":65536}"#),
        "seccomp: defaultAction: errnoRet 65536 does not fit in 16 bits"
    );
    assert_eq!(
        err(&allow_but(
            r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}"#
        )),
        "seccomp: syscall \"mkdir\": argument index 6 is out of range 0-5"
    );
    assert_eq!(
        err(&allow_but(r#"{"names":[],"action":"SCMP_ACT_ERRNO"}"#)),
        "seccomp: syscalls[0]: names must be non-empty strings"
    );
    assert!(matches!(
        crate::compile(&spec(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#)),
        Err(Error::NotifyDefault)
    ));
}

#[test]
fn long_rule_bodies_still_jump_right() {
    let rules: Vec<String> = (0..150)
        .map(|i| {
            format!(
                r#"{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":{e},
                    "args":[{{"index":0,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#,
                e = i + 1
            )
        })
        .collect();
    let f = filter(&allow_but(&rules.join(",")));
    assert!(
        f.len() > 600,
        "body is long enough to need trampolines: {}",
        f.len()
    );
    for i in [0u64, 1, 77, 149] {
        assert_eq!(run(&f, mkdir(i)), SECCOMP_RET_ERRNO | (i as u32 + 1));
    }
    assert_eq!(run(&f, mkdir(150)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, mkdir(1 << 32)), SECCOMP_RET_ALLOW);
}

#[test]
fn programs_over_the_kernel_limit_are_refused() {
    let rules: Vec<String> = (0..1500)
        .map(|i| {
            format!(
                r#"{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO",
                    "args":[{{"index":0,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#
            )
        })
        .collect();
    let e = crate::compile(&spec(&allow_but(&rules.join(",")))).unwrap_err();
    assert!(matches!(e, Error::TooLong(n) if n > 4096), "{e}");
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys_under_a_denying_default() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO",
            "syscalls":[{"names":["read","mkdir"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(run(&f, Call::new(X86_64, READ)), SECCOMP_RET_ALLOW);
    // Below the highest named number: the default (EPERM).
    assert_eq!(run(&f, Call::new(X86_64, 50)), SECCOMP_RET_ERRNO | 1);
    // Above it: ENOSYS, so libc falls back.
    assert_eq!(
        run(&f, Call::new(X86_64, MKDIR + 1)),
        SECCOMP_RET_ERRNO | 38
    );
    assert_eq!(run(&f, Call::new(X86_64, 1000)), SECCOMP_RET_ERRNO | 38);
    // An allowing default has no such stub.
    let a = filter(&allow_but(
        r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}"#,
    ));
    assert_eq!(run(&a, Call::new(X86_64, 1000)), SECCOMP_RET_ALLOW);
}
