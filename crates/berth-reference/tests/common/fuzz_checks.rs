//! The invariants the `reference` fuzz target checks, shared with the
//! crate's regression test (`tests/fuzz_regressions.rs`), which replays
//! every input the fuzzer found (kept in `tests/data/fuzz-regressions/`).

use berth_reference::{Digest, Reference, ReferenceRef};

/// Whether Go's familiar form of `r` reads back as `r`.
pub(crate) fn familiar_is_unambiguous(r: &Reference) -> bool {
    let familiar = r.familiar();
    if berth_reference::grammar::is_identifier(&familiar) {
        return false;
    }
    if r.domain() != "docker.io" {
        return true;
    }
    match r.familiar_name().split_once('/') {
        Some((first, _)) => !(first.contains(['.', ':']) || first == "localhost"),
        None => true,
    }
}

/// Parse, normalise and round-trip `data`: the parsers never panic, and
/// every form they print parses back to the same reference.
pub(crate) fn check_reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let borrowed = ReferenceRef::parse(s);
    let owned = Reference::parse(s);
    // The borrowed and owned parses agree, error for error.
    match (&borrowed, &owned) {
        (Ok(b), Ok(o)) => assert_eq!(&b.to_owned(), o),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("borrowed and owned parses disagree on {s:?}"),
    }
    if let Ok(r) = &owned {
        assert_eq!(r.to_string(), s, "Parse keeps the text as given");
        assert!(r.path().len() <= 255);
    }
    if let Err(e) = &owned {
        assert!(e.offset() <= s.len());
    }
    if let Ok(r) = Reference::parse_normalized(s) {
        let canonical = r.to_string();
        assert_eq!(
            Reference::parse(&canonical).as_ref(),
            Ok(&r),
            "canonical form parses as itself"
        );
        assert_eq!(
            Reference::parse_normalized(&canonical).as_ref(),
            Ok(&r),
            "normalising is idempotent"
        );
        // The familiar form normalises back, except where Go's familiar
        // form is ambiguous too: a bare image ID (`docker.io/<64 hex>`), or a
        // Docker Hub namespace that reads as a domain (`docker.io/a.b/c`).
        if familiar_is_unambiguous(&r) {
            assert_eq!(
                Reference::parse_normalized(&r.familiar()).as_ref(),
                Ok(&r),
                "familiar form normalises back"
            );
        }
        let tagged = r.clone().with_default_tag();
        assert!(tagged.tag().is_some() || tagged.digest().is_some());
        let _ = r.familiar_match(s);
    }
    if let Ok(d) = Digest::parse_any_algorithm(s) {
        assert_eq!(d.to_string(), s);
        assert_eq!(Digest::parse_any_algorithm(&d.to_string()).as_ref(), Ok(&d));
    }
    let _ = Reference::parse_any(s);
}
