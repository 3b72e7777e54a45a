import SwiftUI
import Tessera

/// The sample app: first-launch consent, the card, offers near me, the wallet with coupon codes,
/// challenges and badges, points and tier, the preference centre: the same screens as the
/// Android sample. Open `ios/Package.swift` in Xcode, add an iOS app target with these files
/// and the `Tessera` library (docs/ios.md).
@main
struct TesseraSampleApp: App {
    @StateObject private var model = SampleModel()

    init() {
        BackgroundSync.register { SampleCore.tessera }
    }

    var body: some Scene {
        WindowGroup {
            if model.needsConsent {
                ConsentScreen(model: model)
            } else {
                TabView {
                    CardScreen(model: model).tabItem { Label("Card", systemImage: "barcode") }
                    OffersScreen(model: model).tabItem { Label("Near me", systemImage: "mappin") }
                    WalletScreen(model: model).tabItem { Label("Wallet", systemImage: "ticket") }
                    ChallengesScreen(model: model).tabItem { Label("Challenges", systemImage: "star") }
                    PointsScreen(model: model).tabItem { Label("Points", systemImage: "sum") }
                    PreferencesScreen(model: model).tabItem { Label("Preferences", systemImage: "gear") }
                }
                .task { await model.follow() }
            }
        }
    }
}
