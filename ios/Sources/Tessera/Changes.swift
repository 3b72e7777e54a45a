import Foundation

/// The core's one change listener on a `Tessera`, fanned out to every stream made from it.
private final class ChangeHub: ChangeListener, @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var streams: [Int: AsyncStream<Set<Change>>.Continuation] = [:]

    func onChange(changes: [Change]) {
        let set = Set(changes)
        lock.lock()
        let targets = Array(streams.values)
        lock.unlock()
        for continuation in targets {
            continuation.yield(set)
        }
    }

    func add(_ continuation: AsyncStream<Set<Change>>.Continuation) -> Int {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        streams[next] = continuation
        return next
    }

    func remove(_ id: Int) {
        lock.lock()
        streams[id] = nil
        lock.unlock()
    }
}

/// A hub and the instance it listens to: an `ObjectIdentifier` can be reused by a later object
/// once this one is gone, so the entry is valid only while its owner is alive.
private struct HubEntry {
    weak var owner: Tessera?
    let hub: ChangeHub
}

private let hubsLock = NSLock()
private var hubs: [ObjectIdentifier: HubEntry] = [:]

extension Tessera {
    private var changeHub: ChangeHub {
        hubsLock.lock()
        defer { hubsLock.unlock() }
        if let entry = hubs[ObjectIdentifier(self)], entry.owner === self {
            return entry.hub
        }
        hubs = hubs.filter { $0.value.owner != nil }
        let hub = ChangeHub()
        hubs[ObjectIdentifier(self)] = HubEntry(owner: self, hub: hub)
        setChangeListener(listener: hub)
        return hub
    }

    /// What changed, after each write commits (once at the end of a sync). Every call makes an
    /// independent stream over the core's one change listener (installed by the first call; a
    /// later `setChangeListener` replaces it). Keeps the newest 64 announcements if the reader lags.
    public func changes() -> AsyncStream<Set<Change>> {
        let hub = changeHub
        return AsyncStream(bufferingPolicy: .bufferingNewest(64)) { continuation in
            let id = hub.add(continuation)
            continuation.onTermination = { _ in hub.remove(id) }
        }
    }

    /// `read()` now, then again after every change of `kind`: what a screen shows, always
    /// current. A read that throws ends the stream (a closed database).
    public func updates<T>(of kind: Change, read: @escaping @Sendable (Tessera) throws -> T) -> AsyncThrowingStream<T, Error> {
        let changes = self.changes()
        return AsyncThrowingStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task {
                do {
                    continuation.yield(try read(self))
                    for await changed in changes where changed.contains(kind) {
                        continuation.yield(try read(self))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The wallet's coupons, re-read when they change.
    public func walletUpdates() -> AsyncThrowingStream<[WalletCoupon], Error> {
        updates(of: .wallet) { try $0.wallet() }
    }

    /// Points and ledger, re-read when they change.
    public func pointsUpdates() -> AsyncThrowingStream<PointsView, Error> {
        updates(of: .points) { try $0.points() }
    }

    /// Challenges and badges, re-read when they change.
    public func challengesUpdates() -> AsyncThrowingStream<ChallengesView, Error> {
        updates(of: .challenges) { try $0.challenges() }
    }

    /// Each purpose and channel's consent, re-read when it changes.
    public func consentUpdates() -> AsyncThrowingStream<[ConsentStatus], Error> {
        updates(of: .consent) { try $0.consentState() }
    }
}
