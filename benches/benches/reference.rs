//! Reference parsing: berth against the `oci-spec` crate's
//! `distribution::Reference`, on the same 1,000 references in the same run.
//!
//! `cargo bench -p berth-benches --bench reference`
//!
//! One iteration parses the whole corpus; divan's throughput row gives
//! references per second. `cargo xtask bench` reads the medians and reports
//! berth's `parse_normalized` against oci-spec (target: at least 50x).

use std::hint::black_box;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use berth_benches::corpus;
use berth_reference::{Reference, ReferenceRef};
use divan::Bencher;
use divan::counter::ItemsCount;

/// The corpus, checked once before any measurement: both parsers must accept
/// all of it, or the comparison is unfair (oci-spec refuses bracketed IPv6
/// hosts, so the corpus has none).
static REFS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let refs = corpus::references(1000);
    for r in &refs {
        Reference::parse_normalized(r).unwrap_or_else(|e| panic!("berth refuses {r}: {e}"));
        oci_spec::distribution::Reference::from_str(r)
            .unwrap_or_else(|e| panic!("oci-spec refuses {r}: {e}"));
    }
    refs
});

fn main() {
    LazyLock::force(&REFS);
    // At least half a second per bench, so a bench of microseconds takes
    // thousands of samples and its median holds on a busy machine; divan's
    // options on the command line (`--min-time`, `--sample-count`...) win.
    divan::Divan::default()
        .min_time(Duration::from_millis(500))
        .config_with_args()
        .main();
}

/// Runs `parse` over the whole corpus per iteration, summing what it returns.
fn over_corpus(bencher: Bencher<'_, '_>, parse: impl Fn(&str) -> usize + Sync) {
    let refs: &[String] = &REFS;
    bencher
        .counter(ItemsCount::new(refs.len()))
        .bench(move || refs.iter().map(|r| parse(black_box(r))).sum::<usize>());
}

#[divan::bench]
fn berth_parse_normalized(bencher: Bencher<'_, '_>) {
    over_corpus(bencher, |r| {
        Reference::parse_normalized(r)
            .map(|r| r.path().len())
            .unwrap_or(0)
    });
}

#[divan::bench]
fn berth_parse_owned(bencher: Bencher<'_, '_>) {
    over_corpus(bencher, |r| {
        Reference::parse(r).map(|r| r.path().len()).unwrap_or(0)
    });
}

#[divan::bench]
fn berth_reference_ref_parse(bencher: Bencher<'_, '_>) {
    over_corpus(bencher, |r| {
        ReferenceRef::parse(r).map(|r| r.path().len()).unwrap_or(0)
    });
}

#[divan::bench]
fn oci_spec_from_str(bencher: Bencher<'_, '_>) {
    over_corpus(bencher, |r| {
        oci_spec::distribution::Reference::from_str(r)
            .map(|r| r.repository().len())
            .unwrap_or(0)
    });
}
