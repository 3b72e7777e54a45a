"""Rewrites UniFFI's generated Kotlin so that a call into Rust reuses a per-thread call status
instead of allocating a JNA Structure per call (docs/adr/0018-one-kotlin-call-under-a-microsecond.md).

UniFFI 0.32.2's Kotlin allocates a `UniffiRustCallStatus` (a JNA Structure with a nested RustBuffer)
for every call and passes it by reference: JNA then allocates native memory, tracks it for its
Cleaner, and copies every field to and from native memory by reflection around the call: ~10 µs
of a ~12 µs call. Here each extern takes the status as a `Pointer` to a status the thread already
owns, whose code is reset before the call and read (one byte) after it; the Structure's fields are
read from native memory only when the call failed. Rust can call back into Kotlin, which can call
Rust again before the outer call returns, so each thread holds a small stack of statuses, one per
nesting level.

The rewrite matches the generator's text exactly and fails, naming what it missed, if a UniFFI
upgrade changes it: scripts/bindings.sh runs it on every generation, so `bindings.sh check` (CI)
stops there rather than shipping half-rewritten bindings.

usage: kotlin-callstatus.py DIR   (every *.kt under DIR, in place)
"""
import re
import sys
from pathlib import Path

MARK = "// Tessera: call statuses reused per thread (scripts/kotlin-callstatus.py)."

OLD_WITH_ERROR = """private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (UniffiRustCallStatus) -> U): U {
    var status = UniffiRustCallStatus()
    val return_value = callback(status)
    uniffiCheckCallStatus(errorHandler, status)
    return return_value
}
"""

NEW_WITH_ERROR = MARK + """
// One thread's statuses, one per nesting level (Rust -> Kotlin callback -> Rust).
private class UniffiCallStatusStack {
    private var slots = arrayOfNulls<UniffiRustCallStatus>(4)
    @JvmField var depth = 0

    fun push(): UniffiRustCallStatus {
        if (depth == slots.size) slots = slots.copyOf(depth * 2)
        val status = slots[depth] ?: UniffiRustCallStatus().also { slots[depth] = it }
        depth++
        return status
    }
}

private val uniffiCallStatuses: ThreadLocal<UniffiCallStatusStack> = ThreadLocal.withInitial { UniffiCallStatusStack() }

private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (Pointer) -> U): U {
    val stack = uniffiCallStatuses.get()
    val status = stack.push()
    try {
        val pointer = status.pointer
        // Rust writes the status only when the call fails: reset the code left by the last call.
        pointer.setByte(0, UNIFFI_CALL_SUCCESS)
        val return_value = callback(pointer)
        if (pointer.getByte(0) != UNIFFI_CALL_SUCCESS) {
            status.read()
            uniffiCheckCallStatus(errorHandler, status)
        }
        return return_value
    } finally {
        stack.depth--
    }
}
"""

OLD_PLAIN = "private inline fun <U> uniffiRustCall(callback: (UniffiRustCallStatus) -> U): U {"
NEW_PLAIN = "private inline fun <U> uniffiRustCall(callback: (Pointer) -> U): U {"

# The async helper hands the status to the future's `complete` extern.
OLD_COMPLETE = "    completeFunc: (Long, UniffiRustCallStatus) -> F,"
NEW_COMPLETE = "    completeFunc: (Long, Pointer) -> F,"

EXTERN_PARAM = re.compile(r"(external fun \w+\([^)]*?)uniffi_out_err: UniffiRustCallStatus,")


class ShapeChanged(Exception):
    pass


def rewrite(text: str, name: str) -> str:
    if MARK in text:
        raise ShapeChanged(f"{name}: already rewritten")
    for old in (OLD_WITH_ERROR, OLD_PLAIN):
        if text.count(old) != 1:
            raise ShapeChanged(f"{name}: expected exactly one of:\n{old}\nfound {text.count(old)}")
    text = text.replace(OLD_WITH_ERROR, NEW_WITH_ERROR).replace(OLD_PLAIN, NEW_PLAIN)
    has_async = "uniffiRustCallAsync(" in text
    if text.count(OLD_COMPLETE) != (1 if has_async else 0):
        raise ShapeChanged(f"{name}: expected {1 if has_async else 0} of `{OLD_COMPLETE.strip()}`, "
                           f"found {text.count(OLD_COMPLETE)}")
    text = text.replace(OLD_COMPLETE, NEW_COMPLETE)
    text, externs = EXTERN_PARAM.subn(r"\1uniffi_out_err: Pointer,", text)
    if externs == 0:
        raise ShapeChanged(f"{name}: no extern function takes `uniffi_out_err: UniffiRustCallStatus`")
    # Every extern is rewritten, and nothing else allocates a status per call any more.
    leftover = [l for l in text.splitlines() if "external fun" in l and "UniffiRustCallStatus" in l]
    if leftover:
        raise ShapeChanged(f"{name}: externs still take a Structure status: {leftover[:3]}")
    if re.search(r"=\s*UniffiRustCallStatus\(\)", text):
        raise ShapeChanged(f"{name}: a status is still allocated outside the per-thread stack")
    return text


def main() -> int:
    files = sorted(Path(sys.argv[1]).rglob("*.kt"))
    if not files:
        print(f"kotlin-callstatus: no Kotlin under {sys.argv[1]}", file=sys.stderr)
        return 1
    try:
        out = {f: rewrite(f.read_text(), str(f)) for f in files}
    except ShapeChanged as e:
        print(f"kotlin-callstatus: the generated Kotlin changed shape; update the rewrite and ADR 0018.\n{e}",
              file=sys.stderr)
        return 1
    for f, text in out.items():
        f.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
