// Where the library's start goes, namespace by namespace (on the stock bindings, whose internals
// this module can reach): JNA's own load, then each namespace's `Native.register` of its extern
// functions (the first one also pays for loading libtessera_ffi and JNA's first registration),
// the API checksum library and the main one. Milliseconds; a fresh JVM per line.
package app.tessera.stock

import java.lang.management.ManagementFactory

fun main() {
    val t0 = ManagementFactory.getRuntimeMXBean().startTime.toDouble()
    fun now() = System.currentTimeMillis().toDouble() - t0
    val a = now()
    com.sun.jna.Native.POINTER_SIZE.let { }
    val b = now()
    app.tessera.stock.core.uniffiEnsureInitialized()
    val c = now()
    app.tessera.stock.domain.uniffiEnsureInitialized()
    val d = now()
    app.tessera.stock.till.uniffiEnsureInitialized()
    val e = now()
    IntegrityCheckingUniffiLib.ensureInitialized()
    val f = now()
    UniffiLib.ensureInitialized()
    val g = now()
    println("main=%.0f jna=%.0f core(53)=%.0f domain(53)=%.0f till(53)=%.0f checksums=%.0f tessera(233)=%.0f"
        .format(a, b - a, c - b, d - c, e - d, f - e, g - f))
}
