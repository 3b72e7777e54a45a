package app.tessera

import app.tessera.core.SyncReport

/**
 * One background sync, and what the OS scheduler (WorkManager on Android, BGTaskScheduler on iOS)
 * should do next. The core already retries within a run (backoff, `Retry-After`); this maps what
 * is left to the scheduler's three answers. The WorkManager worker in src/play is a thin call.
 */
object BackgroundSync {
    sealed interface Outcome {
        data class Done(val report: SyncReport) : Outcome
        /** Transient (offline, timeout, server unavailable, cancelled by the OS): run again later. */
        data class Retry(val cause: SyncException) : Outcome
        /** Nothing a retry mends (signed out, not enrolled, app too old): stop until the app acts. */
        data class Stop(val cause: Exception) : Outcome
    }

    suspend fun run(tessera: Tessera): Outcome = try {
        Outcome.Done(tessera.syncAsync())
    } catch (e: SyncException) {
        classify(e)
    }

    fun classify(e: SyncException): Outcome = when (e) {
        is SyncException.Offline, is SyncException.Timeout, is SyncException.Cancelled,
        is SyncException.Protocol, is SyncException.SecretStoreFailed, is SyncException.Storage -> Outcome.Retry(e)
        // 5xx and 429 are transient; other statuses are the server refusing this request for good.
        is SyncException.Server -> if (e.status.toInt() >= 500 || e.status.toInt() == 429) Outcome.Retry(e) else Outcome.Stop(e)
        is SyncException.NotEnrolled, is SyncException.SignedOut, is SyncException.Incompatible,
        is SyncException.NoHttpClient, is SyncException.NoSecretStore, is SyncException.InvalidInput,
        is SyncException.AlreadyEnrolled, is SyncException.PendingActions -> Outcome.Stop(e)
    }
}
