//! Tests for the device program generator: instruction shapes, and behaviour checked by running
//! the generated program in a tiny interpreter of the opcodes it uses.

use super::*;
use oci_spec::runtime::LinuxDeviceCgroupBuilder;

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().unwrap()
}

/// Runs `prog` on a device access; returns r0 (1 allow, 0 deny).
fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
    let ctx = [(access << 16) | typ, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (d, s) = (i.dst() as usize, i.src() as usize);
        pc += 1;
        match i.code {
            LDX_W => {
                assert_eq!(s, 1, "loads only from the context");
                r[d] = u64::from(ctx[i.off as usize / 4]);
            }
            AND_K => r[d] &= i.imm as i64 as u64,
            RSH_K => r[d] >>= i.imm,
            MOV_K => r[d] = i.imm as i64 as u64,
            MOV_X => r[d] = r[s],
            JNE_K if r[d] != i.imm as i64 as u64 => pc += i.off as usize,
            JNE_X if r[d] != r[s] => pc += i.off as usize,
            JNE_K | JNE_X => {}
            EXIT => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

const C: u32 = 2;
const B: u32 = 1;
const R: u32 = 2;
const W: u32 = 4;
const M: u32 = 1;

#[test]
fn no_rules_denies_everything() {
    let p = device_filter(&[]).unwrap();
    assert_eq!(p.len(), 8, "prologue + deny");
    assert_eq!(p[6], Insn::new(MOV_K, 0, 0, 0, 0));
    assert_eq!(p[7].code, EXIT);
    assert_eq!(run(&p, C, R, 1, 3), 0);
}

#[test]
fn one_char_rule_has_type_major_minor_checks() {
    let p = device_filter(&[rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm")]).unwrap();
    assert_eq!(p.len(), 6 + 5 + 2);
    assert_eq!(
        (p[6].code, p[6].off, p[6].imm),
        (JNE_K, 4, 2),
        "type check skips the block"
    );
    assert_eq!((p[7].code, p[7].imm, p[8].imm), (JNE_K, 1, 3));
    assert_eq!(run(&p, C, R | W, 1, 3), 1);
    assert_eq!(run(&p, C, R, 1, 5), 0);
    assert_eq!(run(&p, B, R, 1, 3), 0);
}

#[test]
fn catch_all_rule_ends_the_program() {
    // The usual runtime list: deny all, then allow a few devices.
    let rules = [
        rule(false, LinuxDeviceType::A, None, None, "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        rule(true, LinuxDeviceType::C, Some(136), None, "rwm"),
    ];
    let p = device_filter(&rules).unwrap();
    assert_eq!(
        p.len(),
        6 + 4 + 5 + 2,
        "pts wildcard minor saves one check; deny-all is 2"
    );
    assert_eq!(run(&p, C, R | W, 136, 7), 1);
    assert_eq!(run(&p, C, M, 1, 3), 1);
    assert_eq!(run(&p, C, R, 8, 0), 0);
}

#[test]
fn last_matching_rule_wins_and_access_must_be_a_subset() {
    let rules = [
        rule(true, LinuxDeviceType::A, None, None, "rwm"),
        rule(false, LinuxDeviceType::C, Some(1), Some(3), "w"),
    ];
    let p = device_filter(&rules).unwrap();
    assert_eq!(p.len(), 6 + 8 + 2);
    assert_eq!(
        run(&p, C, W, 1, 3),
        0,
        "write to 1:3 denied by the later rule"
    );
    assert_eq!(
        run(&p, C, R, 1, 3),
        1,
        "read is outside the deny rule's access"
    );
    assert_eq!(run(&p, B, R | W, 8, 0), 1);
}

#[test]
fn fifo_rules_are_skipped_and_bad_access_is_refused() {
    let p = device_filter(&[rule(true, LinuxDeviceType::P, None, None, "rwm")]).unwrap();
    assert_eq!(p.len(), 8);
    assert!(device_filter(&[rule(true, LinuxDeviceType::C, None, None, "rx")]).is_err());
}

#[test]
fn apply_refuses_a_directory_that_is_not_cgroup2() {
    let e = apply(&std::env::temp_dir(), &[]).unwrap_err().to_string();
    assert!(e.contains("not on cgroup2"), "{e}");
}
