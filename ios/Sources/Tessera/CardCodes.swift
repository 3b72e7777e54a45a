import Foundation
#if canImport(PassKit) && canImport(UIKit)
import PassKit
import UIKit
#endif

/// What the card screen shows: the rotating member code, or the static card when there is none.
public enum CardCode {
    /// Draw the view's matrix; it is replaced at `changesAt`.
    case rotating(MemberCodeView)
    /// No rotating code now (not certified yet, the certificate ended while offline, the key gone
    /// with a restored phone, not enrolled): show the static card (`card()`); `reason` says why.
    case staticCard(reason: String)
}

extension Tessera {
    /// The card screen's code now, made offline (about 1 ms: the signature and the QR matrix).
    public func cardCode() -> CardCode {
        do {
            return .rotating(try memberCode())
        } catch {
            return .staticCard(reason: error.localizedDescription)
        }
    }

    /// The card screen's code as an `AsyncStream`: a new code when the core says the step ends
    /// (every 30 s by default); while there is none, the static card, asked again every
    /// `retryStaticAfter` seconds (a sync may bring the certificate). Iterate it in a `.task`
    /// of the card view: nothing runs when nobody looks.
    public func memberCodes(retryStaticAfter: Double = 60) -> AsyncStream<CardCode> {
        AsyncStream { continuation in
            let task = Task.detached { [weak self] in
                while !Task.isCancelled, let self {
                    let code = self.cardCode()
                    continuation.yield(code)
                    let wait: Double
                    switch code {
                    case .rotating(let view): wait = max(0.001, Double(view.changesInMs) / 1000)
                    case .staticCard: wait = retryStaticAfter
                    }
                    try? await Task.sleep(nanoseconds: UInt64(wait * 1_000_000_000))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The blocking `walletPass` off the caller's thread (it waits on the network).
    private func fetchWalletPass(kind: WalletKind, couponId: String?, near: Position?) async throws -> Data {
        try await Task.detached(priority: .userInitiated) {
            try self.walletPass(kind: kind, couponId: couponId, near: near)
        }.value
    }

    /// "Save to Google Wallet": the signed link for the member's card or one of their coupons.
    public func googleWalletLink(couponId: String? = nil, near: Position? = nil) async throws -> URL {
        let bytes = try await fetchWalletPass(kind: .google, couponId: couponId, near: near)
        guard let text = String(data: bytes, encoding: .utf8), let url = URL(string: text) else {
            throw SyncError.Protocol(reason: "not a link")
        }
        return url
    }

    #if canImport(PassKit) && canImport(UIKit)
    /// "Add to Apple Wallet": fetches the member's signed pass (or a coupon's) and presents
    /// Apple's sheet over `presenter`. The pass then follows points, tier and the coupon's state
    /// through the PassKit web service by itself.
    @MainActor
    public func addToAppleWallet(
        couponId: String? = nil,
        near: Position? = nil,
        from presenter: UIViewController
    ) async throws {
        let data = try await fetchWalletPass(kind: .apple, couponId: couponId, near: near)
        let pass = try PKPass(data: data)
        if PKPassLibrary().containsPass(pass) {
            return
        }
        guard let sheet = PKAddPassesViewController(pass: pass) else {
            throw SyncError.Protocol(reason: "this device cannot add passes")
        }
        presenter.present(sheet, animated: true)
    }
    #endif
}
