package app.tessera

import app.tessera.core.MemberCodeUnavailable
import app.tessera.core.MemberCodeView
import app.tessera.core.WalletKind
import app.tessera.domain.Position
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.flowOn
import kotlinx.coroutines.withContext

/** What the card screen shows: the rotating member code, or the static card when there is none. */
sealed interface CardCode {
    /** Draw [view]'s matrix; it is replaced at `view.changesAt`. */
    data class Rotating(val view: MemberCodeView) : CardCode

    /**
     * No rotating code now ([reason]: not certified yet, the certificate ended while offline, the
     * key gone with a restored phone, not enrolled): show the static card (`Tessera.card()`).
     */
    data class Static(val reason: MemberCodeUnavailable) : CardCode
}

/** The card screen's code now, made offline (about 1 ms: the signature and the QR matrix). */
fun Tessera.cardCode(): CardCode =
    try {
        CardCode.Rotating(memberCode())
    } catch (e: MemberCodeUnavailable) {
        CardCode.Static(e)
    }

/**
 * The card screen's code as a cold [Flow]: a new code when the core says the step ends (every
 * 30 s by default), made offline on [Dispatchers.Default]; while there is none, the static card,
 * asked again every [retryStaticMs] (a sync may bring the certificate). Collect it while the card
 * is on screen (`repeatOnLifecycle(STARTED)`): nothing runs when nobody looks.
 */
fun Tessera.memberCodes(retryStaticMs: Long = 60_000): Flow<CardCode> =
    flow {
        while (true) {
            val code = cardCode()
            emit(code)
            delay(
                when (code) {
                    is CardCode.Rotating -> code.view.changesInMs.toLong().coerceAtLeast(1)
                    is CardCode.Static -> retryStaticMs
                },
            )
        }
    }.flowOn(Dispatchers.Default)

/**
 * "Save to Google Wallet": the signed link for the member's card (or one of their coupons) to
 * open (`GoogleWallet.open` on Android). [near]: the member's position, so that the pass lists
 * the nearest shops. The object then follows points, tier and coupons by itself.
 */
suspend fun Tessera.googleWalletLink(couponId: String? = null, near: Position? = null): String =
    withContext(Dispatchers.IO) { walletPass(WalletKind.GOOGLE, couponId, near).toString(Charsets.UTF_8) }
