// Offers near the member, the Android geofence plan, region events and push messages from
// Kotlin, against the real `tessera serve` that tests/kotlin/run.sh starts.

import app.tessera.PushException
import app.tessera.Tessera
import app.tessera.geofenceBudget
import app.tessera.geodesicDistanceM
import app.tessera.domain.Channel
import app.tessera.core.ConsentChoice
import app.tessera.domain.ConsentText
import app.tessera.domain.Decision
import app.tessera.domain.Platform
import app.tessera.domain.Position
import app.tessera.core.PushDecision
import app.tessera.domain.Purpose
import app.tessera.core.RegionAction
import app.tessera.core.RegionEventKind
import java.io.File

fun offersTests(serverUrl: String) {
    check("offers near, the Android plan, region events, push messages") {
        val t = phone(File(dir, "offers.db").path)
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Chloé Martin", device)
        t.sync()
        val lyon = Position(45.7578, 4.8320)
        val near = t.offersNear(lyon, 5000.0, 10u)
        assertTrue(near.isNotEmpty(), "offers near Bellecour")
        assertTrue(near.zipWithNext().all { (a, b) -> a.distanceM <= b.distanceM }, "nearest first")
        assertTrue(geodesicDistanceM(lyon, lyon) == 0.0, "zero distance")

        assertEq(t.planGeofences(lyon, geofenceBudget(Platform.ANDROID), emptyList()).regions.size, 0)
        t.recordConsent(listOf(
            ConsentChoice(Purpose.GEOLOCATED_OFFERS, Channel.LOCATION, Decision.GRANTED),
            ConsentChoice(Purpose.GEOLOCATED_OFFERS, Channel.PUSH, Decision.GRANTED)),
            ConsentText("geo-1", "Offers near you."))
        val plan = t.planGeofences(lyon, geofenceBudget(Platform.ANDROID), emptyList())
        assertTrue(plan.regions.size in 2..100, "within the Android budget: ${plan.regions.size}")
        assertTrue(plan.regions.last().id.startsWith("replan:"), "re-plan region last")
        val exit = t.onRegionEvent(plan.regions.last().id, RegionEventKind.EXIT, System.currentTimeMillis())
        assertEq(exit.action, RegionAction.Replan)

        val sync = """{"tessera": "{\"v\":1,\"id\":\"kt-sync-1\",\"kind\":\"sync\"}"}"""
        assertEq(t.handlePush(sync, System.currentTimeMillis()), PushDecision.SyncNow)
        assertThrows<PushException.NotTessera> { t.handlePush("""{"aps":{}}""", 0L) }
        t.shutdown()
    }
}
