// The suspend API: a sync run as a coroutine, cancelled in the middle of the catalog, against the
// real server. The coroutine ends at once; the Rust sync stops before its next request; nothing
// the member did is lost, and the next sync finishes the job.

import app.tessera.SyncListener
import app.tessera.SyncSettings
import app.tessera.core.SyncPhase
import app.tessera.core.SyncProgress
import app.tessera.domain.EventKind
import java.io.File
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.async
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.withTimeout
import app.tessera.HttpUrlConnectionClient
import app.tessera.Tessera
import app.tessera.Till
import app.tessera.syncProgress

fun asyncTests(serverUrl: String) {
    check("suspend enrol, sync, export and the till's sync; progress as a Flow") {
        val t = Tessera.open(File(dir, "flow.db").path)
        t.setHttpClient(HttpUrlConnectionClient())
        runBlocking {
            assertEq(t.enrolAsync(serverUrl, "Ada", device).holderName, "Ada")
            t.recordEvent(EventKind.APP_OPENED, null, emptyMap())
            // Unconfined and undispatched: the collector has set the listener before `async`
            // returns, so the sync below cannot start unseen.
            val phases = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                t.syncProgress()
                    .takeWhile { it.phase != SyncPhase.FINISHED && it.phase != SyncPhase.FAILED }
                    .toList()
                    .map { it.phase }
            }
            val report = t.syncAsync()
            assertEq(report.pushed, 1uL)
            val seen = withTimeout(10_000) { phases.await() }
            assertEq(seen.first(), SyncPhase.STARTED)
            assertTrue(SyncPhase.PULLING in seen, "pulling reported: $seen")
            assertTrue(t.exportMyDataAsync().contains("\"server\""), "the export has the server's part")
        }
        val token = registerTill(serverUrl, "st-paris-01")
        val till = Till.open(File(dir, "flow.journal").path, serverUrl, token, "st-paris-01", HttpUrlConnectionClient())
        runBlocking { assertEq(till.syncAsync().pending, 0u) }
        t.shutdown()
    }

    check("a suspend sync cancelled mid-flight ends at once and loses nothing") {
        val t = phone(File(dir, "async.db").path)
        t.setSyncSettings(SyncSettings(connectTimeoutMs = 500uL, requestTimeoutMs = 2000uL, pageSize = 20u))
        t.enrol(serverUrl, "Ada", device)
        repeat(5) { t.recordEvent(EventKind.APP_OPENED, null, emptyMap()) }
        val pulling = CompletableDeferred<Unit>()
        val stopped = CompletableDeferred<Long>()
        t.setSyncListener(object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                if (progress.phase == SyncPhase.PULLING) pulling.complete(Unit)
                if (progress.phase == SyncPhase.FAILED) stopped.complete(System.nanoTime())
            }
        })
        runBlocking {
            val job = launch(Dispatchers.Default) { t.syncAsync() }
            pulling.await()
            val cancelledAt = System.nanoTime()
            job.cancelAndJoin()
            val coroutineMs = (System.nanoTime() - cancelledAt) / 1e6
            val rustMs = (stopped.await() - cancelledAt) / 1e6
            println("     measured: cancel -> coroutine ended %.2f ms, -> the Rust sync stopped %.2f ms".format(coroutineMs, rustMs))
            assertTrue(job.isCancelled, "the coroutine was cancelled")
            assertTrue(coroutineMs < 100.0, "the coroutine ends at once ($coroutineMs ms)")
        }
        assertEq(t.syncStatus().pending, 0uL)
        assertTrue(t.catalogSummary().stores < 321uL, "the catalog was left part-way")
        t.setSyncListener(null)
        val report = runBlocking { t.syncAsync() }
        assertEq(report.pushed, 0uL)
        assertEq(t.catalogSummary().stores, 321uL)
        assertEq(t.memberState()!!.state.eventsRecorded, 5uL)
        t.shutdown()
    }
}
