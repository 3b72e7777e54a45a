package app.tessera.play

// Needs AndroidX WorkManager (androidx.work:work-runtime-ktx): Gradle with Google's Maven only.

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.OutOfQuotaPolicy
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import app.tessera.BackgroundSync
import java.util.concurrent.TimeUnit

/**
 * Background sync through WorkManager: periodic (every 6 hours, on any network, battery not low)
 * and "soon" (a silent push, a new token: expedited). What to answer WorkManager is decided by
 * [BackgroundSync.classify] (tested on the JVM): retry with exponential backoff, or stop. A
 * cancelled worker cancels the coroutine, which stops the Rust sync at its next safe point.
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result =
        when (BackgroundSync.run(TesseraPlatform.get(applicationContext).tessera)) {
            is BackgroundSync.Outcome.Done -> Result.success()
            is BackgroundSync.Outcome.Retry -> Result.retry()
            is BackgroundSync.Outcome.Stop -> Result.failure()
        }

    companion object {
        private const val PERIODIC = "tessera.sync.periodic"
        private const val SOON = "tessera.sync.soon"

        private val constraints = Constraints.Builder()
            .setRequiredNetworkType(NetworkType.CONNECTED)
            .setRequiresBatteryNotLow(true)
            .build()

        fun schedulePeriodic(context: Context) {
            val request = PeriodicWorkRequestBuilder<SyncWorker>(6, TimeUnit.HOURS)
                .setConstraints(constraints)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context)
                .enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, request)
        }

        fun syncSoon(context: Context) {
            val request = OneTimeWorkRequestBuilder<SyncWorker>()
                .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
                .setExpedited(OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context).enqueueUniqueWork(SOON, ExistingWorkPolicy.REPLACE, request)
        }
    }
}
