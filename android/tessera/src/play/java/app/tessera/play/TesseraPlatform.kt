package app.tessera.play

// Wires the package's pieces for an app that uses Play services, Firebase and WorkManager (the
// thin classes of this source set). Gradle with Google's Maven only.

import android.content.Context
import app.tessera.GeofenceCoordinator
import app.tessera.HttpUrlConnectionClient
import app.tessera.PushRouter
import app.tessera.Tessera
import app.tessera.android.KeystoreSecretStore
import app.tessera.android.OfferNotifier
import app.tessera.android.PreferencesRegions
import java.io.File

/**
 * One per process: the core opened on the app's database with the Keystore secret store and the
 * HTTP client, the notifier, the geofence coordinator and the push router. Receivers, services and
 * workers reach it through [get]; the app sets [smallIcon] before the first call (Application.onCreate).
 */
class TesseraPlatform private constructor(context: Context) {
    val tessera: Tessera = Tessera.open(File(context.noBackupFilesDir, "tessera.db").path).also {
        it.setHttpClient(HttpUrlConnectionClient())
        it.setSecretStore(KeystoreSecretStore(context))
    }
    val notifier = OfferNotifier(context, smallIcon)
    val geofences = GeofenceCoordinator(tessera, PlayGeofences(context), PreferencesRegions(context), notifier)
    val push = PushRouter(tessera, notifier) { SyncWorker.syncSoon(context) }

    companion object {
        @Volatile var smallIcon: Int = android.R.drawable.ic_dialog_info
        @Volatile private var instance: TesseraPlatform? = null

        fun get(context: Context): TesseraPlatform =
            instance ?: synchronized(this) {
                instance ?: TesseraPlatform(context.applicationContext).also { instance = it }
            }
    }
}
