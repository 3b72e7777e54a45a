package app.tessera

import app.tessera.core.SyncProgress
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

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
