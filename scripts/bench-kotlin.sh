#!/usr/bin/env bash
# Kotlin -> Rust: one call (CallBench: raw JNA, the bindings as UniFFI generates them, the
# bindings as shipped) and the cold start to the first card (ColdStart, a fresh JVM per sample,
# shipped and stock bindings alternated). Results in docs/figures.md ("Native shells").
#   scripts/bench-kotlin.sh [samples]     (default 15 cold starts of each)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
samples="${1:-15}"
scripts/build.sh
lib_dir="${TESSERA_LIB_DIR:-$root/target/debug}"

# The stock bindings: UniFFI's output before the call-status rewrite, as package app.tessera.stock.
stock_out="$root/build/bindings-stock"
rm -rf "$stock_out"
./target/debug/uniffi-bindgen generate --no-format --library target/debug/libtessera_ffi.so \
  --language kotlin --out-dir "$stock_out" >/dev/null
gen="$root/android/maven/bench/target/generated-sources/stock"
rm -rf "$root/android/maven/bench/target" && mkdir -p "$gen"
# All four namespaces, renamed app.tessera.stock(.core, .domain, .till): a whole second set.
for f in $(cd "$stock_out" && find . -name '*.kt'); do
  mkdir -p "$gen/$(dirname "$f")"
  sed -e 's/\bapp\.tessera\b/app.tessera.stock/g' "$stock_out/$f" > "$gen/$f"
done
grep -q 'var status = UniffiRustCallStatus()' "$gen/app/tessera/tessera.kt" \
  || { echo "bench: the stock bindings are not UniFFI's (already rewritten?)" >&2; exit 1; }

mvn -B -q -f android/pom.xml -Pbench -pl maven/bench -am -DskipTests package
cp="$root/android/maven/bench/target/classes:$root/android/maven/jvm/target/classes:$(cat android/maven/bench/target/classpath.txt)"
java_run() { java -Djna.library.path="$lib_dir" -Djava.library.path="$lib_dir" -cp "$cp" "$@"; }

echo "== one call (JNA $(basename "$(tr ':' '\n' <<<"$cp" | grep '/jna-')" .jar), library: $lib_dir)"
java_run CallBenchKt

echo
echo "== cold start to the first card: $samples fresh JVMs each, alternated; median ms since process start"
db="$(mktemp -d)/card.db"
# An existing database with a card, as on a phone after enrolment.
java -Djna.library.path="$lib_dir" -cp "$cp" PrepareCardKt "$db"
for i in $(seq "$samples"); do
  java_run ColdStartKt "$db" >> "$db.shipped"
  java_run ColdStartKt "$db" stock >> "$db.stock"
  java_run ColdStartKt "$db" fast >> "$db.fast"
done
python3 - "$db.shipped" "$db.stock" "$db.fast" <<'PY'
import statistics, sys
for path, name in zip(sys.argv[1:], ("shipped", "stock", "fast")):
    rows = [dict(kv.split("=") for kv in line.split()) for line in open(path)]
    parts = {k: statistics.median(float(r[k]) for r in rows) for k in rows[0]}
    print(f"{name:8s} " + "  ".join(f"{k} {v:6.1f}" for k, v in parts.items()) + f"   (n={len(rows)})")
PY

echo
echo "== the library's start by namespace (stock bindings; ms; externs in brackets)"
for i in 1 2 3 4 5; do java_run app.tessera.stock.RegisterProbeKt; done
