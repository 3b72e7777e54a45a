// Bindings from one build and a library from another must be refused at load with a clear error,
// not run into undefined behaviour. tests/kotlin/run.sh compiles a copy of the generated bindings
// into the package app.tessera.stale with one API checksum changed, as bindings generated from an
// older library would be; this loads it over the library of this build.
//
// UniFFI 0.32's Kotlin runs the checks of the FFI's own namespace in `uniffiEnsureInitialized()`
// (dependent namespaces are checked from it), not on first call: a shell calls it once at start.
fun checksumTests() {
    check("bindings from another build are refused with a clear error") {
        val refused = assertThrows<Throwable> { app.tessera.stale.uniffiEnsureInitialized() }
        val chain = generateSequence(refused) { it.cause }.toList()
        assertTrue(
            chain.any { it.message?.contains("UniFFI API checksum mismatch") == true },
            "the cause says so: $chain",
        )
    }
    check("bindings of this build pass the same checks") {
        app.tessera.uniffiEnsureInitialized()
        assertTrue(app.tessera.tesseraVersion().isNotEmpty(), "a version")
    }
}
