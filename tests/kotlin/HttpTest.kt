// The HTTP client the Android package ships (android/tessera/src/main/java/…/HttpUrlConnectionClient.kt),
// tested on the JVM: against the real server through the core, and against a raw socket for what a
// real server never sends (a redirect, a gzip bomb, a body cut short, silence).

import app.tessera.HttpException
import app.tessera.HttpUrlConnectionClient
import app.tessera.SyncException
import app.tessera.Tessera
import app.tessera.core.HttpMethod
import app.tessera.core.HttpRequest
import java.io.ByteArrayOutputStream
import java.io.File
import java.net.ServerSocket
import java.util.zip.GZIPOutputStream
import kotlin.concurrent.thread

/** A member's phone: the core on the database at `path`, talking through the shipped client. */
fun phone(path: String): Tessera = Tessera.open(path).also { it.setHttpClient(HttpUrlConnectionClient()) }

/** A member enrolled on a fresh phone database `file` (under the tests' directory), synced once. */
fun enrolled(serverUrl: String, file: String, name: String = "Chloé Martin"): Tessera =
    phone(File(dir, file).path).also {
        it.setSyncSettings(fast)
        it.enrol(serverUrl, name, device)
        it.sync()
    }

/** Answers one connection with `answer` (after reading the request head), then closes. */
fun oneShot(answer: ByteArray, delayMs: Long = 0): String {
    val server = ServerSocket(0)
    thread(isDaemon = true) {
        server.use { s ->
            s.accept().use { c ->
                val input = c.getInputStream()
                var seen = 0
                while (seen < 4) {
                    val b = input.read()
                    if (b < 0) break
                    seen = if ((b == '\r'.code && (seen == 0 || seen == 2)) || (b == '\n'.code && (seen == 1 || seen == 3))) seen + 1 else 0
                }
                if (delayMs > 0) Thread.sleep(delayMs)
                c.getOutputStream().write(answer)
                c.getOutputStream().flush()
            }
        }
    }
    return "http://127.0.0.1:${server.localPort}"
}

fun head(status: String, vararg headers: String, length: Int) =
    ("HTTP/1.1 $status\r\n" + headers.joinToString("") { "$it\r\n" } + "content-length: $length\r\nconnection: close\r\n\r\n").toByteArray()

fun gzip(bytes: ByteArray): ByteArray = ByteArrayOutputStream().also { out -> GZIPOutputStream(out).use { it.write(bytes) } }.toByteArray()

fun get(url: String, cap: Long = 1_000_000, timeoutMs: Long = 2_000) =
    HttpRequest(HttpMethod.GET, "$url/v1/catalog", emptyList(), null, 500uL, timeoutMs.toULong(), cap.toULong())

fun httpTests(serverUrl: String) {
    check("network calls need the app's HTTP client; the shipped one enrols and syncs") {
        val t = Tessera.open(File(dir, "http.db").path)
        t.setSyncSettings(fast)
        assertThrows<SyncException.NoHttpClient> { t.enrol(serverUrl, "Ada", device) }
        t.setHttpClient(HttpUrlConnectionClient())
        t.enrol(serverUrl, "Ada", device)
        val report = t.sync()
        assertTrue(report.catalogChanges > 300uL, "the catalog came through")
        t.shutdown()
    }

    check("the shipped client: no redirect followed, gzip inflated, the cap and the deadline kept") {
        val client = HttpUrlConnectionClient()
        val moved = client.send(get(oneShot(head("302 Found", "location: http://127.0.0.1:9/", length = 0))))
        assertEq(moved.status, 302.toUShort())
        assertTrue(moved.headers.any { it.name.equals("location", true) }, "the redirect is handed back")

        val text = "{\"ok\":true}".repeat(1000).toByteArray()
        val packed = gzip(text)
        val inflated = client.send(get(oneShot(head("200 OK", "content-encoding: gzip", length = packed.size) + packed)))
        assertTrue(inflated.body.contentEquals(text), "gzip inflated")

        val bomb = gzip(ByteArray(50_000_000))
        assertThrows<HttpException.TooLarge> {
            client.send(get(oneShot(head("200 OK", "content-encoding: gzip", length = bomb.size) + bomb), cap = 1_000_000))
        }
        assertThrows<HttpException.Interrupted> {
            client.send(get(oneShot(head("200 OK", length = 5000) + "short".toByteArray())))
        }
        assertThrows<HttpException.Timeout> {
            client.send(get(oneShot(head("200 OK", length = 2), delayMs = 3_000), timeoutMs = 300))
        }
        val port = ServerSocket(0).use { it.localPort }
        assertThrows<HttpException.Offline> { client.send(get("http://127.0.0.1:$port")) }
    }
}
