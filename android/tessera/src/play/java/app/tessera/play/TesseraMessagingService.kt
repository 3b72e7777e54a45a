package app.tessera.play

// Needs Firebase Cloud Messaging (com.google.firebase:firebase-messaging): Gradle with Google's
// Maven only.

import app.tessera.domain.PushProvider
import com.google.firebase.messaging.FirebaseMessagingService
import com.google.firebase.messaging.RemoteMessage

/**
 * FCM into the core: a data message goes through [app.tessera.PushRouter] (show, suppress or sync
 * now, as the core decides); a new token is handed to the core, which sends it at the next sync.
 * Declare it in the app's manifest with the `com.google.firebase.MESSAGING_EVENT` action.
 */
class TesseraMessagingService : FirebaseMessagingService() {
    override fun onMessageReceived(message: RemoteMessage) {
        TesseraPlatform.get(this).push.onMessage(message.data, message.sentTime.takeIf { it > 0 } ?: System.currentTimeMillis())
    }

    override fun onNewToken(token: String) {
        val platform = TesseraPlatform.get(this)
        if (platform.tessera.setPushToken(PushProvider.FCM, token)) SyncWorker.syncSoon(this)
    }
}
