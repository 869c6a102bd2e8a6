//! The `latchkey` binary: load the configuration, start logging, run the command.

use clap::Parser;
use latchkey::cli::{self, Cli};
use latchkey::config::Settings;

#[actix_web::main]
async fn main() {
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
