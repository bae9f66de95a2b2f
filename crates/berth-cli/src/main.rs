//! The `berth` command.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_login;
mod cmd_ref;
mod cmd_registry;
mod cmd_serve;
mod output;

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  the operation failed
  2  usage error (bad arguments, an invalid reference)
  3  not found (image, tag, repository, blob, platform)
  4  authentication or authorisation failed";

/// berth: a fast, verifying client for container registries.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: Global,

    #[command(subcommand)]
    command: Command,
}

/// Options every command takes, before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Global {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Allow plain http and unverified TLS for this registry (`HOST[:PORT]`);
    /// repeat for several.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", global = true)]
    pub(crate) insecure: Vec<String>,
    /// Trust the CA certificates in this PEM file too.
    #[arg(long = "ca-file", value_name = "FILE", global = true)]
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// The platform to pick from a multi-platform image (os/arch[/variant]);
    /// default: this machine's.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", global = true)]
    pub(crate) platform: Option<String>,
    /// How many blobs move at once.
    #[arg(long, value_name = "N", global = true)]
    pub(crate) concurrency: Option<usize>,
    /// Mirrors and blocked registries from this registries.conf
    /// (containers-registries.conf format, version 2).
    #[arg(long = "registries-conf", value_name = "FILE", global = true)]
    pub(crate) registries_conf: Option<std::path::PathBuf>,
    /// More detail on errors (the cause chain); repeat for more.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// No progress output.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a reference in its normalised form (`ubuntu` is
    /// `docker.io/library/ubuntu:latest`).
    Ref(cmd_ref::Args),
    /// Print the digest of the manifest a reference names.
    Digest(cmd_registry::RefArgs),
    /// Print a manifest exactly as the registry sent it.
    Manifest(cmd_registry::RefArgs),
    /// Print the image configuration for the platform.
    Config(cmd_registry::RefArgs),
    /// Write a blob (REF@DIGEST) to stdout, verified.
    Blob(cmd_registry::RefArgs),
    /// List the tags of a repository.
    Tags(cmd_registry::RefArgs),
    /// List the repositories of a registry.
    Catalog(cmd_registry::RegistryArgs),
    /// List the manifests that refer to an image (signatures, SBOMs).
    Referrers(cmd_registry::ReferrersArgs),
    /// Summarise an image: digest, media type, platforms, layers, labels.
    Inspect(cmd_registry::RefArgs),
    /// Pull an image into an OCI image layout directory.
    Pull(cmd_registry::PullArgs),
    /// Push the image in an OCI image layout directory.
    Push(cmd_registry::PushArgs),
    /// Copy an image from one registry (or repository) to another.
    Copy(cmd_registry::CopyArgs),
    /// Point another tag at the manifest a reference names.
    Tag(cmd_registry::TagArgs),
    /// Delete the manifest a reference names.
    Delete(cmd_registry::RefArgs),
    /// Store credentials for a registry in the Docker config.
    Login(cmd_login::LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(cmd_login::LogoutArgs),
    /// Run an OCI registry (`berth registry serve`).
    Registry(cmd_serve::RegistryArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Why a command failed, with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let code = error
            .chain()
            .find_map(|c| c.downcast_ref::<berth::Error>())
            .map_or(1, |e| match e.kind() {
                berth::ErrorKind::NotFound => 3,
                berth::ErrorKind::Auth => 4,
                berth::ErrorKind::Usage => 2,
                _ => 1,
            });
        Failure { code, error }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = cli.global.clone();
    let result = match cli.command {
        Command::Ref(args) => cmd_ref::run(&args, &global).map_err(Failure::from),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
            Ok(())
        }
        other => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(async {
                match other {
                    Command::Digest(a) => cmd_registry::digest(&a, &global).await,
                    Command::Manifest(a) => cmd_registry::manifest(&a, &global).await,
                    Command::Config(a) => cmd_registry::config(&a, &global).await,
                    Command::Blob(a) => cmd_registry::blob(&a, &global).await,
                    Command::Tags(a) => cmd_registry::tags(&a, &global).await,
                    Command::Catalog(a) => cmd_registry::catalog(&a, &global).await,
                    Command::Referrers(a) => cmd_registry::referrers(&a, &global).await,
                    Command::Inspect(a) => cmd_registry::inspect(&a, &global).await,
                    Command::Pull(a) => cmd_registry::pull(&a, &global).await,
                    Command::Push(a) => cmd_registry::push(&a, &global).await,
                    Command::Copy(a) => cmd_registry::copy(&a, &global).await,
                    Command::Tag(a) => cmd_registry::tag(&a, &global).await,
                    Command::Delete(a) => cmd_registry::delete(&a, &global).await,
                    Command::Login(a) => cmd_login::login(&a, &global).await,
                    Command::Logout(a) => cmd_login::logout(&a, &global).await,
                    Command::Registry(a) => cmd_serve::run(&a, &global).await,
                    Command::Ref(_) | Command::Completions { .. } => unreachable!("handled above"),
                }
            }),
            Err(e) => Err(Failure::from(e)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            let mut stderr = std::io::stderr().lock();
            // One line a person can act on; -v adds the causes.
            let _ = writeln!(stderr, "berth: {error}");
            if global.verbose > 0 {
                for cause in error.chain().skip(1) {
                    let _ = writeln!(stderr, "  caused by: {cause}");
                }
            }
            ExitCode::from(code)
        }
    }
}
