import LedgerCore
import Logging
import ServiceLifecycle

/// Runs the alert engine: a tick every 100 ms evaluates what is due and starts the
/// delivery attempts that are due, each in its own task so a slow hook holds up nothing
/// else. On shutdown it lets attempts in flight finish (bounded by the hooks' timeouts)
/// and writes the state.
public struct AlertService: Service {
    let engine: AlertEngine
    let sender: HookSender
    let logger: Logger
    let tickNano: UInt64

    public init(engine: AlertEngine, sender: HookSender, logger: Logger, tickNano: UInt64 = 100_000_000) {
        self.engine = engine
        self.sender = sender
        self.logger = logger
        self.tickNano = tickNano
    }

    public func run() async throws {
        let engine = self.engine
        let sender = self.sender
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let due = await engine.tick(now: WallClock.nowUnixNano())
                for n in due {
                    group.addTask {
                        guard let hook = await engine.hookConfiguration(n.hook) else {
                            await engine.finish(n.id, .refused(httpStatus: nil, reason: "hook '\(n.hook)' is not configured"), now: WallClock.nowUnixNano())
                            return
                        }
                        let outcome = await sender.send(n, hook: hook, externalURL: await engine.baseURL)
                        await engine.finish(n.id, outcome, now: WallClock.nowUnixNano())
                    }
                }
                try? await Task.sleep(nanoseconds: tickNano)
            }
        }
        await engine.shutdown(now: WallClock.nowUnixNano())
        await sender.shutdown()
        logger.info("alert state written")
    }
}
