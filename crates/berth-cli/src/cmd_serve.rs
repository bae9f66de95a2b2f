//! `berth registry serve`: the embedded OCI registry (berth-registry).

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use berth_registry::{Auth, Registry, Storage};

use crate::{Failure, Global};

/// `berth registry ...`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RegistryCommand {
    /// Serve an OCI registry until interrupted; prints its address.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "HOST:PORT")]
    address: String,
    /// Keep blobs and manifests in this directory (default: in memory).
    #[arg(long, value_name = "DIR")]
    storage: Option<PathBuf>,
    /// Require HTTP Basic auth for this user (password from stdin).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    user: Option<String>,
    /// Read the password for --user from standard input.
    #[arg(long = "password-stdin", requires = "user")]
    password_stdin: bool,
}

pub(crate) async fn run(a: &RegistryArgs, g: &Global) -> Result<(), Failure> {
    let RegistryCommand::Serve(s) = &a.command;
    let mut builder = Registry::builder().bind(s.address.clone());
    builder = builder.storage(match &s.storage {
        Some(dir) => Storage::disk(dir.clone()),
        None => Storage::memory(),
    });
    if let Some(user) = &s.user {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("reading the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(Failure {
                code: 2,
                error: anyhow!("no password on stdin"),
            });
        }
        builder = builder.auth(Auth::basic(user.clone(), password));
    }
    let registry = builder
        .start()
        .await
        .map_err(|e| anyhow!("cannot serve on {}: {e}", s.address))?;
    // The address on stdout (one line, flushed), for scripts that asked for
    // port 0; the rest on stderr.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", registry.host()).context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }
    if !g.quiet {
        eprintln!(
            "berth: serving an OCI registry at {} ({}); Ctrl-C stops it",
            registry.url(),
            s.storage
                .as_ref()
                .map_or("in memory".to_owned(), |d| format!(
                    "storage in {}",
                    d.display()
                ))
        );
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    registry.stop().await;
    Ok(())
}
