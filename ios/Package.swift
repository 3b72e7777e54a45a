// swift-tools-version:5.9
// The Tessera Swift package: generated Swift bindings (Sources/Tessera, committed and checked
// current by CI) over TesseraFFI.xcframework (built by build-xcframework.sh on macOS).
import PackageDescription

let package = Package(
    name: "Tessera",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
    ],
    targets: [
        .binaryTarget(name: "TesseraFFIRust", path: "build/TesseraFFI.xcframework"),
        .target(name: "Tessera", dependencies: ["TesseraFFIRust"], path: "Sources/Tessera"),
    ]
)
