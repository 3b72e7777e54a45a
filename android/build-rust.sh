#!/usr/bin/env bash
# Build libtessera_ffi.so for each Android ABI into tessera/src/main/jniLibs/.
# Needs the Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk` and the rustup targets
# aarch64-linux-android armv7-linux-androideabi x86_64-linux-android.
# Uses the size-tuned profile and builds the cdylib alone so that LTO reaches it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
# shellcheck source=../scripts/ffi-env.sh
. scripts/ffi-env.sh
for abi in arm64-v8a armeabi-v7a x86_64; do
  # Relocations packed the Android way (supported from API 23), as ffi-size.sh packs them on
  # Linux: docs/adr/0015. Not verified on this project's CI machine (no NDK there).
  cargo ndk -t "$abi" --platform 24 -- rustc --profile release-ffi -p tessera-ffi --lib --crate-type cdylib \
    -- -C link-arg=-Wl,--pack-dyn-relocs=android
done
declare -A triple=([arm64-v8a]=aarch64-linux-android [armeabi-v7a]=armv7-linux-androideabi [x86_64]=x86_64-linux-android)
for abi in "${!triple[@]}"; do
  mkdir -p "$here/tessera/src/main/jniLibs/$abi"
  cp "target/${triple[$abi]}/release-ffi/libtessera_ffi.so" "$here/tessera/src/main/jniLibs/$abi/"
done
echo "jniLibs ready in android/tessera/src/main/jniLibs"
