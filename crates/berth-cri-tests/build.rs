//! Builds berth's pause (`pause/pause.rs`) into a static executable in OUT_DIR with one rustc
//! call: it is `no_std` and needs `panic=abort`, which a cargo profile cannot give one binary of
//! a workspace whose dev profile unwinds. The tests put it in the sandbox image they push.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "pause/pause.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("pause");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("TARGET");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--target",
            &target,
        ])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "strip=symbols",
        ])
        // No dynamic loader, no C runtime: `_start` is the program's own.
        .args(["-C", "relocation-model=static", "-C", "link-arg=-static"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .expect("run rustc for pause/pause.rs");
    assert!(status.success(), "rustc failed to build {src}");
}
