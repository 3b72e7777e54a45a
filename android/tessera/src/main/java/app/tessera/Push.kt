package app.tessera

import app.tessera.core.PushDecision

/**
 * A push message (an FCM data message's map, or APNs `userInfo` turned into strings) through the
 * core's decision: show the offer's notification, suppress it (consent, quiet hours, caps,
 * duplicates: all decided by the core), or sync now. The FCM service in src/play calls
 * [onMessage]; so can any other push provider.
 */
class PushRouter(
    private val tessera: Tessera,
    private val notifications: OfferNotifications,
    /** Starts a sync soon (WorkManager's expedited work on Android). */
    private val requestSync: () -> Unit,
) {
    sealed interface Handled {
        data class Shown(val offerId: String) : Handled
        /** The core decided not to show it; `decision` says why. */
        data class Suppressed(val decision: PushDecision.Suppress) : Handled
        /** The OS refused to show a notification the core allowed (notifications off). */
        data class Refused(val offerId: String) : Handled
        data object SyncRequested : Handled
        /** Not a Tessera message: leave it to the app's other handlers. */
        data object NotOurs : Handled
        /** A Tessera message the core refused (malformed, newer version, no member): nothing shown. */
        data class Invalid(val error: PushException) : Handled
    }

    fun onMessage(data: Map<String, String>, receivedAtMs: Long): Handled {
        val decision = try {
            tessera.handlePush(jsonObject(data), receivedAtMs)
        } catch (e: PushException.NotTessera) {
            return Handled.NotOurs
        } catch (e: PushException) {
            // Never an exception out of the push service: the OS would kill the app for it.
            return Handled.Invalid(e)
        }
        return when (decision) {
            is PushDecision.Show -> {
                // Marked as a push's, so that a tap on it is reported as one ([opened]).
                val shown = decision.notification.copy(deepLink = fromPush(decision.notification.deepLink))
                if (notifications.show(shown)) {
                    Handled.Shown(shown.offerId)
                } else {
                    Handled.Refused(shown.offerId)
                }
            }
            is PushDecision.Suppress -> Handled.Suppressed(decision)
            PushDecision.SyncNow -> {
                requestSync()
                Handled.SyncRequested
            }
        }
    }

    /**
     * The member opened a notification: call it with the deep link the app was opened with. A
     * push's notification (marked by [onMessage]) is reported as the `push_opened` analytics event
     * the console counts as a push acted on; true if it was (the member consented to analytics).
     * Other links (a geofence's notification, a link from elsewhere) report nothing.
     */
    fun opened(deepLink: String): Boolean {
        if (!deepLink.contains("via=push")) return false
        val offerId = deepLink.removePrefix("tessera://offer/").substringBefore('?')
        return tessera.track("push_opened", mapOf("offer_id" to offerId))
    }

    companion object {
        /** The deep link of a push's notification: the offer's, marked `via=push`. */
        fun fromPush(deepLink: String): String =
            deepLink + (if (deepLink.contains('?')) "&" else "?") + "via=push"

        /** A flat JSON object of strings (FCM data is `Map<String, String>`). */
        fun jsonObject(data: Map<String, String>): String = buildString {
            append('{')
            data.entries.forEachIndexed { i, (k, v) ->
                if (i > 0) append(',')
                appendJsonString(k)
                append(':')
                appendJsonString(v)
            }
            append('}')
        }

        private fun StringBuilder.appendJsonString(s: String) {
            append('"')
            for (c in s) {
                when {
                    c == '"' -> append("\\\"")
                    c == '\\' -> append("\\\\")
                    c < ' ' -> append("\\u%04x".format(c.code))
                    else -> append(c)
                }
            }
            append('"')
        }
    }
}
