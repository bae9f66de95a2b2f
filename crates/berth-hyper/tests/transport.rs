//! The transport against real servers on 127.0.0.1: plain and TLS,
//! HTTP/1.1 and HTTP/2, certs.d, insecure hosts, client certificates,
//! timeouts, uploads and proxies.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_hyper::{FailureKind, ProxyConfig, TransportFailure};
use berth_protocol::TransportError;
use berth_protocol::driver::{OutgoingBody, Transport};
use bytes::Bytes;
use futures_util::StreamExt;
use http::Version;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1024 * 1024;

fn failure(e: &TransportError) -> &TransportFailure {
    TransportFailure::find(&*e.source).expect("a TransportFailure in the chain")
}

#[test]
fn debug_output_hides_keys_and_proxy_credentials() {
    let key = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n";
    let proxy = ProxyConfig::new().with_https(
        "http://user:s3cret@proxy.example:3128"
            .parse()
            .expect("uri"),
    );
    let builder = berth_hyper::HyperTransport::builder()
        .client_identity_pem("cert", key)
        .host_client_identity_pem("r.example", "cert", key)
        .proxy(proxy.clone());
    let shown = format!("{builder:?}");
    // Derived Debug would print the key as a list of byte values.
    assert!(!shown.contains("TOP-SECRET"), "{shown}");
    assert!(!shown.contains("45, 45, 45"), "{shown}");
    assert!(
        shown.contains(&format!("Bytes({} bytes)", key.len())),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("proxy.example:3128"), "{shown}");
    let transport = berth_hyper::HyperTransport::builder()
        .proxy(proxy)
        .build()
        .expect("transport");
    let shown = format!("{transport:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("proxy.example:3128"), "{shown}");
}

#[tokio::test]
async fn plain_http_streams_a_large_body_in_chunks() {
    let server = Server::start(None, handler(|_req| async { reply(200, pattern(5 * MIB)) })).await;
    let transport = builder().build().expect("transport");
    let url = format!("http://127.0.0.1:{}/big", server.port());
    let mut response = get(&transport, &url).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.body().content_length(), Some(5 * MIB as u64));
    let (body, chunks) = read_all(response.body_mut()).await.expect("body");
    assert_eq!(body.len(), 5 * MIB);
    assert!(body == pattern(5 * MIB), "the body arrived intact");
    assert!(
        chunks > 1,
        "5 MiB arrived in {chunks} chunk(s), not streamed"
    );
}

