// The wallet and the till from Kotlin, against the real `tessera serve` that tests/kotlin/run.sh
// starts: clip, redeem once, typed refusals, a till offline that journals and reports later, a
// purchase that earns points the member's app then shows.

import app.tessera.HttpUrlConnectionClient
import app.tessera.Till
import app.tessera.TillException
import app.tessera.Tessera
import app.tessera.domain.CouponException
import app.tessera.domain.CouponState
import app.tessera.domain.PointsKind
import app.tessera.domain.PurchaseLine
import app.tessera.domain.PurchaseRequest
import app.tessera.HttpClient
import app.tessera.core.HttpRequest
import app.tessera.core.HttpResponse
import java.io.File
import java.net.HttpURLConnection
import java.net.URI
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

/** Register a till of `store` with the operator's token (tessera serve's default); its token. */
fun registerTill(serverUrl: String, store: String): String {
    val http = URI("$serverUrl/admin/v1/tills").toURL().openConnection() as HttpURLConnection
    http.requestMethod = "POST"
    http.doOutput = true
    http.setRequestProperty("Authorization", "Bearer tessera-admin")
    http.setRequestProperty("Content-Type", "application/json")
    http.outputStream.use { it.write("""{"store_id":"$store"}""".toByteArray()) }
    assertEq(http.responseCode, 201)
    val body = http.inputStream.bufferedReader().readText()
    return Regex(""""token"\s*:\s*"([^"]+)"""").find(body)!!.groupValues[1]
}

fun tillTests(serverUrl: String) {
    check("the wallet and the till: redeem once, refusals, offline journal, points") {
        val t = phone(File(dir, "till-member.db").path)
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Chloé Martin", device)
        t.clipOffer("of-009")
        t.sync()
        val coupon = t.wallet().first { it.offerId == "of-009" }
        assertEq(coupon.state, CouponState.Available)

        val token = registerTill(serverUrl, "st-paris-01")
        val journal = File(dir, "paris.journal").path
        val till = Till.open(journal, serverUrl, token, "st-paris-01", HttpUrlConnectionClient())
        assertEq(till.verify(coupon.code, null, 2500uL).offerId, "of-009")
        assertThrows<TillException.Coupon> { till.verify(coupon.code, "m_other", 2500uL) }
        val done = till.redeem(coupon.code, 2500uL, "KT-1")
        assertTrue(done != null && done.storeId == "st-paris-01", "redeemed online: $done")
        val again = assertThrows<TillException.Coupon> { till.redeem(coupon.code, 2500uL, "KT-2") }
        assertTrue(again.problem is CouponException.AlreadyRedeemed, "${again.problem}")
        assertThrows<TillException.InvalidInput> { till.redeem(coupon.code, 2500uL, "") }
        t.sync()
        assertTrue(t.wallet().first { it.code == coupon.code }.state is CouponState.Redeemed, "wallet learns it")

        // The phone's rotating code, scanned: the till checks it offline, names the card, and
        // flags the same step scanned twice.
        val scanned = till.scanMember(t.memberCode().code)
        assertEq(scanned.cardNumber, t.card().cardNumber)
        assertTrue(till.scanMember(scanned.code).seenBefore, "a second scan of one step is flagged")
        assertThrows<TillException.MemberCode> { till.scanMember("TM1:" + "A".repeat(40)) }

        // The same till offline (no server on that port): a purchase is journaled, then reported.
        val offline = Till.open(journal, "http://127.0.0.1:9", token, "st-paris-01", HttpUrlConnectionClient())
        val purchase = PurchaseRequest("KT-3", t.card().cardNumber, null,
            listOf(PurchaseLine("sku-tea-1", "tea", null, 2u, 4599uL)), 4599uL, null)
        assertEq(offline.recordPurchase(purchase), null)
        assertEq(offline.pending(), 1u)
        val report = Till.open(journal, serverUrl, token, "st-paris-01", HttpUrlConnectionClient()).sync()
        assertEq(report.accepted, 1u)
        assertEq(report.pending, 0u)
        t.sync()
        val points = t.points()
        assertEq(points.balance, 45uL)
        assertEq(points.ledger.first().kind, PointsKind.EARN)
        assertEq(t.tierProgress()?.nextTier, "Silver")
        t.shutdown()
    }
}

fun tillAsyncTests(serverUrl: String) {
    check("suspend redeem: online; cancelled while the server is asked, the redemption still happens once") {
        fun member(name: String): Tessera = enrolled(serverUrl, "$name.db", name).also {
            it.clipOffer("of-009")
            it.sync()
        }
        fun Tessera.coupon() = wallet().first { it.offerId == "of-009" }
        val token = registerTill(serverUrl, "st-paris-01")
        val real = HttpUrlConnectionClient()
        val asking = CountDownLatch(1)
        val answer = CountDownLatch(1)
        var hold = false
        val gated = object : HttpClient {
            override fun send(request: HttpRequest): HttpResponse {
                if (hold && request.url.contains("redemptions")) {
                    asking.countDown()
                    answer.await(10, TimeUnit.SECONDS)
                }
                return real.send(request)
            }
        }
        val till = Till.open(File(dir, "async.journal").path, serverUrl, token, "st-paris-01", gated)
        runBlocking {
            val first = till.redeemAsync(member("Async One").coupon().code, 2500uL, "KT-A1")
            assertTrue(first != null && first.storeId == "st-paris-01", "redeemed online: $first")

            val two = member("Async Two")
            val second = two.coupon().code
            hold = true
            val job = launch(Dispatchers.Default) { till.redeemAsync(second, 2500uL, "KT-A2") }
            assertTrue(asking.await(10, TimeUnit.SECONDS), "the till asked the server")
            val t0 = System.nanoTime()
            job.cancelAndJoin()
            val waited = (System.nanoTime() - t0) / 1e6
            assertTrue(waited < 1000, "the coroutine ended at once: $waited ms")
            answer.countDown()
            // The redemption went through anyway, on its own thread: the member's app learns it.
            var state: CouponState? = null
            for (i in 0 until 50) {
                two.sync()
                state = two.coupon().state
                if (state is CouponState.Redeemed) break
                Thread.sleep(100)
            }
            assertTrue(state is CouponState.Redeemed, "spent: $state")
            assertEq(till.pending(), 0u) // online, not journaled
            two.shutdown()
        }
    }
}
