//! The client scenarios of `suite/` against berth's own registry
//! (berth-registry), started in-process on 127.0.0.1:0, on both storages.

mod suite;

use berth_registry::{Auth, Registry, RunningRegistry, Storage};

async fn memory() -> RunningRegistry {
    Registry::builder()
        .storage(Storage::memory())
        .bind("127.0.0.1:0")
        .start()
        .await
        .expect("registry")
}

async fn disk(dir: &std::path::Path) -> RunningRegistry {
    Registry::builder()
        .storage(Storage::disk(dir))
        .bind("127.0.0.1:0")
        .start()
        .await
        .expect("registry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_round_trips_byte_for_byte() {
    let r = memory().await;
    suite::push_then_pull_round_trips_byte_for_byte(&r.host()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let r = disk(tmp.path()).await;
    suite::push_then_pull_round_trips_byte_for_byte(&r.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_platform_indexes_one_platform_or_all() {
    let r = memory().await;
    suite::multi_platform_indexes_one_platform_or_all(&r.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_things_are_typed_not_found_errors() {
    let r = memory().await;
    suite::missing_things_are_typed_not_found_errors(&r.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_delete_list_and_catalog() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = disk(tmp.path()).await;
    suite::tag_delete_list_and_catalog(&r.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_right_wrong_and_no_credentials() {
    let r = Registry::builder()
        .auth(Auth::basic("alice", "s3cret"))
        .bind("127.0.0.1:0")
        .start()
        .await
        .expect("registry");
    suite::basic_auth_with_right_wrong_and_no_credentials(&r.host(), "alice", "s3cret").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mounts_within_a_registry_and_streams_between_two() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = disk(tmp.path()).await;
    let b = memory().await;
    suite::copy_mounts_within_a_registry_and_streams_between_two(&a.host(), &b.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_pulls_into_one_layout() {
    let r = memory().await;
    suite::thirty_two_concurrent_pulls_into_one_layout(&r.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_conf_mirrors_first_then_the_registry_and_blocked_prefixes() {
    let (primary, mirror) = (memory().await, memory().await);
    suite::registries_conf_mirrors_first_then_the_registry_and_blocked_prefixes(
        &primary.host(),
        &mirror.host(),
    )
    .await;
}
