//! The protocol core, unchanged, over this transport: `drive` runs a ping
//! and a tag listing against a small registry-like server on 127.0.0.1.

mod support;

use std::sync::{Arc, Mutex};

use berth_hyper::TokioRuntime;
use berth_protocol::driver::drive;
use berth_protocol::endpoint::{EndpointPolicy, Scheme};
use berth_protocol::ops::{ListTags, Ping};
use berth_protocol::{Anonymous, Session};
use support::*;

#[tokio::test]
async fn drive_pings_and_lists_tags_over_hyper() {
    let server = Server::start(
        None,
        handler(|req| async move {
            let (status, body) = match req.uri().path() {
                "/v2/" => (200, "{}".to_owned()),
                "/v2/a/tags/list" => (200, r#"{"name":"a","tags":["1.0","latest"]}"#.to_owned()),
                _ => (
                    404,
                    r#"{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}"#.to_owned(),
                ),
            };
            http::Response::builder()
                .status(status)
                .header("Docker-Distribution-API-Version", "registry/2.0")
                .header("Content-Type", "application/json")
                .body(full(body))
                .expect("response")
        }),
    )
    .await;
    let domain = format!("127.0.0.1:{}", server.port());
    let transport = builder().build().expect("transport");
    let session = Session::new(Arc::new(Anonymous), EndpointPolicy::new(), 0);

    // Loopback: https is tried first and fails (the server speaks plain
    // http), then http answers.
    let mut ping = Ping::new(&session, &domain);
    let session = Mutex::new(session);
    let (info, _) = tokio::time::timeout(
        STEP,
        drive(&mut ping, &session, &transport, &TokioRuntime, None),
    )
    .await
    .expect("in time")
    .expect("ping");
    assert_eq!(info.endpoint.scheme, Scheme::Http);
    assert_eq!(info.api_version.as_deref(), Some("registry/2.0"));

    let mut list = ListTags::new(&domain, "a");
    let (tags, _) = tokio::time::timeout(
        STEP,
        drive(&mut list, &session, &transport, &TokioRuntime, None),
    )
    .await
    .expect("in time")
    .expect("tags");
    assert_eq!(tags, ["1.0", "latest"]);
    // Every request reached the server over HTTP/1.1 (the TLS attempt
    // never got as far as a request).
    assert!(
        server
            .versions()
            .iter()
            .all(|v| *v == http::Version::HTTP_11)
    );
    assert_eq!(server.versions().len(), 2);
    assert!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "https was tried first, on a connection of its own"
    );
}
