package app.tessera.android

import android.content.Context
import app.tessera.RegisteredRegions

/**
 * The region ids registered with the OS, in a private SharedPreferences file: Android drops every
 * geofence on reboot and app update without telling the app, so the app's boot receiver clears
 * this ([clear]) and re-plans.
 */
class PreferencesRegions(context: Context, name: String = "tessera.geofences") : RegisteredRegions {
    private val prefs = context.getSharedPreferences(name, Context.MODE_PRIVATE)

    override fun load(): Set<String> = prefs.getStringSet(KEY, emptySet())?.toSet() ?: emptySet()

    override fun save(ids: Set<String>) {
        prefs.edit().putStringSet(KEY, ids.toSet()).apply()
    }

    fun clear() {
        prefs.edit().remove(KEY).apply()
    }

    private companion object {
        const val KEY = "registered"
    }
}
