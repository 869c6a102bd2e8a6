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
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/start-up-symbols.txt");
    let target = env::var("TARGET").unwrap_or_default();
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = env::var_os("RUSTC_LINKER").is_some() || rustflags.contains("link");
    if target != "x86_64-unknown-linux-gnu" || own_linker {
        return;
    }
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let order = Path::new(&manifest).join("link/start-up-symbols.txt");
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
