//! Runs every case of `tests/data/reference.json` (vectors from Go's
//! distribution/reference tests) against berth-reference.
//!
//! Cases berth deliberately answers differently are listed, with the reason,
//! in `tests/data/divergences.json`. A listed case that starts agreeing with
//! Go fails the run, so the list stays true.

use std::collections::BTreeMap;

use berth_reference::{AnyReference, Digest, ErrorKind, Reference, ReferenceRef, grammar};
use serde_json::Value;

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn s<'v>(case: &'v Value, key: &str) -> Option<&'v str> {
    case.get(key).and_then(Value::as_str)
}

fn go_error(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NameEmpty => "ErrNameEmpty",
        ErrorKind::InvalidFormat => "ErrReferenceInvalidFormat",
        ErrorKind::NameContainsUppercase => "ErrNameContainsUppercase",
        ErrorKind::NameTooLong => "ErrNameTooLong",
        ErrorKind::TagInvalidFormat => "ErrTagInvalidFormat",
        ErrorKind::DigestInvalidFormat => "digest.ErrDigestInvalidFormat",
        ErrorKind::DigestInvalidLength => "digest.ErrDigestInvalidLength",
        ErrorKind::DigestUnsupported => "digest.ErrDigestUnsupported",
        other => panic!("no Go error for {other:?}"),
    }
}

/// Compares `got` with the case's field `key` when the case asserts it.
/// `null` in the data means "must be absent".
fn expect(case: &Value, key: &str, got: Option<&str>) -> Result<(), String> {
    match case.get(key) {
        None => Ok(()),
        Some(Value::Null) if got.is_none() => Ok(()),
        Some(Value::String(want)) if got == Some(want.as_str()) => Ok(()),
        Some(want) => Err(format!("{key}: want {want}, got {got:?}")),
    }
}

fn expect_error(case: &Value, got: ErrorKind) -> Result<(), String> {
    match s(case, "error") {
        Some(want) if want != go_error(got) => {
            Err(format!("error: want {want}, got {}", go_error(got)))
        }
        _ => Ok(()),
    }
}

fn expect_ok(case: &Value, got_ok: bool) -> Result<bool, String> {
    let want = case["ok"].as_bool().expect("ok is a bool");
    if want != got_ok {
        return Err(format!("ok: want {want}, got {got_ok}"));
    }
    Ok(want)
}

fn check_parse(case: &Value) -> Result<(), String> {
    let input = s(case, "input").expect("input");
    match Reference::parse(input) {
        Ok(r) => {
            expect_ok(case, true)?;
            expect(case, "string", Some(&r.to_string()))?;
            expect(case, "name", Some(r.name()))?;
            expect(case, "domain", Some(r.domain()))?;
            expect(case, "path", Some(r.path()))?;
            expect(case, "tag", r.tag())?;
            expect(case, "digest", r.digest().map(|d| d.to_string()).as_deref())?;
            // The borrowed parse agrees with the owned one.
            let b = ReferenceRef::parse(input).map_err(|e| e.to_string())?;
            if b.to_owned() != r {
                return Err("borrowed parse differs".into());
            }
            Ok(())
        }
        Err(e) => {
            expect_ok(case, false)?;
            expect_error(case, e.kind())
        }
    }
}

fn check_with_name(case: &Value) -> Result<(), String> {
    match Reference::with_name(s(case, "input").expect("input")) {
        Ok(r) => {
            expect_ok(case, true)?;
            expect(case, "domain", Some(r.domain()))?;
            expect(case, "path", Some(r.path()))
        }
        Err(e) => {
            expect_ok(case, false)?;
            expect_error(case, e.kind())
        }
    }
}

/// `WithName` (or `ParseNormalizedNamed` for `name_input`), then the builder.
fn check_with(case: &Value, tag_first: bool) -> Result<(), String> {
    let built = (|| {
        let mut r = match (s(case, "name"), s(case, "name_input")) {
            (Some(n), _) => Reference::with_name(n)?,
            (_, Some(n)) => Reference::parse_normalized(n)?,
            _ => panic!("case has no name"),
        };
        let digest = s(case, "digest").map(Digest::parse).transpose()?;
        let tag = s(case, "tag");
        if tag_first {
            if let Some(t) = tag {
                r = r.with_tag(t)?;
            }
            if let Some(d) = digest {
                r = r.with_digest(d);
            }
        } else {
            if let Some(d) = digest {
                r = r.with_digest(d);
            }
            if let Some(t) = tag {
                r = r.with_tag(t)?;
            }
        }
        Ok::<_, berth_reference::ParseError>(r)
    })();
    match built {
        Ok(r) => {
            expect_ok(case, true)?;
            expect(case, "string", Some(&r.to_string()))
        }
        Err(e) => {
            expect_ok(case, false).map_err(|m| format!("{m} ({e})"))?;
            Ok(())
        }
    }
}

