package app.tessera.android

import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.net.Uri
import android.app.Notification
import app.tessera.OfferNotifications
import app.tessera.core.OfferNotification

/**
 * Shows the core's offer notifications through the framework's NotificationManager, on one
 * channel the member can turn off in the system settings. A tap opens the offer's deep link
 * (`tessera://offer/<id>?store=<id>`) in this app, offline too. One notification per offer: a
 * second about the same offer replaces the first. The core has already applied consent, quiet
 * hours, caps and cooldowns; this only asks the OS.
 */
class OfferNotifier(
    private val context: Context,
    /** The app's small notification icon (a drawable resource id). */
    private val smallIcon: Int,
    private val channelName: CharSequence = "Offers",
) : OfferNotifications {
    private val manager = context.getSystemService(NotificationManager::class.java)

    init {
        val channel = NotificationChannel(CHANNEL_ID, channelName, NotificationManager.IMPORTANCE_DEFAULT)
        manager.createNotificationChannel(channel)
    }

    override fun show(notification: OfferNotification): Boolean {
        // Notifications off for the app, or the channel off (Android 13+: permission not granted).
        if (!manager.areNotificationsEnabled()) return false
        if (manager.getNotificationChannel(CHANNEL_ID)?.importance == NotificationManager.IMPORTANCE_NONE) return false
        val open = Intent(Intent.ACTION_VIEW, Uri.parse(notification.deepLink)).setPackage(context.packageName)
        val tap = PendingIntent.getActivity(
            context,
            notification.offerId.hashCode(),
            open,
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
        val built = Notification.Builder(context, CHANNEL_ID)
            .setSmallIcon(smallIcon)
            .setContentTitle(notification.title)
            .setContentText(notification.body)
            .setStyle(Notification.BigTextStyle().bigText(notification.body))
            .setContentIntent(tap)
            .setAutoCancel(true)
            .build()
        manager.notify(TAG_PREFIX + notification.offerId, 0, built)
        return true
    }

    companion object {
        const val CHANNEL_ID = "tessera.offers"
        const val TAG_PREFIX = "tessera.offer:"
    }
}
