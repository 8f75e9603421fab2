//! cgroup v2 device control: generates a BPF_PROG_TYPE_CGROUP_DEVICE program from the OCI rule
//! list (the last matching rule wins, unmatched access is denied) and loads/attaches it with
//! bpf(2). The generator is pure and unit-tested; the syscalls run only on a cgroup2 directory.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::{Error, Result};

/// One classic eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // The kernel's bitfields put dst_reg in the low nibble on little-endian targets.
        #[cfg(target_endian = "little")]
        let regs = (src << 4) | (dst & 0x0f);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | (src & 0x0f);
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }
    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        }
    }
    pub fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        }
    }
}

// Opcodes used (BPF_CLASS | BPF_OP | BPF_SRC).
pub(crate) const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
pub(crate) const AND_K: u8 = 0x57; // dst &= imm (64-bit)
pub(crate) const RSH_K: u8 = 0x77; // dst >>= imm
pub(crate) const MOV_K: u8 = 0xb7; // dst = imm
pub(crate) const MOV_X: u8 = 0xbf; // dst = src
pub(crate) const JNE_K: u8 = 0x55; // if dst != imm goto +off
pub(crate) const JNE_X: u8 = 0x5d; // if dst != src goto +off
pub(crate) const EXIT: u8 = 0x95;

// Registers after the prologue: r2 device type, r3 requested access, r4 major, r5 minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR
const ACC_ALL: i32 = 1 | 2 | 4; // mknod | read | write

/// Builds the program. Rules are checked newest-first so the last matching rule decides; a
/// catch-all rule ends the program early, since nothing before it can match any more.
pub fn device_filter(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    // struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
    let mut prog = vec![
        Insn::new(LDX_W, R2, R1, 0, 0),
        Insn::new(AND_K, R2, 0, 0, 0xffff),
        Insn::new(LDX_W, R3, R1, 0, 0),
        Insn::new(RSH_K, R3, 0, 0, 16),
        Insn::new(LDX_W, R4, R1, 4, 0),
        Insn::new(LDX_W, R5, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let Some(block) = rule_block(rule)? else {
            continue;
        };
        let catch_all = !block.iter().any(|i| i.code == JNE_K || i.code == JNE_X);
        prog.extend(block);
        if catch_all {
            return Ok(prog);
        }
    }
    prog.push(Insn::new(MOV_K, R0, 0, 0, 0));
    prog.push(Insn::new(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

/// `if <rule matches> return allow;` — `None` for rules the device cgroup never sees (fifos).
fn rule_block(rule: &LinuxDeviceCgroup) -> Result<Option<Vec<Insn>>> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        LinuxDeviceType::P => return Ok(None),
    };
    let access = access_bits(rule.access().as_deref().unwrap_or(""))?;
    let mut b = Vec::new();
    let mut jumps = Vec::new();
    let mut jne = |b: &mut Vec<Insn>, insn: Insn| {
        jumps.push(b.len());
        b.push(insn);
    };
    if let Some(t) = typ {
        jne(&mut b, Insn::new(JNE_K, R2, 0, 0, t));
    }
    if access != ACC_ALL {
        // Matches only if the requested access is a subset of the rule's.
        b.push(Insn::new(MOV_X, R1, R3, 0, 0));
        b.push(Insn::new(AND_K, R1, 0, 0, access));
        jne(&mut b, Insn::new(JNE_X, R1, R3, 0, 0));
    }
    if let Some(m) = device_number(rule.major(), "major")? {
        jne(&mut b, Insn::new(JNE_K, R4, 0, 0, m));
    }
    if let Some(m) = device_number(rule.minor(), "minor")? {
        jne(&mut b, Insn::new(JNE_K, R5, 0, 0, m));
    }
    b.push(Insn::new(MOV_K, R0, 0, 0, i32::from(rule.allow())));
    b.push(Insn::new(EXIT, 0, 0, 0, 0));
    for j in jumps {
        b[j].off = (b.len() - j - 1) as i16; // skip to the next rule's block
    }
    Ok(Some(b))
}

fn access_bits(access: &str) -> Result<i32> {
    if access.is_empty() {
        return Ok(ACC_ALL);
    }
    access.chars().try_fold(0, |acc, c| match c {
        'm' => Ok(acc | 1),
        'r' => Ok(acc | 2),
        'w' => Ok(acc | 4),
        _ => Err(Error::invalid(
            "devices",
            "access",
            format!("{access:?} is not a subset of \"rwm\""),
        )),
    })
}

/// `None` (or negative) is the wildcard; numbers must fit the kernel's positive range.
fn device_number(n: Option<i64>, what: &str) -> Result<Option<i32>> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| Error::invalid("devices", what, format!("{n} is out of range"))),
    }
}

