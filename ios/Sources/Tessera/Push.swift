import Foundation

/// A push message (APNs `userInfo`) through the core's decision: show the offer's notification,
/// suppress it (consent, quiet hours, caps, duplicates: all decided by the core), or sync now.
/// The same routing as the Android package's `PushRouter`.
public enum PushRouting: Equatable {
    case show(OfferNotification)
    case suppressed(SuppressReason)
    case syncRequested
    /// Not a Tessera message: leave it to the app's other handlers.
    case notOurs
}

extension Tessera {
    /// Routes an APNs `userInfo` dictionary. Values that are not JSON-representable are dropped.
    public func route(userInfo: [AnyHashable: Any], receivedAt: Date = Date()) throws -> PushRouting {
        let strings = Dictionary(uniqueKeysWithValues: userInfo.compactMap { key, value -> (String, Any)? in
            guard let key = key as? String, JSONSerialization.isValidJSONObject([key: value]) else { return nil }
            return (key, value)
        })
        let json = try JSONSerialization.data(withJSONObject: strings)
        do {
            let decision = try handlePush(
                message: String(decoding: json, as: UTF8.self),
                receivedAtMs: Int64(receivedAt.timeIntervalSince1970 * 1000))
            switch decision {
            case .show(let notification): return .show(notification)
            case .suppress(let reason): return .suppressed(reason)
            case .syncNow: return .syncRequested
            }
        } catch PushError.NotTessera {
            return .notOurs
        }
    }

    /// The deep link of a push's notification: the offer's, marked `via=push` (as the Android
    /// package's `PushRouter.fromPush`).
    public static func fromPush(_ deepLink: String) -> String {
        deepLink + (deepLink.contains("?") ? "&" : "?") + "via=push"
    }

    /// The member opened a notification: call it with the deep link the app was opened with. A
    /// push's notification is reported as the `push_opened` analytics event the console counts
    /// as a push acted on; true if it was (the member consented to analytics). Other links (a
    /// geofence's notification, a link from elsewhere) report nothing.
    public func pushOpened(deepLink: String) throws -> Bool {
        guard deepLink.contains("via=push") else { return false }
        var offerId = deepLink
        if offerId.hasPrefix("tessera://offer/") { offerId.removeFirst("tessera://offer/".count) }
        if let query = offerId.firstIndex(of: "?") { offerId = String(offerId[..<query]) }
        return try track(name: "push_opened", attributes: ["offer_id": offerId])
    }
}

#if canImport(UserNotifications) && os(iOS)
import UserNotifications

/// The body of a Notification Service Extension's `didReceive(_:withContentHandler:)`: the
/// core decides on the offer (opening the app group's database read-write), fills title, body
/// and the deep link, or blanks a message it suppresses. Blanking is what an extension can do;
/// dropping it entirely needs Apple's filtering entitlement
/// (`com.apple.developer.usernotifications.filtering`), with which `contentHandler` may get an
/// empty `UNNotificationContent()`.
public enum TesseraNotificationService {
    public static func content(for request: UNNotificationRequest, tessera: Tessera) -> UNNotificationContent {
        guard let content = request.content.mutableCopy() as? UNMutableNotificationContent else {
            return request.content
        }
        switch (try? tessera.route(userInfo: request.content.userInfo)) ?? .notOurs {
        case .show(let notification):
            content.title = notification.title
            content.body = notification.body
            content.userInfo["tessera_deep_link"] = Tessera.fromPush(notification.deepLink)
            content.threadIdentifier = "tessera.offers"
            return content
        case .suppressed, .syncRequested:
            return UNNotificationContent()
        case .notOurs:
            return content
        }
    }
}
#endif
