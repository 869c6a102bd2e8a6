//! Link-time layout of the `latchkey` binary.
//!
//! Start-up runs a few thousand functions spread over all of the code, and the kernel maps
//! code 64 KiB around every page that runs, so an idle server kept most of its code resident.
//! `link/start-up-symbols.txt` (written by `bench/order-start-up`) names those functions;
//! rust-lld, the default linker for this target since Rust 1.90, places them first. Relative
//! relocations are packed (RELR), so the loader reads a few KiB of them at start instead of
//! a MiB, where the C library can read them (glibc 2.36 and later: an older loader refuses such a
//! binary). Other targets, and builds that choose their own linker, link as before.

use std::env;
use std::fs;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/start-up-symbols.txt");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let target = env::var("TARGET").unwrap_or_default();
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = env::var_os("RUSTC_LINKER").is_some() || rustflags.contains("link");
    if target != "x86_64-unknown-linux-gnu" || own_linker {
        return;
    }
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let order = Path::new(&manifest).join("link/start-up-symbols.txt");
    if env::var("PROFILE").is_ok_and(|profile| profile == "release") {
        warn_if_written_for_another_build(&order, &Path::new(&manifest).join("Cargo.lock"));
    }
    let mut arguments = vec![
        format!("--symbol-ordering-file={}", order.display()),
        "--no-warn-symbol-ordering".to_owned(),
    ];
    if env::var("HOST").is_ok_and(|host| host == target) && glibc_reads_relr() {
        arguments.push("-zpack-relative-relocs".to_owned());
    }
    for argument in arguments {
        // `-Xlinker` hands one argument through the C compiler driver untouched (commas too).
        println!("cargo:rustc-link-arg-bins=-Xlinker");
        println!("cargo:rustc-link-arg-bins={argument}");
    }
}

/// Whether this machine's glibc is 2.36 or later (`getconf GNU_LIBC_VERSION`: "glibc 2.36"),
/// the first whose loader reads packed relative relocations. Unknown counts as no.
fn glibc_reads_relr() -> bool {
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|part| part.parse::<u32>().ok());
    matches!(
        (numbers.next().flatten(), numbers.next().flatten()),
        (Some(major), Some(minor)) if (major, minor) >= (2, 36)
    )
}

/// The names in the order file carry hashes of the compiler and of every dependency's version,
/// so a file written by another compiler, or before the dependencies changed, names functions
/// this build does not have: it still links and runs, but idles with several MiB more code in
/// memory. The file's header records both (`bench/order-start-up` writes it); a release build
/// that differs says so.
fn warn_if_written_for_another_build(order: &Path, lock: &Path) {
    let header = fs::read_to_string(order).unwrap_or_default();
    let recorded = |key: &str| {
        header
            .lines()
            .take_while(|line| line.starts_with('#'))
            .find_map(|line| line.strip_prefix(&format!("# {key}: ")).map(str::to_owned))
    };
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let this_rustc = Command::new(rustc)
        .arg("-vV")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned));
    let this_lock = fs::read(lock)
        .ok()
        .map(|bytes| format!("{:016x}", fnv1a(&bytes)));
    let mut differences = Vec::new();
    if recorded("rustc") != this_rustc {
        differences.push("another compiler");
    }
    if recorded("Cargo.lock") != this_lock {
        differences.push("other dependencies");
    }
    if !differences.is_empty() {
        println!(
            "cargo:warning=link/start-up-symbols.txt was written for {}: this build's start-up \
             code is not grouped, so it idles with more memory. Run bench/order-start-up and \
             commit the file.",
            differences.join(" and ")
        );
    }
}

/// FNV-1a (64-bit): a fingerprint of the lock file that the generator's Python computes too.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
