//! The `rampart` command: a thin layer over the library crates.

mod cli;
mod controller;
mod fix;
mod install;
mod inventory;
mod scan;
mod serve;
mod test_cmd;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

// Parsing builds and drops millions of small JSON nodes; mimalloc's
// thread-local free lists make that markedly cheaper than glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes: 0 clean, 1 findings at or above the threshold, 2 usage or input errors.
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Checks(args) => scan::list_checks(&args),
        Command::Test(args) => test_cmd::run(&args),
        Command::Crds(args) => test_cmd::crds(&args),
        Command::Serve(args) => serve::run(args),
        Command::WebhookConfig(args) => serve::webhook_config(args),
        Command::Fix(args) => fix::run(&args),
        Command::Controller(args) => controller::run(args),
        Command::Inventory(args) => inventory::run(&args),
        Command::Install(args) => install::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("rampart: error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
