// One Kotlin -> Rust call, measured next to raw JNA calls in the same run (plain harness: rounds
// interleaved, median of rounds). Run by scripts/bench-kotlin.sh.
//   raw getpid        a direct-mapped JNA call to a trivial C function (libc): the floor
//   raw contract      the same into libtessera_ffi (a UniFFI function without a call status)
//   stock / tessera   the bindings as UniFFI generates them (app.tessera.stock) / as shipped, with
//                     the per-thread call status (scripts/kotlin-callstatus.py)

import com.sun.jna.Native
import java.io.File
import java.nio.file.Files

object LibC {
    init { Native.register("c") }
    external fun getpid(): Int
}

object RawTessera {
    init { Native.register("tessera_ffi") }
    external fun ffi_tessera_ffi_uniffi_contract_version(): Int
}

class Case(val name: String, val body: () -> Unit)

fun median(xs: List<Double>) = xs.sorted()[xs.size / 2]

fun main(args: Array<String>) {
    val n = args.getOrNull(0)?.toInt() ?: 200_000
    val rounds = args.getOrNull(1)?.toInt() ?: 7
    val dir = Files.createTempDirectory("tessera-bench").toFile()
    val program = app.tessera.domain.Program("maison-dupont", "Maison Dupont", "#0a7d5a", app.tessera.domain.Symbology.EAN13)
    val member = app.tessera.domain.MemberCard("400638133393", "Ada Lovelace", "2021-03-04", "Gold")

    val shipped = app.tessera.Tessera.open(File(dir, "shipped.db").path)
    shipped.setProgram(program)
    shipped.setCard(member)
    val stock = app.tessera.stock.Tessera.open(File(dir, "stock.db").path)
    stock.setProgram(app.tessera.stock.domain.Program("maison-dupont", "Maison Dupont", "#0a7d5a", app.tessera.stock.domain.Symbology.EAN13))
    stock.setCard(app.tessera.stock.domain.MemberCard("400638133393", "Ada Lovelace", "2021-03-04", "Gold"))
    // Closed instances: shutdown() on them is a plain call (no argument or result buffers).
    val idleShipped = app.tessera.Tessera.open(File(dir, "idle1.db").path).also { it.shutdown() }
    val idleStock = app.tessera.stock.Tessera.open(File(dir, "idle2.db").path).also { it.shutdown() }

    var sink = 0L
    val cases = listOf(
        Case("raw JNA getpid (libc)") { sink += LibC.getpid() },
        Case("raw JNA contract version (libtessera_ffi)") { sink += RawTessera.ffi_tessera_ffi_uniffi_contract_version() },
        Case("stock: plain method (clone handle + call)") { idleStock.shutdown() },
        Case("shipped: plain method (clone handle + call)") { idleShipped.shutdown() },
        Case("stock: tesseraVersion() -> String") { sink += app.tessera.stock.tesseraVersion().length },
        Case("shipped: tesseraVersion() -> String") { sink += app.tessera.tesseraVersion().length },
        Case("stock: card() (read + EAN-13 matrix)") { sink += stock.card().barcode.width.toLong() },
        Case("shipped: card() (read + EAN-13 matrix)") { sink += shipped.card().barcode.width.toLong() },
    )
    val perCase = cases.associateWith { ArrayList<Double>() }
    // Warm-up: JIT and caches, all cases.
    for (c in cases) repeat(n / 10) { c.body() }
    repeat(rounds) {
        for (c in cases) {
            val calls = if (c.name.contains("card()")) n / 20 else n
            val t0 = System.nanoTime()
            repeat(calls) { c.body() }
            perCase.getValue(c) += (System.nanoTime() - t0).toDouble() / calls
        }
    }
    println("calls per round: $n ($rounds rounds, interleaved; card() ${n / 20}); median ns/call (min-max)")
    for (c in cases) {
        val xs = perCase.getValue(c)
        println("%-46s %9.0f ns  (%.0f-%.0f)".format(c.name, median(xs), xs.min(), xs.max()))
    }
    shipped.shutdown()
    stock.shutdown()
    dir.deleteRecursively()
    if (sink == 42L) println()
}
