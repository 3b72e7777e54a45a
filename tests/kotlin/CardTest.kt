// Kotlin binding tests, run on a plain JVM with JNA (tests/kotlin/run.sh).
// A small harness instead of JUnit: this machine has kotlinc and JNA but no Maven Central.

import app.tessera.CardException
import app.tessera.InternalException
import app.tessera.LogLevel
import app.tessera.LogSink
import app.tessera.Tessera
import app.tessera.analyseCardNumber
import app.tessera.barcodePng
import app.tessera.barcodeSvg
import app.tessera.initLogging
import app.tessera.quarantineDatabase
import app.tessera.renderBarcode
import app.tessera.tesseraVersion
import app.tessera.verifyPanicHandling
import app.tessera.domain.BarcodeException
import app.tessera.domain.MemberCard
import app.tessera.domain.Program
import app.tessera.core.StorageException
import app.tessera.domain.Symbology
import java.io.File
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.system.exitProcess

var passed = 0
var failed = 0

fun check(name: String, body: () -> Unit) {
    try {
        body()
        passed++
        println("ok   $name")
    } catch (t: Throwable) {
        failed++
        println("FAIL $name: $t")
    }
}

inline fun <reified T : Throwable> assertThrows(body: () -> Unit): T {
    try {
        body()
    } catch (t: Throwable) {
        if (t is T) return t
        throw AssertionError("expected ${T::class.simpleName}, got $t")
    }
    throw AssertionError("expected ${T::class.simpleName}, nothing was thrown")
}

fun assertEq(actual: Any?, expected: Any?) {
    if (actual != expected) throw AssertionError("expected <$expected>, got <$actual>")
}

fun assertTrue(cond: Boolean, what: String) {
    if (!cond) throw AssertionError(what)
}

val dir: File = Files.createTempDirectory("tessera-kotlin").toFile()
val program = Program("maison-dupont", "Maison Dupont", "#0a7d5a", Symbology.EAN13)
val card = MemberCard("400638133393", "Ada Lovelace", "2021-03-04", "Gold")

val logs = CopyOnWriteArrayList<String>()