#[tokio::test]
async fn tls_from_certs_d_negotiates_http2_and_blobs_get_http1_connections() {
    let pki = Pki::new();
    let server = Server::start(
        Some(pki.server_config(false)),
        handler(|req| async move { reply(200, req.uri().path().to_owned()) }),
    )
    .await;
    let certs_d = TempDir::new();
    certs_d.write(
        &format!("localhost:{}", server.port()),
        "ca.crt",
        &pki.ca.cert_pem,
    );
    // The library defaults (webpki and system roots) plus certs.d.
    let transport = berth_hyper::HyperTransport::builder()
        .certs_d_roots([certs_d.path()])
        .build()
        .expect("transport");
    for path in ["/one", "/two"] {
        let url = format!("https://localhost:{}{path}", server.port());
        let mut response = get(&transport, &url).await.expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), Version::HTTP_2);
        let (body, _) = read_all(response.body_mut()).await.expect("body");
        assert_eq!(body, path.as_bytes());
    }
    assert_eq!(server.versions(), [Version::HTTP_2, Version::HTTP_2]);
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "both requests went over one pooled connection"
    );
    // Blob transfers take HTTP/1.1 connections of their own, one per
    // transfer at a time, and reuse them too.
    let blob_url = format!("https://localhost:{}/blob", server.port());
    let blob = |url: String| {
        http::Request::builder()
            .uri(url)
            .extension(berth_protocol::BlobTransfer)
            .body(OutgoingBody::Empty)
            .expect("request")
    };
    let (first, second) = tokio::join!(
        transport.send(blob(blob_url.clone())),
        transport.send(blob(blob_url.clone()))
    );
    for mut response in [first.expect("response"), second.expect("response")] {
        assert_eq!(response.version(), Version::HTTP_11);
        let (body, _) = read_all(response.body_mut()).await.expect("body");
        assert_eq!(body, b"/blob");
    }
    let mut third = transport.send(blob(blob_url)).await.expect("response");
    assert_eq!(third.version(), Version::HTTP_11);
    read_all(third.body_mut()).await.expect("body");
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        3,
        "one HTTP/2 connection, and two HTTP/1.1 ones for two concurrent blobs"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_fails_unless_the_host_is_insecure() {
    let pki = Pki::new();
    let server = Server::start(
        Some(pki.server_config(false)),
        handler(|_req| async { reply(200, "ok") }),
    )
    .await;
    let port = server.port();

    let strict = builder().build().expect("transport");
    let e = get(&strict, &format!("https://localhost:{port}/"))
        .await
        .expect_err("an unknown CA is refused");
    let text = e.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(text.contains("unknown issuer"), "{text}");
    assert!(text.contains(&format!("localhost:{port}")), "{text}");
    assert_eq!(failure(&e).kind(), FailureKind::Certificate);
    assert!(failure(&e).is_certificate());
    assert!(!e.after_response);

    let insecure = builder()
        .insecure_host(format!("localhost:{port}"))
        .build()
        .expect("transport");
    let mut response = get(&insecure, &format!("https://localhost:{port}/"))
        .await
        .expect("an insecure host is not verified");
    assert_eq!(response.status(), 200);
    let (body, _) = read_all(response.body_mut()).await.expect("body");
    assert_eq!(body, b"ok");

    // Another host (the same server by IP address) is still verified.
    let e = get(&insecure, &format!("https://127.0.0.1:{port}/"))
        .await
        .expect_err("other hosts are still verified");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert_eq!(failure(&e).kind(), FailureKind::Certificate);

    // So is the same host on another port: an insecure entry is that
    // port only (without a port, 443 only), as Docker reads it.
    for other in [format!("localhost:{}", port ^ 1), "localhost".to_owned()] {
        let elsewhere = builder()
            .insecure_host(other.clone())
            .build()
            .expect("transport");
        let e = get(&elsewhere, &format!("https://localhost:{port}/"))
            .await
            .expect_err("another port's insecure entry does not cover this one");
        assert_eq!(failure(&e).kind(), FailureKind::Certificate, "{other}");
    }
    // A wildcard covers subdomains on every port.
    let wildcard = builder()
        .insecure_host("*.registry.test")
        .resolve("a.registry.test", IpAddr::V4(Ipv4Addr::LOCALHOST))
        .build()
        .expect("transport");
    let response = get(&wildcard, &format!("https://a.registry.test:{port}/"))
        .await
        .expect("a subdomain of a wildcard entry is not verified");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_name_mismatch_says_so() {
    let pki = Pki::new();
    let server = Server::start(
        Some(pki.server_config(false)),
        handler(|_req| async { reply(200, "ok") }),
    )
    .await;
    // Trusted CA, but the certificate does not name `other.test`.
    let transport = builder()
        .extra_ca_pem(pki.ca.cert_pem.clone())
        .resolve("other.test", IpAddr::V4(Ipv4Addr::LOCALHOST))
        .build()
        .expect("transport");
    let e = get(
        &transport,
        &format!("https://other.test:{}/", server.port()),
    )
    .await
    .expect_err("name mismatch");
    let text = e.to_string();
    assert!(
        text.contains("certificate") && text.contains("name mismatch"),
        "{text}"
    );
    // The same CA given globally makes localhost work.
    let response = get(&transport, &format!("https://localhost:{}/", server.port()))
        .await
        .expect("trusted through the extra CA");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_client_certificate_from_certs_d_is_presented() {
    let pki = Pki::new();
    let server = Server::start(
        Some(pki.server_config(true)),
        handler(|_req| async { reply(200, "welcome") }),
    )
    .await;
    let authority = format!("localhost:{}", server.port());
    let certs_d = TempDir::new();
    certs_d.write(&authority, "ca.crt", &pki.ca.cert_pem);
    certs_d.write(&authority, "client.cert", &pki.client.cert_pem);
    certs_d.write(&authority, "client.key", &pki.client.key_pem);

    let transport = builder()
        .certs_d_roots([certs_d.path()])
        .build()
        .expect("transport");
    let mut response = get(&transport, &format!("https://{authority}/"))
        .await
        .expect("mTLS works");
    let (body, _) = read_all(response.body_mut()).await.expect("body");
    assert_eq!(body, b"welcome");
    assert_eq!(server.client_certs.load(Ordering::SeqCst), 1);

    // Without the client certificate the server refuses us, and the error
    // says what is missing.
    let anonymous = TempDir::new();
    anonymous.write(&authority, "ca.crt", &pki.ca.cert_pem);
    let transport = builder()
        .certs_d_roots([anonymous.path()])
        .build()
        .expect("transport");
    let result = get(&transport, &format!("https://{authority}/")).await;
    let e = match result {
        Err(e) => e,
        // TLS 1.3: the refusal may come while the body is read.
        Ok(mut response) => read_all(response.body_mut()).await.expect_err("refused"),
    };
    let text = e.to_string();
    assert!(text.contains("client certificate"), "{}", error_text(&e));
    assert!(text.contains("client.cert"), "{text}");
    assert_eq!(failure(&e).kind(), FailureKind::Certificate);

    // A directory without the port (`certs.d/localhost/`) is port 443's,
    // as in Docker: neither its CA nor its certificate reach this port.
    let portless = TempDir::new();
    portless.write("localhost", "ca.crt", &pki.ca.cert_pem);
    portless.write("localhost", "client.cert", &pki.client.cert_pem);
    portless.write("localhost", "client.key", &pki.client.key_pem);
    let transport = builder()
        .certs_d_roots([portless.path()])
        .build()
        .expect("transport");
    let e = get(&transport, &format!("https://{authority}/"))
        .await
        .expect_err("port 443's CA does not cover another port");
    assert!(e.to_string().contains("unknown issuer"), "{e}");
}

#[tokio::test]
async fn a_cert_without_its_key_in_certs_d_is_a_build_error() {
    let certs_d = TempDir::new();
    certs_d.write("reg.example:5000", "client.cert", "not used");
    let e = builder()
        .certs_d_roots([certs_d.path()])
        .build()
        .expect_err("a .cert needs its .key");
    assert!(e.to_string().contains("client.key"), "{e}");
    assert!(e.path().is_some());
}

#[tokio::test]
async fn a_stalled_body_fails_with_the_read_idle_timeout() {
    let server = Server::start(
        None,
        handler(|_req| async {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"first")))
            });
            let stalled = first.chain(futures_util::stream::pending());
            http::Response::builder()
                .header("content-length", "1000")
                .body(BodyExt::boxed(StreamBody::new(stalled)))
                .expect("response")
        }),
    )
    .await;
    let transport = builder()
        .read_idle_timeout(Duration::from_millis(300))
        .build()
        .expect("transport");
    let mut response = get(&transport, &format!("http://127.0.0.1:{}/", server.port()))
        .await
        .expect("the head arrives");
    let body = response.body_mut();
    let first = tokio::time::timeout(STEP, body.next())
        .await
        .expect("in time")
        .expect("a chunk")
        .expect("data");
    assert_eq!(&first[..], b"first");
    let e = tokio::time::timeout(STEP, body.next())
        .await
        .expect("the idle timeout fires, bounded")
        .expect("an item")
        .expect_err("a stalled body is an error");
    assert!(e.after_response);
    assert_eq!(failure(&e).kind(), FailureKind::ReadIdleTimeout);
    assert!(failure(&e).is_timeout());
    assert!(e.to_string().contains("stalled"), "{e}");
    assert!(body.next().await.is_none(), "the body ends after the error");
}

