// The bindings reuse one call status per thread and nesting level (scripts/kotlin-callstatus.py,
// ADR 0018). These are the ways reuse could go wrong: a callback's own failed call into Rust
// leaking into the call that made the callback, and threads sharing a status.

import app.tessera.HttpClient
import app.tessera.HttpUrlConnectionClient
import app.tessera.Tessera
import app.tessera.analyseCardNumber
import app.tessera.core.HttpRequest
import app.tessera.core.HttpResponse
import app.tessera.domain.BarcodeException
import app.tessera.domain.EventKind
import app.tessera.domain.Symbology
import app.tessera.renderBarcode
import java.io.File
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

fun callStatusTests(serverUrl: String) {
    check("a callback's failed call into Rust does not leak into the call that made the callback") {
        val t = Tessera.open(File(dir, "nested.db").path)
        val real = HttpUrlConnectionClient()
        var inner = 0
        t.setHttpClient(object : HttpClient {
            override fun send(request: HttpRequest): HttpResponse {
                // Inside Rust's call to send(): a call into Rust that fails, caught here.
                assertThrows<BarcodeException.Empty> { analyseCardNumber("  ") }
                inner++
                return real.send(request)
            }
        })
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Ada", device)
        t.recordEvent(EventKind.APP_OPENED, null, emptyMap())
        // The outer calls succeed although the last call on this thread before they returned failed.
        assertEq(t.sync().pushed, 1uL)
        assertTrue(inner >= 2, "the callback ran: $inner")
        t.shutdown()
    }

    check("threads do not share a call status: failures and successes interleaved on 8 threads") {
        val pool = Executors.newFixedThreadPool(8)
        val wrong = AtomicInteger()
        repeat(8) { n ->
            pool.execute {
                repeat(2_000) { i ->
                    if ((i + n) % 2 == 0) {
                        val ok = runCatching { renderBarcode(Symbology.EAN13, "400638133393") }
                        if (ok.getOrNull()?.encodedValue != "4006381333931") wrong.incrementAndGet()
                    } else {
                        val e = runCatching { renderBarcode(Symbology.EAN8, "ABCDEFGH") }.exceptionOrNull()
                        if (e !is BarcodeException.NotDigits) wrong.incrementAndGet()
                    }
                }
            }
        }
        pool.shutdown()
        assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS), "finished")
        assertEq(wrong.get(), 0)
    }
}
