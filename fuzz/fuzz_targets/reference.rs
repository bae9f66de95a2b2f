//! Parse, normalise and round-trip arbitrary input: the parsers must never
//! panic, and every form they print must parse back to the same reference.
//!
//! The checks live in `crates/berth-reference/tests/common/fuzz_checks.rs`,
//! shared with the crate's regression test, which replays every input found
//! here (copy it to `crates/berth-reference/tests/data/fuzz-regressions/`).
#![no_main]

#[path = "../../crates/berth-reference/tests/common/fuzz_checks.rs"]
mod fuzz_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_checks::check_reference(data));