#[tokio::test]
async fn a_missing_response_head_fails_with_the_response_timeout() {
    let server = Server::start(
        None,
        handler(|_req| async {
            std::future::pending::<()>().await;
            reply(200, "never")
        }),
    )
    .await;
    let transport = builder()
        .response_timeout(Duration::from_millis(300))
        .build()
        .expect("transport");
    let e = get(&transport, &format!("http://127.0.0.1:{}/", server.port()))
        .await
        .expect_err("no head");
    assert_eq!(failure(&e).kind(), FailureKind::ResponseTimeout);
}

#[tokio::test]
async fn a_refused_connection_names_the_host() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let transport = builder().build().expect("transport");
    let e = get(&transport, &format!("http://127.0.0.1:{port}/"))
        .await
        .expect_err("nothing listens");
    assert_eq!(failure(&e).kind(), FailureKind::Connect);
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(!e.after_response);
}

#[tokio::test]
async fn a_streamed_upload_arrives_intact() {
    let server = Server::start(
        None,
        handler(|req| async move {
            let length = req
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            let body = req.into_body().collect().await.expect("upload").to_bytes();
            reply(200, format!("{length} {}", sha256_hex(&body)))
        }),
    )
    .await;
    let data = Bytes::from(pattern(3 * MIB));
    let expected = format!("{} {}", 3 * MIB, sha256_hex(&data));
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..data.len())
        .step_by(64 * 1024)
        .map(|start| Ok(data.slice(start..(start + 64 * 1024).min(data.len()))))
        .collect();
    let body = OutgoingBody::Stream {
        stream: futures_util::stream::iter(chunks).boxed(),
        len: data.len() as u64,
    };
    let transport = builder().build().expect("transport");
    let mut response = send(
        &transport,
        "PUT",
        &format!("http://127.0.0.1:{}/upload", server.port()),
        body,
    )
    .await
    .expect("response");
    let (answer, _) = read_all(response.body_mut()).await.expect("body");
    assert_eq!(String::from_utf8(answer).expect("utf-8"), expected);
}

