// The state streams a UI observes, against the real server: each is fed by the core's one
// change listener and re-reads its data when the core says that kind changed.

import app.tessera.Tessera
import app.tessera.changes
import app.tessera.challengesUpdates
import app.tessera.consentUpdates
import app.tessera.pointsUpdates
import app.tessera.syncStatusUpdates
import app.tessera.walletUpdates
import app.tessera.core.Change
import app.tessera.core.ConsentChoice
import app.tessera.domain.Channel
import app.tessera.domain.ConsentText
import app.tessera.domain.Decision
import app.tessera.domain.EventKind
import app.tessera.domain.Purpose
import java.io.File
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

fun streamsTests(serverUrl: String) {
    check("streams: the wallet, points, consent and sync status follow what the member does") {
        val t = enrolled(serverUrl, "streams.db")
        runBlocking {
            withTimeout(10_000) {
                // Two collectors of the same announcements (one listener underneath).
                val all = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                    t.changes().take(2).toList()
                }
                val wallets = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                    t.walletUpdates().take(2).toList()
                }
                val pending = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                    t.syncStatusUpdates().take(2).toList()
                }
                // The offer of the seed that is clipped in store, coupon issued at the sync.
                t.clipOffer("of-009")
                t.sync()
                val w = wallets.await()
                assertEq(w[0].none { it.offerId == "of-009" }, true)
                assertTrue(w[1].any { it.offerId == "of-009" }, "the coupon arrived: ${w[1]}")
                val p = pending.await()
                assertEq(p[0].pending, 0uL)
                assertEq(p[1].pending, 1uL) // the clip, waiting
                val seen = all.await()
                assertTrue(Change.SYNC_STATUS in seen[0] && Change.WALLET !in seen[0], "the clip: ${seen[0]}")
                assertTrue(Change.WALLET in seen[1], "the sync: ${seen[1]}")

                val consent = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                    t.consentUpdates().take(2).toList()
                }
                t.recordConsent(
                    listOf(ConsentChoice(Purpose.MARKETING_OFFERS, Channel.PUSH, Decision.GRANTED)),
                    ConsentText("streams-1", "Offers by push."),
                )
                val c = consent.await()
                val push = { s: List<app.tessera.domain.ConsentStatus> ->
                    s.first { it.purpose == Purpose.MARKETING_OFFERS && it.channel == Channel.PUSH }.allowed
                }
                assertEq(push(c[0]), false)
                assertEq(push(c[1]), true)

                val points = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                    t.pointsUpdates().first()
                }
                assertEq(points.await(), t.points())
                val challenges = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                    t.challengesUpdates().take(2).toList()
                }
                t.recordEvent(EventKind.APP_OPENED, null, emptyMap())
                assertEq(challenges.await().size, 2)
            }
        }
        t.shutdown()
    }
}
