import Foundation

/// The OS's region monitoring, as the coordinator needs it (`CoreLocationRegions` on iOS).
public protocol GeofenceBackend: AnyObject {
    func remove(ids: [String]) async throws
    func add(regions: [GeofenceRegion]) async throws
}

/// The region ids the OS monitors for us (iOS lists them too: `monitoredRegions`).
public protocol RegisteredRegions: AnyObject {
    func load() -> Set<String>
    func save(_ ids: Set<String>)
}

/// Keeps the OS's monitored regions equal to the core's plan (20 on iOS) and turns the OS's
/// events back into the core's decisions. The rules (which stores, cooldowns, consent, quiet
/// hours) are the core's; this applies the diff and routes the outcome. The Android package's
/// `GeofenceCoordinator` is the same, tested there against the real core and server.
public final class GeofenceCoordinator {
    private let tessera: Tessera
    private let backend: GeofenceBackend
    private let registered: RegisteredRegions
    private let show: (OfferNotification) async -> Bool

    public init(tessera: Tessera, backend: GeofenceBackend, registered: RegisteredRegions,
                show: @escaping (OfferNotification) async -> Bool) {
        self.tessera = tessera
        self.backend = backend
        self.registered = registered
        self.show = show
    }

    /// Re-plans from `position`: removes what the plan drops, then adds what it adds, saving
    /// what the OS accepted as it goes.
    public func replan(from position: Position) async throws {
        var current = registered.load()
        let plan = try tessera.planGeofences(
            position: position, budget: geofenceBudget(platform: .ios), registered: current.sorted())
        if plan.throttled { return }
        if !plan.remove.isEmpty {
            try await backend.remove(ids: plan.remove)
            current.subtract(plan.remove)
            registered.save(current)
        }
        if !plan.add.isEmpty {
            try await backend.add(regions: plan.add)
            current.formUnion(plan.add.map(\.id))
            registered.save(current)
        }
    }

    /// An OS region event; returns how many notifications were shown.
    @discardableResult
    public func onEvent(regionId: String, kind: RegionEventKind, at date: Date = Date(),
                        position: Position?) async throws -> Int {
        let outcome = try tessera.onRegionEvent(
            regionId: regionId, kind: kind, atMs: Int64(date.timeIntervalSince1970 * 1000))
        switch outcome.action {
        case .notify(let notification):
            return await show(notification) ? 1 : 0
        case .replan, .suppress(reason: .unknownRegion):
            if let position { try await replan(from: position) }
            return 0
        case .suppress, .nothing:
            return 0
        }
    }
}