#[tokio::test]
async fn an_upload_shorter_than_declared_is_refused() {
    let server = Server::start(
        None,
        handler(|req| async move {
            let _ = req.into_body().collect().await;
            reply(200, "")
        }),
    )
    .await;
    let body = OutgoingBody::Stream {
        stream: futures_util::stream::iter([Ok(Bytes::from_static(b"short"))]).boxed(),
        len: 100,
    };
    let transport = builder().build().expect("transport");
    let e = send(
        &transport,
        "PUT",
        &format!("http://127.0.0.1:{}/upload", server.port()),
        body,
    )
    .await
    .expect_err("5 bytes are not 100");
    assert!(
        error_text(&e).contains("short of its declared length"),
        "{}",
        error_text(&e)
    );
}

/// A CONNECT proxy that records each target and tunnels every one of them
/// to `upstream` (a server of the test), nowhere else.
async fn connect_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let mut words = head.split_whitespace();
                if words.next() != Some("CONNECT") {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                    return;
                }
                seen.lock()
                    .expect("lock")
                    .push(words.next().unwrap_or_default().to_owned());
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (addr, targets)
}

#[tokio::test]
async fn https_goes_through_a_connect_proxy_unless_no_proxy_says_otherwise() {
    let pki = Pki::new();
    let server = Server::start(
        Some(pki.server_config(false)),
        handler(|_req| async { reply(200, "through") }),
    )
    .await;
    let (proxy, targets) = connect_proxy(server.addr).await;
    // `registry.test` is never resolved through the proxy (the proxy does
    // that); directly, it is pinned to 127.0.0.1, so no DNS is asked.
    let authority = format!("registry.test:{}", server.port());
    let certs_d = TempDir::new();
    certs_d.write(&authority, "ca.crt", &pki.ca.cert_pem);
    let proxy_uri: http::Uri = format!("http://{proxy}").parse().expect("uri");

    let proxied = builder()
        .certs_d_roots([certs_d.path()])
        .proxy(ProxyConfig::new().with_https(proxy_uri.clone()))
        .build()
        .expect("transport");
    let mut response = get(&proxied, &format!("https://{authority}/v2/"))
        .await
        .expect("through the tunnel");
    let (body, _) = read_all(response.body_mut()).await.expect("body");
    assert_eq!(body, b"through");
    assert_eq!(*targets.lock().expect("lock"), [authority.as_str()]);

    let bypassing = builder()
        .certs_d_roots([certs_d.path()])
        .resolve("registry.test", IpAddr::V4(Ipv4Addr::LOCALHOST))
        .proxy(
            ProxyConfig::new()
                .with_https(proxy_uri)
                .with_no_proxy(".test"),
        )
        .build()
        .expect("transport");
    let response = get(&bypassing, &format!("https://{authority}/v2/"))
        .await
        .expect("direct");
    assert_eq!(response.status(), 200);
    assert_eq!(
        targets.lock().expect("lock").len(),
        1,
        "NO_PROXY bypassed the proxy"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn plain_http_goes_to_the_proxy_in_absolute_form() {
    // The "proxy" is a server that answers with the request target it got.
    let proxy = Server::start(
        None,
        handler(|req| async move {
            let auth = req
                .headers()
                .get("proxy-authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            reply(200, format!("{} {auth}", req.uri()))
        }),
    )
    .await;
    let proxy_uri: http::Uri = format!("http://bob:secret@127.0.0.1:{}", proxy.port())
        .parse()
        .expect("uri");
    let transport = builder()
        .proxy(ProxyConfig::new().with_http(proxy_uri))
        .build()
        .expect("transport");
    let mut response = get(&transport, "http://registry.test:5000/v2/")
        .await
        .expect("via the proxy");
    let (body, _) = read_all(response.body_mut()).await.expect("body");
    // base64("bob:secret")
    assert_eq!(
        String::from_utf8(body).expect("utf-8"),
        "http://registry.test:5000/v2/ Basic Ym9iOnNlY3JldA=="
    );
}

#[tokio::test]
async fn a_slow_upload_that_keeps_moving_outlasts_the_response_timeout() {
    let server = Server::start(
        None,
        handler(|req| async move {
            let body = req.into_body().collect().await.expect("upload").to_bytes();
            reply(201, sha256_hex(&body))
        }),
    )
    .await;
    // Five chunks 150 ms apart: longer in all than the response timeout,
    // which only starts once the body is sent.
    let chunks = futures_util::stream::iter(0..5u8).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok::<_, std::io::Error>(Bytes::from(vec![i; 1000]))
    });
    let expected: Vec<u8> = (0..5u8).flat_map(|i| vec![i; 1000]).collect();
    let transport = builder()
        .response_timeout(Duration::from_millis(300))
        .read_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("transport");
    let body = OutgoingBody::Stream {
        stream: chunks.boxed(),
        len: 5000,
    };
    let url = format!("http://127.0.0.1:{}/slow", server.port());
    let mut response = send(&transport, "PUT", &url, body).await.expect("response");
    assert_eq!(response.status(), 201);
    let (answer, _) = read_all(response.body_mut()).await.expect("body");
    assert_eq!(answer, sha256_hex(&expected).as_bytes());
}

#[tokio::test]
async fn an_upload_the_server_stops_taking_fails_as_stalled() {
    // The server takes the head, never reads the body, never answers.
    let server = Server::start(
        None,
        handler(|_req| async {
            std::future::pending::<()>().await;
            reply(200, "never")
        }),
    )
    .await;
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    // At most 1 GiB, produced only as fast as it is taken.
    let count = 16 * 1024;
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = taken.clone();
    let stream = futures_util::stream::repeat(chunk)
        .take(count)
        .map(move |c| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(c)
        });
    let transport = builder()
        .read_idle_timeout(Duration::from_millis(300))
        .build()
        .expect("transport");
    let body = OutgoingBody::Stream {
        stream: stream.boxed(),
        len: (count * 64 * 1024) as u64,
    };
    let url = format!("http://127.0.0.1:{}/stuck", server.port());
    let e = send(&transport, "PUT", &url, body)
        .await
        .expect_err("the upload stalls");
    let taken = taken.load(Ordering::SeqCst);
    assert!(
        taken < count,
        "the upload stopped early ({taken} chunks taken)"
    );
    assert_eq!(failure(&e).kind(), FailureKind::UploadStalled, "{e}");
    assert!(e.to_string().contains("stalled"), "{e}");
}
