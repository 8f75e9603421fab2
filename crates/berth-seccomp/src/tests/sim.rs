//! A classic-BPF interpreter covering what seccomp filters use (ld abs w, alu and,
//! jeq/jgt/jge k, ja, ret k), run against a synthetic `seccomp_data`.

use oci_spec::runtime::LinuxSeccomp;

use crate::bpf::{ALU_AND_K, JA, JEQ_K, JGE_K, JGT_K, LD_W_ABS, RET_K};
use crate::Filter;

/// One syscall as the filter sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Call {
    pub fn new(arch: u32, nr: u32) -> Call {
        Call {
            nr,
            arch,
            args: [0; 6],
        }
    }

    pub fn arg(mut self, i: usize, v: u64) -> Call {
        self.args[i] = v;
        self
    }

    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// Runs the filter on `call` and returns its `SECCOMP_RET_*` value. Panics on anything
/// the kernel's checker would refuse: unknown opcodes, out-of-range loads or jumps,
/// falling off the end.
pub fn run(f: &Filter, call: Call) -> u32 {
    let prog = f.instructions();
    assert!(prog.len() <= crate::bpf::MAX_INSNS, "program too long");
    let data = call.bytes();
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let ins = prog
            .get(pc)
            .unwrap_or_else(|| panic!("fell off the end at {pc}"));
        pc += 1;
        let cond = |taken: bool| {
            if taken {
                ins.jt as usize
            } else {
                ins.jf as usize
            }
        };
        match ins.code {
            LD_W_ABS => {
                let off = ins.k as usize;
                assert!(
                    off.is_multiple_of(4) && off + 4 <= data.len(),
                    "bad load offset {off}"
                );
                a = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap());
            }
            ALU_AND_K => a &= ins.k,
            JA => pc += ins.k as usize,
            JEQ_K => pc += cond(a == ins.k),
            JGT_K => pc += cond(a > ins.k),
            JGE_K => pc += cond(a >= ins.k),
            RET_K => return ins.k,
            c => panic!("opcode {c:#x} at {}", pc - 1),
        }
    }
}

/// Parses a JSON `linux.seccomp` section and compiles it, panicking on errors.
pub fn filter(json: &str) -> Filter {
    crate::compile(&spec(json)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn spec(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test profile: {e}"))
}
