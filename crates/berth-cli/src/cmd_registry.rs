//! The commands that talk to registries.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use berth::manifest::{Descriptor, ImageConfig, Manifest, MediaType, Platform};
use berth::protocol::ops::{FetchedManifest, Store};
use berth::reference::Reference;
use berth::{Client, CredentialFiles, DockerCredentials, PullOptions, Report};
use berth_hyper::HyperTransport;
use serde_json::json;

use crate::output::{human, progress};
use crate::{Failure, Global};

/// A command that takes one reference.
#[derive(Debug, clap::Args)]
pub(crate) struct RefArgs {
    /// An image reference (`ubuntu:24.04`, `ghcr.io/org/app@sha256:...`).
    #[arg(value_name = "REF", value_parser = parse_reference)]
    reference: Reference,
}

/// `berth manifest REF`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManifestArgs {
    /// An image reference (`ubuntu:24.04`, `ghcr.io/org/app@sha256:...`).
    #[arg(value_name = "REF", value_parser = parse_reference)]
    reference: Reference,
    /// Print the multi-platform index itself, not the platform's manifest.
    #[arg(long = "all-platforms", conflicts_with = "platform")]
    all_platforms: bool,
}

/// `berth catalog REGISTRY`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegistryArgs {
    /// A registry (`ghcr.io`, `localhost:5000`).
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

/// `berth referrers REF`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReferrersArgs {
    #[arg(value_name = "REF", value_parser = parse_reference)]
    reference: Reference,
    /// Only referrers of this artifact type.
    #[arg(long = "artifact-type", value_name = "TYPE")]
    artifact_type: Option<String>,
}

/// `berth pull REF DIR`.
#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    #[arg(value_name = "REF", value_parser = parse_reference)]
    reference: Reference,
    /// The OCI image layout directory to write (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Pull the whole multi-platform index.
    #[arg(long = "all-platforms", conflicts_with = "platform")]
    all_platforms: bool,
}

/// `berth push DIR REF`.
#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// An OCI image layout directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    #[arg(value_name = "REF", value_parser = parse_reference)]
    reference: Reference,
}

/// `berth copy SRC DST`.
#[derive(Debug, clap::Args)]
pub(crate) struct CopyArgs {
    #[arg(value_name = "SRC", value_parser = parse_reference)]
    src: Reference,
    #[arg(value_name = "DST", value_parser = parse_reference)]
    dst: Reference,
    /// Copy the whole multi-platform index.
    #[arg(long = "all-platforms", conflicts_with = "platform")]
    all_platforms: bool,
}

/// `berth tag REF TAG`.
#[derive(Debug, clap::Args)]
pub(crate) struct TagArgs {
    #[arg(value_name = "REF", value_parser = parse_reference)]
    reference: Reference,
    /// The new tag, in the same repository.
    #[arg(value_name = "TAG")]
    tag: String,
}

fn parse_reference(s: &str) -> Result<Reference, String> {
    Reference::parse_normalized(s).map_err(|e| e.to_string())
}

/// The client every command uses, from the global options: credentials as
/// Docker and podman find them, certs.d, insecure registries.
pub(crate) fn client(
    global: &Global,
    progress: Option<berth::Progress>,
) -> Result<Client<HyperTransport>> {
    let mut credentials = DockerCredentials::new(CredentialFiles::from_env());
    for (registry, command) in &global.token_command {
        let source = berth::CommandTokenSource::shell(command.clone());
        credentials = credentials.with_token_source(
            berth::protocol::TokenSourceCredentials::google(registry, Arc::new(source)),
        );
    }
    let mut builder = Client::builder().credentials(Arc::new(credentials));
    // registries.conf's insecure entries skip certificate checks too, as
    // containers/image reads them; the client only allows plain http.
    let mut conf_insecure = Vec::new();
    if let Some(path) = &global.registries_conf {
        let registries = berth::mirrors::read_registries_conf(path)?;
        conf_insecure = berth::mirrors::insecure_hosts(&registries);
        builder = builder.registries(registries);
    }
    for host in &global.insecure {
        builder = builder.insecure_registry(host.clone());
    }
    if let Some(n) = global.concurrency {
        builder = builder.concurrency(n);
    }
    builder = builder.allow_nondistributable(global.allow_nondistributable);
    if let Some(p) = progress {
        builder = builder.progress(p);
    }
    if !global.no_cache
        && let Some(dir) = berth::BlobInfoCache::default_dir()
    {
        // A cache that cannot be opened costs only the mounts it would
        // have found.
        match berth::BlobInfoCache::open(&dir) {
            Ok(cache) => builder = builder.blob_info_cache(cache),
            Err(e) => eprintln!("berth: warning: no blob-info cache: {e}"),
        }
    }
    Ok(builder.build(transport_with(global, &conf_insecure)?))
}

