// The binding tests' small vocabulary: `check` registers a named JUnit test (run in order by
// BindingsTest), and a few assertions whose messages say what was expected.

import org.junit.jupiter.api.DynamicTest

internal val registered = mutableListOf<DynamicTest>()

fun check(name: String, body: () -> Unit) {
    registered += DynamicTest.dynamicTest(name) { body() }
}

inline fun <reified T : Throwable> assertThrows(body: () -> Unit): T {
    try {
        body()
    } catch (t: Throwable) {
        if (t is T) return t
        throw AssertionError("expected ${T::class.simpleName}, got $t", t)
    }
    throw AssertionError("expected ${T::class.simpleName}, nothing was thrown")
}

fun assertEq(actual: Any?, expected: Any?) {
    if (actual != expected) throw AssertionError("expected <$expected>, got <$actual>")
}

fun assertTrue(cond: Boolean, what: String) {
    if (!cond) throw AssertionError(what)
}
