package app.tessera.sample

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.graphics.Typeface
import android.location.LocationManager
import android.os.Bundle
import android.widget.Button
import android.widget.CheckBox
import android.widget.HorizontalScrollView
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import app.tessera.ActionException
import app.tessera.CardCode
import app.tessera.CardException
import app.tessera.cardCode
import app.tessera.googleWalletLink
import app.tessera.HttpUrlConnectionClient
import app.tessera.Tessera
import app.tessera.android.CardCodeView
import app.tessera.android.GoogleWallet
import app.tessera.android.KeystoreSecretStore
import app.tessera.core.ConsentChoice
import app.tessera.domain.Channel
import app.tessera.domain.ConsentText
import app.tessera.domain.Decision
import app.tessera.domain.DeviceInfo
import app.tessera.domain.Platform
import app.tessera.domain.Position
import app.tessera.domain.Purpose
import app.tessera.domain.Symbology
import app.tessera.renderBarcode
import java.io.File
import kotlin.concurrent.thread

/**
 * The sample app: first-launch consent, the card, offers near me, the wallet with coupon codes,
 * challenges and badges, points and tier, the preference centre. One screen each, built from
 * framework views so it stays readable and compiles anywhere; a real app swaps in its own UI.
 * The core is opened once; slow calls (enrol, sync) run off the main thread, reads are instant.
 */
class SampleActivity : Activity() {
    private lateinit var tessera: Tessera
    private lateinit var content: LinearLayout

    /** The server the sample talks to: the emulator's view of `tessera serve` on the host. */
    private val serverUrl = "http://10.0.2.2:8080"
    private val consentText = ConsentText("sample-2026-11", "Offers by push and near our shops; change your mind at any time.")

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        tessera = Tessera.open(File(noBackupFilesDir, "tessera.db").path)
        tessera.setHttpClient(HttpUrlConnectionClient())
        tessera.setSecretStore(KeystoreSecretStore(this))