/// Loads the program for `rules` and attaches it to the cgroup2 directory `dir`, replacing
/// any device programs attached there before (so `update` can also widen access).
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = device_filter(rules)?;
    let fs = nix::sys::statfs::statfs(dir).map_err(|e| sys_err("statfs cgroup dir", e as i32))?;
    if fs.filesystem_type() != nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        return Err(Error::unsupported(
            "devices",
            format!("{} is not on cgroup2", dir.display()),
        ));
    }
    let cg = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|err| Error::Bpf {
            op: format!("open {}", dir.display()),
            err,
        })?;
    let old = sys::query(cg.as_raw_fd())?;
    let prog = sys::load(&insns)?;
    sys::attach(cg.as_raw_fd(), prog.as_raw_fd())?;
    for id in old {
        if let Ok(fd) = sys::prog_fd_by_id(id) {
            sys::detach(cg.as_raw_fd(), fd.as_raw_fd())?;
        }
    }
    Ok(())
}

fn sys_err(op: &str, errno: i32) -> Error {
    Error::Bpf {
        op: op.into(),
        err: io::Error::from_raw_os_error(errno),
    }
}

/// bpf(2) commands, each with an explicitly padded attribute struct (no implicit padding, so
/// every byte the kernel reads is initialised).
mod sys {
    use super::*;

    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_PROG_DETACH: libc::c_long = 9;
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;

    #[repr(C)]
    #[derive(Default)]
    struct LoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct AttachAttr {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
        pad: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        pad: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct GetFdAttr {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
        pad: u32,
    }

    fn bpf<T>(cmd: libc::c_long, attr: &mut T, op: &str) -> Result<libc::c_long> {
        // SAFETY: `attr` is a live, fully initialised #[repr(C)] attribute struct of the layout
        // the kernel expects for `cmd`, and we pass its exact size; any pointers inside it point
        // at buffers that outlive this call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T,
                std::mem::size_of::<T>() as u32,
            )
        };
        if rc < 0 {
            return Err(Error::Bpf {
                op: op.into(),
                err: io::Error::last_os_error(),
            });
        }
        Ok(rc)
    }

    fn owned(fd: libc::c_long) -> OwnedFd {
        // SAFETY: bpf(2) just returned this fd (O_CLOEXEC by default) and nobody else owns it.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    }

    pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
        let license = c"Apache";
        let mut attr = LoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..Default::default()
        };
        attr.prog_name[..6].copy_from_slice(b"berth\0");
        match bpf(BPF_PROG_LOAD, &mut attr, "load device program") {
            Ok(fd) => Ok(owned(fd)),
            Err(first) => {
                // Load again with the verifier log so the error says why.
                let mut log = vec![0u8; 64 * 1024];
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr, "load device program") {
                    return Ok(owned(fd));
                }
                let text = String::from_utf8_lossy(&log);
                let last = text
                    .trim_end_matches('\0')
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty());
                match (first, last) {
                    (Error::Bpf { err, .. }, Some(l)) => Err(Error::Bpf {
                        op: format!("load device program (verifier: {})", l.trim()),
                        err,
                    }),
                    (e, _) => Err(e),
                }
            }
        }
    }

    pub fn attach(cgroup: RawFd, prog: RawFd) -> Result<()> {
        let mut attr = AttachAttr {
            target_fd: cgroup as u32,
            attach_bpf_fd: prog as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            ..Default::default()
        };
        bpf(BPF_PROG_ATTACH, &mut attr, "attach device program").map(drop)
    }

    pub fn detach(cgroup: RawFd, prog: RawFd) -> Result<()> {
        let mut attr = AttachAttr {
            target_fd: cgroup as u32,
            attach_bpf_fd: prog as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut attr, "detach old device program").map(drop)
    }

    /// Ids of the device programs attached directly to this cgroup.
    pub fn query(cgroup: RawFd) -> Result<Vec<u32>> {
        let mut ids = vec![0u32; 64];
        let mut attr = QueryAttr {
            target_fd: cgroup as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        bpf(BPF_PROG_QUERY, &mut attr, "query device programs")?;
        ids.truncate(attr.prog_cnt as usize);
        Ok(ids)
    }

    pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd> {
        let mut attr = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        bpf(BPF_PROG_GET_FD_BY_ID, &mut attr, "open old device program").map(owned)
    }
}

#[cfg(test)]
#[path = "devices_bpf_tests.rs"]
mod tests;
