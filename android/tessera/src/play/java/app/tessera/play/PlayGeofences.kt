package app.tessera.play

// Needs Google Play services (com.google.android.gms:play-services-location): compiled by Gradle
// on a machine with Google's Maven, not on the project's CI (docs/android.md lists these files).

import android.annotation.SuppressLint
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import app.tessera.GeofenceBackend
import app.tessera.core.GeofenceRegion
import com.google.android.gms.location.Geofence
import com.google.android.gms.location.GeofencingClient
import com.google.android.gms.location.GeofencingRequest
import com.google.android.gms.location.LocationServices
import kotlinx.coroutines.tasks.await

/**
 * [GeofenceBackend] over Play services' GeofencingClient: each region of the core's plan becomes
 * a circular geofence for enter, dwell (after [dwellMs]) and exit, delivered to
 * [GeofenceReceiver]. The app holds ACCESS_FINE_LOCATION and ACCESS_BACKGROUND_LOCATION.
 */
class PlayGeofences(
    private val context: Context,
    private val dwellMs: Int = 3 * 60 * 1000,
    private val client: GeofencingClient = LocationServices.getGeofencingClient(context),
) : GeofenceBackend {
    private val intent: PendingIntent by lazy {
        PendingIntent.getBroadcast(
            context,
            0,
            Intent(context, GeofenceReceiver::class.java),
            PendingIntent.FLAG_UPDATE_CURRENT or PendingIntent.FLAG_MUTABLE,
        )
    }

    override suspend fun remove(ids: List<String>) {
        if (ids.isNotEmpty()) client.removeGeofences(ids).await()
    }

    @SuppressLint("MissingPermission")
    override suspend fun add(regions: List<GeofenceRegion>) {
        if (regions.isEmpty()) return
        val fences = regions.map {
            Geofence.Builder()
                .setRequestId(it.id)
                .setCircularRegion(it.latitude, it.longitude, it.radiusM.toFloat())
                .setExpirationDuration(Geofence.NEVER_EXPIRE)
                .setLoiteringDelay(dwellMs)
                .setTransitionTypes(
                    Geofence.GEOFENCE_TRANSITION_ENTER or Geofence.GEOFENCE_TRANSITION_DWELL or
                        Geofence.GEOFENCE_TRANSITION_EXIT,
                )
                .build()
        }
        val request = GeofencingRequest.Builder()
            .setInitialTrigger(0) // no event for regions the member is already in
            .addGeofences(fences)
            .build()
        client.addGeofences(request, intent).await()
    }
}