fn check_normalize(case: &Value) -> Result<(), String> {
    let input = s(case, "input").expect("input");
    let source = s(case, "source").expect("source");
    let parsed = Reference::parse_normalized(input);
    // ParseNamed: the normalised form must be the input itself.
    if source.contains("ParseNamed:") {
        return match parsed {
            Ok(r) if r.to_string() == input => {
                expect_ok(case, true)?;
                expect(case, "canonical", Some(r.as_str()))?;
                expect(case, "domain", Some(r.domain()))?;
                expect(case, "path", Some(r.path()))
            }
            Ok(_) => {
                expect_ok(case, false)?;
                match s(case, "error") {
                    Some("ErrNameNotCanonical") | None => Ok(()),
                    Some(other) => Err(format!("error: want {other}, got ErrNameNotCanonical")),
                }
            }
            Err(e) => {
                expect_ok(case, false)?;
                expect_error(case, e.kind())
            }
        };
    }
    // ParseDockerRef: tag-only when neither tag nor digest; a reference with
    // both keeps only the digest.
    if source.contains("ParseDockerRef") {
        return match parsed {
            Ok(r) => {
                expect_ok(case, true)?;
                let r = if r.tag().is_some() && r.digest().is_some() {
                    let d = r.digest().cloned().expect("digested");
                    r.name_only().with_digest(d)
                } else {
                    r.with_default_tag()
                };
                Reference::parse(r.as_str()).map_err(|e| format!("output does not parse: {e}"))?;
                expect(case, "canonical", Some(r.as_str()))
            }
            Err(e) => {
                expect_ok(case, false)?;
                expect_error(case, e.kind())
            }
        };
    }
    match parsed {
        Ok(r) => {
            expect_ok(case, true)?;
            expect(case, "canonical", Some(r.as_str()))?;
            expect(case, "domain", Some(r.domain()))?;
            expect(case, "path", Some(r.path()))?;
            expect(case, "familiar_name", Some(r.familiar_name()))?;
            expect(case, "familiar", Some(&r.familiar()))?;
            if let Some(t) = case.get("is_tagged").and_then(Value::as_bool)
                && t != r.tag().is_some()
            {
                return Err(format!("is_tagged: want {t}"));
            }
            if let Some(d) = case.get("is_digested").and_then(Value::as_bool)
                && d != r.digest().is_some()
            {
                return Err(format!("is_digested: want {d}"));
            }
            Ok(())
        }
        Err(e) => {
            expect_ok(case, false)?;
            expect_error(case, e.kind())
        }
    }
}

fn check_parse_any(case: &Value) -> Result<(), String> {
    let input = s(case, "input").expect("input");
    match Reference::parse_any(input) {
        Ok(any) => {
            expect_ok(case, true)?;
            expect(case, "canonical", Some(&any.to_string()))?;
            let digest_only = matches!(any, AnyReference::Digest(_));
            if case.get("digest_only").and_then(Value::as_bool) != Some(digest_only) {
                return Err(format!("digest_only: got {digest_only}"));
            }
            if let AnyReference::Named(r) = any
                && Reference::parse(r.as_str()).as_ref() != Ok(&r)
            {
                return Err("result differs from Parse(canonical)".into());
            }
            Ok(())
        }
        Err(e) => expect_ok(case, false)
            .map_err(|m| format!("{m} ({e})"))
            .map(drop),
    }
}

fn check_familiar_match(case: &Value) -> Result<(), String> {
    let reference = s(case, "reference").expect("reference");
    let pattern = s(case, "pattern").expect("pattern");
    let r = match Reference::parse_any(reference).map_err(|e| e.to_string())? {
        AnyReference::Named(r) => r,
        AnyReference::Digest(_) => {
            return Err("digest-only references have no familiar form".into());
        }
    };
    match r.familiar_match(pattern) {
        Ok(m) => {
            expect_ok(case, true)?;
            match case.get("matches").and_then(Value::as_bool) {
                Some(want) if want != m => Err(format!("matches: want {want}, got {m}")),
                _ => Ok(()),
            }
        }
        Err(e) => {
            if e.kind() != ErrorKind::BadPattern {
                return Err(format!("want a pattern error, got {e}"));
            }
            expect_ok(case, false).map(drop)
        }
    }
}

