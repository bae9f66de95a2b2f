//! Replays every input the fuzzers found (`tests/data/fuzz/<target>/`)
//! through the fuzz targets' checks.

mod common {
    pub(crate) mod fuzz_checks;
}

use std::path::Path;

use common::fuzz_checks::{check_challenge, check_docker_config};

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data);
        n += 1;
    }
    n
}

#[test]
fn challenge_inputs() {
    let n = replay("challenge", check_challenge);
    println!("replayed {n} challenge inputs");
    assert!(n > 0);
}

#[test]
fn docker_config_inputs() {
    let n = replay("docker_config", check_docker_config);
    println!("replayed {n} docker_config inputs");
    assert!(n > 0);
}
