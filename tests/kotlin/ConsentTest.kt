// The consent screen and the preference centre from Kotlin, against the real `tessera serve`
// that tests/kotlin/run.sh starts (TESSERA_SERVER_URL).

import app.tessera.ActionException
import app.tessera.Tessera
import app.tessera.consentTextSha256
import app.tessera.domain.Channel
import app.tessera.core.ConsentChoice
import app.tessera.domain.ConsentText
import app.tessera.domain.Decision
import app.tessera.domain.Feature
import app.tessera.domain.FrequencyCap
import app.tessera.domain.NotificationRequest
import app.tessera.domain.NotificationVerdict
import app.tessera.domain.Purpose
import java.io.File

val consentText = ConsentText("consent-2026-11", "Offers by push and e-mail; change your mind at any time.")

fun consentTests(serverUrl: String) {
    check("consent grid, withdrawal in one call, and the gate") {
        val t = phone(File(dir, "consent.db").path)
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Chloé Martin", device)
        assertEq(t.consentState().size, 20)
        assertEq(t.permits(Feature.PUSH_OFFERS), false)
        val records = t.recordConsent(
            listOf(ConsentChoice(Purpose.MARKETING_OFFERS, Channel.PUSH, Decision.GRANTED),
                   ConsentChoice(Purpose.PERSONALISATION, Channel.IN_APP, Decision.GRANTED)),
            consentText)
        assertEq(records.first().textSha256, consentTextSha256(consentText))
        assertEq(t.permits(Feature.PUSH_OFFERS), true)
        assertEq(t.offers(100u).personalised, true)
        assertEq(t.withdrawAllConsents(consentText).size, 2)
        assertEq(t.permits(Feature.PUSH_OFFERS), false)
        assertEq(t.offers(100u).personalised, false)
        t.sync()
        assertTrue(t.consentHistory().all { it.recordedAt != null }, "the server stamped every record")
        t.shutdown()
    }

    check("preference centre: round trip, interests, caps, typed errors") {
        val t = phone(File(dir, "prefs.db").path)
        t.setSyncSettings(fast)
        t.enrol(serverUrl, "Chloé Martin", device)
        val prefs = t.preferences().copy(
            interests = listOf("tea"),
            caps = listOf(FrequencyCap(Channel.PUSH, 1u, null)),
            quietHours = null,
            timezone = "Europe/Paris",
            language = "fr-FR")
        assertEq(t.setPreferences(prefs), prefs)
        t.sync()
        assertEq(t.memberState()!!.state.preferences, prefs)
        t.recordConsent(listOf(ConsentChoice(Purpose.MARKETING_OFFERS, Channel.PUSH, Decision.GRANTED)), consentText)
        val coffee = NotificationRequest(Purpose.MARKETING_OFFERS, Channel.PUSH, listOf("coffee"))
        val tea = NotificationRequest(Purpose.MARKETING_OFFERS, Channel.PUSH, listOf("tea"))
        assertEq(t.claimNotification(coffee), NotificationVerdict.NotOfInterest)
        assertEq(t.claimNotification(tea), NotificationVerdict.Send)
        assertEq(t.claimNotification(tea), NotificationVerdict.CapReached(true))
        val bad = assertThrows<ActionException.InvalidInput> { t.setPreferences(prefs.copy(language = "not a tag")) }
        assertEq(bad.field, "preferences.language")
        t.shutdown()
    }
}
