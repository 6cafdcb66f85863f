//! Builds the guest vDSO (src/vdso/vdso.c) with the host's gcc into a
//! position-independent shared object that the kernel embeds and maps into
//! every guest address space.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from("src/vdso");
    for f in ["vdso.c", "vdso.lds", "vdso.map"] {
        println!("cargo:rerun-if-changed=src/vdso/{f}");
    }
    println!("cargo:rerun-if-env-changed=RUML_VDSO_CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("vdso.so");
    let cc = std::env::var("RUML_VDSO_CC").unwrap_or_else(|_| "gcc".to_string());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-nostdlib",
            "-shared",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-builtin",
            "-mno-red-zone",
            "-fasynchronous-unwind-tables",
            "-fcf-protection=none",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,-soname,linux-vdso.so.1",
            "-Wl,--hash-style=both",
            "-Wl,--eh-frame-hdr",
            "-Wl,-z,max-page-size=4096",
            "-Wl,--no-undefined",
            "-Wl,-s",
        ])
        .arg(format!("-Wl,-T,{}", dir.join("vdso.lds").display()))
        .arg(format!(
            "-Wl,--version-script,{}",
            dir.join("vdso.map").display()
        ))
        .arg("-o")
        .arg(&out)
        .arg(dir.join("vdso.c"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc} to build the vDSO: {e} (install gcc)"));
    assert!(status.success(), "building the vDSO with {cc} failed");
}
