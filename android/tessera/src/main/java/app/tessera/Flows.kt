package app.tessera

import app.tessera.core.Change
import app.tessera.core.SyncProgress
import java.util.Collections
import java.util.WeakHashMap
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.onSubscription

/**
 * Every sync's progress (started, pushing, pulling, member, finished or failed) as a cold [Flow]:
 * collecting it sets the core's one sync listener, and stops it when the collector is cancelled.
 * One collector at a time (a second replaces the first's listener): share it with `shareIn` when
 * several screens watch. Progress never blocks the sync: the flow keeps the latest 64 updates.
 */
fun Tessera.syncProgress(): Flow<SyncProgress> = callbackFlow {
    setSyncListener(object : SyncListener {
        override fun onProgress(progress: SyncProgress) {
            trySend(progress)
        }
    })
    awaitClose { setSyncListener(null) }
}.buffer(64)

/** One change listener per Tessera, shared by every collector of [changes]. */
private class ChangeHub(tessera: Tessera) : ChangeListener {
    val flow = MutableSharedFlow<Set<Change>>(extraBufferCapacity = 64, onBufferOverflow = BufferOverflow.DROP_OLDEST)

    init {
        tessera.setChangeListener(this)
    }

    override fun onChange(changes: List<Change>) {
        // Never blocks the writer: a slow collector loses old announcements, never the latest.
        flow.tryEmit(changes.toSet())
    }
}

private val hubs: MutableMap<Tessera, ChangeHub> = Collections.synchronizedMap(WeakHashMap())

/**
 * What changed, after each write commits (once at the end of a sync), for every collector: the
 * first call installs the core's change listener on this instance and keeps it (a later
 * `setChangeListener` replaces it; use one or the other). Hot: collectors see announcements
 * made while they collect.
 */
fun Tessera.changes(): SharedFlow<Set<Change>> =
    synchronized(hubs) { hubs.getOrPut(this) { ChangeHub(this) } }.flow.asSharedFlow()

/**
 * `read()` now, then again after every change of `kind`: what a screen shows, always current.
 * Conflated: a slow screen skips to the latest. `read` runs in the collector's context (the
 * core's reads are local and quick; use `flowOn(Dispatchers.IO)` to keep them off the main
 * thread anyway).
 */
fun <T> Tessera.watch(kind: Change, read: Tessera.() -> T): Flow<T> =
    changes()
        // The first read once subscribed: a change made meanwhile is not missed.
        .onSubscription { emit(setOf(kind)) }
        .filter { kind in it }
        .conflate()
        .map { read() }

/** The wallet's coupons, re-read when they change (a sync brings a coupon, a till redeems it). */
fun Tessera.walletUpdates() = watch(Change.WALLET) { wallet() }

/** Points and ledger, re-read when they change. */
fun Tessera.pointsUpdates() = watch(Change.POINTS) { points() }

/** Challenges and badges, re-read when they change (an event recorded, a sync). */
fun Tessera.challengesUpdates() = watch(Change.CHALLENGES) { challenges() }

/** Each purpose and channel's consent, re-read when a consent is recorded or synced. */
fun Tessera.consentUpdates() = watch(Change.CONSENT) { consentState() }

/** Pending and rejected actions, enrolment and the last sync, re-read when they change. */
fun Tessera.syncStatusUpdates() = watch(Change.SYNC_STATUS) { syncStatus() }
