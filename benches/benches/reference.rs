//! Reference parsing: berth against the `oci-spec` crate's
//! `distribution::Reference`, on the same 1,000 references in the same run.
//!
//! `cargo bench -p berth-benches --bench reference`

use std::hint::black_box;
use std::str::FromStr;

use berth_benches::{Bench, corpus};
use berth_reference::{Reference, ReferenceRef};

fn main() {
    let refs = corpus::references(1000);
    // Both parsers must accept the whole corpus, or the comparison is unfair
    // (oci-spec refuses bracketed IPv6 hosts, so the corpus has none).
    for r in &refs {
        Reference::parse_normalized(r).unwrap_or_else(|e| panic!("berth refuses {r}: {e}"));
        oci_spec::distribution::Reference::from_str(r)
            .unwrap_or_else(|e| panic!("oci-spec refuses {r}: {e}"));
    }
    let mut bench = Bench::new("reference");
    if !bench.enabled() {
        return;
    }
    let n = refs.len();
    let normalized = bench.measure("berth parse_normalized", n, || {
        refs.iter()
            .map(|r| {
                Reference::parse_normalized(black_box(r))
                    .map(|r| r.path().len())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    });
    bench.measure("berth parse (owned)", n, || {
        refs.iter()
            .map(|r| {
                Reference::parse(black_box(r))
                    .map(|r| r.path().len())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    });
    let borrowed = bench.measure("berth ReferenceRef::parse", n, || {
        refs.iter()
            .map(|r| {
                ReferenceRef::parse(black_box(r))
                    .map(|r| r.path().len())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    });
    let peer = bench.measure("oci-spec Reference::from_str", n, || {
        refs.iter()
            .map(|r| {
                oci_spec::distribution::Reference::from_str(black_box(r))
                    .map(|r| r.repository().len())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    });
    let ratio = bench.ratio(&normalized, &peer);
    bench.ratio(&borrowed, &peer);
    println!(
        "reference/target: berth parse_normalized at least 50x oci-spec: {}",
        if ratio >= 50.0 { "met" } else { "NOT met" }
    );
}
