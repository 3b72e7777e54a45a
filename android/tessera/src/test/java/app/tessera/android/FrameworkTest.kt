package app.tessera.android

import android.app.Activity
import android.app.NotificationManager
import android.content.Intent
import android.graphics.Bitmap
import android.graphics.Canvas
import android.view.View
import android.view.WindowManager
import app.tessera.Tessera
import app.tessera.core.OfferNotification
import app.tessera.domain.MemberCard
import app.tessera.domain.Program
import app.tessera.domain.Symbology
import app.tessera.renderBarcode
import com.google.zxing.BinaryBitmap
import com.google.zxing.DecodeHintType
import com.google.zxing.MultiFormatReader
import com.google.zxing.RGBLuminanceSource
import com.google.zxing.common.HybridBinarizer
import java.nio.file.Files
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.GraphicsMode

/**
 * The package's Android-framework code under Robolectric (Android 14's framework on the JVM, real
 * Canvas drawing with native graphics), over the real Rust core through JNA: the card view's
 * pixels are decoded by ZXing, a different decoder from the core's own checks.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
@GraphicsMode(GraphicsMode.Mode.NATIVE)
class FrameworkTest {
    private fun draw(view: View, width: Int, height: Int): Bitmap {
        view.measure(
            View.MeasureSpec.makeMeasureSpec(width, View.MeasureSpec.EXACTLY),
            View.MeasureSpec.makeMeasureSpec(height, View.MeasureSpec.EXACTLY),
        )
        view.layout(0, 0, width, height)
        val bitmap = Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888)
        view.draw(Canvas(bitmap))
        return bitmap
    }

    private fun decode(bitmap: Bitmap): com.google.zxing.Result {
        val pixels = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        val source = RGBLuminanceSource(bitmap.width, bitmap.height, pixels)
        return MultiFormatReader().decode(
            BinaryBitmap(HybridBinarizer(source)),
            mapOf(DecodeHintType.PURE_BARCODE to false, DecodeHintType.TRY_HARDER to true),
        )
    }

    @Test
    fun theCardViewDrawsACodeAScannerReads() {
        val dir = Files.createTempDirectory("tessera-robolectric").toFile()
        val t = Tessera.open(dir.resolve("card.db").path)
        t.setProgram(Program("maison-dupont", "Maison Dupont", "#0a7d5a", Symbology.EAN13))
        val card = t.setCard(MemberCard("400638133393", "Ada Lovelace", "2021-03-04", "Gold"))
        t.shutdown()
        dir.deleteRecursively()

        val activity = Robolectric.buildActivity(Activity::class.java).setup().get()
        val view = CardCodeView(activity)
        view.matrix = card.barcode
        val ean = decode(draw(view, 1080, 400))
        assertEquals(com.google.zxing.BarcodeFormat.EAN_13, ean.barcodeFormat)
        assertEquals(card.barcode.encodedValue, ean.text)

        view.matrix = renderBarcode(Symbology.QR, "TESSERA-MEMBER-400638133393")
        val qr = decode(draw(view, 600, 600))
        assertEquals(com.google.zxing.BarcodeFormat.QR_CODE, qr.barcodeFormat)
        assertEquals("TESSERA-MEMBER-400638133393", qr.text)

        // Too small for a readable code: nothing is drawn rather than a code no scanner reads.
        val blank = draw(view, 20, 20)
        assertTrue((0 until 20).all { x -> (0 until 20).all { y -> blank.getPixel(x, y) == -1 } })
    }

    @Test
    fun theCardViewKeepsTheScreenOnAtFullBrightnessWhileShown() {
        val activity = Robolectric.buildActivity(Activity::class.java).setup().get()
        val before = activity.window.attributes.screenBrightness
        val view = CardCodeView(activity)
        activity.setContentView(view)
        shadowOf(android.os.Looper.getMainLooper()).idle()
        assertTrue(view.keepScreenOn)
        assertEquals(WindowManager.LayoutParams.BRIGHTNESS_OVERRIDE_FULL, activity.window.attributes.screenBrightness)
        activity.setContentView(View(activity))
        shadowOf(android.os.Looper.getMainLooper()).idle()
        assertFalse(view.keepScreenOn)
        assertEquals(before, activity.window.attributes.screenBrightness)
    }

    @Test
    fun anOfferNotificationIsPostedOnItsChannelAndOpensTheDeepLink() {
        val activity = Robolectric.buildActivity(Activity::class.java).setup().get()
        val notifier = OfferNotifier(activity, android.R.drawable.ic_dialog_info)
        val manager = activity.getSystemService(NotificationManager::class.java)
        val shadow = shadowOf(manager)
        val n = OfferNotification("Tea time", "−20 % this week", "of-1", "st-1", "tessera://offer/of-1?store=st-1")
        assertTrue(notifier.show(n))
        assertTrue(notifier.show(n.copy(body = "−25 % this week"))) // the same offer: replaced
        assertEquals(1, shadow.allNotifications.size)
        val posted = shadow.allNotifications.single()
        assertEquals(OfferNotifier.CHANNEL_ID, posted.channelId)
        assertEquals("Tea time", posted.extras.getString("android.title"))
        assertEquals("−25 % this week", posted.extras.getCharSequence("android.text").toString())
        val tap = shadowOf(posted.contentIntent).savedIntent
        assertEquals(Intent.ACTION_VIEW, tap.action)
        assertEquals("tessera://offer/of-1?store=st-1", tap.dataString)
        assertEquals(activity.packageName, tap.`package`)

        // The member turned notifications off: the OS refuses, the caller is told.
        shadow.setNotificationsEnabled(false)
        assertFalse(notifier.show(n.copy(offerId = "of-2")))
        assertEquals(1, shadow.allNotifications.size)
    }

    @Test
    fun theRegisteredRegionsSurviveAProcessAndAreClearedAfterABoot() {
        val activity = Robolectric.buildActivity(Activity::class.java).setup().get()
        PreferencesRegions(activity).save(setOf("store:a", "replan:1,2,3"))
        assertEquals(setOf("store:a", "replan:1,2,3"), PreferencesRegions(activity).load())
        PreferencesRegions(activity).clear()
        assertEquals(emptySet<String>(), PreferencesRegions(activity).load())
        assertNull(activity.getSharedPreferences("tessera.geofences", 0).getStringSet("registered", null))
    }
}
