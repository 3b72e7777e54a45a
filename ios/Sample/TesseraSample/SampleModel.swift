import Foundation
import Tessera
#if canImport(UIKit)
import UIKit
#endif

/// The core, opened once per process (lazily, thread-safe) with the Keychain secret store and
/// URLSession: the screens, the background sync and the push handling share it.
enum SampleCore {
    static let tessera: Tessera = {
        let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tessera = try! Tessera.open(path: dir.appendingPathComponent("tessera.db").path)
        tessera.setHttpClient(client: URLSessionHttpClient())
        try? tessera.setSecretStore(store: KeychainSecretStore())
        return tessera
    }()
}

/// The state the screens show, kept current by the core's change streams.
@MainActor
final class SampleModel: ObservableObject {
    let tessera = SampleCore.tessera
    /// The sample talks to `tessera serve` on the Mac running the simulator.
    let serverURL = "http://127.0.0.1:8080"
    let consentText = ConsentText(version: "sample-2026-11", text: "Offers by push and near our shops; change your mind at any time.")

    @Published var needsConsent = true
    @Published var card: CardView?
    @Published var wallet: [WalletCoupon] = []
    @Published var points: PointsView?
    @Published var challenges: ChallengesView?
    @Published var consents: [ConsentStatus] = []
    @Published var message: String?

    init() {
        needsConsent = ((try? tessera.consentState()) ?? []).allSatisfy { $0.decision == nil }
        card = try? tessera.card()
    }

    func consent(push: Bool, nearby: Bool) async {
        func decision(_ on: Bool) -> Decision { on ? .granted : .denied }
        do {
            _ = try tessera.recordConsent(choices: [
                ConsentChoice(purpose: .marketingOffers, channel: .push, decision: decision(push)),
                ConsentChoice(purpose: .geolocatedOffers, channel: .location, decision: decision(nearby)),
                ConsentChoice(purpose: .geolocatedOffers, channel: .push, decision: decision(nearby)),
            ], text: consentText)
            card = try await tessera.enrolAsync(serverUrl: serverURL, holderName: "Sample Member",
                                                device: DeviceInfo(platform: .ios, appVersion: "0.1.0"))
            _ = try await tessera.syncAsync()
            needsConsent = false
        } catch {
            message = "\(error)"
        }
    }

    /// Keeps the published state current until the view goes.
    func follow() async {
        // A stream ends (throws) only if the database closes: nothing to do then.
        try? await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { @MainActor in
                for try await w in self.tessera.walletUpdates() { self.wallet = w }
            }
            group.addTask { @MainActor in
                for try await p in self.tessera.pointsUpdates() { self.points = p }
            }
            group.addTask { @MainActor in
                for try await c in self.tessera.challengesUpdates() { self.challenges = c }
            }
            group.addTask { @MainActor in
                for try await c in self.tessera.consentUpdates() { self.consents = c }
            }
            try await group.waitForAll()
        }
    }

    func sync() async {
        do {
            let report = try await tessera.syncAsync()
            message = "Synced: \(report.pushed) sent, \(report.catalogChanges) catalog changes"
        } catch {
            message = "\(error)"
        }
    }

    /// "Add to Apple Wallet": the signed pass from the server, in Apple's sheet.
    func addToWallet() async {
        #if canImport(UIKit)
        guard let root = UIApplication.shared.connectedScenes
            .compactMap({ ($0 as? UIWindowScene)?.keyWindow?.rootViewController }).first else { return }
        do {
            try await tessera.addToAppleWallet(from: root)
        } catch {
            message = "\(error)"
        }
        #endif
    }
}
