package app.tessera.play

// Needs Google Play services (GeofencingEvent): compiled by Gradle with Google's Maven only.

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import app.tessera.core.RegionEventKind
import app.tessera.domain.Position
import com.google.android.gms.location.Geofence
import com.google.android.gms.location.GeofencingEvent
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch

/**
 * The OS's geofence transitions into the core, through the app's coordinator
 * ([TesseraPlatform.geofences]). Runs in `goAsync()` so the core's work and a re-plan finish.
 */
class GeofenceReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val event = GeofencingEvent.fromIntent(intent) ?: return
        if (event.hasError()) return
        val kind = when (event.geofenceTransition) {
            Geofence.GEOFENCE_TRANSITION_ENTER -> RegionEventKind.ENTER
            Geofence.GEOFENCE_TRANSITION_DWELL -> RegionEventKind.DWELL
            Geofence.GEOFENCE_TRANSITION_EXIT -> RegionEventKind.EXIT
            else -> return
        }
        val ids = event.triggeringGeofences?.map { it.requestId } ?: return
        val position = event.triggeringLocation?.let { Position(it.latitude, it.longitude) }
        val pending = goAsync()
        CoroutineScope(Dispatchers.IO).launch {
            try {
                TesseraPlatform.get(context).geofences.onTransition(ids, kind, System.currentTimeMillis(), position)
            } finally {
                pending.finish()
            }
        }
    }
}
