//! Checks a shell's build can run against itself.

/// Panics with `message`. Exported so that a shell's smoke test can prove its build turns a Rust
/// panic into an exception (the library must be built with `panic = "unwind"`; with `abort` the
/// app dies instead).
#[allow(clippy::panic)]
pub fn panic_for_test(message: &str) -> ! {
    panic!("deliberate panic for a test: {message}")
}
