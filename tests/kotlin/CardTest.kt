// The Kotlin binding tests on a plain JVM over JNA, built and run by Maven
// (android/maven/jvm; tests/kotlin/run.sh starts the server the sync tests talk to). Each
// `check` is one JUnit test, run in the order written (BindingsTest below).

import app.tessera.CardException
import app.tessera.CardFastPath
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
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory
import org.junit.jupiter.api.TestInstance
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList

val dir: File = Files.createTempDirectory("tessera-kotlin").toFile()
val program = Program("maison-dupont", "Maison Dupont", "#0a7d5a", Symbology.EAN13)
val card = MemberCard("400638133393", "Ada Lovelace", "2021-03-04", "Gold")

val logs = CopyOnWriteArrayList<String>()

fun cardTests() {
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

    check("the card's fast path (JNI, no JNA) shows the card the ordinary path shows; null without one") {
        val path = File(dir, "card.db").path
        val fast = CardFastPath.card(path)!!
        val ordinary = Tessera.open(path).use { it.card() }
        // Data classes compare a ByteArray by reference: the modules are compared by content.
        assertEq(fast.copy(barcode = ordinary.barcode), ordinary)
        assertEq(fast.barcode.copy(modules = ordinary.barcode.modules), ordinary.barcode)
        assertTrue(fast.barcode.modules.contentEquals(ordinary.barcode.modules), "the same modules")
        assertEq(CardFastPath.card(File(dir, "no-card.db").path), null)
        assertTrue(!File(dir, "no-card.db").exists(), "the fast path creates nothing")
        val junk = File(dir, "junk.db").also { it.writeText("not a database") }
        assertEq(CardFastPath.card(junk.path), null)
        // A path beyond ASCII and beyond the BMP reaches the library as written.
        val odd = File(dir, "née-été-😀.db").path
        Tessera.open(odd).use { it.setProgram(program); it.setCard(card) }
        assertEq(CardFastPath.card(odd)?.holderName, "Ada Lovelace")
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
}

/** All the binding tests, in order: one JUnit test per `check`. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BindingsTest {
    @TestFactory
    fun bindings(): List<DynamicTest> {
        registered.clear()
        cardTests()
        val serverUrl = System.getenv("TESSERA_SERVER_URL")
        if (serverUrl.isNullOrEmpty()) {
            check("the server the sync tests need") {
                throw AssertionError("TESSERA_SERVER_URL is not set (run tests/kotlin/run.sh)")
            }
        } else {
            syncTests(serverUrl)
            consentTests(serverUrl)
            offersTests(serverUrl)
            tillTests(serverUrl)
            tillAsyncTests(serverUrl)
            challengeTests(serverUrl)
            httpTests(serverUrl)
            asyncTests(serverUrl)
            adaptersTests(serverUrl)
            callStatusTests(serverUrl)
            streamsTests(serverUrl)
        }
        checksumTests()
        return registered.toList()
    }

    @AfterAll
    fun cleanUp() {
        dir.deleteRecursively()
    }
}