/// The transport every command uses: certs.d, the proxies in the
/// environment, `--insecure-registry` and `--ca-file`.
pub(crate) fn transport(global: &Global) -> Result<HyperTransport> {
    transport_with(global, &[])
}

/// [`transport`], with more insecure sites (registries.conf's).
fn transport_with(global: &Global, more_insecure: &[String]) -> Result<HyperTransport> {
    // Proxies as curl and Docker read them (HTTPS_PROXY, HTTP_PROXY,
    // NO_PROXY); loopback is never proxied.
    let proxy =
        berth_hyper::ProxyConfig::from_env().context("the proxy settings in the environment")?;
    let mut transport = HyperTransport::builder().certs_d(true).proxy(proxy);
    for host in global.insecure.iter().chain(more_insecure) {
        transport = transport.insecure_host(host.clone());
    }
    if let Some(ca) = &global.ca_file {
        transport = transport.extra_ca_file(ca.clone());
    }
    let transport = transport.build().context("cannot set up TLS")?;
    for warning in transport.warnings() {
        eprintln!("berth: warning: {warning}");
    }
    Ok(transport)
}

fn platform(global: &Global) -> Result<Platform, Failure> {
    match &global.platform {
        None => Ok(Platform::host()),
        Some(p) => p.parse().map_err(|e| Failure {
            code: 2,
            error: anyhow!("invalid --platform {p:?}: {e}"),
        }),
    }
}

/// Commands that act on the whole image a reference names refuse
/// `--platform` rather than ignore it: `berth delete --platform linux/arm64`
/// would otherwise delete every platform's index.
fn no_platform(global: &Global, command: &str) -> Result<(), Failure> {
    let Some(p) = &global.platform else {
        return Ok(());
    };
    let instead = if command == "push" {
        format!("pull with `--platform {p}` into a layout of its own and push that")
    } else {
        format!("name the platform's manifest by its digest (`berth digest --platform {p} REF`)")
    };
    Err(Failure {
        code: 2,
        error: anyhow!(
            "--platform does not apply to `berth {command}`, which acts on the whole image; \
             {instead}"
        ),
    })
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn print_lines<I: IntoIterator<Item = S>, S: AsRef<str>>(lines: I) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{}", l.as_ref())?;
    }
    Ok(())
}

fn report_json(r: &Report) -> serde_json::Value {
    json!({
        "digest": r.digest.as_ref().map(ToString::to_string),
        "blobs_transferred": r.blobs_transferred,
        "blobs_skipped": r.blobs_skipped,
        "blobs_mounted": r.blobs_mounted,
        "bytes": r.bytes,
        "manifests": r.manifests,
        "blobs_left_at_urls": r.blobs_left_at_urls,
    })
}

fn print_report(r: &Report, global: &Global) -> Result<()> {
    if global.json {
        return print_json(&report_json(r));
    }
    if let Some(d) = &r.digest {
        print_lines([d.to_string()])?;
    }
    if !global.quiet {
        eprintln!(
            "{} blobs transferred ({}), {} already there, {} mounted, {} manifests",
            r.blobs_transferred,
            human(r.bytes),
            r.blobs_skipped,
            r.blobs_mounted,
            r.manifests
        );
        if r.blobs_left_at_urls > 0 {
            eprintln!(
                "{} non-distributable layers left at their URLs (--allow-nondistributable copies them)",
                r.blobs_left_at_urls
            );
        }
    }
    Ok(())
}

pub(crate) async fn digest(a: &RefArgs, g: &Global) -> Result<(), Failure> {
    let c = client(g, None)?;
    // With --platform, the digest of that platform's manifest (as `crane
    // digest --platform` prints it); without, of what the reference names.
    let d = match &g.platform {
        None => c.resolve(&a.reference).await?,
        Some(_) => c
            .platform_manifest(&a.reference, &platform(g)?)
            .await?
            .descriptor(),
    };
    if g.json {
        print_json(
            &json!({"digest": d.digest.to_string(), "mediaType": d.media_type.as_str(), "size": d.size}),
        )?;
    } else {
        print_lines([d.digest.to_string()])?;
    }
    Ok(())
}

