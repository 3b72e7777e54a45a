// The Android package's platform adapters, through the logic they call: the geofence coordinator
// (the core's plan applied to the OS as a diff, transitions routed back), the push router (an FCM
// data map through the core's decision) and the background sync's answer to the OS scheduler.
// Each against the real core and the real server; only the OS sides (GeofencingClient,
// NotificationManager, WorkManager) are recorded, as they cannot run on a JVM.

import app.tessera.BackgroundSync
import app.tessera.BarcodeLayout
import app.tessera.GeofenceBackend
import app.tessera.GeofenceCoordinator
import app.tessera.HttpClient
import app.tessera.HttpException
import app.tessera.core.HttpRequest
import app.tessera.core.HttpResponse
import app.tessera.HttpUrlConnectionClient
import app.tessera.PushException
import app.tessera.PushRouter
import app.tessera.RegisteredRegions
import app.tessera.SyncException
import app.tessera.Tessera
import app.tessera.core.OfferSettings
import app.tessera.renderBarcode
import app.tessera.core.ConsentChoice
import app.tessera.core.GeofenceRegion
import app.tessera.core.OfferNotification
import app.tessera.core.RegionEventKind
import app.tessera.core.SuppressReason
import app.tessera.core.PushDecision
import app.tessera.domain.Channel
import app.tessera.domain.ConsentText
import app.tessera.domain.Decision
import app.tessera.domain.EventKind
import app.tessera.domain.Position
import app.tessera.domain.Purpose
import app.tessera.domain.Symbology
import com.google.zxing.BarcodeFormat
import com.google.zxing.BinaryBitmap
import com.google.zxing.DecodeHintType
import com.google.zxing.MultiFormatReader
import com.google.zxing.RGBLuminanceSource
import com.google.zxing.common.HybridBinarizer
import java.io.File
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.runBlocking

/** GeofencingClient as the coordinator sees it: what was asked, and a switch to refuse adds. */
class RecordingGeofences : GeofenceBackend {
    val monitored = linkedSetOf<String>()
    val calls = CopyOnWriteArrayList<String>()
    var refuseAdds = false
    override suspend fun remove(ids: List<String>) {
        calls += "remove ${ids.size}"
        monitored.removeAll(ids.toSet())
    }
    override suspend fun add(regions: List<GeofenceRegion>) {
        calls += "add ${regions.size}"
        if (refuseAdds) throw IllegalStateException("GEOFENCE_TOO_MANY_GEOFENCES")
        monitored.addAll(regions.map { it.id })
    }
}

val geoConsent = listOf(
    ConsentChoice(Purpose.GEOLOCATED_OFFERS, Channel.LOCATION, Decision.GRANTED),
    ConsentChoice(Purpose.GEOLOCATED_OFFERS, Channel.PUSH, Decision.GRANTED),
)