fn check_regexp(group: &str, case: &Value) -> Result<(), String> {
    let input = s(case, "input").expect("input");
    let want = case["match"].as_bool().expect("match is a bool");
    let (got, fields): (bool, Vec<(&str, String)>) = match group {
        "domain_and_port" => (grammar::is_domain_and_port(input), vec![]),
        "identifier" => (grammar::is_identifier(input), vec![]),
        "name" => match Reference::with_name(input) {
            Ok(r) => (
                true,
                vec![("domain", r.domain().into()), ("path", r.path().into())],
            ),
            Err(_) => (false, vec![]),
        },
        "reference" => match ReferenceRef::parse(input) {
            Ok(r) => (
                true,
                vec![
                    ("name", r.name().into()),
                    ("tag", r.tag().unwrap_or("").into()),
                    (
                        "digest",
                        r.digest().map(|d| d.to_string()).unwrap_or_default(),
                    ),
                ],
            ),
            Err(_) => (false, vec![]),
        },
        other => panic!("unknown regexp group {other}"),
    };
    if got != want {
        return Err(format!("match: want {want}, got {got}"));
    }
    for (key, value) in fields {
        expect(case, key, Some(&value))?;
    }
    Ok(())
}

/// Checks one case; `Err` says how berth's answer differs from Go's.
type Check = fn(&Value) -> Result<(), String>;

fn case_key(section: &str, case: &Value) -> String {
    let parts: Vec<&str> = [
        "input",
        "name",
        "name_input",
        "reference",
        "pattern",
        "tag",
        "digest",
    ]
    .iter()
    .filter_map(|k| s(case, k))
    .collect();
    format!("{section}|{}", parts.join("|"))
}

#[test]
fn distribution_reference_vectors() {
    let all = data("reference.json");
    let divergences = data("divergences.json");
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for d in divergences.as_array().expect("a list") {
        let key = format!(
            "{}|{}",
            s(d, "section").expect("section"),
            s(d, "case").expect("case")
        );
        assert!(
            s(d, "reason").is_some_and(|r| r.len() > 20),
            "divergence {key} needs a reason"
        );
        expected.insert(key, String::new());
    }

    let mut results: Vec<(String, Result<(), String>)> = Vec::new();
    let sections: &[(&str, Check)] = &[
        ("parse", check_parse),
        ("with_name", check_with_name),
        ("with_tag", |c| check_with(c, false)),
        ("with_digest", |c| check_with(c, true)),
        ("normalize", check_normalize),
        ("parse_any", check_parse_any),
        ("familiar_match", check_familiar_match),
        ("legacy_differences", |c| {
            if s(c, "source").is_some_and(|s| s.contains("WithName")) {
                check_with_name(c)
            } else {
                check_parse(c)
            }
        }),
    ];
    for (section, check) in sections {
        for case in all[section].as_array().expect("a list") {
            let mut key = case_key(section, case);
            if *section == "legacy_differences" {
                // Legacy expectations that the current package changed: berth
                // follows the current one, so these are listed divergences
                // except where berth's sha512 support happens to agree.
                let which = if s(case, "source").is_some_and(|s| s.contains("WithName")) {
                    "WithName"
                } else {
                    "Parse"
                };
                key = format!(
                    "legacy_differences|{which}|{}",
                    s(case, "input").expect("input")
                );
            }
            if *section == "with_name"
                && s(case, "source").is_some_and(|s| s.contains("TestWithNameFailure"))
            {
                // Same inputs as TestWithName's failures; keep one key each.
                key.push_str("|failure");
            }
            results.push((key, check(case)));
        }
    }
    for (group, cases) in all["regexp"].as_object().expect("groups") {
        for case in cases.as_array().expect("a list") {
            let key = format!("regexp.{group}|{}", s(case, "input").expect("input"));
            results.push((key, check_regexp(group, case)));
        }
    }

    let mut unexpected = Vec::new();
    let mut now_agree = Vec::new();
    let (mut agree, mut diverge) = (0, 0);
    for (key, result) in &results {
        match (result, expected.contains_key(key)) {
            (Ok(()), false) => agree += 1,
            (Ok(()), true) => now_agree.push(key.clone()),
            (Err(_), true) => diverge += 1,
            (Err(msg), false) => unexpected.push(format!("{key}: {msg}")),
        }
    }
    let listed_but_missing: Vec<&String> = expected
        .keys()
        .filter(|k| !results.iter().any(|(r, _)| r == *k))
        .collect();
    println!(
        "reference conformance: {agree} agree with Go, {diverge} listed divergences, {} cases",
        results.len()
    );
    assert!(
        unexpected.is_empty(),
        "cases that fail:\n{}",
        unexpected.join("\n")
    );
    assert!(
        now_agree.is_empty(),
        "listed divergences that now agree (remove them from divergences.json):\n{}",
        now_agree.join("\n")
    );
    assert!(
        listed_but_missing.is_empty(),
        "divergences naming no case: {listed_but_missing:?}"
    );
}
