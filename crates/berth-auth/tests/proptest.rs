//! Properties: formatting then parsing gives challenges and scopes back, and
//! no input makes the parsers panic.

use berth_auth::{
    DockerConfig, OwnedChallenge, Scope, TokenResponse, format_challenges, parse_challenges,
    parse_rfc3339, parse_scopes,
};
use proptest::prelude::*;

const TCHARS: &str =
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn token() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(TCHARS.chars().collect::<Vec<_>>()),
        1..12,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// Any value a quoted-string can carry: everything but ASCII controls (tab
/// excepted) and DEL.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        token(),
        "[ -~]{0,16}",
        proptest::collection::vec(
            any::<char>().prop_filter("quotable", |c| *c == '\t' || (*c >= ' ' && *c != '\u{7f}')),
            0..16
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

fn challenge() -> impl Strategy<Value = OwnedChallenge> {
    let params = proptest::collection::vec((token(), value()), 0..6).prop_map(|ps| {
        let mut out: Vec<(String, String)> = Vec::new();
        for (n, v) in ps {
            if !out.iter().any(|(m, _)| m.eq_ignore_ascii_case(&n)) {
                out.push((n, v));
            }
        }
        out
    });
    prop_oneof![
        (token(), params).prop_map(|(s, ps)| OwnedChallenge::new(s, ps).expect("valid parts")),
        (token(), "[A-Za-z0-9._~+/-]{1,20}={0,2}")
            .prop_map(|(s, t)| OwnedChallenge::with_token68(s, t).expect("valid token68")),
    ]
}

fn scope() -> impl Strategy<Value = Scope> {
    (
        "[a-z0-9_.-]{1,12}",
        proptest::option::of("[a-z0-9]{1,8}"),
        "[!-~]{1,30}",
        proptest::collection::vec("[a-z*_-]{1,8}", 1..4),
    )
        .prop_filter_map("name must not end the type", |(t, class, name, actions)| {
            Scope::new(&t, class.as_deref(), &name, &actions).ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn one_challenge_round_trips(c in challenge()) {
        let text = c.to_string();
        let parsed = parse_challenges(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(parsed.len(), 1, "{:?}", text);
        prop_assert_eq!(parsed[0].to_owned(), c);
    }

    #[test]
    fn challenge_lists_round_trip(cs in proptest::collection::vec(challenge(), 1..5)) {
        let text = cs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let parsed = parse_challenges(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        let owned: Vec<OwnedChallenge> = parsed.iter().map(|c| c.to_owned()).collect();
        prop_assert_eq!(owned, cs);
        prop_assert_eq!(format_challenges(&parsed), text);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        if let Ok(cs) = parse_challenges(&s) {
            let text = format_challenges(&cs);
            let again = parse_challenges(&text).map_err(|e| TestCaseError::fail(format!("{s:?} -> {text:?}: {e}")))?;
            prop_assert_eq!(again, cs);
        }
        let _ = parse_scopes(&s);
        let _ = parse_rfc3339(&s);
        let _ = TokenResponse::from_json(s.as_bytes());
        let _ = DockerConfig::parse(s.as_bytes());
    }

    /// Strings made of the grammar's delimiters reach the parser's corners.
    #[test]
    fn grammar_soup_never_panics_and_reformats(s in "[ ,=\"\\\\aAbB1/+~.\t\r\n!'-]{0,40}") {
        if let Ok(cs) = parse_challenges(&s) {
            let text = format_challenges(&cs);
            let again = parse_challenges(&text).map_err(|e| TestCaseError::fail(format!("{s:?} -> {text:?}: {e}")))?;
            prop_assert_eq!(again, cs);
        }
    }

    #[test]
    fn scopes_round_trip(s in scope()) {
        let text = s.to_string();
        prop_assert_eq!(Scope::parse(&text), Ok(s));
    }

    #[test]
    fn scope_lists_round_trip(ss in proptest::collection::vec(scope(), 0..4)) {
        let text = berth_auth::join_scopes(&ss);
        prop_assert_eq!(parse_scopes(&text), Ok(ss));
    }
}
