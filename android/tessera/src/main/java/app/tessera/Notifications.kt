package app.tessera

import app.tessera.core.OfferNotification

/**
 * Shows the notifications the core decided on. The Android package implements it over the
 * framework's `NotificationManager` (`app.tessera.android.OfferNotifier`); tests record them.
 */
fun interface OfferNotifications {
    /** Shows `notification`; false when the OS refuses (notifications off for the app). */
    fun show(notification: OfferNotification): Boolean
}
