//! Whole conversations against scripted registries, reproducing the quirks
//! the peers handle (../shared/QUIRKS.md). No sockets, no sleeping: time is
//! simulated and passed in.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_auth::{Credentials, Secret};
use berth_manifest::MediaType;
use berth_protocol::driver::{drive, drive_blocking};
use berth_protocol::endpoint::EndpointPolicy;
use berth_protocol::ops::{
    Catalog, DeleteManifest, GetBlob, GetManifest, HeadBlob, ListReferrers, ListTags,
    ManifestAddress, ManifestRef, Ping, PushBlob, PushOutcome, Resolve, UploadPolicy,
};
use berth_protocol::{Error, Session, StaticCredentials};
use bytes::Bytes;
use support::{Chunks, Script, SimClock, T0, run, sha256};

fn image_manifest(config: &[u8], layer: &[u8]) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        sha256(config),
        config.len(),
        sha256(layer),
        layer.len()
    )
}

fn address(domain: &str, name: &str, r: ManifestRef) -> ManifestAddress {
    ManifestAddress {
        domain: domain.into(),
        name: name.into(),
        reference: r,
    }
}

fn tag(t: &str) -> ManifestRef {
    ManifestRef::Tag(t.into())
}

const HUB_CHALLENGE: &str =
    r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#;