fun main() {
    check("logging reaches a Kotlin sink") {
        val installed = initLogging(LogLevel.DEBUG, object : LogSink {
            override fun log(level: LogLevel, target: String, message: String) {
                logs.add("$level $target $message")
            }
        })
        assertTrue(installed, "first init installs the sink")
        Tessera.open(File(dir, "log.db").path).use { it.shutdown() }
        assertTrue(logs.any { it.contains("database opened") }, "open is logged: $logs")
        assertTrue(logs.none { it.contains("Ada") }, "no personal data in logs")
    }

    check("create, reopen and render a card") {
        val path = File(dir, "card.db").path
        val t = Tessera.open(path)
        assertThrows<CardException.NotEnrolled> { t.card() }
        assertThrows<CardException.NoProgram> { t.setCard(card) }
        assertEq(t.setProgram(program).brandColor, "#0A7D5A")
        val view = t.setCard(card)
        assertEq(view.barcode.encodedValue, "4006381333931")
        t.shutdown()
        assertThrows<CardException.Storage> { t.card() }

        val again = Tessera.open(path)
        val shown = again.card()
        assertEq(shown.holderName, "Ada Lovelace")
        assertEq(shown.displayNumber, "4006 3813 3393")
        assertEq(shown.tierLabel, "Gold")
        assertEq(shown.barcode.symbology, Symbology.EAN13)
        assertEq(shown.barcode.width, 95u)
        assertEq(shown.barcode.height, 1u)
        assertEq(shown.barcode.modules.size, 95)
        assertEq(shown.barcode.humanReadable, "4006381333931")
        again.shutdown()
    }

    check("bad input raises typed errors") {
        val t = Tessera.open(File(dir, "bad.db").path)
        t.setProgram(program)
        val wrongCheck = assertThrows<CardException.InvalidCardNumber> {
            t.setCard(card.copy(cardNumber = "4006381333932"))
        }
        val problem = wrongCheck.problem
        assertTrue(problem is BarcodeException.InvalidCheckDigit, "check digit: $problem")
        assertEq((problem as BarcodeException.InvalidCheckDigit).expected, 1.toUByte())
        assertThrows<CardException.InvalidCardNumber> { t.setCard(card.copy(cardNumber = "ABC")) }
        val date = assertThrows<CardException.InvalidInput> { t.setCard(card.copy(memberSince = "yesterday")) }
        assertEq(date.field, "card.member_since")
        assertThrows<CardException.InvalidInput> { t.setProgram(program.copy(brandColor = "green")) }
        t.setCard(card)
        // An alphanumeric card cannot switch the programme to EAN-13's digits-only sibling.
        t.setProgram(program.copy(symbology = Symbology.CODE128))
        t.setCard(card.copy(cardNumber = "GOLD-42"))
        assertThrows<CardException.CardIncompatible> { t.setProgram(program) }
        t.shutdown()
    }

    check("a file that is not a database is reported, then recovered by re-enrolment") {
        val f = File(dir, "garbage.db")
        f.writeText("this is not a database, it is a shopping list: " + "x".repeat(5000))
        assertThrows<StorageException.NotADatabase> { Tessera.open(f.path) }
        val moved = quarantineDatabase(f.path)
        assertTrue(File(moved).exists(), "the old file is kept")
        val t = Tessera.open(f.path)
        assertThrows<CardException.NotEnrolled> { t.card() }
        t.setProgram(program)
        assertEq(t.setCard(card).holderName, "Ada Lovelace")
        t.shutdown()
    }

    check("a database from a newer build is refused") {
        val path = File(dir, "future.db").path
        Tessera.open(path).use { it.shutdown() }
        // Bump user_version past what this build knows, as a newer app would have.
        val bytes = File(path).readBytes()
        bytes[60] = 0x7f
        File(path).writeBytes(bytes)
        val e = assertThrows<StorageException.SchemaTooNew> { Tessera.open(path) }
        assertTrue(e.found > e.supported, "found ${e.found} > supported ${e.supported}")
    }

    check("a panic inside the core becomes an exception") {
        assertThrows<InternalException> { verifyPanicHandling("from Kotlin") }
        assertTrue(logs.any { it.startsWith("ERROR tessera::panic") && it.contains("from Kotlin") }, "the panic is logged")
        // The library is still usable afterwards.
        assertEq(tesseraVersion().isNotEmpty(), true)
    }

    check("number analysis, SVG and PNG") {
        val a = analyseCardNumber("036000291452")
        assertEq(a.suggestions.first().symbology, Symbology.UPC_A)
        val flagged = analyseCardNumber("400638133393").suggestions.first { it.symbology == Symbology.EAN13 }
        assertTrue(flagged.differsFromPrinted, "appended check digit is flagged")
        assertThrows<BarcodeException.Empty> { analyseCardNumber("  ") }
        val m = renderBarcode(Symbology.QR, "TESSERA-0001")
        assertEq(m.width, m.height)
        assertTrue(barcodeSvg(m, 4u).startsWith("<svg"), "svg")
        val png = barcodePng(m, 4u)
        assertEq(String(png.copyOfRange(1, 4)), "PNG")
        assertThrows<BarcodeException.InvalidMatrix> { barcodeSvg(m.copy(width = 5u), 1u) }
        assertThrows<BarcodeException.InvalidScale> { barcodePng(m, 0u) }
        assertThrows<BarcodeException.NotDigits> { renderBarcode(Symbology.EAN8, "ABCDEFGH") }
    }

    check("one Kotlin to Rust call: overhead") {
        repeat(20_000) { tesseraVersion() }
        val n = 200_000
        val start = System.nanoTime()
        repeat(n) { tesseraVersion() }
        val perCall = (System.nanoTime() - start).toDouble() / n / 1000.0
        println("     measured: %.2f µs per call returning a String (tesseraVersion, %d calls, JNA)".format(perCall, n))
        // A plain call: no argument or result buffers (shutdown() on a closed instance is a no-op).
        val idle = Tessera.open(File(dir, "idle.db").path)
        idle.shutdown()
        repeat(20_000) { idle.shutdown() }
        val s1 = System.nanoTime()
        repeat(n) { idle.shutdown() }
        val plain = (System.nanoTime() - s1).toDouble() / n / 1000.0
        println("     measured: %.2f µs per plain method call (no buffers, %d calls, JNA)".format(plain, n))
        idle.close()
        val t = Tessera.open(File(dir, "card.db").path)
        repeat(200) { t.card() }
        val m = 2_000
        val s2 = System.nanoTime()
        repeat(m) { t.card() }
        println("     measured: %.1f µs per card() from Kotlin (read + EAN-13 matrix)".format((System.nanoTime() - s2).toDouble() / m / 1000.0))
        t.shutdown()
        assertTrue(perCall < 1000.0, "a call costs less than a millisecond")
    }

    val serverUrl = System.getenv("TESSERA_SERVER_URL")
    if (serverUrl.isNullOrEmpty()) {
        failed++
        println("FAIL sync tests: TESSERA_SERVER_URL is not set (run tests/kotlin/run.sh)")
    } else {
        syncTests(serverUrl)
        consentTests(serverUrl)
        offersTests(serverUrl)
        tillTests(serverUrl)
        challengeTests(serverUrl)
        httpTests(serverUrl)
        asyncTests(serverUrl)
    }
    checksumTests()

    dir.deleteRecursively()
    println("$passed passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
