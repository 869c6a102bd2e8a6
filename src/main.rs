//! The `latchkey` binary: load the configuration, start logging, run the command.

use clap::Parser;
use latchkey::cli::{self, Cli};
use latchkey::config::Settings;

#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: latchkey::memory::HugeBlocks = latchkey::memory::HugeBlocks;

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

/// glibc's allocator raises its mmap threshold after a large block is freed, so that later
/// large blocks come from (and stay in) a heap arena, one per thread: with argon2's 19 MiB,
/// hundreds of MiB after a burst of logins. Blocks that large no longer reach glibc
/// ([`latchkey::memory::HugeBlocks`]), but a fixed threshold still returns every block of
/// 1 MiB and more to the system when freed, and a few arenas keep fragmentation down.
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
