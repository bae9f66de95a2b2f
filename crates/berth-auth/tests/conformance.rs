//! Runs every case of the peer challenge vectors (`tests/data/challenge.json`,
//! copied from `shared/conformance/`) against `parse_challenges`.
//!
//! Each case yields one or more checks:
//! - `expected`: the case's own `ok` / `challenges` / `exact`;
//! - `w3ap`: w3ap's assertion, when it differs from `expected`;
//! - `firefox`: the realm Firefox hands to its Basic prompt (`""` when it uses
//!   no Basic challenge), compared with the realm of berth's first Basic
//!   challenge (`""` when there is none or the header does not parse).
//!
//! Where berth deliberately differs from a peer, the check is listed in
//! `tests/data/divergences.json` with its reason and what berth gives. A
//! listed divergence that starts agreeing fails the test, as does an unlisted
//! disagreement, so the list stays honest.

use std::collections::BTreeMap;

use berth_auth::{Basic, Challenge, ParseError, parse_challenge_fields, parse_challenges};
use serde_json::Value;

const CHALLENGES: &str = include_str!("data/challenge.json");
const DIVERGENCES: &str = include_str!("data/divergences.json");

/// The header of a case or peer: one field value or several.
fn headers(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a
            .iter()
            .map(|h| h.as_str().expect("header fields are strings"))
            .collect(),
        other => panic!("unexpected header {other}"),
    }
}

fn parse<'a>(fields: &[&'a str]) -> Result<Vec<Challenge<'a>>, ParseError> {
    match fields {
        [one] => parse_challenges(one),
        many => parse_challenge_fields(many.iter().copied()),
    }
}

/// Compares berth's result with an `ok` / `challenges` / `exact` assertion.
/// `None` when nothing is asserted.
fn compare(
    ok: Option<bool>,
    challenges: Option<&Vec<Value>>,
    exact: Option<bool>,
    result: &Result<Vec<Challenge<'_>>, ParseError>,
) -> Option<Result<(), String>> {
    let ok = ok?;
    Some(match (ok, result) {
        (false, Err(_)) => Ok(()),
        (false, Ok(cs)) => Err(format!("peer refuses it; berth parses it as {cs:?}")),
        (true, Err(e)) => Err(format!("peer accepts it; berth refuses it: {e}")),
        (true, Ok(cs)) => match challenges {
            None => Ok(()),
            Some(expected) => compare_challenges(expected, exact.unwrap_or(true), cs),
        },
    })
}

