//! Shared helpers: start a registry on either storage, talk to it with
//! berth's own protocol ops over berth-hyper, or with raw requests.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_hyper::{HyperTransport, ResponseBody, TokioRuntime};
use berth_manifest::{Descriptor, Digester, ImageManifest, Manifest, MediaType};
use berth_protocol::auth::{Credentials, Secret};
use berth_protocol::driver::{BlobSource, OutgoingBody, Transport, drive};
use berth_protocol::endpoint::EndpointPolicy;
use berth_protocol::ops::{
    ManifestAddress, ManifestRef, Ping, PushBlob, PushOutcome, PutManifest, UploadPolicy,
};
use berth_protocol::{Anonymous, CredentialProvider, Operation, Session, StaticCredentials};
use berth_reference::Digest;
use berth_registry::{Auth, Registry, RegistryBuilder, RunningRegistry, Storage};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};

/// Every step of a test finishes within this.
pub const STEP: Duration = Duration::from_secs(60);

/// Which storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Disk,
}

pub const KINDS: [Kind; 2] = [Kind::Memory, Kind::Disk];

/// A running registry and, for disk storage, its directory.
pub struct Fixture {
    pub registry: RunningRegistry,
    pub dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub async fn start(kind: Kind) -> Fixture {
        Fixture::start_with(kind, Auth::None).await
    }

    pub async fn start_with(kind: Kind, auth: Auth) -> Fixture {
        Fixture::start_built(kind, |b| b.auth(auth)).await
    }

    /// A registry with the builder's settings besides its storage.
    pub async fn start_built(
        kind: Kind,
        settings: impl FnOnce(RegistryBuilder) -> RegistryBuilder,
    ) -> Fixture {
        let dir = match kind {
            Kind::Memory => None,
            Kind::Disk => Some(tempfile::tempdir().expect("tempdir")),
        };
        let storage = match &dir {
            None => Storage::memory(),
            Some(d) => Storage::disk(d.path().join("store")),
        };
        let registry = settings(Registry::builder().storage(storage))
            .bind("127.0.0.1:0")
            .start()
            .await
            .expect("registry starts");
        Fixture { registry, dir }
    }

    pub fn host(&self) -> String {
        self.registry.host()
    }

    /// Files under the store's `blobs/` (disk only).
    pub fn blob_files(&self) -> Vec<String> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let root = dir.path().join("store/blobs");
        for alg in std::fs::read_dir(&root).expect("blobs dir") {
            let alg = alg.expect("entry");
            for f in std::fs::read_dir(alg.path()).expect("alg dir") {
                out.push(format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    f.expect("entry").file_name().to_string_lossy()
                ));
            }
        }
        out.sort();
        out
    }

    /// Files under the store's `tmp/` (disk only).
    pub fn tmp_files(&self) -> usize {
        self.dir.as_ref().map_or(0, |d| {
            std::fs::read_dir(d.path().join("store/tmp"))
                .expect("tmp dir")
                .count()
        })
    }
}

/// A raw answer.
#[derive(Debug)]
pub struct Raw {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the body ended with an error (cut).
    pub body_failed: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The first error code of a spec error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A client: berth-hyper's transport with a berth-protocol session.
pub struct Client {
    pub transport: HyperTransport,
    pub session: Mutex<Session>,
    pub domain: String,
}

impl Client {
    pub async fn new(host: &str) -> Client {
        Client::with_credentials(host, Arc::new(Anonymous)).await
    }

    pub async fn basic(host: &str, user: &str, password: &str) -> Client {
        let creds = StaticCredentials::new().with(
            host,
            Credentials::Basic {
                username: user.into(),
                password: Secret::new(password),
            },
        );
        Client::with_credentials(host, Arc::new(creds)).await
    }

