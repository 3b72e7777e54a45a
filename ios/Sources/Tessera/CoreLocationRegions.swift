#if canImport(CoreLocation) && os(iOS)
import CoreLocation
import Foundation

/// `GeofenceBackend` and `RegisteredRegions` over Core Location's region monitoring
/// (`CLCircularRegion`, at most 20 per app, which the core's iOS plan respects). Entries and
/// exits reach `onEvent`; iOS has no dwell event, so the core decides on entry. Keep one
/// instance for the app's life (its `CLLocationManager` delivers events after a relaunch in the
/// background). Needs "Always" location authorisation.
///
/// `CLMonitor` (iOS 17) is the newer API for the same monitoring; this uses the one that also
/// runs on iOS 15 and 16, the package's minimum.
public final class CoreLocationRegions: NSObject, GeofenceBackend, RegisteredRegions, CLLocationManagerDelegate {
    private let manager = CLLocationManager()
    /// Called for every entry and exit with the position that triggered it, when known.
    public var onEvent: ((String, RegionEventKind, Position?) -> Void)?

    public override init() {
        super.init()
        manager.delegate = self
    }

    public func remove(ids: [String]) async throws {
        let gone = Set(ids)
        for region in manager.monitoredRegions where gone.contains(region.identifier) {
            manager.stopMonitoring(for: region)
        }
    }

    public func add(regions: [GeofenceRegion]) async throws {
        for r in regions {
            let region = CLCircularRegion(
                center: CLLocationCoordinate2D(latitude: r.latitude, longitude: r.longitude),
                radius: min(r.radiusM, manager.maximumRegionMonitoringDistance),
                identifier: r.id)
            region.notifyOnEntry = true
            region.notifyOnExit = true
            manager.startMonitoring(for: region)
        }
    }

    public func load() -> Set<String> {
        Set(manager.monitoredRegions.map(\.identifier))
    }

    /// Core Location keeps the list itself.
    public func save(_ ids: Set<String>) {}

    public func locationManager(_ manager: CLLocationManager, didEnterRegion region: CLRegion) {
        onEvent?(region.identifier, .enter, manager.location.map(Self.position))
    }

    public func locationManager(_ manager: CLLocationManager, didExitRegion region: CLRegion) {
        onEvent?(region.identifier, .exit, manager.location.map(Self.position))
    }

    private static func position(_ location: CLLocation) -> Position {
        Position(latitude: location.coordinate.latitude, longitude: location.coordinate.longitude)
    }
}
#endif