#[test]
fn docker_hub_token_flow_and_cache() {
    let manifest = image_manifest(b"{}", b"layer");
    let digest = sha256(manifest.as_bytes());
    let mut s = Script::new();
    s.on("GET", "https://registry-1.docker.io/v2/").status(401).header("www-authenticate", HUB_CHALLENGE).done()
        .on("HEAD", "https://registry-1.docker.io/v2/library/ubuntu/manifests/24.04").status(401)
        .header("www-authenticate", &format!("{HUB_CHALLENGE},scope=\"repository:library/ubuntu:pull\"")).done()
        .on("GET", "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fubuntu%3Apull")
        .body(r#"{"token":"t1","expires_in":300}"#).done()
        .on("HEAD", "https://registry-1.docker.io/v2/library/ubuntu/manifests/24.04")
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .header("docker-content-digest", &digest.to_string())
        .header("content-length", &manifest.len().to_string()).done()
        .on("HEAD", "https://registry-1.docker.io/v2/library/ubuntu/manifests/24.04")
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .header("docker-content-digest", &digest.to_string())
        .header("content-length", &manifest.len().to_string()).done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let info = run(
        &mut Ping::new(&session, "docker.io"),
        &mut session,
        &s,
        &clock,
    )
    .expect("ping");
    assert_eq!(info.endpoint.base_url(), "https://registry-1.docker.io");
    let d = run(
        &mut Resolve::new(address("docker.io", "library/ubuntu", tag("24.04"))),
        &mut session,
        &s,
        &clock,
    )
    .expect("resolve");
    assert_eq!(d.digest, digest);
    assert_eq!(d.size, manifest.len() as u64);
    // A second resolve reuses the cached token: no 401, no token request.
    clock.advance(Duration::from_secs(100));
    run(
        &mut Resolve::new(address("docker.io", "library/ubuntu", tag("24.04"))),
        &mut session,
        &s,
        &clock,
    )
    .expect("resolve");
    assert!(s.finished());
    let seen = s.seen();
    assert_eq!(seen[3].header("authorization"), Some("Bearer t1"));
    assert_eq!(seen[4].header("authorization"), Some("Bearer t1"));
    assert_eq!(seen[1].header("authorization"), None);
    assert!(
        seen[1].header("accept").is_some_and(|a| !a.contains("q=")),
        "a plain Accept list (GCR)"
    );
}

/// A token's lifetime counts on this machine's clock from its arrival: a
/// token server an hour behind (its `issued_at`) does not make a fresh
/// token expired. And a token that lives less than the cache's margin is
/// still sent with the request it was fetched for.
#[test]
fn a_fresh_token_is_used_whatever_the_servers_clock_or_its_lifetime() {
    const CHALLENGE: &str = r#"Bearer realm="https://auth.example/token",service="reg""#;
    for (body, cached) in [
        // issued_at is T0 - 1 h.
        (
            r#"{"token":"tok","expires_in":60,"issued_at":"2023-11-14T21:13:20Z"}"#,
            true,
        ),
        (r#"{"token":"tok","expires_in":5}"#, false),
    ] {
        let manifest = image_manifest(b"{}", b"layer");
        let digest = sha256(manifest.as_bytes());
        let ok = |s: &mut Script| {
            s.on("HEAD", "https://reg.example/v2/app/manifests/v1")
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .header("docker-content-digest", &digest.to_string())
                .header("content-length", &manifest.len().to_string())
                .done();
        };
        let mut s = Script::new();
        s.on("GET", "https://reg.example/v2/")
            .status(401)
            .header("www-authenticate", CHALLENGE)
            .done()
            .on("HEAD", "https://reg.example/v2/app/manifests/v1")
            .status(401)
            .header(
                "www-authenticate",
                &format!("{CHALLENGE},scope=\"repository:app:pull\""),
            )
            .done()
            .on(
                "GET",
                "https://auth.example/token?service=reg&scope=repository%3Aapp%3Apull",
            )
            .body(body)
            .done();
        ok(&mut s);
        if cached {
            // 30 s later the cached token is reused, no new 401.
            ok(&mut s);
        }
        let clock = SimClock::at(T0);
        let mut session = Session::anonymous();
        run(
            &mut Ping::new(&session, "reg.example"),
            &mut session,
            &s,
            &clock,
        )
        .expect("ping");
        let resolve = || Resolve::new(address("reg.example", "app", tag("v1")));
        let d = run(&mut resolve(), &mut session, &s, &clock).expect("resolve");
        assert_eq!(d.digest, digest);
        if cached {
            clock.advance(Duration::from_secs(30));
            run(&mut resolve(), &mut session, &s, &clock).expect("resolve again");
        }
        assert!(s.finished(), "{body}");
        for retried in &s.seen()[3..] {
            assert_eq!(
                retried.header("authorization"),
                Some("Bearer tok"),
                "{body}"
            );
        }
    }
}

/// A token is for the registry that asked for it: another registry whose
/// challenge names the same token server, service and scope does not get
/// it (it gets its own, from a token request of its own).
#[test]
fn a_cached_token_is_not_sent_to_another_registry() {
    let manifest = image_manifest(b"{}", b"layer");
    let digest = sha256(manifest.as_bytes());
    let scoped = format!("{HUB_CHALLENGE},scope=\"repository:myorg/app:pull\"");
    let token_url = "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Amyorg%2Fapp%3Apull";
    // Both registries hold the same conversation: the same challenge,
    // the same token server; only the token each is given differs.
    let mut s = Script::new();
    for (base, token) in [
        ("https://registry-1.docker.io", "hub-token"),
        ("https://evil.example", "evil-token"),
    ] {
        let head = format!("{base}/v2/myorg/app/manifests/v1");
        s.on("GET", &format!("{base}/v2/"))
            .status(401)
            .header("www-authenticate", HUB_CHALLENGE)
            .done()
            .on("HEAD", &head)
            .status(401)
            .header("www-authenticate", &scoped)
            .done()
            .on("GET", token_url)
            .body(format!(r#"{{"token":"{token}","expires_in":300}}"#))
            .done()
            .on("HEAD", &head)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .header("docker-content-digest", &digest.to_string())
            .header("content-length", &manifest.len().to_string())
            .done();
    }
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    for domain in ["docker.io", "evil.example"] {
        run(&mut Ping::new(&session, domain), &mut session, &s, &clock).expect("ping");
        let d = run(
            &mut Resolve::new(address(domain, "myorg/app", tag("v1"))),
            &mut session,
            &s,
            &clock,
        )
        .expect("resolve");
        assert_eq!(d.digest, digest);
    }
    assert!(s.finished());
    let seen = s.seen();
    assert_eq!(seen[3].header("authorization"), Some("Bearer hub-token"));
    // The other registry's first request carries nothing; its answer
    // after its own token request carries its own token.
    assert_eq!(seen[5].header("authorization"), None);
    assert_eq!(seen[7].header("authorization"), Some("Bearer evil-token"));
    assert!(
        seen.iter()
            .filter(|r| r.url.contains("evil.example"))
            .all(|r| r.header("authorization") != Some("Bearer hub-token")),
        "the hub token went to evil.example"
    );
}

#[test]
fn mount_asks_for_the_new_scope_first_and_sends_from() {
    // Docker Hub regressed on several scope parameters: the push scope of
    // the target goes first. Quay needs `from` with `mount`.
    let digest = sha256(b"blob");
    let mut s = Script::new();
    s.on("POST", &format!("https://quay.io/v2/org/dst/blobs/uploads/?mount={}&from=org%2Fsrc", digest.to_string().replace(':', "%3A")))
        .status(401).header("www-authenticate", r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#).done()
        .on("GET", "https://quay.io/v2/auth?service=quay.io&scope=repository%3Aorg%2Fdst%3Apull%2Cpush&scope=repository%3Aorg%2Fsrc%3Apull")
        .body(r#"{"access_token":"q"}"#).done()
        .on("POST", &format!("https://quay.io/v2/org/dst/blobs/uploads/?mount={}&from=org%2Fsrc", digest.to_string().replace(':', "%3A")))
        .status(201).done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let out = run(
        &mut PushBlob::new("quay.io", "org/dst", &digest, 4, UploadPolicy::default())
            .mount_from("org/src"),
        &mut session,
        &s,
        &clock,
    )
    .expect("mount");
    assert_eq!(out, PushOutcome::Mounted);
    assert_eq!(
        s.seen()[2].header("authorization"),
        Some("Bearer q"),
        "access_token is accepted"
    );
}

#[test]
fn mount_answered_202_falls_back_to_upload() {
    let blob = Bytes::from_static(b"hello blob");
    let digest = sha256(&blob);
    let enc = digest.to_string().replace(':', "%3A");
    let mut s = Script::new();
    s.on(
        "POST",
        &format!("http://127.0.0.1:5000/v2/a/blobs/uploads/?mount={enc}&from=b"),
    )
    .status(202)
    .header("location", "/v2/a/blobs/uploads/u1?_state=x")
    .done()
    .on(
        "PUT",
        &format!("http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=x&digest={enc}"),
    )
    .status(201)
    .header("docker-content-digest", &digest.to_string())
    .done();
    let clock = SimClock::at(T0);
    let mut session = Session::new(
        Arc::new(berth_protocol::Anonymous),
        EndpointPolicy::new().insecure("127.0.0.1:5000"),
        1,
    );
    // Choose the http endpoint as a ping would.
    let mut p = Script::new();
    p.on("GET", "https://127.0.0.1:5000/v2/")
        .fail("tls handshake failed")
        .done()
        .on("GET", "http://127.0.0.1:5000/v2/")
        .header("docker-distribution-api-version", "registry/2.0")
        .done();
    let info = run(
        &mut Ping::new(&session, "127.0.0.1:5000"),
        &mut session,
        &p,
        &clock,
    )
    .expect("ping");
    assert_eq!(
        info.endpoint.base_url(),
        "http://127.0.0.1:5000",
        "falls back to http for an insecure host at once"
    );
    let mut op = PushBlob::new(
        "127.0.0.1:5000",
        "a",
        &digest,
        blob.len() as u64,
        UploadPolicy::default(),
    )
    .mount_from("b");
    let (out, _) = drive_blocking(&mut op, &mut session, &s, &clock, Some(&blob)).expect("push");
    assert_eq!(out, PushOutcome::Uploaded);
    assert_eq!(s.seen()[1].body, blob.to_vec());
    // The PUT carries the blob (a transport may give it a connection of
    // its own); the POST that starts the session does not.
    assert!(!s.seen()[0].blob_transfer);
    assert!(s.seen()[1].blob_transfer);
    assert!(p.seen().iter().all(|s| !s.blob_transfer), "pings are not");
    assert_eq!(
        s.seen()[1].header("content-type"),
        Some("application/octet-stream")
    );
}

#[test]
fn ghcr_opaque_tokens_default_to_60s_and_chunks_cap_at_4_mib() {
    const MIB: usize = 1024 * 1024;
    let blob = Bytes::from(vec![7u8; 10 * MIB]);
    let digest = sha256(&blob);
    let enc = digest.to_string().replace(':', "%3A");
    let challenge = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull,push""#;
    let mut s = Script::new();
    s.on("POST", "https://ghcr.io/v2/o/r/blobs/uploads/")
        .status(401)
        .header("www-authenticate", challenge)
        .done()
        .on(
            "GET",
            "https://ghcr.io/token?service=ghcr.io&scope=repository%3Ao%2Fr%3Apull%2Cpush",
        )
        .body(r#"{"token":"djE6b3BhcXVl"}"#)
        .done()
        .on("POST", "https://ghcr.io/v2/o/r/blobs/uploads/")
        .status(202)
        .header("location", "/v2/o/r/blobs/uploads/s1")
        .done();
    for (i, (a, b)) in [
        (0, 4 * MIB - 1),
        (4 * MIB, 8 * MIB - 1),
        (8 * MIB, 10 * MIB - 1),
    ]
    .into_iter()
    .enumerate()
    {
        s.on(
            "PATCH",
            &format!("https://ghcr.io/v2/o/r/blobs/uploads/s{}", i + 1),
        )
        .status(202)
        .header("location", &format!("/v2/o/r/blobs/uploads/s{}", i + 2))
        .header("range", &format!("0-{b}"))
        .done();
        let _ = a;
    }
    s.on(
        "PUT",
        &format!("https://ghcr.io/v2/o/r/blobs/uploads/s4?digest={enc}"),
    )
    .status(201)
    .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let mut op = PushBlob::new(
        "ghcr.io",
        "o/r",
        &digest,
        blob.len() as u64,
        UploadPolicy::chunked(8 * MIB as u64, Some(4 * MIB as u64)),
    );
    let (out, _) = drive_blocking(&mut op, &mut session, &s, &clock, Some(&blob)).expect("push");
    assert_eq!(out, PushOutcome::Uploaded);
    let seen = s.seen();
    let ranges: Vec<_> = seen
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.header("content-range").map(str::to_owned))
        .collect();
    assert_eq!(
        ranges,
        [
            Some(format!("0-{}", 4 * MIB - 1)),
            Some(format!("{}-{}", 4 * MIB, 8 * MIB - 1)),
            Some(format!("{}-{}", 8 * MIB, 10 * MIB - 1))
        ]
    );
    assert!(
        seen.iter()
            .filter(|r| r.method == "PATCH")
            .all(|r| r.body.len() <= 4 * MIB)
    );
    // The opaque token (no expires_in) lives 60 s: 70 s later a new one is fetched.
    assert_eq!(session.cached_tokens(), 1);
    clock.advance(Duration::from_secs(70));
    let mut s2 = Script::new();
    s2.on("HEAD", &format!("https://ghcr.io/v2/o/r/blobs/{digest}"))
        .status(401)
        .header("www-authenticate", challenge)
        .done()
        .on(
            "GET",
            "https://ghcr.io/token?service=ghcr.io&scope=repository%3Ao%2Fr%3Apull",
        )
        .body(r#"{"token":"second"}"#)
        .done()
        .on("HEAD", &format!("https://ghcr.io/v2/o/r/blobs/{digest}"))
        .header("content-length", "10485760")
        .done();
    let info = run(
        &mut HeadBlob::new("ghcr.io", "o/r", &digest),
        &mut session,
        &s2,
        &clock,
    )
    .expect("head");
    assert_eq!(info.and_then(|i| i.size), Some(10 * MIB as u64));
    assert_eq!(
        s2.seen()[0].header("authorization"),
        None,
        "the expired token is not sent"
    );
}

/// An anonymous session that pinged `localhost:5000`, which refused TLS
/// and answered over plain http (loopback falls back to http).
fn loopback_session(clock: &SimClock) -> Session {
    let mut session = Session::anonymous();
    let mut p = Script::new();
    p.on("GET", "https://localhost:5000/v2/")
        .fail("tls: first record does not look like a TLS handshake")
        .done()
        .on("GET", "http://localhost:5000/v2/")
        .done();
    run(
        &mut Ping::new(&session, "localhost:5000"),
        &mut session,
        &p,
        clock,
    )
    .expect("loopback falls back to http");
    session
}

/// A `Range` whose end is the largest u64 (so end + 1 overflows), after a
/// chunk and after a status request: a typed error, not a panic or a
/// wrapped offset.
/// An upload `Location` that is not a URL is quoted in the error without
/// its query values: they may be a signature or an upload's state.
#[test]
fn a_broken_upload_location_is_quoted_without_its_query() {
    let blob = Bytes::from(vec![1u8; 10]);
    let digest = sha256(&blob);
    let clock = SimClock::at(T0);
    let mut session = loopback_session(&clock);
    let mut s = Script::new();
    s.on("POST", "http://localhost:5000/v2/a/blobs/uploads/")
        .status(202)
        .header("location", "http://stor age/up?sig=s3cret")
        .done();
    let mut op = PushBlob::new(
        "localhost:5000",
        "a",
        &digest,
        10,
        UploadPolicy::chunked(1000, None),
    );
    let Err(e) = drive_blocking(&mut op, &mut session, &s, &clock, Some(&blob)) else {
        panic!("a Location that is not a URL was accepted");
    };
    let shown = e.to_string();
    assert!(matches!(&e, Error::InvalidResponse { .. }), "{e:?}");
    assert!(shown.contains("stor age/up?sig=REDACTED"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn a_range_at_the_end_of_u64_is_an_invalid_response() {
    let blob = Bytes::from(vec![1u8; 3000]);
    let digest = sha256(&blob);
    let clock = SimClock::at(T0);
    let mut session = loopback_session(&clock);
    let max = format!("0-{}", u64::MAX);
    for cut_first in [false, true] {
        let mut s = Script::new();
        s.on("POST", "http://localhost:5000/v2/a/blobs/uploads/")
            .status(202)
            .header("location", "/up/1")
            .done();
        if cut_first {
            s.on("PATCH", "http://localhost:5000/up/1")
                .fail("connection reset")
                .done()
                .on("GET", "http://localhost:5000/up/1")
                .status(204)
                .header("location", "/up/2")
                .header("range", &max)
                .done();
        } else {
            s.on("PATCH", "http://localhost:5000/up/1")
                .status(202)
                .header("location", "/up/2")
                .header("range", &max)
                .done();
        }
        let mut op = PushBlob::new(
            "localhost:5000",
            "a",
            &digest,
            3000,
            UploadPolicy::chunked(1000, None),
        );
        let Err(e) = drive_blocking(&mut op, &mut session, &s, &clock, Some(&blob)) else {
            panic!("a range past any blob was accepted");
        };
        assert!(
            matches!(&e, Error::InvalidResponse { .. }) && e.to_string().contains("Range"),
            "{e:?}"
        );
    }
}

#[test]
fn chunk_cut_on_the_way_resumes_from_the_registry_s_range() {
    let blob = Bytes::from(vec![1u8; 3000]);
    let digest = sha256(&blob);
    let enc = digest.to_string().replace(':', "%3A");
    let mut s = Script::new();
    s.on("POST", "http://localhost:5000/v2/a/blobs/uploads/")
        .status(202)
        .header("location", "/up/1")
        .header("oci-chunk-min-length", "1000")
        .done()
        .on("PATCH", "http://localhost:5000/up/1")
        .status(202)
        .header("location", "/up/2")
        .header("range", "0-999")
        .done()
        .on("PATCH", "http://localhost:5000/up/2")
        .fail("connection reset")
        .done()
        .on("GET", "http://localhost:5000/up/2")
        .status(204)
        .header("location", "/up/3")
        .header("range", "0-1499")
        .done()
        .on("PATCH", "http://localhost:5000/up/3")
        .status(201)
        .header("location", "/up/4")
        .header("range", "0-2499")
        .done()
        .on("PATCH", "http://localhost:5000/up/4")
        .status(202)
        .header("location", "/up/5")
        .header("range", "0-2999")
        .done()
        .on("PUT", &format!("http://localhost:5000/up/5?digest={enc}"))
        .status(201)
        .done();
    let clock = SimClock::at(T0);
    let mut session = loopback_session(&clock);
    let mut op = PushBlob::new(
        "localhost:5000",
        "a",
        &digest,
        3000,
        UploadPolicy::chunked(500, None),
    );
    let (out, _) = drive_blocking(&mut op, &mut session, &s, &clock, Some(&blob)).expect("push");
    assert_eq!(out, PushOutcome::Uploaded);
    let seen = s.seen();
    assert_eq!(
        seen[1].header("content-range"),
        Some("0-999"),
        "OCI-Chunk-Min-Length raises the chunk size"
    );
    assert_eq!(
        seen[4].header("content-range"),
        Some("1500-2499"),
        "resumes where the registry's Range ends"
    );
    assert!(s.finished());
}

#[test]
fn gcr_401_without_challenge_reuses_the_ping_s() {
    let mut s = Script::new();
    s.on("GET", "https://gcr.io/v2/")
        .status(401)
        .header(
            "www-authenticate",
            r#"Bearer realm="https://gcr.io/v2/token",service="gcr.io""#,
        )
        .done()
        .on("GET", "https://gcr.io/v2/p/app/tags/list")
        .status(401)
        .done()
        .on(
            "GET",
            "https://gcr.io/v2/token?service=gcr.io&scope=repository%3Ap%2Fapp%3Apull",
        )
        .body(r#"{"token":"g"}"#)
        .done()
        .on("GET", "https://gcr.io/v2/p/app/tags/list")
        .body(r#"{"name":"p/app","tags":["v1","v2"]}"#)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    run(&mut Ping::new(&session, "gcr.io"), &mut session, &s, &clock).expect("ping");
    let tags = run(
        &mut ListTags::new("gcr.io", "p/app"),
        &mut session,
        &s,
        &clock,
    )
    .expect("tags");
    assert_eq!(tags, ["v1", "v2"]);
}

#[test]
fn identity_tokens_use_the_oauth2_post_and_fall_back_to_get() {
    let creds = StaticCredentials::new().with(
        "myreg.azurecr.io",
        Credentials::IdentityToken(Secret::new("refresh-me")),
    );
    let mut session = Session::new(Arc::new(creds), EndpointPolicy::new(), 3);
    let ch = r#"Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io""#;
    let mut s = Script::new();
    s.on("GET", "https://myreg.azurecr.io/v2/r/tags/list").status(401).header("www-authenticate", ch).done()
        .on("POST", "https://myreg.azurecr.io/oauth2/token").status(404).done()
        .on("GET", "https://myreg.azurecr.io/oauth2/token?service=myreg.azurecr.io&scope=repository%3Ar%3Apull").body(r#"{"token":"anon"}"#).done()
        .on("GET", "https://myreg.azurecr.io/v2/r/tags/list").body(r#"{"tags":["x"]}"#).done();
    let clock = SimClock::at(T0);
    run(
        &mut ListTags::new("myreg.azurecr.io", "r"),
        &mut session,
        &s,
        &clock,
    )
    .expect("tags");
    let form = String::from_utf8(s.seen()[1].body.clone()).expect("utf8");
    assert!(
        form.contains("grant_type=refresh_token") && form.contains("refresh_token=refresh-me"),
        "{form}"
    );
    assert_eq!(
        s.seen()[1].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

/// A session with Basic credentials (`u` / `p`) for `registry`.
fn basic_session(registry: &str) -> Session {
    let creds = StaticCredentials::new().with(
        registry,
        Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        },
    );
    Session::new(Arc::new(creds), EndpointPolicy::new(), 3)
}

/// A ping redirected to another host learns nothing from that host's
/// challenge. Remembered, it would answer the registry's later 401s that
/// carry no challenge (as GCR's do), and its realm would get the
/// registry's credentials.
#[test]
fn a_challenge_from_a_redirected_ping_is_not_remembered() {
    let mut session = basic_session("r.example");
    let foreign = r#"Bearer realm="https://evil.example/token",service="r.example""#;
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/")
        .status(307)
        .header("location", "https://evil.example/v2/")
        .done()
        .on("GET", "https://evil.example/v2/")
        .status(401)
        .header("www-authenticate", foreign)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .done();
    let clock = SimClock::at(T0);
    run(
        &mut Ping::new(&session, "r.example"),
        &mut session,
        &s,
        &clock,
    )
    .expect("ping");
    let e = run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Registry(r) if r.status == http::StatusCode::UNAUTHORIZED),
        "{e:?}"
    );
    assert!(s.finished());
    assert!(s.seen().iter().all(|r| r.header("authorization").is_none()));
}

/// A realm whose userinfo looks like loopback (`http://[::1]@evil.example`)
/// is evil.example over plain http: refused before any request, so the
/// credentials go nowhere.
#[test]
fn a_token_realm_with_userinfo_is_refused() {
    let mut session = basic_session("r.example");
    let ch = r#"Bearer realm="http://[::1]@evil.example/token",service="r.example""#;
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", ch)
        .done();
    let clock = SimClock::at(T0);
    let e = run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect_err("a realm hiding its host");
    assert!(
        matches!(&e, Error::Unauthorized { detail, .. } if detail.contains("user information")),
        "{e:?}"
    );
    assert_eq!(s.seen().len(), 1, "no request went to the realm");
}

#[test]
fn basic_challenges_are_answered_with_basic_credentials() {
    let mut session = basic_session("r.example");
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", r#"Basic realm="Registry Realm""#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":[]}"#)
        .done()
        .on("GET", "https://r.example/v2/b/tags/list")
        .body(r#"{"tags":["t"]}"#)
        .done();
    let clock = SimClock::at(T0);
    run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect("tags");
    run(
        &mut ListTags::new("r.example", "b"),
        &mut session,
        &s,
        &clock,
    )
    .expect("tags");
    assert_eq!(s.seen()[1].header("authorization"), Some("Basic dTpw"));
    assert_eq!(
        s.seen()[2].header("authorization"),
        Some("Basic dTpw"),
        "sent at once once the scheme is known"
    );
}

#[test]
fn ecr_catalog_page_size_and_pagination() {
    let mut s = Script::new();
    s.on(
        "GET",
        "https://1.dkr.ecr.us-east-1.amazonaws.com/v2/_catalog?n=1000",
    )
    .body(r#"{"repositories":["a","b"]}"#)
    .header("link", r#"</v2/_catalog?last=b&n=1000>; rel="next""#)
    .done()
    .on(
        "GET",
        "https://1.dkr.ecr.us-east-1.amazonaws.com/v2/_catalog?last=b&n=1000",
    )
    .body(r#"{"repositories":["c"]}"#)
    .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let repos = run(
        &mut Catalog::new("1.dkr.ecr.us-east-1.amazonaws.com", Some(5000)),
        &mut session,
        &s,
        &clock,
    )
    .expect("catalog");
    assert_eq!(repos, ["a", "b", "c"]);
}

#[test]
fn pagination_loops_and_foreign_links_are_refused() {
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list?n=1")
        .body(r#"{"tags":["a"]}"#)
        .header("link", r#"</v2/a/tags/list?n=1&last=a>; rel="next""#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list?n=1&last=a")
        .body(r#"{"tags":["b"]}"#)
        .header("link", r#"</v2/a/tags/list?n=1&last=a>; rel="next""#)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut ListTags::paged("r.example", "a", Some(1), None),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(e.to_string().contains("loops"), "{e}");
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":["a"]}"#)
        .header(
            "link",
            r#"<https://elsewhere.example/v2/a/tags/list?last=a>; rel="next""#,
        )
        .done();
    let e = run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(e.to_string().contains("another host"), "{e}");
}

#[test]
fn nexus_nulls_and_artifactory_digests_in_tag_lists_are_dropped() {
    let mut s = Script::new();
    s.on("GET", "https://nexus.example/v2/a/tags/list")
        .body(r#"{"name":"a","tags":["1.0",null,"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","2.0"]}"#).done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    assert_eq!(
        run(
            &mut ListTags::new("nexus.example", "a"),
            &mut session,
            &s,
            &clock
        )
        .expect("tags"),
        ["1.0", "2.0"]
    );
}

#[test]
fn malformed_bodies_are_typed_errors() {
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .body("{not json")
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidResponse {
                what: "tag list",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn artifactory_403_for_a_missing_repository_says_what_it_may_mean() {
    let mut s = Script::new();
    s.on("GET", "https://art.example/v2/nope/manifests/1")
        .status(403)
        .body(r#"{"errors":[{"code":"DENIED","message":"forbidden"}]}"#)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut GetManifest::new(address("art.example", "nope", tag("1"))),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("unauthorized: art.example refused anonymous access")
            && text.contains("may require authorization"),
        "{text}"
    );
    assert!(e.is_auth());
}

#[test]
fn manifest_unknown_is_a_typed_not_found() {
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/manifests/missing")
        .status(404)
        .body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut GetManifest::new(address("r.example", "a", tag("missing"))),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert_eq!(e.not_found(), Some(berth_protocol::NotFound::Tag));
}

#[test]
fn red_hat_text_plain_manifests_are_sniffed_and_verified() {
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
    let digest = sha256(manifest.as_bytes());
    let mut s = Script::new();
    s.on(
        "GET",
        "https://registry.access.redhat.com/v2/ubi9/ubi/manifests/latest",
    )
    .header("content-type", "text/plain")
    .header("docker-content-digest", &digest.to_string())
    .body(manifest)
    .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let m = run(
        &mut GetManifest::new(address(
            "registry.access.redhat.com",
            "ubi9/ubi",
            tag("latest"),
        )),
        &mut session,
        &s,
        &clock,
    )
    .expect("get");
    assert_eq!(m.manifest.media_type(), &MediaType::DOCKER_MANIFEST);
    assert_eq!(m.digest, digest);
    assert_eq!(
        m.manifest.raw(),
        manifest.as_bytes(),
        "the exact bytes are kept"
    );
}

#[test]
fn wrong_manifest_bytes_are_a_digest_mismatch_naming_both() {
    let manifest = image_manifest(b"{}", b"l");
    let claimed = sha256(b"something else");
    let mut s = Script::new();
    s.on(
        "GET",
        &format!("https://r.example/v2/a/manifests/{claimed}"),
    )
    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
    .body(&manifest)
    .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut GetManifest::new(address(
            "r.example",
            "a",
            ManifestRef::Digest(claimed.clone()),
        )),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("digest mismatch")
            && text.contains(&claimed.to_string())
            && text.contains(&sha256(manifest.as_bytes()).to_string()),
        "{text}"
    );
}

#[test]
fn head_without_digest_and_405_on_head_fall_back_to_get() {
    let manifest = image_manifest(b"{}", b"x");
    let digest = sha256(manifest.as_bytes());
    for head_status in [200, 405] {
        let mut s = Script::new();
        s.on("HEAD", "https://r.example/v2/a/manifests/v1")
            .status(head_status)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .done()
            .on("GET", "https://r.example/v2/a/manifests/v1")
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(&manifest)
            .done();
        let clock = SimClock::at(T0);
        let mut session = Session::anonymous();
        let d = run(
            &mut Resolve::new(address("r.example", "a", tag("v1"))),
            &mut session,
            &s,
            &clock,
        )
        .expect("resolve");
        assert_eq!(d.digest, digest, "HEAD {head_status}");
        assert_eq!(d.media_type, MediaType::OCI_MANIFEST);
    }
}

#[test]
fn a_token_that_expires_early_is_renewed_once() {
    let ch = r#"Bearer realm="https://auth.example/token",service="r""#;
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", ch)
        .done()
        .on(
            "GET",
            "https://auth.example/token?service=r&scope=repository%3Aa%3Apull",
        )
        .body(r#"{"token":"one","expires_in":3600}"#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":["1"]}"#)
        .done()
        // The server revoked the token early: 401 although our clock says valid.
        .on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header(
            "www-authenticate",
            &format!(r#"{ch},error="invalid_token""#),
        )
        .done()
        .on(
            "GET",
            "https://auth.example/token?service=r&scope=repository%3Aa%3Apull",
        )
        .body(r#"{"token":"two","expires_in":3600}"#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":["1","2"]}"#)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect("first");
    clock.advance(Duration::from_secs(60));
    let tags = run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect("second");
    assert_eq!(tags, ["1", "2"]);
    let seen = s.seen();
    assert_eq!(seen[3].header("authorization"), Some("Bearer one"));
    assert_eq!(seen[5].header("authorization"), Some("Bearer two"));
}

#[test]
fn a_second_401_after_a_fresh_token_is_unauthorized() {
    let ch = r#"Bearer realm="https://auth.example/token",service="r""#;
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", ch)
        .done()
        .on(
            "GET",
            "https://auth.example/token?service=r&scope=repository%3Aa%3Apull",
        )
        .body(r#"{"token":"one"}"#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", ch)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert!(s.finished(), "no loop: exactly one retry with a token");
}

#[test]
fn retry_after_on_429_is_honoured_then_5xx_backs_off() {
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(429)
        .header("retry-after", "3")
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .status(503)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":["ok"]}"#)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect("after retries");
    let waits = clock.waits();
    assert_eq!(waits[0], Duration::from_secs(3));
    assert!(
        waits[1] > Duration::ZERO && waits[1] <= Duration::from_millis(400),
        "{waits:?}"
    );
}

#[test]
fn a_storm_of_503s_ends_in_a_clear_error_within_budget() {
    let mut s = Script::new();
    for _ in 0..4 {
        s.on("GET", "https://r.example/v2/a/tags/list")
            .status(503)
            .done();
    }
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(e.is_temporary());
    assert_eq!(clock.waits().len(), 3, "three retries, then the error");
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let blob = b"layer bytes".to_vec();
    let digest = sha256(&blob);
    let mut session = basic_session("r.example");
    let mut s = Script::new();
    s.on("GET", &format!("https://r.example/v2/a/blobs/{digest}"))
        .status(401)
        .header("www-authenticate", r#"Basic realm="r""#)
        .done()
        .on("GET", &format!("https://r.example/v2/a/blobs/{digest}"))
        .status(307)
        .header("location", "https://storage.example/b?sig=1")
        .done()
        .on("GET", "https://storage.example/b?sig=1")
        .body(&blob)
        .done();
    let clock = SimClock::at(T0);
    let mut op = GetBlob::new("r.example", "a", &digest, 0);
    let (head, body) = drive_blocking(&mut op, &mut session, &s, &clock, None).expect("blob");
    assert_eq!(head.offset, 0);
    let mut body: Chunks = body.expect("the body is handed over");
    assert_eq!(body.read_all().expect("body"), blob);
    let seen = s.seen();
    assert!(seen[1].header("authorization").is_some());
    assert_eq!(
        seen[2].header("authorization"),
        None,
        "no Authorization to storage.example"
    );
    assert!(
        seen.iter().all(|s| s.blob_transfer),
        "a blob download is a blob transfer, redirected or not"
    );
}

#[test]
fn a_redirect_to_plain_http_is_refused() {
    let digest = sha256(b"x");
    let mut s = Script::new();
    s.on("GET", &format!("https://r.example/v2/a/blobs/{digest}"))
        .status(302)
        .header("location", "http://r.example/b")
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut GetBlob::new("r.example", "a", &digest, 0),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Redirect(_)), "{e:?}");
}

#[test]
fn a_token_realm_over_plain_http_gets_no_credentials() {
    let mut session = basic_session("r.example");
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header(
            "www-authenticate",
            r#"Bearer realm="http://auth.example/token",service="r""#,
        )
        .done()
        .on(
            "GET",
            "http://auth.example/token?service=r&scope=repository%3Aa%3Apull",
        )
        .body(r#"{"token":"anon"}"#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":[]}"#)
        .done();
    let clock = SimClock::at(T0);
    run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect("tags");
    assert_eq!(s.seen()[1].header("authorization"), None);
    assert!(!s.seen()[1].url.contains("account="));
}

#[test]
fn a_manifest_over_the_limit_is_refused_without_reading_it() {
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/manifests/big")
        .header("content-length", "999999999")
        .body("{}")
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut GetManifest::new(address("r.example", "a", tag("big"))),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                what: "manifest",
                ..
            }
        ),
        "{e:?}"
    );
    // A lying (absent) Content-Length: the driver stops at the limit.
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/manifests/big")
        .body(vec![b' '; 5 * 1024 * 1024])
        .done();
    let e = run(
        &mut GetManifest::new(address("r.example", "a", tag("big"))),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
}

#[test]
fn delete_by_tag_resolves_the_digest_first_and_asks_for_scope_star() {
    let digest = sha256(b"m");
    let ch = r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#;
    let mut s = Script::new();
    s.on("HEAD", "https://quay.io/v2/o/r/manifests/old")
        .status(401)
        .header("www-authenticate", ch)
        .done()
        .on(
            "GET",
            "https://quay.io/v2/auth?service=quay.io&scope=repository%3Ao%2Fr%3Apull",
        )
        .body(r#"{"token":"p"}"#)
        .done()
        .on("HEAD", "https://quay.io/v2/o/r/manifests/old")
        .header("docker-content-digest", &digest.to_string())
        .done()
        .on(
            "DELETE",
            &format!("https://quay.io/v2/o/r/manifests/{digest}"),
        )
        .status(401)
        .header("www-authenticate", ch)
        .done()
        .on(
            "GET",
            "https://quay.io/v2/auth?service=quay.io&scope=repository%3Ao%2Fr%3A%2A",
        )
        .body(r#"{"token":"star"}"#)
        .done()
        .on(
            "DELETE",
            &format!("https://quay.io/v2/o/r/manifests/{digest}"),
        )
        .status(202)
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let d = run(
        &mut DeleteManifest::new(address("quay.io", "o/r", tag("old"))),
        &mut session,
        &s,
        &clock,
    )
    .expect("delete");
    assert_eq!(d, digest);
}

#[test]
fn referrers_fall_back_to_the_tag_schema() {
    let subject = sha256(b"subject");
    let sig = sha256(b"sig");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{sig}","size":10,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{sig}","size":10,"artifactType":"application/spdx+json"}}]}}"#
    );
    let mut s = Script::new();
    s.on(
        "GET",
        &format!(
            "https://r.example/v2/a/referrers/{subject}?artifactType=application%2Fspdx%2Bjson"
        ),
    )
    .status(404)
    .done()
    .on(
        "GET",
        &format!(
            "https://r.example/v2/a/manifests/sha256-{}",
            subject.encoded()
        ),
    )
    .header("content-type", "application/vnd.oci.image.index.v1+json")
    .body(&index)
    .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let r = run(
        &mut ListReferrers::new(
            "r.example",
            "a",
            &subject,
            Some(MediaType::new("application/spdx+json")),
        ),
        &mut session,
        &s,
        &clock,
    )
    .expect("referrers");
    assert!(!r.api);
    assert_eq!(r.descriptors.len(), 1, "filtered by artifact type");
}

#[test]
fn the_same_operation_runs_under_the_blocking_and_the_async_driver() {
    let manifest = image_manifest(b"{}", b"y");
    let digest = sha256(manifest.as_bytes());
    let script = || {
        let mut s = Script::new();
        s.on("GET", "https://r.example/v2/a/manifests/v1")
            .status(401)
            .header(
                "www-authenticate",
                r#"Bearer realm="https://r.example/token",service="r""#,
            )
            .done()
            .on(
                "GET",
                "https://r.example/token?service=r&scope=repository%3Aa%3Apull",
            )
            .body(r#"{"token":"x"}"#)
            .done()
            .on("GET", "https://r.example/v2/a/manifests/v1")
            .status(503)
            .done()
            .on("GET", "https://r.example/v2/a/manifests/v1")
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .header("docker-content-digest", &digest.to_string())
            .body(&manifest)
            .done();
        s
    };
    let blocking_script = script();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let mut op = GetManifest::new(address("r.example", "a", tag("v1")));
    let (a, _) =
        drive_blocking(&mut op, &mut session, &blocking_script, &clock, None).expect("blocking");

    let async_script = script();
    let clock2 = SimClock::at(T0);
    let session = Mutex::new(Session::anonymous());
    let mut op = GetManifest::new(address("r.example", "a", tag("v1")));
    let (b, _) = futures_executor::block_on(drive(&mut op, &session, &async_script, &clock2, None))
        .expect("async");

    assert_eq!(a.digest, b.digest);
    assert_eq!(a.manifest.raw(), b.manifest.raw());
    let urls = |s: &Script| {
        s.seen()
            .into_iter()
            .map(|r| (r.method, r.url))
            .collect::<Vec<_>>()
    };
    assert_eq!(urls(&blocking_script), urls(&async_script));
    assert_eq!(clock.waits(), clock2.waits(), "same seed, same backoff");
}

#[test]
fn a_v1_only_server_is_reported_as_such() {
    let mut s = Script::new();
    s.on("GET", "https://old.example/v2/").status(404).done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut Ping::new(&session, "old.example"),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotV2 { .. }));
    assert!(e.to_string().contains("V1 API"));
}

#[test]
fn a_tls_loopback_registry_with_an_untrusted_certificate_reports_the_certificate() {
    let mut s = Script::new();
    s.on("GET", "https://127.0.0.1:5443/v2/")
        .fail("invalid peer certificate: UnknownIssuer")
        .done()
        .on("GET", "http://127.0.0.1:5443/v2/")
        .status(400)
        .body("Client sent an HTTP request to an HTTPS server.")
        .done();
    let clock = SimClock::at(T0);
    let mut session = Session::anonymous();
    let e = run(
        &mut Ping::new(&session, "127.0.0.1:5443"),
        &mut session,
        &s,
        &clock,
    )
    .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(
        !session.has_endpoint("127.0.0.1:5443"),
        "no endpoint chosen"
    );
}

#[test]
fn the_oauth2_password_grant_when_asked_for() {
    let creds = StaticCredentials::new().with(
        "r.example",
        Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p w"),
        },
    );
    let mut session =
        Session::new(Arc::new(creds), EndpointPolicy::new(), 3).with_oauth_password_grant(true);
    let ch = r#"Bearer realm="https://auth.example/token",service="r""#;
    let mut s = Script::new();
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", ch)
        .done()
        .on("POST", "https://auth.example/token")
        .body(r#"{"access_token":"oauth"}"#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":["x"]}"#)
        .done();
    let clock = SimClock::at(T0);
    run(
        &mut ListTags::new("r.example", "a"),
        &mut session,
        &s,
        &clock,
    )
    .expect("tags");
    let form = String::from_utf8(s.seen()[1].body.clone()).expect("utf8");
    assert!(
        form.contains("grant_type=password")
            && form.contains("username=u")
            && form.contains("password=p%20w"),
        "{form}"
    );
    assert_eq!(
        s.seen()[1].header("authorization"),
        None,
        "the password travels in the form only"
    );
    assert_eq!(s.seen()[2].header("authorization"), Some("Bearer oauth"));
}
