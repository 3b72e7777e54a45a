// Cold start to the card: run in a fresh JVM per sample by scripts/bench-kotlin.sh. Prints one
// line of milliseconds since the process started (the OS's start time of this process):
//   main      main() entered (JVM start, class loading of this file)
//   jna       JNA loaded (its native dispatch library and classes)
//   lib       the bindings' library object ready (Native.register of every function, the
//             callback tables, the API checksums), before any database work
//   open      Tessera.open returned (an existing database)
//   card      the first card() returned: what the member waits for
// usage: ColdStartKt <database path> [stock|fast]   (fast: CardFastPath, JNI without JNA: its
// line has jna equal to main, lib when System.loadLibrary returned, open equal to lib)

import java.lang.management.ManagementFactory

fun main(args: Array<String>) {
    val t0 = ManagementFactory.getRuntimeMXBean().startTime.toDouble()
    fun now() = System.currentTimeMillis().toDouble() - t0
    val mainAt = now()
    if (args.getOrNull(1) == "fast") {
        // lib: the library loaded by the JVM (CardFastPath's own load is then a no-op).
        System.loadLibrary("tessera_ffi")
        val libAt = now()
        val card = app.tessera.CardFastPath.card(args[0]) ?: error("no card on the fast path")
        val cardAt = now()
        check(card.barcode.width == 95u)
        println("main=%.1f jna=%.1f lib=%.1f open=%.1f card=%.1f".format(mainAt, mainAt, libAt, libAt, cardAt))
        return
    }
    com.sun.jna.Native.POINTER_SIZE.let { }
    val jnaAt = now()
    val stock = args.getOrNull(1) == "stock"
    if (stock) app.tessera.stock.uniffiEnsureInitialized() else app.tessera.uniffiEnsureInitialized()
    val libAt = now()
    val width: Long
    val openAt: Double
    if (stock) {
        val t = app.tessera.stock.Tessera.open(args[0])
        openAt = now()
        width = t.card().barcode.width.toLong()
    } else {
        val t = app.tessera.Tessera.open(args[0])
        openAt = now()
        width = t.card().barcode.width.toLong()
    }
    val cardAt = now()
    check(width == 95L)
    println("main=%.1f jna=%.1f lib=%.1f open=%.1f card=%.1f".format(mainAt, jnaAt, libAt, openAt, cardAt))
}
