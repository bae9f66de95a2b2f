//! `parse_challenges` allocates only the `Vec` it returns: one allocation for
//! a typical Docker Hub challenge, none with a reused buffer, and none per
//! value when nothing is escaped.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;

use berth_auth::{Challenge, parse_challenges, parse_challenges_into};

/// Counts the allocations made by the current thread while counting is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds `GlobalAlloc`'s contract; the bookkeeping only touches
// const-initialised thread-locals (which never allocate) and never panics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same layout the caller gave us, per `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` was allocated by `System` with `layout` (we forward all
        // allocations to it), as `GlobalAlloc::realloc` requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations it made on
/// this thread.
fn count<R>(f: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let r = f();
    COUNTING.with(|on| on.set(false));
    (r, ALLOCATIONS.with(Cell::get))
}

const DOCKER_HUB: &str = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#;

#[test]
fn docker_hub_challenge_allocates_only_the_vec() {
    let (result, allocations) = count(|| parse_challenges(DOCKER_HUB));
    let challenges = result.expect("Docker Hub's challenge parses");
    assert_eq!(
        allocations, 1,
        "parse_challenges must allocate only its Vec"
    );

    // Reading the values allocates nothing either: they are borrowed.
    let ((realm, service, scope), allocations) = count(|| {
        let c = &challenges[0];
        (c.param("realm"), c.param("service"), c.param("scope"))
    });
    assert_eq!(allocations, 0, "unescaped values must be borrowed");
    assert!(matches!(
        realm,
        Some(Cow::Borrowed("https://auth.docker.io/token"))
    ));
    assert!(matches!(service, Some(Cow::Borrowed("registry.docker.io"))));
    assert!(matches!(
        scope,
        Some(Cow::Borrowed("repository:library/ubuntu:pull"))
    ));
}

#[test]
fn several_challenges_still_one_allocation() {
    let header = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/i:pull", Basic realm="GitHub Package Registry""#;
    let (result, allocations) = count(|| parse_challenges(header));
    assert_eq!(result.expect("parses").len(), 2);
    assert_eq!(allocations, 1);
}

#[test]
fn reused_buffer_allocates_nothing() {
    let mut buffer: Vec<Challenge<'static>> = Vec::with_capacity(4);
    let (result, allocations) = count(|| parse_challenges_into(DOCKER_HUB, &mut buffer));
    assert_eq!(result, Ok(1));
    assert_eq!(allocations, 0);
}

#[test]
fn escaped_value_allocates_only_when_read() {
    let header = r#"Bearer realm="https://r.example/token",error_description="say \"hi\"""#;
    let (result, allocations) = count(|| parse_challenges(header));
    let challenges = result.expect("parses");
    assert_eq!(
        allocations, 1,
        "escapes are undone lazily, not while parsing"
    );
    let (description, allocations) = count(|| challenges[0].param("error_description"));
    assert_eq!(description.as_deref(), Some("say \"hi\""));
    assert_eq!(
        allocations, 1,
        "an escaped value is unescaped into one String"
    );
}
