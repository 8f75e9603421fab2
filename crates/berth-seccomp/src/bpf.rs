//! A classic-BPF assembler for seccomp filters: instructions with symbolic forward labels,
//! laid out so every conditional jump fits its 8-bit offset (far targets get a `ja`
//! trampoline, which has a 32-bit offset). It knows nothing of OCI or syscalls.

use libc::sock_filter;

// Opcode parts from <linux/bpf_common.h>.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;

pub const LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
pub const ALU_AND_K: u16 = BPF_ALU | BPF_AND | BPF_K;
pub const JA: u16 = BPF_JMP | BPF_JA;
pub const JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
pub const JGT_K: u16 = BPF_JMP | BPF_JGT | BPF_K;
pub const JGE_K: u16 = BPF_JMP | BPF_JGE | BPF_K;
pub const RET_K: u16 = BPF_RET | BPF_K;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// A position in the program that jumps can name before it is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Conditional jump kinds (`A op k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Gt,
    Ge,
}

impl Cond {
    fn opcode(self) -> u16 {
        match self {
            Cond::Eq => JEQ_K,
            Cond::Gt => JGT_K,
            Cond::Ge => JGE_K,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Load(u32),
    And(u32),
    Ret(u32),
    Jump(Label),
    Branch {
        cond: Cond,
        k: u32,
        jt: Label,
        jf: Label,
        // Whether jt / jf go through a `ja` placed right after the branch.
        far_t: bool,
        far_f: bool,
    },
    Place(Label),
}

impl Op {
    fn size(&self) -> usize {
        match self {
            Op::Place(_) => 0,
            Op::Branch { far_t, far_f, .. } => 1 + *far_t as usize + *far_f as usize,
            _ => 1,
        }
    }
}

/// A program under construction. Jumps go forward only, as the kernel requires.
#[derive(Debug, Default)]
pub struct Program {
    ops: Vec<Op>,
    labels: usize,
}

impl Program {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `label` here; each label is placed once.
    pub fn place(&mut self, label: Label) {
        self.ops.push(Op::Place(label));
    }

    /// `A = *(u32 *)(seccomp_data + offset)`.
    pub fn load(&mut self, offset: u32) {
        self.ops.push(Op::Load(offset));
    }

    /// `A &= k`.
    pub fn and(&mut self, k: u32) {
        self.ops.push(Op::And(k));
    }

    pub fn ret(&mut self, action: u32) {
        self.ops.push(Op::Ret(action));
    }

    pub fn jump(&mut self, to: Label) {
        self.ops.push(Op::Jump(to));
    }

    /// `if (A cond k) goto jt else goto jf`.
    pub fn branch(&mut self, cond: Cond, k: u32, jt: Label, jf: Label) {
        self.ops.push(Op::Branch {
            cond,
            k,
            jt,
            jf,
            far_t: false,
            far_f: false,
        });
    }

    /// Resolves labels into kernel instructions, growing trampolines until every
    /// conditional offset fits. Panics on an unplaced label or a backward jump: both are
    /// bugs in this crate's code generator, never a property of the input.
    pub fn assemble(mut self) -> Vec<sock_filter> {
        loop {
            let at = self.positions();
            let mut grew = false;
            let mut pos = 0;
            for op in &mut self.ops {
                // Sizes as `at` saw them; growth shows up in the next round.
                let size = op.size();
                if let Op::Branch {
                    jt,
                    jf,
                    far_t,
                    far_f,
                    ..
                } = op
                {
                    let next = pos + 1;
                    if !*far_t && at[jt.0] - next > u8::MAX as usize {
                        *far_t = true;
                        grew = true;
                    }
                    if !*far_f && at[jf.0] - next > u8::MAX as usize {
                        *far_f = true;
                        grew = true;
                    }
                }
                pos += size;
            }
            if !grew {
                return self.emit(&at);
            }
        }
    }

    /// Where each label lands with the current trampoline choices.
    fn positions(&self) -> Vec<usize> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pos = 0;
        for op in &self.ops {
            if let Op::Place(l) = op {
                at[l.0] = pos;
            }
            pos += op.size();
        }
        assert!(
            at.iter().all(|p| *p != usize::MAX),
            "bpf: label never placed"
        );
        at
    }

    fn emit(&self, at: &[usize]) -> Vec<sock_filter> {
        let mut out = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let here = out.len();
            // Offsets count from the instruction after the jump; targets are forward.
            let off = |l: &Label, from: usize| -> usize {
                at[l.0].checked_sub(from).expect("bpf: backward jump")
            };
            match op {
                Op::Place(_) => {}
                Op::Load(o) => out.push(stmt(LD_W_ABS, *o)),
                Op::And(k) => out.push(stmt(ALU_AND_K, *k)),
                Op::Ret(k) => out.push(stmt(RET_K, *k)),
                Op::Jump(l) => out.push(stmt(JA, off(l, here + 1) as u32)),
                Op::Branch {
                    cond,
                    k,
                    jt,
                    jf,
                    far_t,
                    far_f,
                } => {
                    let t = if *far_t { 0 } else { off(jt, here + 1) };
                    let f = if *far_f {
                        *far_t as usize
                    } else {
                        off(jf, here + 1)
                    };
                    out.push(jump(cond.opcode(), *k, t as u8, f as u8));
                    if *far_t {
                        out.push(stmt(JA, off(jt, out.len() + 1) as u32));
                    }
                    if *far_f {
                        out.push(stmt(JA, off(jf, out.len() + 1) as u32));
                    }
                }
            }
        }
        out
    }
}

pub const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_jumps_use_the_8bit_offsets() {
        let mut p = Program::default();
        let (yes, no) = (p.label(), p.label());
        p.load(0);
        p.branch(Cond::Eq, 7, yes, no);
        p.place(no);
        p.ret(1);
        p.place(yes);
        p.ret(2);
        let code = p.assemble();
        assert_eq!(code.len(), 4);
        assert_eq!((code[1].jt, code[1].jf), (1, 0));
    }

    #[test]
    fn far_jumps_get_a_trampoline() {
        let mut p = Program::default();
        let (yes, no) = (p.label(), p.label());
        p.branch(Cond::Eq, 7, yes, no);
        p.place(no);
        for _ in 0..300 {
            p.ret(1);
        }
        p.place(yes);
        p.ret(2);
        let code = p.assemble();
        assert_eq!(code.len(), 303);
        assert_eq!((code[0].jt, code[0].jf), (0, 1));
        assert_eq!(code[1].code, JA);
        // From the ja at 1, skip the fall-through slot at 2 and the 300 returns.
        assert_eq!(code[1].k, 300);
        assert_eq!(code[302].k, 2);
    }
}
