#!/usr/bin/env bash
# Build TesseraFFI.xcframework (iOS device, iOS simulator and macOS static libraries, the generated
# C headers and module map) for ios/Package.swift, which declares both platforms: the macOS slice
# lets `swift test` run the package on a Mac. Needs macOS with Xcode and the rustup targets
# aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
# shellcheck source=../scripts/ffi-env.sh
. scripts/ffi-env.sh
for target in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios \
  aarch64-apple-darwin x86_64-apple-darwin; do
  cargo rustc --profile release-ffi --target "$target" -p tessera-ffi --lib --crate-type staticlib
done
out="$here/build"
rm -rf "$out" && mkdir -p "$out/sim" "$out/macos"
lipo -create \
  target/aarch64-apple-ios-sim/release-ffi/libtessera_ffi.a \
  target/x86_64-apple-ios/release-ffi/libtessera_ffi.a \
  -output "$out/sim/libtessera_ffi.a"
lipo -create \
  target/aarch64-apple-darwin/release-ffi/libtessera_ffi.a \
  target/x86_64-apple-darwin/release-ffi/libtessera_ffi.a \
  -output "$out/macos/libtessera_ffi.a"
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release-ffi/libtessera_ffi.a -headers "$here/Generated/include" \
  -library "$out/sim/libtessera_ffi.a" -headers "$here/Generated/include" \
  -library "$out/macos/libtessera_ffi.a" -headers "$here/Generated/include" \
  -output "$out/TesseraFFI.xcframework"
echo "ios/build/TesseraFFI.xcframework ready"
