//! Every input the fuzzer ever flagged, replayed with the invariants the
//! fuzz target checks, plus what each case taught.

mod common {
    pub(crate) mod fuzz_checks;
}

use berth_reference::{ErrorKind, Reference};
use common::fuzz_checks::{check_reference, familiar_is_unambiguous};

#[test]
fn replay_every_fuzzer_finding() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("regressions folder") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("readable");
        check_reference(&bytes);
        n += 1;
    }
    assert!(n > 0, "no regression inputs found");
}

#[test]
fn a_docker_hub_name_of_64_hex_has_an_image_id_as_familiar_form() {
    // Found by the fuzzer: `docker.io/<64 hex>` is a valid name, but its
    // familiar form is the bare hex string, which Go's ParseNormalizedNamed
    // refuses as an image ID. berth does the same.
    let hex = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
    let r = Reference::parse_normalized(&format!("docker.io/{hex}")).expect("a valid name");
    assert_eq!(r.to_string(), format!("docker.io/library/{hex}"));
    assert_eq!(r.familiar(), hex);
    let e = Reference::parse_normalized(&r.familiar()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HexRepositoryName);
}

#[test]
fn a_docker_hub_namespace_with_a_dot_has_an_ambiguous_familiar_form() {
    // Found by the fuzzer: on Docker Hub the namespace `a.b` is a path
    // component, but the familiar form `a.b/c` reads `a.b` as a domain, in
    // Go as in berth.
    let r = Reference::parse_normalized("docker.io/lin3h.cob32ffm/fodbo").expect("valid");
    assert_eq!(r.familiar(), "lin3h.cob32ffm/fodbo");
    let back = Reference::parse_normalized(&r.familiar()).expect("valid");
    assert_eq!(back.domain(), "lin3h.cob32ffm");
    assert!(!familiar_is_unambiguous(&r));
}
