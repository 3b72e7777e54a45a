import SwiftUI
import Tessera

struct ConsentScreen: View {
    @ObservedObject var model: SampleModel
    @State private var push = false
    @State private var nearby = false

    var body: some View {
        Form {
            Text(model.consentText.text)
            Toggle("Offers by push notification", isOn: $push)
            Toggle("Offers when I am near a shop", isOn: $nearby)
            Button("Continue") { Task { await model.consent(push: push, nearby: nearby) } }
            if let message = model.message { Text(message).foregroundStyle(.red) }
        }
    }
}

struct CardScreen: View {
    @ObservedObject var model: SampleModel
    /// The rotating member code while the card is on screen; the static barcode until there is one.
    @State private var code: CardCode?

    var body: some View {
        VStack(spacing: 16) {
            if let card = model.card {
                Text("\(card.programName) · \(card.holderName)").font(.headline)
                if case .rotating(let view) = code {
                    CardCodeView(matrix: view.matrix).frame(height: 200)
                } else {
                    CardCodeView(matrix: card.barcode).frame(height: 200)
                }
                Text(card.displayNumber).monospaced()
                Button("Add to Apple Wallet") { Task { await model.addToWallet() } }
            } else {
                Text("No card yet")
            }
            Button("Sync") { Task { await model.sync() } }
            if let message = model.message { Text(message).font(.footnote) }
        }
        .padding()
        .task {
            for await next in model.tessera.memberCodes() { code = next }
        }
    }
}

struct OffersScreen: View {
    @ObservedObject var model: SampleModel
    /// The sample shows offers around Lyon's Bellecour; an app passes the device's location.
    let here = Position(latitude: 45.7578, longitude: 4.8320)

    var body: some View {
        let near = (try? model.tessera.offersNear(position: here, radiusM: 5000, limit: 20)) ?? []
        List(near, id: \.offer.id) { item in
            VStack(alignment: .leading) {
                Text(item.offer.title).font(.headline)
                Text("\(item.storeName), \(Int(item.distanceM)) m").font(.subheadline)
                Button("Clip") { try? model.tessera.clipOffer(offerId: item.offer.id) }
            }
        }
    }
}

struct WalletScreen: View {
    @ObservedObject var model: SampleModel

    var body: some View {
        List(model.wallet, id: \.couponId) { coupon in
            VStack(alignment: .leading) {
                Text(coupon.offerId).font(.headline)
                Text("until \(coupon.expiresAt)").font(.footnote)
                if let code = try? renderBarcode(symbology: .qr, value: coupon.code) {
                    CardCodeView(matrix: code, fullBrightness: false).frame(height: 160)
                }
            }
        }
    }
}

struct ChallengesScreen: View {
    @ObservedObject var model: SampleModel

    var body: some View {
        List {
            ForEach(model.challenges?.challenges ?? [], id: \.challengeId) { c in
                HStack {
                    Text(c.title)
                    Spacer()
                    Text("\(c.done)/\(c.target)")
                    if !c.joined { Button("Join") { try? model.tessera.joinChallenge(challengeId: c.challengeId) } }
                }
            }
            Section("Badges") {
                ForEach(model.challenges?.badges ?? [], id: \.badge) { b in Text("\(b.title) (\(b.earnedAt))") }
            }
        }
    }
}

struct PointsScreen: View {
    @ObservedObject var model: SampleModel

    var body: some View {
        VStack(spacing: 12) {
            Text("\(model.points?.balance ?? 0) points").font(.largeTitle)
            if let tier = try? model.tessera.tierProgress() {
                Text("\(tier.tier): \(tier.pointsToNext) points to \(tier.nextTier ?? "the top")")
            }
        }
    }
}

struct PreferencesScreen: View {
    @ObservedObject var model: SampleModel

    var body: some View {
        List {
            ForEach(model.consents, id: \.self) { c in
                Text("\(String(describing: c.purpose)) by \(String(describing: c.channel)): \(c.allowed ? "yes" : "no")")
            }
            Button("Withdraw all consents") {
                _ = try? model.tessera.withdrawAllConsents(text: model.consentText)
            }
        }
    }
}
