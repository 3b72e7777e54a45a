import Foundation

/// Forwards the core's sync progress into an `AsyncStream`.
private final class ProgressForwarder: SyncListener, @unchecked Sendable {
    private let continuation: AsyncStream<SyncProgress>.Continuation

    init(_ continuation: AsyncStream<SyncProgress>.Continuation) {
        self.continuation = continuation
    }

    func onProgress(progress: SyncProgress) {
        continuation.yield(progress)
    }
}

extension Tessera {
    /// Every sync's progress (started, pushing, pulling, member, finished or failed) as an
    /// `AsyncStream`: iterating it sets the core's one sync listener, and ending the iteration
    /// removes it. One stream at a time (a second replaces the first's listener). Progress never
    /// blocks the sync: the stream keeps the newest 64 updates.
    public func syncProgress() -> AsyncStream<SyncProgress> {
        AsyncStream(bufferingPolicy: .bufferingNewest(64)) { continuation in
            self.setSyncListener(listener: ProgressForwarder(continuation))
            continuation.onTermination = { [weak self] _ in
                self?.setSyncListener(listener: nil)
            }
        }
    }
}
