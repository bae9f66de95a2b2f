//! Fetch by digest falls back between the registry's stores, against the
//! real registry: a manifest descriptor is read from the manifest store
//! (then the blob store), anything else from the blob store; resolving a
//! digest the manifest store lacks finds it in the blob store.

use berth::Client;
use berth::manifest::{Descriptor, MediaType};
use berth::protocol::ops::{OCTET_STREAM, Store};
use berth::reference::Reference;
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_found_in_whichever_store_holds_it() {
    let registry = Registry::start(Auth::None).expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let top = write_layout(
        tmp.path(),
        "v1",
        &[TestImage::new("linux/amd64", &[2000], 9)],
    )
    .expect("layout");
    let c = Client::builder().build(HyperTransport::builder().build().expect("transport"));
    c.push(tmp.path(), &r(&format!("{host}/stores/img:v1")))
        .await
        .expect("push");
    let read = |d: &berth::reference::Digest| {
        std::fs::read(tmp.path().join("blobs/sha256").join(d.encoded())).expect("blob")
    };
    let manifest_bytes = read(&top.digest);
    let fetched = c
        .manifest(&r(&format!("{host}/stores/img@{}", top.digest)))
        .await
        .expect("manifest");
    let config = fetched.manifest.config().expect("config").clone();
    let config_bytes = read(&config.digest);

    // A descriptor of manifest type streams from the manifest store.
    let mut got = Vec::new();
    c.fetch_blob(&host, "stores/img", &top, |chunk| {
        got.extend_from_slice(chunk);
        Ok(())
    })
    .await
    .expect("manifest through fetch_blob");
    assert_eq!(got, manifest_bytes);

    // A manifest descriptor whose size is wrong is refused.
    let mut lying = top.clone();
    lying.size += 1;
    let err = c
        .fetch_blob(&host, "stores/img", &lying, |_| Ok(()))
        .await
        .expect_err("wrong size");
    assert_eq!(err.kind(), berth::ErrorKind::Integrity, "{err}");

    // Resolving a config's digest finds it in the blob store.
    let by_config = r(&format!("{host}/stores/img@{}", config.digest));
    let d = c.resolve(&by_config).await.expect("resolve");
    assert_eq!(d.digest, config.digest);
    assert_eq!(d.size, config.size);
    assert_eq!(d.media_type.as_str(), OCTET_STREAM);

    // Content of unknown type, asked for as a manifest first.
    let content = c
        .content(&by_config, &[Store::Manifests, Store::Blobs])
        .await
        .expect("content");
    assert_eq!(&content.bytes[..], &config_bytes[..]);
    assert_eq!(content.store, Store::Blobs);
    let content = c
        .content(
            &r(&format!("{host}/stores/img@{}", top.digest)),
            &[Store::Manifests, Store::Blobs],
        )
        .await
        .expect("content");
    assert_eq!(&content.bytes[..], &manifest_bytes[..]);
    assert_eq!(content.store, Store::Manifests);

    // A config-typed descriptor goes to the blob store directly.
    let mut got = Vec::new();
    c.fetch_blob(
        &host,
        "stores/img",
        &Descriptor::new(MediaType::OCI_CONFIG, config.digest.clone(), config.size),
        |chunk| {
            got.extend_from_slice(chunk);
            Ok(())
        },
    )
    .await
    .expect("config");
    assert_eq!(got, config_bytes);
}
