//! `berth ref REF`: the normalised form of a reference and its parts.

use std::io::Write;

use anyhow::Result;
use berth_reference::Reference;
use serde::Serialize;

use crate::Global;

/// Arguments of `berth ref`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// An image reference, as people write it (`ubuntu`, `ghcr.io/org/app:v1`).
    #[arg(value_name = "REF", value_parser = parse_reference)]
    reference: Reference,
}

fn parse_reference(s: &str) -> Result<Reference, String> {
    Reference::parse_normalized(s).map_err(|e| e.to_string())
}

#[derive(Debug, Serialize)]
struct Parts<'a> {
    reference: String,
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<String>,
    familiar: String,
}

pub(crate) fn run(args: &Args, out: &Global) -> Result<()> {
    let r = args.reference.clone().with_default_tag();
    let mut stdout = std::io::stdout().lock();
    if out.json {
        let parts = Parts {
            reference: r.to_string(),
            domain: r.domain(),
            path: r.path(),
            tag: r.tag(),
            digest: r.digest().map(ToString::to_string),
            familiar: r.familiar(),
        };
        serde_json::to_writer_pretty(&mut stdout, &parts)?;
        writeln!(stdout)?;
    } else {
        writeln!(stdout, "{r}")?;
    }
    Ok(())
}