fun adaptersTests(serverUrl: String) {
    check("geofences: the core's plan applied to the OS as a diff, what the OS holds remembered") {
        val t = enrolled(serverUrl, "geo-adapter.db")
        val os = RecordingGeofences()
        val saved = RegisteredRegions.InMemory()
        val shown = CopyOnWriteArrayList<OfferNotification>()
        val geo = GeofenceCoordinator(t, os, saved, { shown.add(it) })
        val lyon = Position(45.7578, 4.8320)
        runBlocking {
            assertEq(geo.replan(lyon).monitored, 0) // no location consent: nothing monitored
            t.recordConsent(geoConsent, ConsentText("geo-1", "Offers near you."))
            val first = geo.replan(lyon)
            assertTrue(first.added in 2..100, "within Android's 100: $first")
            assertEq(os.monitored, saved.load())
            assertTrue(os.monitored.any { it.startsWith("replan:") }, "the re-plan region")

            // Paris, 400 km away: Lyon's stores leave, Paris's come; the OS ends up with the plan.
            val paris = Position(48.8566, 2.3522)
            val moved = geo.replan(paris)
            assertTrue(moved.removed > 0 && moved.added > 0, "a diff: $moved")
            assertEq(os.monitored, saved.load())
            assertEq(os.monitored, t.planGeofences(paris, 100u, emptyList()).regions.map { it.id }.toSet())

            // Leaving the re-plan region re-plans from where the OS says the member is.
            val replanId = os.monitored.first { it.startsWith("replan:") }
            os.calls.clear()
            geo.onTransition(listOf(replanId), RegionEventKind.EXIT, System.currentTimeMillis(), lyon)
            assertTrue(os.calls.isNotEmpty(), "re-planned: ${os.calls}")
            assertTrue(os.monitored.none { it == replanId }, "the old re-plan region is gone")
            assertEq(os.monitored, saved.load())

            // The OS refuses the adds: what it did remove is remembered, the adds are not.
            os.refuseAdds = true
            val before = saved.load()
            assertThrows<IllegalStateException> { runBlocking { geo.replan(paris) } }
            assertTrue(saved.load().all { it in before }, "nothing the OS refused is recorded")
            assertEq(os.monitored, saved.load())
        }
        t.shutdown()
    }

    check("geofences: a dwell at a store goes through the core's rules to the notifier") {
        val t = enrolled(serverUrl, "geo-dwell.db")
        t.recordConsent(geoConsent, ConsentText("geo-1", "Offers near you."))
        t.setPreferences(t.preferences().copy(quietHours = null))
        val os = RecordingGeofences()
        val shown = CopyOnWriteArrayList<OfferNotification>()
        val geo = GeofenceCoordinator(t, os, RegisteredRegions.InMemory(), { shown.add(it) })
        val lyon = Position(45.7578, 4.8320)
        runBlocking {
            geo.replan(lyon)
            val stores = t.planGeofences(lyon, 100u, emptyList()).regions.filter { it.storeId != null }
            // The last noon in Lyon on a day the shops open (the seed's close by 21:00 and on
            // Sundays): a dwell at night finds every shop closed, and the run's hour must not
            // decide the test (it failed every evening).
            val paris = java.time.ZoneId.of("Europe/Paris")
            var noon = java.time.ZonedDateTime.now(paris).withHour(12).withMinute(0).withSecond(0).withNano(0)
            while (noon.toInstant().toEpochMilli() > System.currentTimeMillis() ||
                noon.dayOfWeek == java.time.DayOfWeek.SUNDAY) {
                noon = noon.minusDays(1)
            }
            val now = noon.toInstant().toEpochMilli()
            // An event from then is days old to the core's clock: accept events that old here.
            t.setOfferSettings(OfferSettings(6L * 3_600_000, 7L * 86_400_000, 60_000L, 100.0, 24L * 3_600_000))
            // Store by store until one is open with an offer for this member (the seed's hours vary).
            var n = 0
            for (s in stores) {
                n = geo.onTransition(listOf(s.id), RegionEventKind.DWELL, now, lyon)
                if (n > 0) break
            }
            assertEq(n, 1)
            assertTrue(shown.single().deepLink.startsWith("tessera://offer/"), "a deep link: ${shown.single()}")
            // The OS refusing to show it is counted as not shown (notifications off).
            val refusing = GeofenceCoordinator(t, os, RegisteredRegions.InMemory(), { false })
            val other = stores.map { it.id }.filter { id -> shown.none { it.storeId == id.removePrefix("store:") } }
            assertEq(other.sumOf { refusing.onTransition(listOf(it), RegionEventKind.DWELL, now, null) }, 0)
        }
        t.shutdown()
    }

    check("push: an FCM data map through the core, sync requested, repeats and others' messages left") {
        val t = phone(File(dir, "push-adapter.db").path)
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Chloé Martin", device)
        var syncs = 0
        val router = PushRouter(t, { true }, { syncs++ })
        val now = System.currentTimeMillis()
        // FCM delivers `data` as strings: the payload is a JSON string inside the map.
        val data = mapOf("tessera" to """{"v":1,"id":"kt-router-1","kind":"sync"}""", "from" to "line\nbreak \"quoted\"")
        assertEq(router.onMessage(data, now), PushRouter.Handled.SyncRequested)
        assertEq(syncs, 1)
        val again = router.onMessage(data, now)
        assertEq(again, PushRouter.Handled.Suppressed(PushDecision.Suppress(SuppressReason.Duplicate)))
        assertEq(syncs, 1)
        assertEq(router.onMessage(mapOf("google.message_id" to "0:1"), now), PushRouter.Handled.NotOurs)
        // A Tessera message the core refuses is reported, not thrown out of the push service.
        val newer = router.onMessage(mapOf("tessera" to """{"v":7,"id":"kt-router-2","kind":"sync"}"""), now)
        assertTrue(newer is PushRouter.Handled.Invalid && newer.error is PushException.UnsupportedVersion, "$newer")
        assertEq(PushRouter.jsonObject(mapOf("a\"b" to "c\\d\u0001")), """{"a\"b":"c\\d\u0001"}""")
        t.shutdown()
    }

    check("push: an offer shown marked as a push's, and a tap on it reported as acted on with consent") {
        val t = phone(File(dir, "push-opened.db").path)
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Chloé Martin", device)
        t.recordConsent(listOf(ConsentChoice(Purpose.MARKETING_OFFERS, Channel.PUSH, Decision.GRANTED)),
            ConsentText("push-1", "Offers by push."))
        t.setPreferences(t.preferences().copy(quietHours = null))
        val shown = mutableListOf<OfferNotification>()
        val router = PushRouter(t, { shown.add(it); true }, { })
        val now = System.currentTimeMillis()
        val offer = """{"id":"of-kt-push","title":"Tea time","description":"20 % off loose tea",""" +
            """"kind":{"type":"percent_off","percent":20},"valid_from":"2026-01-01T00:00:00Z",""" +
            """"valid_to":"2099-01-01T00:00:00Z","channel":"in_store","categories":[]}"""
        val payload = """{"v":1,"id":"kt-offer-1","kind":"offer","offer":$offer,"expires_at":"2099-01-01T00:00:00Z"}"""
        assertEq(router.onMessage(mapOf("tessera" to payload), now), PushRouter.Handled.Shown("of-kt-push"))
        val link = shown.single().deepLink
        assertTrue(link.startsWith("tessera://offer/of-kt-push") && link.endsWith("via=push"), link)
        // Without consent to analytics nothing is reported; with it, the tap is kept to be sent.
        assertEq(router.opened(link), false)
        assertEq(router.opened("tessera://offer/of-kt-push"), false)
        t.recordConsent(listOf(ConsentChoice(Purpose.ANALYTICS, Channel.IN_APP, Decision.GRANTED)),
            ConsentText("analytics-1", "Usage statistics."))
        assertEq(router.opened(link), true)
        // A geofence notification's link: not a push.
        assertEq(router.opened("tessera://offer/of-kt-push?store=st-1"), false)
        t.shutdown()
    }

    check("background sync: done, retry when offline, stop when signed out or not enrolled") {
        val t = phone(File(dir, "bg.db").path)
        t.setSyncSettings(fast)
        runBlocking {
            val notEnrolled = BackgroundSync.run(t)
            assertTrue(notEnrolled is BackgroundSync.Outcome.Stop && notEnrolled.cause is SyncException.NotEnrolled, "$notEnrolled")
            t.enrol(serverUrl, "Ada", device)
            t.recordEvent(EventKind.APP_OPENED, null, emptyMap())
            val done = BackgroundSync.run(t)
            assertTrue(done is BackgroundSync.Outcome.Done && done.report.pushed == 1uL, "$done")

            // The phone's network goes: the client says offline, the scheduler is told to retry,
            // and the event recorded meanwhile is still there for the next run.
            val real = HttpUrlConnectionClient()
            var online = false
            t.setHttpClient(object : HttpClient {
                override fun send(request: HttpRequest): HttpResponse =
                    if (online) real.send(request) else throw HttpException.Offline("airplane mode")
            })
            t.recordEvent(EventKind.APP_OPENED, null, emptyMap())
            val offline = BackgroundSync.run(t)
            assertTrue(offline is BackgroundSync.Outcome.Retry && offline.cause is SyncException.Offline, "$offline")
            online = true
            val later = BackgroundSync.run(t)
            assertTrue(later is BackgroundSync.Outcome.Done && later.report.pushed == 1uL, "$later")
        }
        assertEq(BackgroundSync.classify(SyncException.Server(503u, "unavailable")) is BackgroundSync.Outcome.Retry, true)
        assertEq(BackgroundSync.classify(SyncException.Server(429u, "rate_limited")) is BackgroundSync.Outcome.Retry, true)
        assertEq(BackgroundSync.classify(SyncException.Server(403u, "forbidden")) is BackgroundSync.Outcome.Stop, true)
        t.shutdown()
    }

    check("the card's layout: whole pixels per module, quiet zone kept, centred, too small refused") {
        val qr = renderBarcode(Symbology.QR, "TESSERA-0001")
        val l = BarcodeLayout.fit(qr, 300, 400)!!
        val across = qr.width.toInt() + 2 * qr.quietZone.toInt()
        assertEq(l.modulePx, 300 / across)
        assertEq(l.left, (300 - qr.width.toInt() * l.modulePx) / 2)
        assertEq(l.top, (400 - qr.height.toInt() * l.modulePx) / 2)
        assertEq(BarcodeLayout.fit(qr, across - 1, 400), null)
        val ean = renderBarcode(Symbology.EAN13, "400638133393")
        val bars = BarcodeLayout.fit(ean, 1080, 200)!!
        assertEq(bars.rows, 1)
        assertEq(bars.rowPx, 200) // bars as tall as the box allows
        val runs = bars.darkRuns(ean, 0)
        assertEq(runs.sumOf { it.second }, ean.modules.count { it.toInt() == 1 })
        assertEq(runs.first().first, 0) // EAN-13 starts with its guard bar
        assertEq(BarcodeLayout.fit(ean.copy(modules = ByteArray(3)), 1080, 200), null)
    }

    check("the card's pixels, painted as the views paint them, are read by ZXing at phone sizes") {
        val codes = listOf(
            renderBarcode(Symbology.EAN13, "400638133393") to BarcodeFormat.EAN_13,
            renderBarcode(Symbology.QR, "TESSERA-MEMBER-400638133393") to BarcodeFormat.QR_CODE,
            renderBarcode(Symbology.CODE128, "GOLD-42") to BarcodeFormat.CODE_128,
        )
        for ((matrix, format) in codes) {
            for ((w, h) in listOf(1080 to 700, 720 to 480, 391 to 277)) {
                val pad = 13
                val pixels = IntArray(w * h) { 0xFFFFFF or (0xFF shl 24) }
                val layout = BarcodeLayout.fit(matrix, w - 2 * pad, h - 2 * pad)!!
                layout.forEachDarkRect(matrix, pad, pad) { l, t, r, b ->
                    for (y in t until b) for (x in l until r) pixels[y * w + x] = 0xFF000000.toInt()
                }
                val read = MultiFormatReader().decode(
                    BinaryBitmap(HybridBinarizer(RGBLuminanceSource(w, h, pixels))),
                    mapOf(DecodeHintType.POSSIBLE_FORMATS to listOf(format), DecodeHintType.TRY_HARDER to true),
                )
                assertEq(read.text, matrix.encodedValue)
            }
        }
    }
}
