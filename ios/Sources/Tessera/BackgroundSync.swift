import Foundation

/// One background sync and what to tell the scheduler: the same classification as the Android
/// package's `BackgroundSync` (tested there).
public enum BackgroundSyncOutcome {
    case done(SyncReport)
    /// Transient (offline, timeout, server unavailable, cancelled by the OS): try again later.
    case retry(SyncError)
    /// Nothing a retry mends (signed out, not enrolled, app too old).
    case stop(Error)
}

public enum BackgroundSync {
    public static func run(_ tessera: Tessera) async -> BackgroundSyncOutcome {
        do {
            return .done(try await tessera.syncAsync())
        } catch let error as SyncError {
            return classify(error)
        } catch {
            return .stop(error)
        }
    }

    public static func classify(_ error: SyncError) -> BackgroundSyncOutcome {
        switch error {
        case .Offline, .Timeout, .Cancelled, .Protocol, .SecretStoreFailed, .Storage:
            return .retry(error)
        case .Server(let status, _):
            return status >= 500 || status == 429 ? .retry(error) : .stop(error)
        default:
            return .stop(error)
        }
    }
}

#if canImport(BackgroundTasks) && os(iOS)
import BackgroundTasks

extension BackgroundSync {
    /// The identifier to list under `BGTaskSchedulerPermittedIdentifiers` in Info.plist.
    public static let taskIdentifier = "app.tessera.sync"

    /// Call once from `application(_:didFinishLaunchingWithOptions:)`, before it returns.
    public static func register(tessera: @escaping () -> Tessera) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: taskIdentifier, using: nil) { task in
            schedule()
            let work = Task {
                let outcome = await run(tessera())
                if case .done = outcome { task.setTaskCompleted(success: true) } else { task.setTaskCompleted(success: false) }
            }
            // The OS wants the time back: cancelling the task cancels the sync at its next safe point.
            task.expirationHandler = { work.cancel() }
        }
    }

    /// Asks for the next run (at the earliest in `after` seconds, on any network).
    public static func schedule(after: TimeInterval = 6 * 3600) {
        let request = BGAppRefreshTaskRequest(identifier: taskIdentifier)
        request.earliestBeginDate = Date(timeIntervalSinceNow: after)
        try? BGTaskScheduler.shared.submit(request)
    }
}
#endif
