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

fun asyncTests(serverUrl: String) {
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
