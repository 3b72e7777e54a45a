//! Checks a shell's build can run on itself.

/// The library's version, for the shell's About screen and support reports.
#[uniffi::export]
pub fn tessera_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Panics inside the core. A shell's smoke test calls it to prove its build raises an exception
/// (UniFFI's internal error) instead of aborting the app.
#[uniffi::export]
pub fn verify_panic_handling(message: String) {
    tessera_core::diagnostics::panic_for_test(&message)
}
