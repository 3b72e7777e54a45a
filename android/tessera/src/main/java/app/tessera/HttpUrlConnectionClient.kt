package app.tessera

import app.tessera.core.HttpHeader
import app.tessera.core.HttpRequest
import app.tessera.core.HttpResponse
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.HttpURLConnection
import java.net.SocketTimeoutException
import java.net.URL
import java.util.zip.GZIPInputStream

/**
 * The core's [HttpClient] over `java.net.HttpURLConnection`: on Android that is OkHttp inside the
 * platform, with the system trust store, the network security config and the proxy settings; on
 * the JVM the JDK's. Asks for gzip and inflates it, follows no redirect, honours the connect
 * timeout and the overall deadline, and stops reading past the request's size cap (a gzip bomb
 * included). Pass one to `Tessera.setHttpClient` and `Till.open`; see docs/adr/0015.
 */
class HttpUrlConnectionClient : HttpClient {
    override fun send(request: HttpRequest): HttpResponse {
        val deadline = System.nanoTime() + request.timeoutMs.toLong() * 1_000_000L
        val conn = try {
            URL(request.url).openConnection() as HttpURLConnection
        } catch (e: IOException) {
            throw HttpException.Offline(e.toString())
        }
        try {
            conn.requestMethod = request.method.name
            conn.instanceFollowRedirects = false
            conn.useCaches = false
            conn.connectTimeout = request.connectTimeoutMs.toLong().coerceIn(1L, Int.MAX_VALUE.toLong()).toInt()
            conn.readTimeout = remainingMs(deadline)
            for (h in request.headers) conn.setRequestProperty(h.name, h.value)
            conn.setRequestProperty("Accept-Encoding", "gzip")
            val status = try {
                request.body?.let { body ->
                    conn.doOutput = true
                    conn.setFixedLengthStreamingMode(body.size)
                    conn.outputStream.use { it.write(body) }
                }
                conn.responseCode
            } catch (e: SocketTimeoutException) {
                throw HttpException.Timeout()
            } catch (e: IOException) {
                throw HttpException.Offline(e.toString())
            }
            val headers = conn.headerFields.entries
                .filter { it.key != null }
                .flatMap { (name, values) -> values.map { HttpHeader(name, it) } }
            val gzip = conn.contentEncoding.equals("gzip", ignoreCase = true)
            val body = try {
                val raw: InputStream? = if (status >= 400) conn.errorStream else conn.inputStream
                if (raw == null) ByteArray(0) else read(raw, gzip, request.maxBodyBytes.toLong(), deadline, conn)
            } catch (e: SocketTimeoutException) {
                throw HttpException.Timeout()
            } catch (e: IOException) {
                throw HttpException.Interrupted(e.toString())
            }
            return HttpResponse(status.toUShort(), headers, body)
        } finally {
            conn.disconnect()
        }
    }

    private fun read(raw: InputStream, gzip: Boolean, cap: Long, deadline: Long, conn: HttpURLConnection): ByteArray {
        val input = if (gzip) GZIPInputStream(raw) else raw
        input.use {
            val out = ByteArrayOutputStream()
            val buffer = ByteArray(64 * 1024)
            while (true) {
                if (System.nanoTime() > deadline) throw HttpException.Timeout()
                conn.readTimeout = remainingMs(deadline)
                val n = it.read(buffer)
                if (n < 0) break
                if (out.size().toLong() + n > cap) throw HttpException.TooLarge()
                out.write(buffer, 0, n)
            }
            // The JDK's stream ends quietly at an early close: a body shorter than announced is
            // cut short, not complete (gzip's own trailer catches it for compressed bodies).
            val announced = conn.contentLengthLong
            if (!gzip && announced >= 0 && out.size().toLong() != announced) {
                throw HttpException.Interrupted("the body is ${out.size()} of $announced bytes")
            }
            return out.toByteArray()
        }
    }

    private fun remainingMs(deadline: Long): Int =
        ((deadline - System.nanoTime()) / 1_000_000L).coerceIn(1L, Int.MAX_VALUE.toLong()).toInt()
}