fn compare_challenges(
    expected: &[Value],
    exact: bool,
    got: &[Challenge<'_>],
) -> Result<(), String> {
    if expected.len() != got.len() {
        return Err(format!(
            "peer expects {} challenge(s); berth gives {got:?}",
            expected.len()
        ));
    }
    for (want, have) in expected.iter().zip(got) {
        match want["scheme"].as_str() {
            Some(scheme) => {
                if !have.is_scheme(scheme) {
                    return Err(format!("scheme {scheme:?} expected; berth gives {have:?}"));
                }
            }
            // oras-go's SchemeUnknown: anything but Basic and Bearer.
            None => {
                if have.is_scheme("basic") || have.is_scheme("bearer") {
                    return Err(format!("an unknown scheme expected; berth gives {have:?}"));
                }
            }
        }
        let Some(params) = want["params"].as_object() else {
            continue;
        };
        for (name, value) in params {
            let value = value.as_str().expect("param values are strings");
            if have.param(name).as_deref() != Some(value) {
                return Err(format!(
                    "param {name}={value:?} expected; berth gives {have:?}"
                ));
            }
        }
        if exact && (have.param_count() != params.len() || have.token68().is_some()) {
            return Err(format!("exactly {params:?} expected; berth gives {have:?}"));
        }
    }
    Ok(())
}

/// The realm Firefox would use: that of the first Basic challenge.
fn basic_realm(result: &Result<Vec<Challenge<'_>>, ParseError>) -> String {
    let Ok(cs) = result else { return String::new() };
    cs.iter()
        .find(|c| c.is_scheme("basic"))
        .and_then(|c| c.param("realm"))
        .map(|r| r.into_owned())
        .unwrap_or_default()
}

/// What berth gives, in the form the divergence list records it.
fn berth_outcome(result: &Result<Vec<Challenge<'_>>, ParseError>) -> Value {
    match result {
        Ok(cs) => serde_json::json!({
            "ok": true,
            "challenges": cs.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        }),
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    }
}

struct Check {
    id: String,
    peer: &'static str,
    outcome: Result<(), String>,
    berth: Value,
}

#[test]
fn every_challenge_case() {
    let data: Value = serde_json::from_str(CHALLENGES).expect("challenge.json is JSON");
    let cases = data["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "the vectors hold {} cases", cases.len());

    let mut checks: Vec<Check> = Vec::new();
    for case in cases {
        let id = case["id"].as_str().expect("id").to_owned();
        let fields = headers(&case["header"]);
        let result = parse(&fields);
        let before = checks.len();

        let ok = case["ok"].as_bool();
        let challenges = case["challenges"].as_array();
        let exact = case["exact"].as_bool();
        if let Some(outcome) = compare(ok, challenges, exact, &result) {
            checks.push(Check {
                id: id.clone(),
                peer: "expected",
                outcome,
                berth: berth_outcome(&result),
            });
        }

        for peer in case["peers"].as_array().into_iter().flatten() {
            let source = peer["source"].as_str().expect("peer source");
            let peer_fields = peer
                .get("header")
                .map(headers)
                .unwrap_or_else(|| fields.clone());
            let peer_result = parse(&peer_fields);
            if source.contains("w3ap") {
                let same = peer["ok"] == case["ok"] && peer["challenges"] == case["challenges"];
                if same {
                    continue;
                }
                if let Some(outcome) = compare(
                    peer["ok"].as_bool(),
                    peer["challenges"].as_array(),
                    Some(true),
                    &peer_result,
                ) {
                    checks.push(Check {
                        id: id.clone(),
                        peer: "w3ap",
                        outcome,
                        berth: berth_outcome(&peer_result),
                    });
                }
            } else if source.contains("Firefox") {
                let want = peer["basic_realm"]
                    .as_str()
                    .expect("Firefox cases assert basic_realm");
                let have = basic_realm(&peer_result);
                let outcome = if have == want {
                    Ok(())
                } else {
                    Err(format!(
                        "Firefox uses Basic realm {want:?}; berth's is {have:?}"
                    ))
                };
                checks.push(Check {
                    id: id.clone(),
                    peer: "firefox",
                    outcome,
                    berth: berth_outcome(&peer_result),
                });
            } else {
                panic!("unknown peer {source}");
            }
        }

        // distribution/TestFilteringManager asserts what remains after keeping
        // the challenges whose service is keep.example.com.
        if id == "distribution/TestFilteringManager" {
            let outcome = match &result {
                Ok(cs) => {
                    let kept: Vec<_> = cs
                        .iter()
                        .filter(|c| c.param("service").as_deref() == Some("keep.example.com"))
                        .collect();
                    if kept.len() == 1 && cs.len() == 2 {
                        Ok(())
                    } else {
                        Err(format!("filtering kept {kept:?} of {cs:?}"))
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            checks.push(Check {
                id: id.clone(),
                peer: "expected",
                outcome,
                berth: berth_outcome(&result),
            });
        }

        // The divergence for a bare `Basic` rests on the typed view refusing it.
        if id == "greenbytes/simplebasicnorealm" {
            let view = result.as_ref().map(|cs| Basic::from_challenge(&cs[0]));
            assert!(
                matches!(view, Ok(Err(_))),
                "Basic::from_challenge must refuse a Basic without realm"
            );
        }

        assert!(checks.len() > before, "case {id} produced no check");
    }

    let listed: Value = serde_json::from_str(DIVERGENCES).expect("divergences.json is JSON");
    let mut divergences: BTreeMap<(String, String), &Value> = BTreeMap::new();
    for d in listed["divergences"].as_array().expect("divergences") {
        let key = (
            d["id"].as_str().expect("id").to_owned(),
            d["peer"].as_str().expect("peer").to_owned(),
        );
        assert!(
            d["reason"].as_str().is_some_and(|r| r.len() > 20),
            "{key:?} needs a reason"
        );
        assert!(
            divergences.insert(key.clone(), d).is_none(),
            "{key:?} is listed twice"
        );
    }

    let mut problems = Vec::new();
    let mut agree = 0;
    let mut known = 0;
    for check in &checks {
        let key = (check.id.clone(), check.peer.to_owned());
        match (&check.outcome, divergences.remove(&key)) {
            (Ok(()), None) => agree += 1,
            (Ok(()), Some(_)) => problems.push(format!(
                "{key:?} is listed as a divergence but now agrees: remove it from divergences.json"
            )),
            (Err(why), None) => {
                problems.push(format!("{key:?} disagrees and is not listed: {why}"))
            }
            (Err(_), Some(d)) => {
                known += 1;
                if d["berth"] != check.berth {
                    problems.push(format!(
                        "{key:?}: divergences.json records berth giving {}, berth now gives {}",
                        d["berth"], check.berth
                    ));
                }
            }
        }
    }
    for key in divergences.keys() {
        problems.push(format!(
            "{key:?} is listed as a divergence but no such check exists"
        ));
    }

    println!(
        "challenge conformance: {} cases, {} checks: {agree} agree, {known} known divergences (divergences.json)",
        cases.len(),
        checks.len()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
