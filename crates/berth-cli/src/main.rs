//! The `berth` command.
//!
//! Exit codes: 0 success; 1 the operation failed; 2 usage error (bad
//! arguments, an invalid reference).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_ref;

/// berth: a fast, verifying client for container registries.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
#[command(
    after_help = "Exit codes:\n  0  success\n  1  the operation failed\n  2  usage error (bad arguments, an invalid reference)"
)]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a reference in its normalised form (`ubuntu` is
    /// `docker.io/library/ubuntu:latest`).
    Ref(cmd_ref::Args),
}

/// Output settings every command shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    let result = match cli.command {
        Command::Ref(args) => cmd_ref::run(&args, out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            // Nothing more can be done if stderr is gone.
            let _ = writeln!(stderr, "berth: {e:#}");
            ExitCode::from(1)
        }
    }
}
