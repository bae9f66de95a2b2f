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
  4  authentication or authorisation failed
  130  interrupted (Ctrl-C): what finished is kept; run the command again to continue";

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
    /// Push and copy non-distributable (foreign) layers too; by default
    /// they stay at the URLs their manifest names.
    #[arg(long = "allow-nondistributable", global = true)]
    pub(crate) allow_nondistributable: bool,
    /// Get a registry's credentials from a command that prints an access
    /// token, in Google's convention (user `oauth2accesstoken`), as
    /// `REGISTRY=COMMAND` (`gcr.io=gcloud auth print-access-token`); the
    /// command runs with `sh -c` and may print an expiry on a second line
    /// (seconds or RFC 3339) or JSON (`access_token`, `expires_in`). Repeat
    /// for several registries.
    #[arg(long = "token-command", value_name = "REGISTRY=COMMAND", global = true,
          value_parser = parse_token_command)]
    pub(crate) token_command: Vec<(String, String)>,
    /// More detail on errors (the cause chain); repeat for more.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// No progress output.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Use no blob-info cache: by default berth remembers where blobs were
    /// seen (in `$XDG_CACHE_HOME/berth`, else `~/.cache/berth`) and mounts
    /// them from another repository of the same registry instead of
    /// uploading them.
    #[arg(long = "no-cache", global = true)]
    pub(crate) no_cache: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a reference in its normalised form (`ubuntu` is
    /// `docker.io/library/ubuntu:latest`).
    Ref(cmd_ref::Args),
    /// Print the digest of the manifest a reference names (with --platform,
    /// of that platform's manifest in a multi-platform image).
    Digest(cmd_registry::RefArgs),
    /// Print a manifest exactly as the registry sent it: the platform's
    /// manifest from a multi-platform image, unless --all-platforms.
    Manifest(cmd_registry::ManifestArgs),
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

/// `REGISTRY=COMMAND`, as `--token-command` takes it.
fn parse_token_command(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((registry, command)) if !registry.trim().is_empty() && !command.trim().is_empty() => {
            Ok((registry.trim().to_owned(), command.trim().to_owned()))
        }
        _ => Err("expected REGISTRY=COMMAND (gcr.io=gcloud auth print-access-token)".to_owned()),
    }
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

/// The exit code after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// Runs a command until it ends or Ctrl-C arrives. On Ctrl-C the command's
/// future is dropped: a pull deletes the temporaries of the blobs it had
/// not finished, and what it finished stays valid in the layout for the
/// next run to reuse.
async fn interruptible(command: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let mut command = std::pin::pin!(command);
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    // When no handler can be installed, the command just runs to its end.
    let mut listening = true;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(r) = command.as_mut().poll(cx) {
            return std::task::Poll::Ready(r);
        }
        if listening {
            match ctrl_c.as_mut().poll(cx) {
                std::task::Poll::Ready(Ok(())) => {
                    return std::task::Poll::Ready(Err(Failure {
                        code: EXIT_INTERRUPTED,
                        error: anyhow::anyhow!(
                            "interrupted: what finished is kept; run the command again to continue"
                        ),
                    }));
                }
                std::task::Poll::Ready(Err(_)) => listening = false,
                std::task::Poll::Pending => {}
            }
        }
        std::task::Poll::Pending
    })
    .await
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
                // `registry serve` stops on Ctrl-C by itself.
                let serve = matches!(other, Command::Registry(_));
                let command = async {
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
                        Command::Ref(_) | Command::Completions { .. } => {
                            unreachable!("handled above")
                        }
                    }
                };
                if serve {
                    command.await
                } else {
                    interruptible(command).await
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