    async fn with_credentials(host: &str, creds: Arc<dyn CredentialProvider>) -> Client {
        let transport = HyperTransport::builder().build().expect("transport");
        let session = Session::new(creds, EndpointPolicy::new(), 7);
        let mut ping = Ping::new(&session, host);
        let session = Mutex::new(session);
        // The ping picks the scheme (plain http on loopback); a 401 is fine.
        let _ = tokio::time::timeout(
            STEP,
            drive(&mut ping, &session, &transport, &TokioRuntime, None),
        )
        .await
        .expect("ping in time");
        Client {
            transport,
            session,
            domain: host.to_owned(),
        }
    }

    /// Runs one operation to its end.
    pub async fn run<O: Operation>(
        &self,
        op: &mut O,
        blobs: Option<&dyn BlobSource>,
    ) -> Result<(O::Output, Option<ResponseBody>), berth_protocol::Error> {
        tokio::time::timeout(
            STEP,
            drive(op, &self.session, &self.transport, &TokioRuntime, blobs),
        )
        .await
        .expect("operation in time")
    }

    pub async fn push_blob(&self, repo: &str, bytes: &[u8], policy: UploadPolicy) -> Digest {
        let digest = Digester::sha256_of(bytes);
        let source = Bytes::copy_from_slice(bytes);
        let mut op = PushBlob::new(&self.domain, repo, &digest, bytes.len() as u64, policy);
        let (outcome, _) = self.run(&mut op, Some(&source)).await.expect("push blob");
        assert_eq!(outcome, PushOutcome::Uploaded);
        digest
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: ManifestRef,
        manifest: &Manifest,
    ) -> Result<Digest, berth_protocol::Error> {
        let mut op = PutManifest::new(
            ManifestAddress {
                domain: self.domain.clone(),
                name: repo.to_owned(),
                reference,
            },
            manifest,
        );
        self.run(&mut op, None).await.map(|(d, _)| d)
    }

    /// Pushes a small image (config + layers) and tags it; its manifest.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: u8) -> Manifest {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#);
        let layer = vec![seed; 1000 + usize::from(seed)];
        let config_digest = self
            .push_blob(repo, config.as_bytes(), UploadPolicy::default())
            .await;
        let layer_digest = self.push_blob(repo, &layer, UploadPolicy::default()).await;
        let m = ImageManifest::new(
            Descriptor::new(MediaType::OCI_CONFIG, config_digest, config.len() as u64),
            vec![Descriptor::new(
                MediaType::OCI_LAYER_TAR,
                layer_digest,
                layer.len() as u64,
            )],
        );
        let raw = m.to_raw().expect("manifest");
        let manifest =
            Manifest::from_bytes(&raw.bytes, Some(MediaType::OCI_MANIFEST.as_str())).expect("ok");
        self.put_manifest(repo, ManifestRef::Tag(tag.to_owned()), &manifest)
            .await
            .expect("put manifest");
        manifest
    }

    /// A raw request; the body read whole (noting a failure).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Raw {
        let body: Bytes = body.into();
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.domain, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !body.is_empty() {
            req = req.header("content-length", body.len().to_string());
        }
        let req = req
            .body(if body.is_empty() {
                OutgoingBody::Empty
            } else {
                OutgoingBody::Bytes(body)
            })
            .expect("request");
        let response = tokio::time::timeout(STEP, self.transport.send(req))
            .await
            .expect("in time")
            .expect("response");
        let (parts, mut stream) = response.into_parts();
        let mut buf = Vec::new();
        let mut body_failed = false;
        while let Some(chunk) = tokio::time::timeout(STEP, stream.next())
            .await
            .expect("body in time")
        {
            match chunk {
                Ok(c) => buf.extend_from_slice(&c),
                Err(_) => {
                    body_failed = true;
                    break;
                }
            }
        }
        Raw {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(buf),
            body_failed,
        }
    }
}

/// Reads a whole response body.
pub async fn read_all(body: ResponseBody) -> Result<Vec<u8>, berth_protocol::TransportError> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(chunk) = tokio::time::timeout(STEP, body.next())
        .await
        .expect("body in time")
    {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}
