// Challenges and badges from Kotlin, against the real `tessera serve`: the rule set arrives with
// the catalog feed, events recorded offline move progress at once (an estimate), the server's
// evaluation replaces it after sync and pays the reward once.

import app.tessera.ActionException
import app.tessera.Tessera
import app.tessera.domain.EventKind
import app.tessera.domain.PointsKind
import app.tessera.domain.RuleReward
import java.io.File
import java.net.HttpURLConnection
import java.net.URI

/** Put the programme's challenges with the operator's token (tessera serve's default). */
fun putChallenges(serverUrl: String, json: String) {
    val http = URI("$serverUrl/admin/v1/challenges").toURL().openConnection() as HttpURLConnection
    http.requestMethod = "PUT"
    http.doOutput = true
    http.setRequestProperty("Authorization", "Bearer tessera-admin")
    http.setRequestProperty("Content-Type", "application/json")
    http.outputStream.use { it.write(json.toByteArray()) }
    assertEq(http.responseCode, 204)
}

// Kinds no other test records, so that the shared server's other members are not affected.
const val KOTLIN_CHALLENGES = """{"version": 1, "challenges": [
  {"id": "kt-share", "title": "Share twice", "badge": "megaphone",
   "window": {"type": "calendar_month"},
   "goal": {"type": "count", "target": 2, "filter": {"kinds": ["social_share"]}},
   "reward": {"type": "points", "points": 30}},
  {"id": "kt-newsletter", "title": "Subscribe", "opt_in": true,
   "window": {"type": "rolling_days", "days": 30},
   "goal": {"type": "count", "target": 1, "filter": {"kinds": ["newsletter_subscribed"]}},
   "reward": {"type": "badge"}, "badge": "envelope"}
]}"""

fun challengeTests(serverUrl: String) {
    check("challenges: offline estimate, server evaluation, reward paid once, badges") {
        putChallenges(serverUrl, KOTLIN_CHALLENGES)
        val t = phone(File(dir, "challenge-member.db").path)
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Chloé Martin", device)
        t.sync()
        val before = t.challenges().challenges.first { it.challengeId == "kt-share" }
        assertEq(before.done to before.target, 0uL to 2uL)
        assertEq(before.reward, RuleReward.Points(30uL))
        assertTrue(before.deadline != null, "a calendar month has a deadline")

        repeat(2) { t.recordEvent(EventKind.SOCIAL_SHARE, null, emptyMap()) }
        val offline = t.challenges()
        assertTrue(offline.estimated, "unsent events count at once")
        val share = offline.challenges.first { it.challengeId == "kt-share" }
        assertTrue(share.completed && share.left == 0uL, "$share")
        assertEq(offline.badges.map { it.badge }, listOf("megaphone"))

        t.sync()
        val synced = t.challenges()
        assertTrue(!synced.estimated, "the server's answer after sync")
        assertEq(synced.badges.map { it.challengeId }, listOf("kt-share"))
        assertEq(t.points().ledger.filter { it.kind == PointsKind.BONUS }.map { it.points }, listOf(30L))
        t.recordEvent(EventKind.SOCIAL_SHARE, null, emptyMap())
        t.sync()
        assertEq(t.points().ledger.count { it.kind == PointsKind.BONUS }, 1)

        // Opt-in: nothing counts before joining; joining works offline.
        t.recordEvent(EventKind.NEWSLETTER_SUBSCRIBED, null, emptyMap())
        assertTrue(!t.challenges().challenges.first { it.challengeId == "kt-newsletter" }.completed, "not joined")
        t.joinChallenge("kt-newsletter")
        Thread.sleep(5)
        t.recordEvent(EventKind.NEWSLETTER_SUBSCRIBED, null, emptyMap())
        assertTrue(t.challenges().challenges.first { it.challengeId == "kt-newsletter" }.completed, "joined, then subscribed")
        t.sync()
        assertEq(t.challenges().badges.map { it.badge }, listOf("megaphone", "envelope"))
        assertThrows<ActionException.InvalidInput> { t.joinChallenge("no-such") }
        assertThrows<ActionException.InvalidInput> { t.joinChallenge("not an id") }
    }
}