        val tabs = LinearLayout(this)
        val screens = listOf(
            "Card" to ::showCard, "Near me" to ::showOffers, "Wallet" to ::showWallet,
            "Challenges" to ::showChallenges, "Points" to ::showPoints, "Preferences" to ::showPreferences,
        )
        for ((label, show) in screens) tabs.addView(Button(this).apply { text = label; setOnClickListener { show() } })
        content = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(32, 32, 32, 32) }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(HorizontalScrollView(this@SampleActivity).apply { addView(tabs) })
            addView(ScrollView(this@SampleActivity).apply { addView(content) })
        })
        if (tessera.consentState().all { it.decision == null }) showConsent() else showCard()
    }

    override fun onDestroy() {
        tessera.shutdown()
        super.onDestroy()
    }

    private fun screen(title: String): LinearLayout {
        content.removeAllViews()
        content.addView(TextView(this).apply { text = title; textSize = 22f; setTypeface(typeface, Typeface.BOLD) })
        return content
    }

    private fun line(text: String) = content.addView(TextView(this).apply { this.text = text; textSize = 16f })

    /** Slow work off the main thread; the result (or the typed error's message) back on it. */
    private fun <T> background(work: () -> T, done: (T) -> Unit) = thread {
        val result = runCatching(work)
        runOnUiThread { result.fold(done) { line("⚠ ${it.javaClass.simpleName}: ${it.message}") } }
    }

    private fun showConsent() {
        screen("Welcome")
        line(consentText.text)
        val push = CheckBox(this).apply { text = "Offers by push notification" }
        val geo = CheckBox(this).apply { text = "Offers when I am near a shop" }
        content.addView(push)
        content.addView(geo)
        content.addView(Button(this).apply {
            text = "Continue"
            setOnClickListener {
                fun d(on: Boolean) = if (on) Decision.GRANTED else Decision.DENIED
                tessera.recordConsent(listOf(
                    ConsentChoice(Purpose.MARKETING_OFFERS, Channel.PUSH, d(push.isChecked)),
                    ConsentChoice(Purpose.GEOLOCATED_OFFERS, Channel.LOCATION, d(geo.isChecked)),
                    ConsentChoice(Purpose.GEOLOCATED_OFFERS, Channel.PUSH, d(geo.isChecked)),
                ), consentText)
                if (geo.isChecked) requestPermissions(arrayOf(Manifest.permission.ACCESS_FINE_LOCATION), 1)
                background({ tessera.enrol(serverUrl, "Sample Member", DeviceInfo(Platform.ANDROID, "0.1.0")); tessera.sync() }) { showCard() }
            }
        })
    }

    private fun showCard() {
        screen("My card")
        try {
            val card = tessera.card()
            line("${card.programName} · ${card.holderName}")
            line(card.displayNumber)
            // The rotating member code (a screenshot cannot replay it), redrawn at each step's
            // end; the static barcode when there is none yet.
            val code = CardCodeView(this).apply { minimumHeight = 400 }
            val hint = TextView(this)
            content.addView(code, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 400))
            content.addView(hint)
            fun redraw() {
                if (!code.isAttachedToWindow && code.matrix != null) return
                when (val now = tessera.cardCode()) {
                    is CardCode.Rotating -> {
                        code.matrix = now.view.matrix
                        hint.text = "Changes in ${now.view.changesInMs / 1000u} s"
                        code.postDelayed({ redraw() }, now.view.changesInMs.toLong().coerceAtLeast(1))
                    }
                    is CardCode.Static -> {
                        code.matrix = card.barcode
                        hint.text = card.displayNumber
                    }
                }
            }
            redraw()
            content.addView(Button(this).apply {
                text = "Save to Google Wallet"
                setOnClickListener {
                    background({ kotlinx.coroutines.runBlocking { tessera.googleWalletLink(near = lastPosition()) } }) {
                        GoogleWallet.open(this@SampleActivity, it)
                    }
                }
            })
        } catch (e: CardException.NotEnrolled) {
            line("No card yet: enrol first.")
        }
        content.addView(Button(this).apply {
            text = "Sync"
            setOnClickListener { background({ tessera.sync() }) { line("Synced: ${it.pushed} sent, ${it.catalogChanges} catalog changes") } }
        })
    }

    private fun lastPosition(): Position? {
        if (checkSelfPermission(Manifest.permission.ACCESS_FINE_LOCATION) != PackageManager.PERMISSION_GRANTED) return null
        val lm = getSystemService(LocationManager::class.java)
        val fix = lm.getLastKnownLocation(LocationManager.GPS_PROVIDER) ?: lm.getLastKnownLocation(LocationManager.NETWORK_PROVIDER)
        return fix?.let { Position(it.latitude, it.longitude) }
    }

    private fun showOffers() {
        screen("Offers near me")
        val here = lastPosition() ?: return line("Location unknown or not allowed.")
        for (near in tessera.offersNear(here, 5_000.0, 20u)) {
            line("${near.offer.title} — ${near.storeName}, ${near.distanceM.toInt()} m")
            content.addView(Button(this).apply {
                text = "Clip"
                setOnClickListener {
                    try {
                        tessera.clipOffer(near.offer.id)
                        text = "Clipped: in your wallet after the next sync"
                    } catch (e: ActionException) {
                        text = "Not now: ${e.message}"
                    }
                }
            })
        }
    }

    private fun showWallet() {
        screen("Wallet")
        for (coupon in tessera.wallet()) {
            line("${coupon.offerId} · until ${coupon.expiresAt} · ${coupon.state}")
            content.addView(CardCodeView(this).apply { matrix = renderBarcode(Symbology.QR, coupon.code); fullBrightness = false },
                LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 360))
        }
    }

    private fun showChallenges() {
        screen("Challenges and badges")
        val view = tessera.challenges()
        for (c in view.challenges) {
            line("${c.title}: ${c.done}/${c.target}" + if (c.completed) " ✓" else "")
            if (!c.joined) content.addView(Button(this).apply { text = "Join"; setOnClickListener { tessera.joinChallenge(c.challengeId); showChallenges() } })
        }
        for (b in view.badges) line("🏅 ${b.title} (${b.earnedAt})")
        if (view.estimated) line("Estimated on this phone until the next sync.")
    }

    private fun showPoints() {
        screen("Points and tier")
        val points = tessera.points()
        line("${points.balance} points")
        points.nextExpiry?.let { line("Next expiry: $it") }
        tessera.tierProgress()?.let { line("${it.tier}: ${it.pointsToNext} points to ${it.nextTier ?: "the top"}") }
    }

    private fun showPreferences() {
        screen("Preferences")
        val prefs = tessera.preferences()
        for (channel in listOf(Channel.PUSH, Channel.EMAIL, Channel.SMS)) {
            content.addView(CheckBox(this).apply {
                text = "Offers by ${channel.name.lowercase()}"
                isChecked = channel in prefs.channels
                setOnCheckedChangeListener { _, on ->
                    val channels = if (on) prefs.channels + channel else prefs.channels - channel
                    try {
                        tessera.setPreferences(tessera.preferences().copy(channels = channels))
                    } catch (e: ActionException) {
                        line("⚠ ${e.message}")
                    }
                }
            })
        }
        content.addView(Button(this).apply {
            text = "Withdraw all consents"
            setOnClickListener { background({ tessera.withdrawAllConsents(consentText) }) { showConsent() } }
        })
    }
}
