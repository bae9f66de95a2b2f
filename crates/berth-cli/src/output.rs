//! Progress for pull, push and copy: bars on a terminal, plain lines
//! otherwise, nothing with `-q`; always on stderr, so stdout carries only
//! the result.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use berth::{Event, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Builds the progress callback for a transfer.
pub(crate) fn progress(quiet: bool) -> Option<Progress> {
    if quiet {
        return None;
    }
    if std::io::stderr().is_terminal() {
        Some(bars())
    } else {
        Some(lines())
    }
}

fn short(d: &berth::reference::Digest) -> String {
    format!(
        "{}:{}",
        d.algorithm(),
        &d.encoded()[..12.min(d.encoded().len())]
    )
}

/// Plain lines: one when a blob starts, one when it ends.
fn lines() -> Progress {
    Progress::new(|event| {
        let line = match &event {
            Event::BlobStarted { digest, size } => Some(format!(
                "{} {}: started ({})",
                "blob",
                short(digest),
                human(*size)
            )),
            Event::BlobFinished { digest } => Some(format!("blob {}: done", short(digest))),
            Event::BlobSkipped { digest } => Some(format!("blob {}: already there", short(digest))),
            Event::BlobMounted { digest } => Some(format!("blob {}: mounted", short(digest))),
            Event::BlobResumed { digest, from } => {
                Some(format!("blob {}: resumed at byte {from}", short(digest)))
            }
            Event::Manifest { digest } => Some(format!("manifest {}", digest)),
            Event::Warning { message } => Some(format!("warning: {message}")),
            Event::SourceFailed {
                digest,
                source,
                reason,
            } => Some(format!(
                "blob {}: {source} failed ({reason}); trying the next source",
                short(digest)
            )),
            _ => None,
        };
        if let Some(line) = line {
            eprintln!("{line}");
        }
    })
}

/// One bar per blob plus a total, bytes and rate.
fn bars() -> Progress {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>19} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let total = multi.add(ProgressBar::new(0));
    total.set_style(style.clone());
    total.set_prefix("total");
    let state = Arc::new(Mutex::new((
        multi,
        total,
        HashMap::<String, ProgressBar>::new(),
        style,
    )));
    Progress::new(move |event| {
        let Ok(mut guard) = state.lock() else { return };
        let (multi, total, blobs, style) = &mut *guard;
        match event {
            Event::BlobStarted { digest, size } => {
                let bar = multi.insert_before(total, ProgressBar::new(size));
                bar.set_style(style.clone());
                bar.set_prefix(short(&digest));
                total.inc_length(size);
                blobs.insert(digest.to_string(), bar);
            }
            Event::BlobProgress { digest, done, .. } => {
                if let Some(bar) = blobs.get(&digest.to_string()) {
                    let delta = done.saturating_sub(bar.position());
                    bar.set_position(done);
                    total.inc(delta);
                }
            }
            Event::BlobFinished { digest } => {
                if let Some(bar) = blobs.get(&digest.to_string()) {
                    bar.finish();
                }
            }
            Event::BlobSkipped { digest } | Event::BlobMounted { digest } => {
                let _ = multi.println(format!("blob {}: already there", short(&digest)));
            }
            Event::Warning { message } => {
                let _ = multi.println(format!("warning: {message}"));
            }
            _ => {}
        }
    })
}

/// Bytes for a person (binary units).
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
