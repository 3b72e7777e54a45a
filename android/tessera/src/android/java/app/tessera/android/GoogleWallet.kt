package app.tessera.android

import android.content.ActivityNotFoundException
import android.content.Context
import android.content.Intent
import android.net.Uri

/**
 * Opens a "Save to Google Wallet" link (from `Tessera.googleWalletLink()`): the Google Wallet app
 * takes it where installed, the browser otherwise (Google's save page). Use Google's official
 * button artwork in the app for the entry point, as Google's brand guidelines ask.
 */
object GoogleWallet {
    /** True if something on the device can open the link. */
    fun open(context: Context, link: String): Boolean {
        require(link.startsWith("https://pay.google.com/")) { "not a Google Wallet save link" }
        val intent = Intent(Intent.ACTION_VIEW, Uri.parse(link)).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK)
        return try {
            context.startActivity(intent)
            true
        } catch (e: ActivityNotFoundException) {
            false
        }
    }
}
