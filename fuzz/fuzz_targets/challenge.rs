//! Parse arbitrary `WWW-Authenticate` values: the parser must never panic,
//! errors must point inside the input, and whatever parses must format back
//! to text that parses to the same challenges.
//!
//! The checks live in `crates/berth-auth/tests/common/fuzz_checks.rs`, shared
//! with the crate's regression test, which replays every crash found here
//! (copy it to `crates/berth-auth/tests/data/fuzz/challenge/`).
#![no_main]

#[allow(dead_code)] // each target uses one of the shared checks
#[path = "../../crates/berth-auth/tests/common/fuzz_checks.rs"]
mod fuzz_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_checks::check_challenge(data));