pub(crate) async fn manifest(a: &ManifestArgs, g: &Global) -> Result<(), Failure> {
    let c = client(g, None)?;
    let r = &a.reference;
    // The bytes exactly as the registry sent them: of the index itself with
    // --all-platforms, else of the platform's manifest (this machine's, or
    // --platform's) when the reference names an index.
    let bytes = match r.digest() {
        // By digest: whatever the content is, from whichever store has it
        // (the manifest store, then the blob store), verified.
        Some(digest) => {
            let content = c.content(r, &[Store::Manifests, Store::Blobs]).await?;
            let index = (content.store == Store::Manifests && !a.all_platforms)
                .then(|| {
                    Manifest::from_vec(
                        content.bytes.to_vec(),
                        content.media_type.as_ref().map(MediaType::as_str),
                    )
                })
                .and_then(Result::ok)
                .filter(Manifest::is_index);
            match index {
                // The index is here already: only the platform's entry is
                // fetched.
                Some(manifest) => {
                    let top = FetchedManifest {
                        manifest,
                        digest: digest.clone(),
                    };
                    c.pick_platform(r, top, &platform(g)?)
                        .await?
                        .manifest
                        .raw()
                        .to_vec()
                }
                None => content.bytes.to_vec(),
            }
        }
        None if a.all_platforms => c.manifest(r).await?.manifest.raw().to_vec(),
        None => c
            .platform_manifest(r, &platform(g)?)
            .await?
            .manifest
            .raw()
            .to_vec(),
    };
    std::io::stdout()
        .lock()
        .write_all(&bytes)
        .context("writing to stdout")?;
    Ok(())
}

pub(crate) async fn config(a: &RefArgs, g: &Global) -> Result<(), Failure> {
    let bytes = client(g, None)?.config(&a.reference, &platform(g)?).await?;
    std::io::stdout()
        .lock()
        .write_all(&bytes)
        .context("writing to stdout")?;
    Ok(())
}

