package app.tessera

import app.tessera.core.GeofenceRegion
import app.tessera.core.RegionAction
import app.tessera.core.RegionEventKind
import app.tessera.core.SuppressReason
import app.tessera.domain.Platform
import app.tessera.domain.Position

/**
 * The OS's geofencing, as the coordinator needs it. Android: `app.tessera.play.PlayGeofences`
 * over Play services' `GeofencingClient` (src/play); tests: a recording fake.
 */
interface GeofenceBackend {
    /** Stops monitoring `ids` (unknown ids are not an error). */
    suspend fun remove(ids: List<String>)

    /** Starts monitoring `regions` (enter, dwell and exit). Throws when the OS refuses. */
    suspend fun add(regions: List<GeofenceRegion>)
}

/** The region ids the OS monitors for us, kept across process deaths (the OS does not list them). */
interface RegisteredRegions {
    fun load(): Set<String>

    fun save(ids: Set<String>)

    class InMemory(initial: Set<String> = emptySet()) : RegisteredRegions {
        @Volatile private var ids = initial
        override fun load() = ids
        override fun save(ids: Set<String>) {
            this.ids = ids
        }
    }
}

/**
 * Keeps the OS's monitored regions equal to the core's plan, and turns the OS's transitions back
 * into the core's decisions. All rules are the core's (which stores, how many, cooldowns,
 * consent, quiet hours); this class only applies the diff and routes the outcome.
 */
class GeofenceCoordinator(
    private val tessera: Tessera,
    private val backend: GeofenceBackend,
    private val registered: RegisteredRegions,
    private val notifications: OfferNotifications,
    private val budget: UInt = geofenceBudget(Platform.ANDROID),
) {
    /** What a re-plan changed. */
    data class Applied(val added: Int, val removed: Int, val monitored: Int, val throttled: Boolean)

    /**
     * Re-plans from `position`: removes what the plan drops, then adds what it adds. What the OS
     * accepted is saved as it happens, so a failure in the middle leaves the next re-plan a true
     * picture of what is monitored.
     */
    suspend fun replan(position: Position): Applied {
        var current = registered.load()
        val plan = tessera.planGeofences(position, budget, current.sorted())
        if (plan.throttled) return Applied(0, 0, current.size, throttled = true)
        if (plan.remove.isNotEmpty()) {
            backend.remove(plan.remove)
            current = current - plan.remove.toSet()
            registered.save(current)
        }
        if (plan.add.isNotEmpty()) {
            backend.add(plan.add)
            current = current + plan.add.map { it.id }
            registered.save(current)
        }
        return Applied(plan.add.size, plan.remove.size, current.size, throttled = false)
    }

    /**
     * An OS transition for `regionIds` (one broadcast may carry several) at `atMs`, with the
     * position that triggered it when the OS gives one. Returns the notifications shown.
     */
    suspend fun onTransition(
        regionIds: List<String>,
        kind: RegionEventKind,
        atMs: Long,
        position: Position?,
    ): Int {
        var shown = 0
        var replan = false
        for (id in regionIds) {
            when (val action = tessera.onRegionEvent(id, kind, atMs).action) {
                is RegionAction.Notify -> if (notifications.show(action.notification)) shown++
                RegionAction.Replan -> replan = true
                // An old registration the plan no longer has: the re-plan removes it.
                is RegionAction.Suppress -> if (action.reason == SuppressReason.UnknownRegion) replan = true
                RegionAction.Nothing -> {}
            }
        }
        if (replan && position != null) replan(position)
        return shown
    }
}
