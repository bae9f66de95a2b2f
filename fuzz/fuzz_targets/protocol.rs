//! Arbitrary response sequences fed to every operation of the protocol
//! core. It must never panic, always finish (once the input runs out every
//! request fails, and the retry budget ends it), and never send credentials
//! anywhere but the registry itself or an https token realm the registry
//! named.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_auth::{Credentials, Secret};
use berth_protocol::endpoint::EndpointPolicy;
use berth_protocol::ops::{
    Catalog, DeleteManifest, GetBlob, GetManifest, HeadBlob, ListReferrers, ListTags,
    ManifestAddress, ManifestRef, Ping, PushBlob, Resolve, UploadPolicy,
};
use berth_protocol::{Action, Context, Operation, Session, StaticCredentials, TransportError};
use berth_reference::Digest;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const REGISTRY: &str = "r.example";

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn pick<'s>(&mut self, items: &[&'s str]) -> Option<&'s str> {
        Some(items[usize::from(self.byte()?) % items.len()])
    }
    fn bytes(&mut self) -> Option<&[u8]> {
        let n = usize::from(self.byte()?).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }
}

const STATUSES: &[u16] = &[
    200, 201, 202, 204, 206, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 416, 429, 500, 503,
];
const LOCATIONS: &[&str] = &[
    "/v2/a/blobs/uploads/x?_state=1",
    "https://r.example/next",
    "https://other.example/x",
    "http://r.example/x",
    "//cdn.example/y",
    "relative",
    "ftp://x/y",
    "",
    "https://r.example:8443/z",
    "http://127.0.0.1/steal",
];
const CHALLENGES: &[&str] = &[
    r#"Bearer realm="https://auth.example/token",service="r""#,
    r#"Bearer realm="http://auth.example/token",service="r""#,
    r#"Bearer realm="https://r.example/token""#,
    r#"Basic realm="x""#,
    r#"Bearer realm="ftp://x""#,
    "Bearer",
    "Unknown foo=bar",
    "garbage ,,, =",
];
const DIGESTS: &[&str] = &[
    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "sha512:zz",
    "nonsense",
];
const TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "text/plain",
    "application/json",
    "",
];
const LINKS: &[&str] = &[
    r#"</v2/a/tags/list?last=x>; rel="next""#,
    r#"<https://evil.example/x>; rel="next""#,
    "</loop>; rel=next",
    "bad",
];
const BODIES: &[&str] = &[
    r#"{"token":"t","expires_in":1}"#,
    r#"{"access_token":"t2"}"#,
    r#"{"tags":["a",null,"b"]}"#,
    r#"{"repositories":["x"]}"#,
    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"nope"}]}"#,
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
    "",
];

fn response(input: &mut Input<'_>) -> Option<(http::response::Parts, Bytes)> {
    let status = STATUSES[usize::from(input.byte()?) % STATUSES.len()];
    let mut b = http::Response::builder().status(status);
    let headers = input.byte()? % 6;
    for _ in 0..headers {
        b = match input.byte()? % 9 {
            0 => b.header("location", input.pick(LOCATIONS)?),
            1 => b.header("www-authenticate", input.pick(CHALLENGES)?),
            2 => b.header("docker-content-digest", input.pick(DIGESTS)?),
            3 => b.header("content-type", input.pick(TYPES)?),
            4 => b.header("content-length", input.byte()?.to_string()),
            5 => b.header("range", format!("0-{}", input.byte()?)),
            6 => b.header("link", input.pick(LINKS)?),
            7 => b.header(
                "retry-after",
                input.pick(&["1", "999999", "Sun, 06 Nov 1994 08:49:37 GMT", "x"])?,
            ),
            _ => b.header("oci-chunk-min-length", input.byte()?.to_string()),
        };
    }
    let body = if input.byte()? % 2 == 0 {
        Bytes::from(input.pick(BODIES)?.as_bytes().to_vec())
    } else {
        Bytes::copy_from_slice(input.bytes()?)
    };
    let (parts, ()) = b.body(()).ok()?.into_parts();
    Some((parts, body))
}

/// Credentials may go to the registry itself, or over https to a realm
/// that a challenge named.
fn check_credentials(request: &berth_protocol::Request) {
    if request.headers().get("authorization").is_none() {
        return;
    }
    let uri = request.uri();
    let host = uri.host().unwrap_or("");
    let https = uri.scheme_str() == Some("https");
    let allowed = (host == REGISTRY && https && uri.port_u16().is_none_or(|p| p == 443))
        || (https && host == "auth.example");
    assert!(allowed, "credentials sent to {uri}");
}

fn run<O: Operation>(mut op: O, input: &mut Input<'_>) {
    let creds = StaticCredentials::new().with(
        REGISTRY,
        Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        },
    );
    let mut session = Session::new(Arc::new(creds), EndpointPolicy::new(), 7);
    let mut now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut cx = Context::new(&mut session, now);
    let Ok(mut action) = op.start(&mut cx) else {
        return;
    };
    let mut pending_body: Option<Bytes> = None;
    for _ in 0..20_000 {
        let mut cx = Context::new(&mut session, now);
        let next = match action {
            Action::Done(_) => return,
            Action::Send(request) => {
                check_credentials(&request);
                match response(input) {
                    Some((parts, body)) => {
                        pending_body = Some(body);
                        op.on_response(parts, &mut cx)
                    }
                    None => op.on_transport_error(TransportError::new("input ended"), &mut cx),
                }
            }
            Action::ReadBody { limit } => match pending_body.take() {
                Some(b) if b.len() > limit => return,
                Some(b) => op.on_body(b, &mut cx),
                None => panic!("a body was asked for twice"),
            },
            Action::Wait(d) => {
                assert!(d <= Duration::from_secs(60), "waits are capped: {d:?}");
                now += d;
                let mut cx = Context::new(&mut session, now);
                op.on_timeout(&mut cx)
            }
        };
        match next {
            Ok(a) => action = a,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
    panic!("the operation did not finish");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(which) = input.byte() else { return };
    let digest = Digest::parse(DIGESTS[0]).expect("valid");
    let session = Session::anonymous();
    let addr = |r: ManifestRef| ManifestAddress {
        domain: REGISTRY.into(),
        name: "a".into(),
        reference: r,
    };
    match which % 12 {
        0 => run(Ping::new(&session, REGISTRY), &mut input),
        1 => run(
            Resolve::new(addr(ManifestRef::Tag("v1".into()))),
            &mut input,
        ),
        2 => run(
            GetManifest::new(addr(ManifestRef::Tag("v1".into()))),
            &mut input,
        ),
        3 => run(
            GetManifest::new(addr(ManifestRef::Digest(digest.clone()))),
            &mut input,
        ),
        4 => run(
            DeleteManifest::new(addr(ManifestRef::Tag("v1".into()))),
            &mut input,
        ),
        5 => run(HeadBlob::new(REGISTRY, "a", &digest), &mut input),
        6 => run(GetBlob::new(REGISTRY, "a", &digest, 5), &mut input),
        7 => run(ListTags::new(REGISTRY, "a"), &mut input),
        8 => run(Catalog::new(REGISTRY, None), &mut input),
        9 => run(
            PushBlob::new(
                REGISTRY,
                "a",
                &digest,
                3000,
                UploadPolicy::chunked(1000, Some(1000)),
            ),
            &mut input,
        ),
        10 => run(
            PushBlob::new(REGISTRY, "a", &digest, 10, UploadPolicy::default()).mount_from("b"),
            &mut input,
        ),
        _ => run(ListReferrers::new(REGISTRY, "a", &digest, None), &mut input),
    }
});
