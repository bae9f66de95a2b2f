//! Parse arbitrary credentials files: never a panic, and a file that parses
//! writes back to one that parses to the same configuration.
//!
//! The checks live in `crates/berth-auth/tests/common/fuzz_checks.rs`, shared
//! with the crate's regression test, which replays every crash found here
//! (copy it to `crates/berth-auth/tests/data/fuzz/docker_config/`).
#![no_main]

#[allow(dead_code)] // each target uses one of the shared checks
#[path = "../../crates/berth-auth/tests/common/fuzz_checks.rs"]
mod fuzz_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_checks::check_docker_config(data));
