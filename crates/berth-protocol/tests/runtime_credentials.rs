//! Credentials made at run time (token sources) and cookies, through whole
//! scripted conversations on simulated time.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_protocol::driver::drive_blocking;
use berth_protocol::endpoint::EndpointPolicy;
use berth_protocol::ops::{GetBlob, ListTags};
use berth_protocol::{
    AccessToken, CookieJar, CredentialError, Error, Session, TokenSource, TokenSourceCredentials,
};
use http::{HeaderMap, HeaderValue, Uri};
use support::{Chunks, Script, SimClock, T0, run, sha256};

/// `ya29.1`, `ya29.2`, ...: each an access token valid for two minutes
/// from the time it is asked at.
struct Oauth2 {
    calls: AtomicU32,
}

impl TokenSource for Oauth2 {
    fn token(&self, now: SystemTime) -> Result<AccessToken, CredentialError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(
            format!("ya29.{n}"),
            Some(now + Duration::from_secs(120)),
        ))
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

const GCR: &str = r#"Bearer realm="https://gcr.io/v2/token",service="gcr.io""#;
const TOKEN_URL: &str = "https://gcr.io/v2/token?service=gcr.io&scope=repository%3Ap%2Fapp%3Apull&account=oauth2accesstoken";

#[test]
fn google_access_tokens_answer_the_token_server_and_are_refreshed_before_expiry() {
    let source = Arc::new(Oauth2 {
        calls: AtomicU32::new(0),
    });
    let creds = TokenSourceCredentials::google("gcr.io", source.clone());
    let mut session = Session::new(Arc::new(creds), EndpointPolicy::new(), 1)
        .with_token_margin(Duration::from_secs(10));
    let mut s = Script::new();
    let tags = |s: &mut Script, registry_token: &str| {
        s.on("GET", "https://gcr.io/v2/p/app/tags/list")
            .status(401)
            .header("www-authenticate", GCR)
            .done()
            .on("GET", TOKEN_URL)
            .body(format!(r#"{{"token":"{registry_token}","expires_in":60}}"#))
            .done()
            .on("GET", "https://gcr.io/v2/p/app/tags/list")
            .body(r#"{"tags":["v1"]}"#)
            .done();
    };
    // t0: the first access token; t0+100: the registry token has expired,
    // the access token (20 s left) is still good; t0+115: 5 s left, within
    // the margin: a new access token before the old one expires.
    tags(&mut s, "reg1");
    tags(&mut s, "reg2");
    tags(&mut s, "reg3");
    let clock = SimClock::at(T0);
    for step in [0, 100, 15] {
        clock.advance(Duration::from_secs(step));
        let t = run(
            &mut ListTags::new("gcr.io", "p/app"),
            &mut session,
            &s,
            &clock,
        )
        .expect("tags");
        assert_eq!(t, ["v1"]);
    }
    assert!(s.finished());
    let seen = s.seen();
    let token_auth: Vec<_> = seen
        .iter()
        .filter(|r| r.url.starts_with("https://gcr.io/v2/token"))
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(
        token_auth,
        [
            Some(basic("oauth2accesstoken", "ya29.1")),
            Some(basic("oauth2accesstoken", "ya29.1")),
            Some(basic("oauth2accesstoken", "ya29.2")),
        ]
    );
    assert_eq!(seen[2].header("authorization"), Some("Bearer reg1"));
    assert_eq!(seen[8].header("authorization"), Some("Bearer reg3"));
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_failing_token_source_is_a_typed_auth_error_naming_it() {
    struct Broken;
    impl TokenSource for Broken {
        fn token(&self, _now: SystemTime) -> Result<AccessToken, CredentialError> {
            Err(CredentialError::new(
                "the token command \"print-token --x\"",
                "exit status: 2: no account",
            ))
        }
    }
    let creds = TokenSourceCredentials::google("gcr.io", Arc::new(Broken));
    let mut session = Session::new(Arc::new(creds), EndpointPolicy::new(), 1);
    let mut s = Script::new();
    s.on("GET", "https://gcr.io/v2/p/app/tags/list")
        .status(401)
        .header("www-authenticate", GCR)
        .done();
    let clock = SimClock::at(T0);
    let e = run(
        &mut ListTags::new("gcr.io", "p/app"),
        &mut session,
        &s,
        &clock,
    )
    .expect_err("no credentials");
    assert!(e.is_auth(), "{e:?}");
    assert!(matches!(&e, Error::Credentials { registry, .. } if registry == "gcr.io"));
    let text = e.to_string();
    assert!(
        text.contains("unauthorized")
            && text.contains("print-token --x")
            && text.contains("no account"),
        "{text}"
    );
}

/// A jar keyed by authority that keeps the raw `name=value` of each
/// `Set-Cookie`, and records what it was asked.
#[derive(Default)]
struct RecordingJar {
    by_host: Mutex<HashMap<String, Vec<String>>>,
    asked: Mutex<Vec<String>>,
}

impl CookieJar for RecordingJar {
    fn cookie_header(&self, uri: &Uri) -> Option<HeaderValue> {
        let host = uri.authority()?.to_string();
        self.asked.lock().expect("lock").push(uri.to_string());
        let jar = self.by_host.lock().expect("lock");
        let cookies = jar.get(&host)?;
        HeaderValue::from_str(&cookies.join("; ")).ok()
    }

    fn store_set_cookies(&self, uri: &Uri, headers: &HeaderMap) {
        let Some(host) = uri.authority().map(ToString::to_string) else {
            return;
        };
        let mut jar = self.by_host.lock().expect("lock");
        for v in headers.get_all(http::header::SET_COOKIE) {
            if let Some(pair) = v.to_str().ok().and_then(|v| v.split(';').next()) {
                jar.entry(host.clone())
                    .or_default()
                    .push(pair.trim().to_owned());
            }
        }
    }
}

#[test]
fn cookies_go_back_to_the_host_that_set_them_and_to_the_token_server() {
    let blob = b"layer".to_vec();
    let digest = sha256(&blob);
    let jar = Arc::new(RecordingJar::default());
    let mut session = Session::anonymous().with_cookie_jar(jar.clone());
    let ch = r#"Bearer realm="https://auth.example/token",service="r""#;
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", ch)
        .header("set-cookie", "lb=one; Path=/; HttpOnly")
        .done()
        .on(
            "GET",
            "https://auth.example/token?service=r&scope=repository%3Aa%3Apull",
        )
        .header("set-cookie", "auth=two")
        .body(r#"{"token":"t"}"#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":["x"]}"#)
        .done()
        .on("GET", &format!("https://r.example/v2/a/blobs/{digest}"))
        .status(307)
        .header("location", "https://storage.example/b?sig=1")
        .done()
        .on("GET", "https://storage.example/b?sig=1")
        .body(&blob)
        .done();
    let clock = SimClock::at(T0);
    run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect("tags");
    let mut op = GetBlob::new("r.example", "a", &digest, 0);
    let (_, body) = drive_blocking(&mut op, &mut session, &s, &clock, None).expect("blob");
    let mut body: Chunks = body.expect("body");
    assert_eq!(body.read_all().expect("read"), blob);
    let seen = s.seen();
    assert_eq!(seen[0].header("cookie"), None, "nothing set yet");
    assert_eq!(
        seen[1].header("cookie"),
        None,
        "the token server set none yet"
    );
    assert_eq!(seen[2].header("cookie"), Some("lb=one"));
    assert_eq!(seen[3].header("cookie"), Some("lb=one"));
    assert_eq!(
        seen[4].header("cookie"),
        None,
        "the registry's cookie does not follow a redirect to storage"
    );
    assert!(
        jar.asked
            .lock()
            .expect("lock")
            .iter()
            .any(|u| u.starts_with("https://storage.example/")),
        "the jar is asked per URL, so the redirect's own host is asked"
    );
    // The token server's cookie would go back to it on its next request.
    let mut session2 = session;
    let mut s2 = Script::new();
    s2.on("GET", "https://r.example/v2/b/tags/list")
        .status(401)
        .header("www-authenticate", ch)
        .done()
        .on(
            "GET",
            "https://auth.example/token?service=r&scope=repository%3Ab%3Apull",
        )
        .body(r#"{"token":"t2"}"#)
        .done()
        .on("GET", "https://r.example/v2/b/tags/list")
        .body(r#"{"tags":[]}"#)
        .done();
    run(
        &mut ListTags::new("r.example", "b"),
        &mut session2,
        &s2,
        &clock,
    )
    .expect("tags");
    assert_eq!(s2.seen()[1].header("cookie"), Some("auth=two"));
    assert_eq!(s2.seen()[0].header("cookie"), Some("lb=one"));
}
