//! Property tests: generated valid references round-trip through their text,
//! and no input makes a parser panic.

use berth_reference::{Digest, Reference, ReferenceRef};
use proptest::prelude::*;

/// `[a-z0-9]+ (separator [a-z0-9]+)*`
fn path_component() -> impl Strategy<Value = String> {
    let alnum = "[a-z0-9]{1,8}";
    let sep = prop_oneof![
        Just("."),
        Just("_"),
        Just("__"),
        Just("-"),
        Just("--"),
        Just("---")
    ];
    (alnum, prop::collection::vec((sep, alnum), 0..3)).prop_map(|(first, rest)| {
        let mut s = first;
        for (sep, part) in rest {
            s.push_str(sep);
            s.push_str(&part);
        }
        s
    })
}

fn domain() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?";
    let host = prop_oneof![
        prop::collection::vec(label, 1..4).prop_map(|l| l.join(".")),
        "[0-9a-f:]{1,12}".prop_map(|h| format!("[{h}]")),
    ];
    (host, prop::option::of(0u32..70000)).prop_map(|(h, port)| match port {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
    ]
}

fn reference() -> impl Strategy<Value = String> {
    (
        prop::option::of(domain()),
        prop::collection::vec(path_component(), 1..4),
        prop::option::of(tag()),
        prop::option::of(digest()),
    )
        .prop_filter_map("path too long", |(d, comps, t, dg)| {
            let path = comps.join("/");
            if path.len() > 255 {
                return None;
            }
            let mut s = match d {
                Some(d) => format!("{d}/{path}"),
                None => path,
            };
            if let Some(t) = t {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(dg) = dg {
                s.push('@');
                s.push_str(&dg);
            }
            Some(s)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn generated_references_round_trip(s in reference()) {
        let r = Reference::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(&r.to_string(), &s);
        let again = Reference::parse(&r.to_string()).expect("own output parses");
        prop_assert_eq!(&again, &r);
        prop_assert_eq!(&ReferenceRef::parse(&s).expect("borrowed parse agrees").to_owned(), &r);
        // The parts put together give the text back.
        let mut rebuilt = r.name().to_owned();
        if let Some(t) = r.tag() { rebuilt.push(':'); rebuilt.push_str(t); }
        if let Some(d) = r.digest() { rebuilt.push('@'); rebuilt.push_str(&d.to_string()); }
        prop_assert_eq!(rebuilt, s);
    }

    #[test]
    fn normalized_is_a_fixed_point(s in reference()) {
        if let Ok(r) = Reference::parse_normalized(&s) {
            let again = Reference::parse_normalized(&r.to_string()).expect("canonical form parses");
            prop_assert_eq!(&again, &r);
            let familiar = Reference::parse_normalized(&r.familiar()).expect("familiar form parses");
            prop_assert_eq!(familiar, r);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
        let _ = Reference::parse(&s);
        let _ = Reference::parse_normalized(&s);
        let _ = Reference::parse_any(&s);
        let _ = Digest::parse(&s);
        let _ = Digest::parse_any_algorithm(&s);
        if let Ok(r) = Reference::parse_normalized("busybox") {
            let _ = r.familiar_match(&s);
        }
    }

    #[test]
    fn near_misses_never_panic_and_report_in_bounds(s in "[a-zA-Z0-9:/@._\\[\\]-]{0,80}") {
        for result in [Reference::parse(&s), Reference::parse_normalized(&s)] {
            if let Err(e) = result {
                prop_assert!(e.offset() <= s.len(), "{s}: offset {} beyond input", e.offset());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn sha256_digests_round_trip(bytes in prop::array::uniform32(any::<u8>())) {
        let d = Digest::from_sha256(&bytes);
        let parsed = Digest::parse(&d.to_string()).expect("own output parses");
        let mut out = [0u8; 64];
        prop_assert_eq!(parsed.hash_bytes(&mut out), Some(&bytes[..]));
        prop_assert_eq!(parsed, d);
    }
}
