//! The borrowed parse allocates nothing, measured with a counting global
//! allocator. Counts are kept per thread, so tests running in parallel do
//! not see each other's allocations.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use berth_reference::{Digest, DigestRef, Reference, ReferenceRef};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (ALLOCATIONS.with(Cell::get) - before, r)
}

const INPUTS: &[&str] = &[
    "ubuntu",
    "docker.io/library/ubuntu:24.04",
    "ghcr.io/org/team/app:v1.2.3@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    "localhost:5000/a/b/c",
    "[::1]:5000/x@sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "Invalid/Name",
    "bad@sha256:short",
];

#[test]
fn borrowed_parse_allocates_nothing() {
    for input in INPUTS {
        let (n, r) = allocations_during(|| {
            ReferenceRef::parse(input).map(|r| (r.domain(), r.path(), r.tag()))
        });
        assert_eq!(n, 0, "{input}: {n} allocations ({r:?})");
        let (n, _) = allocations_during(|| {
            DigestRef::parse_any_algorithm(input.rsplit('@').next().unwrap_or(""))
        });
        assert_eq!(n, 0, "{input}: digest parse allocated");
    }
}

#[test]
fn owned_parse_allocates_once() {
    let (n, r) = allocations_during(|| Reference::parse_normalized("nginx:1.25"));
    assert!(r.is_ok());
    assert_eq!(n, 1, "parse_normalized should allocate only its text");
    let (n, d) = allocations_during(|| {
        Digest::parse("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    });
    assert!(d.is_ok());
    assert_eq!(n, 0, "a sha256 digest is stored inline");
}
