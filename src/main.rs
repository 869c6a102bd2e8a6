//! The `latchkey` binary: load the configuration, start logging, run the command.

use clap::Parser;
use latchkey::cli::{self, Cli};
use latchkey::config::Settings;

#[actix_web::main]
async fn main() {
    tune_allocator();
    let args = Cli::parse();
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("latchkey: {error}");
            std::process::exit(2);
        }
    };
    latchkey::telemetry::init(settings.log_format, &settings.log_level);
    if let Err(failure) = cli::run(args.command, settings).await {
        eprintln!("latchkey: {}", failure.message);
        std::process::exit(failure.code);
    }
}

/// glibc's allocator raises its mmap threshold after a large block is freed, so the 19 MiB
/// of every later argon2 hash comes from (and stays in) a heap arena, one per thread that
/// hashed: hundreds of MiB after a burst of logins. A fixed threshold keeps large blocks in
/// mmap, returned to the system when freed, and a few arenas keep fragmentation down.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