pub(crate) async fn blob(a: &RefArgs, g: &Global) -> Result<(), Failure> {
    let Some(digest) = a.reference.digest().cloned() else {
        return Err(Failure {
            code: 2,
            error: anyhow!("`berth blob` needs REF@DIGEST"),
        });
    };
    let c = client(g, None)?;
    let r = &a.reference;
    let Some(info) = c.head_blob(r.domain(), r.path(), &digest).await? else {
        // Not in the blob store: content kept only as a manifest (some
        // registries serve manifests from the manifest store alone).
        let content = c.content(r, &[Store::Manifests]).await?;
        std::io::stdout()
            .lock()
            .write_all(&content.bytes)
            .context("writing to stdout")?;
        return Ok(());
    };
    let size = info
        .size
        .ok_or_else(|| anyhow!("the registry did not say the blob's size"))?;
    let descriptor = Descriptor::new(MediaType::new("application/octet-stream"), digest, size);
    let mut out = std::io::stdout().lock();
    c.fetch_blob(r.domain(), r.path(), &descriptor, |chunk| {
        out.write_all(chunk).map_err(|source| berth::Error::Io {
            path: "standard output".into(),
            source,
        })
    })
    .await?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

pub(crate) async fn tags(a: &RefArgs, g: &Global) -> Result<(), Failure> {
    let tags = client(g, None)?.tags(&a.reference).await?;
    if g.json {
        print_json(&json!(tags))?
    } else {
        print_lines(tags)?
    }
    Ok(())
}

pub(crate) async fn catalog(a: &RegistryArgs, g: &Global) -> Result<(), Failure> {
    let repos = client(g, None)?.catalog(&a.registry).await?;
    if g.json {
        print_json(&json!(repos))?
    } else {
        print_lines(repos)?
    }
    Ok(())
}

pub(crate) async fn referrers(a: &ReferrersArgs, g: &Global) -> Result<(), Failure> {
    let r = client(g, None)?
        .referrers(&a.reference, a.artifact_type.as_deref().map(MediaType::new))
        .await?;
    if g.json {
        print_json(&json!({"api": r.api, "manifests": r.descriptors}))?;
    } else {
        print_lines(r.descriptors.iter().map(|d| {
            format!(
                "{} {} {}",
                d.digest,
                d.artifact_type.as_ref().map_or("-", |t| t.as_str()),
                human(d.size)
            )
        }))?;
    }
    Ok(())
}

pub(crate) async fn inspect(a: &RefArgs, g: &Global) -> Result<(), Failure> {
    let c = client(g, None)?;
    let top = c.manifest(&a.reference).await?;
    let platforms: Vec<String> = top
        .manifest
        .manifests()
        .iter()
        .filter(|d| !d.is_unknown_platform())
        .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
        .collect();
    let image = c.platform_manifest(&a.reference, &platform(g)?).await?;
    let config_bytes = c.config(&a.reference, &platform(g)?).await.ok();
    let config = config_bytes
        .as_deref()
        .and_then(|b| ImageConfig::from_slice(b).ok());
    let layers: Vec<(String, u64)> = image
        .manifest
        .layers()
        .iter()
        .map(|l| (l.digest.to_string(), l.size))
        .collect();
    let created = config.as_ref().and_then(|c| c.created.clone());
    let labels = config
        .as_ref()
        .and_then(|c| c.config.as_ref())
        .map(|r| r.labels.clone())
        .unwrap_or_default();
    if g.json {
        return Ok(print_json(&json!({
            "reference": a.reference.to_string(),
            "digest": top.digest.to_string(),
            "mediaType": top.manifest.media_type().as_str(),
            "platforms": platforms,
            "manifest": image.digest.to_string(),
            "layers": layers.iter().map(|(d, s)| json!({"digest": d, "size": s})).collect::<Vec<_>>(),
            "size": layers.iter().map(|(_, s)| s).sum::<u64>(),
            "created": created,
            "labels": labels,
        }))?);
    }
    let mut out = vec![
        format!("reference:  {}", a.reference),
        format!("digest:     {}", top.digest),
        format!("media type: {}", top.manifest.media_type()),
    ];
    if !platforms.is_empty() {
        out.push(format!("platforms:  {}", platforms.join(", ")));
        out.push(format!(
            "manifest:   {} (for {})",
            image.digest,
            platform(g)?
        ));
    }
    if let Some(created) = created {
        out.push(format!("created:    {created}"));
    }
    out.push(format!(
        "layers:     {} ({} in all)",
        layers.len(),
        human(layers.iter().map(|(_, s)| s).sum())
    ));
    for (d, s) in &layers {
        out.push(format!("  {d}  {}", human(*s)));
    }
    if !labels.is_empty() {
        out.push("labels:".to_owned());
        out.extend(labels.iter().map(|(k, v)| format!("  {k}={v}")));
    }
    print_lines(out)?;
    Ok(())
}

pub(crate) async fn pull(a: &PullArgs, g: &Global) -> Result<(), Failure> {
    let options = if a.all_platforms {
        PullOptions::all_platforms()
    } else {
        PullOptions::platform(platform(g)?)
    };
    let report = client(g, progress(g.quiet))?
        .pull(&a.reference, &a.dir, &options)
        .await?;
    Ok(print_report(&report, g)?)
}

pub(crate) async fn push(a: &PushArgs, g: &Global) -> Result<(), Failure> {
    no_platform(g, "push")?;
    let report = client(g, progress(g.quiet))?
        .push(&a.dir, &a.reference)
        .await?;
    Ok(print_report(&report, g)?)
}

pub(crate) async fn copy(a: &CopyArgs, g: &Global) -> Result<(), Failure> {
    let options = if a.all_platforms {
        PullOptions::all_platforms()
    } else {
        PullOptions::platform(platform(g)?)
    };
    let report = client(g, progress(g.quiet))?
        .copy(&a.src, &a.dst, &options)
        .await?;
    Ok(print_report(&report, g)?)
}

pub(crate) async fn tag(a: &TagArgs, g: &Global) -> Result<(), Failure> {
    no_platform(g, "tag")?;
    let d = client(g, None)?.tag(&a.reference, &a.tag).await?;
    if g.json {
        print_json(&json!({"digest": d.to_string(), "tag": a.tag}))?
    } else {
        print_lines([d.to_string()])?
    }
    Ok(())
}

pub(crate) async fn delete(a: &RefArgs, g: &Global) -> Result<(), Failure> {
    no_platform(g, "delete")?;
    let d = client(g, None)?.delete(&a.reference).await?;
    if g.json {
        print_json(&json!({"deleted": d.to_string()}))?
    } else {
        print_lines([d.to_string()])?
    }
    Ok(())
}
