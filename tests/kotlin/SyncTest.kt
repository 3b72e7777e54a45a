// Enrolment, offline actions and sync from Kotlin, against the real `tessera serve` that
// tests/kotlin/run.sh starts on loopback (TESSERA_SERVER_URL).

import app.tessera.ActionException
import app.tessera.SecretStore
import app.tessera.SyncException
import app.tessera.SyncListener
import app.tessera.SyncSettings
import app.tessera.Tessera
import app.tessera.domain.DeviceInfo
import app.tessera.domain.EventKind
import app.tessera.domain.Platform
import app.tessera.CardCode
import app.tessera.cardCode
import app.tessera.googleWalletLink
import app.tessera.memberCodes
import app.tessera.core.MemberCodeUnavailable
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import app.tessera.core.SyncPhase
import app.tessera.core.SyncProgress
import java.io.File
import java.net.ServerSocket
import java.util.concurrent.CopyOnWriteArrayList

val device = DeviceInfo(Platform.ANDROID, "3.2.0")
val fast = SyncSettings(connectTimeoutMs = 500uL, requestTimeoutMs = 2000uL, maxAttempts = 2u, baseDelayMs = 1uL, maxDelayMs = 5uL)

/** A SecretStore in memory, standing in for the Keystore-backed one on the JVM. */
class MemoryStore : SecretStore {
    val items = java.util.concurrent.ConcurrentHashMap<String, String>()
    override fun get(key: String): String? = items[key]
    override fun set(key: String, value: String) { items[key] = value }
    override fun delete(key: String) { items.remove(key) }
}

fun syncTests(serverUrl: String) {
    check("the session's tokens live in the app's secret store, not in the file") {
        val path = File(dir, "secrets.db").path
        val t = phone(path)
        t.setSyncSettings(fast)
        val store = MemoryStore()
        t.setSecretStore(store)
        t.enrol(serverUrl, "Ada", device)
        t.sync()
        // The two tokens and the device's key for the rotating member code.
        assertEq(store.items.size, 3)
        assertTrue(store.items.keys.any { it.endsWith("/device_key") }, "the device's key in the store")
        val bytes = File(path).readBytes() + File("$path-wal").let { if (it.exists()) it.readBytes() else ByteArray(0) }
        for (token in store.items.values) {
            assertTrue(String(bytes, Charsets.ISO_8859_1).indexOf(token) < 0, "a token or the key reached the file")
        }
        t.shutdown()
        val again = phone(path)
        assertThrows<SyncException.NoSecretStore> { again.sync() }
        again.setSecretStore(store)
        again.sync()
        again.signOut(false)
        assertEq(store.items.size, 0)
        again.shutdown()
    }

    check("the card screen's rotating member code: made offline from the device's certified key") {
        val t = phone(File(dir, "member-code.db").path)
        t.setSyncSettings(fast)
        assertThrows<MemberCodeUnavailable.NotEnrolled> { t.memberCode() }
        t.enrol(serverUrl, "Ada", device)
        val view = t.memberCode()
        assertTrue(view.code.startsWith("TM1:"), view.code)
        assertEq(view.matrix.width, view.matrix.height)
        assertTrue(view.changesInMs in 1UL..30_000UL, "changes within a period: ${view.changesInMs}")
        // The idiomatic layer: the card screen's flow starts with the rotating code.
        val first = runBlocking { t.memberCodes().first() }
        assertTrue(first is CardCode.Rotating && first.view.code.startsWith("TM1:"), "$first")
        // A server without wallets says so, typed.
        val e = assertThrows<SyncException.Server> { runBlocking { t.googleWalletLink() } }
        assertEq(e.code, "wallet_not_configured")
        t.signOut(true)
        val gone = t.cardCode()
        assertTrue(gone is CardCode.Static && gone.reason is MemberCodeUnavailable.NotEnrolled, "$gone")
        t.shutdown()
    }

    check("offline actions reach the server once, and the catalog is cached") {
        val t = phone(File(dir, "sync.db").path)
        t.setSyncSettings(fast)
        assertEq(t.enrol(serverUrl, "Grace Hopper", device).holderName, "Grace Hopper")
        repeat(3) { t.recordEvent(EventKind.STORE_VISIT, "st-paris-01", mapOf("source" to "kotlin")) }
        t.setFavouriteStore("st-lille-01", true)
        assertEq(t.syncStatus().pending, 4uL)

        val phases = CopyOnWriteArrayList<SyncPhase>()
        t.setSyncListener(object : SyncListener {
            override fun onProgress(progress: SyncProgress) { phases.add(progress.phase) }
        })
        val report = t.sync()
        assertEq(report.pushed, 4uL)
        assertEq(report.catalogChanges > 300uL, true)
        assertEq(phases.first(), SyncPhase.STARTED)
        assertEq(phases.last(), SyncPhase.FINISHED)
        val state = t.memberState()!!.state
        assertEq(state.eventsRecorded, 3uL)
        assertEq(state.favouriteStoreIds, listOf("st-lille-01"))
        assertEq(t.catalogSummary().stores, 321uL)
        assertTrue(t.stores("Lyon", 100u).all { it.city == "Lyon" }, "city filter")
        assertTrue(t.activity(10u).all { it.syncedAt != null }, "every action acknowledged")

        val again = t.sync()
        assertEq(again.requests, 1uL)
        assertEq(again.pushed, 0uL)
        t.shutdown()
    }

    check("sync errors are typed") {
        val t = phone(File(dir, "sync-errors.db").path)
        assertThrows<SyncException.NotEnrolled> { t.sync() }
        assertThrows<ActionException.NotEnrolled> { t.recordEvent(EventKind.APP_OPENED, null, emptyMap()) }
        val bad = assertThrows<SyncException.InvalidInput> { t.setSyncSettings(SyncSettings(pageSize = 0u)) }
        assertEq(bad.field, "page_size")
        t.setSyncSettings(fast)
        val port = ServerSocket(0).use { it.localPort }
        assertThrows<SyncException.Offline> { t.enrol("http://127.0.0.1:$port", "Ada", device) }
        t.enrol(serverUrl, "Ada", device)
        assertThrows<SyncException.AlreadyEnrolled> { t.enrol(serverUrl, "Ada", device) }
        val field = assertThrows<ActionException.InvalidInput> { t.recordEvent(EventKind.STORE_VISIT, "not an id", emptyMap()) }
        assertEq(field.field, "event.store_id")
        t.recordEvent(EventKind.APP_OPENED, null, emptyMap())
        assertEq(assertThrows<SyncException.PendingActions> { t.signOut(false) }.count, 1uL)
        t.signOut(true)
        assertEq(t.syncStatus().enrolled, false)
        t.shutdown()
    }
}
