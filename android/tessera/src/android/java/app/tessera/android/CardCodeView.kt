package app.tessera.android

import android.app.Activity
import android.content.Context
import android.content.ContextWrapper
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View
import android.view.WindowManager
import app.tessera.BarcodeLayout
import app.tessera.core.BarcodeMatrix

/**
 * The member's barcode, drawn natively from the core's module matrix (no image decoded, nothing
 * fetched): whole pixels per module on white, the quiet zone kept (BarcodeLayout). While it is on
 * screen the screen stays on and, inside an Activity, the window is at full brightness, as a till
 * imager needs; both are restored when it leaves. Set [matrix] from `Tessera.card().barcode`.
 */
class CardCodeView @JvmOverloads constructor(
    context: Context,
    attrs: AttributeSet? = null,
) : View(context, attrs) {
    var matrix: BarcodeMatrix? = null
        set(value) {
            field = value
            invalidate()
        }

    /** Whether to raise the window's brightness while shown (on by default). */
    var fullBrightness: Boolean = true

    private val dark = Paint().apply {
        color = Color.BLACK
        style = Paint.Style.FILL
        isAntiAlias = false
    }
    private var savedBrightness: Float? = null

    override fun onDraw(canvas: Canvas) {
        canvas.drawColor(Color.WHITE)
        val m = matrix ?: return
        val layout = BarcodeLayout.fit(m, width - paddingLeft - paddingRight, height - paddingTop - paddingBottom)
            ?: return
        layout.forEachDarkRect(m, paddingLeft, paddingTop) { left, top, right, bottom ->
            canvas.drawRect(left.toFloat(), top.toFloat(), right.toFloat(), bottom.toFloat(), dark)
        }
    }

    override fun onAttachedToWindow() {
        super.onAttachedToWindow()
        keepScreenOn = true
        val window = activity()?.window ?: return
        if (!fullBrightness) return
        val attrs = window.attributes
        savedBrightness = attrs.screenBrightness
        attrs.screenBrightness = WindowManager.LayoutParams.BRIGHTNESS_OVERRIDE_FULL
        window.attributes = attrs
    }

    override fun onDetachedFromWindow() {
        keepScreenOn = false
        val saved = savedBrightness
        val window = activity()?.window
        if (saved != null && window != null) {
            val attrs = window.attributes
            attrs.screenBrightness = saved
            window.attributes = attrs
        }
        savedBrightness = null
        super.onDetachedFromWindow()
    }

    private fun activity(): Activity? {
        var c: Context? = context
        while (c is ContextWrapper) {
            if (c is Activity) return c
            c = c.baseContext
        }
        return null
    }
}
