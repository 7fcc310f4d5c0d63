import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// A listener's open connections and whether each is in the middle of a request, so that
/// graceful shutdown can end each one the way its protocol wants and wait for them all.
public final class ConnectionTracker: Sendable {
    struct State {
        var channels: [ObjectIdentifier: (channel: any Channel, busy: Bool)] = [:]
        var shuttingDown = false
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Registers a new connection (forgotten when it closes); false once shutdown has
    /// begun, when the caller refuses it.
    public func opened(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let accepted = state.withLockedValue { s in
            guard !s.shuttingDown else { return false }
            s.channels[id] = (channel, false)
            return true
        }
        if accepted { channel.closeFuture.whenComplete { _ in self.state.withLockedValue { _ = $0.channels.removeValue(forKey: id) } } }
        return accepted
    }

    public func busy(_ id: ObjectIdentifier) { state.withLockedValue { $0.channels[id]?.busy = true } }

    /// Marks a connection between requests; true when shutdown has begun (the caller
    /// closes it once its last response is written).
    public func idle(_ id: ObjectIdentifier) -> Bool {
        state.withLockedValue { s in
            s.channels[id]?.busy = false
            return s.shuttingDown
        }
    }

    /// Serves until graceful shutdown or cancellation, then returns once the listener and
    /// every connection have closed. On graceful shutdown the listener stops accepting and
    /// `shutdown` gets the open connections (with whether each is busy) to end as its
    /// protocol asks; on cancellation every connection is closed at once.
    public func serve(until server: any Channel, shutdown: @escaping @Sendable ([(channel: any Channel, busy: Bool)]) -> Void) async {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await server.closeFuture.get()
                for channel in state.withLockedValue({ $0.channels.values.map(\.channel) }) {
                    try? await channel.closeFuture.get()
                }
            } onGracefulShutdown: {
                server.close(promise: nil)
                shutdown(self.beginShutdown())
            }
        } onCancel: {
            server.close(promise: nil)
            for (channel, _) in self.beginShutdown() { channel.close(promise: nil) }
        }
    }

    private func beginShutdown() -> [(channel: any Channel, busy: Bool)] {
        state.withLockedValue { s in
            s.shuttingDown = true
            return Array(s.channels.values)
        }
    }
}
