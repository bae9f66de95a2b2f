//! The properties the fuzz targets check, shared with the regression test
//! that replays every input the fuzzer found (`tests/fuzz_regressions.rs`).
//! The fuzz targets include this file with `#[path]`.

use berth_auth::{
    Basic, Bearer, Credentials, DockerConfig, Secret, format_challenges, parse_challenge_fields,
    parse_challenges,
};

/// `parse_challenges` never panics, errors point inside the input, and
/// whatever parses formats back to text that parses to the same challenges.
pub(crate) fn check_challenge(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_challenges(s) {
        Ok(challenges) => {
            let text = format_challenges(&challenges);
            let again = parse_challenges(&text)
                .unwrap_or_else(|e| panic!("{s:?} formats as {text:?}, which fails: {e}"));
            assert_eq!(again, challenges, "{s:?} -> {text:?}");
            assert_eq!(format_challenges(&again), text, "formatting is stable");
            for c in &challenges {
                let owned = c.to_owned();
                assert_eq!(c, &owned);
                let _ = Bearer::from_challenge(c);
                let _ = Basic::from_challenge(c);
                for (name, _) in c.params() {
                    assert!(c.param(name).is_some());
                }
            }
        }
        Err(e) => {
            assert!(
                e.offset() <= s.len(),
                "{s:?}: offset {} past the end",
                e.offset()
            );
            let _ = e.to_string();
        }
    }
    // The same text split into header fields at each newline.
    let _ = parse_challenge_fields(s.split('\n'));
}

/// `DockerConfig::parse` never panics, and a file that parses writes back to
/// one that parses to the same configuration, before and after an edit.
pub(crate) fn check_docker_config(data: &[u8]) {
    let Ok(config) = DockerConfig::parse(data) else {
        return;
    };
    let written = config.to_json();
    let again = DockerConfig::parse(&written).expect("a written config parses");
    assert_eq!(again, config);
    for registry in ["docker.io", "quay.io", "localhost:5000"] {
        let _ = config.lookup(registry, "org/app");
    }
    let keys: Vec<String> = config.auth_keys().map(str::to_owned).collect();
    for key in &keys {
        let _ = config.lookup(key, "");
    }
    let _ = format!("{config:?}");
    let mut edited = config;
    edited.set_credentials(
        "fuzz.example",
        &Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        },
    );
    assert!(edited.remove_credentials("fuzz.example"));
    if let Some(key) = keys.first() {
        edited.set_credentials(key, &Credentials::IdentityToken(Secret::new("t")));
    }
    let edited_again = DockerConfig::parse(&edited.to_json()).expect("an edited config parses");
    assert_eq!(edited_again, edited);
}
