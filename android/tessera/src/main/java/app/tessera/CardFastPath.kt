package app.tessera

import app.tessera.core.CardView
import app.tessera.core.FfiConverterTypeCardView
import java.nio.ByteBuffer

/**
 * The card screen at a cold start without JNA: one JNI call into the library (loaded with
 * `System.loadLibrary`, no JNA), whose answer the generated converter reads. Use it for the very
 * first card of a process (the member at the till, the app just opened); everything else goes
 * through [Tessera]. `null` when there is no card to show (not enrolled, no library, a damaged
 * file): then call `Tessera.open(path).card()`, which says why with a typed error. ADR 0021.
 */
object CardFastPath {
    private val loaded: Boolean = try {
        System.loadLibrary("tessera_ffi")
        true
    } catch (e: UnsatisfiedLinkError) {
        false
    }

    @JvmStatic
    private external fun cardBytes(path: String): ByteArray?

    fun card(path: String): CardView? {
        if (!loaded) return null
        val bytes = cardBytes(path) ?: return null
        return FfiConverterTypeCardView.read(ByteBuffer.wrap(bytes))
    }
}
