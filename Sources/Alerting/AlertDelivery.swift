import Foundation
import LedgerCore

/// How one delivery attempt went.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered(httpStatus: Int?)
    /// Not retried: a 4xx answer (other than 408 and 429).
    case refused(httpStatus: Int?, reason: String)
    /// Retried with backoff until the deadline: 5xx, 408, 429, timeouts, connection errors, a failed command.
    case transient(httpStatus: Int?, reason: String)
}

struct AlertCounters: Sendable {
    var evaluations: Int64 = 0
    var fired: Int64 = 0
    var resolved: Int64 = 0
    var attempts: Int64 = 0
    var delivered: Int64 = 0
    var failed: Int64 = 0
    var superseded: Int64 = 0
    var droppedSeries: Int64 = 0
    var droppedActivities: Int64 = 0
}

extension AlertEngine {
    /// Queues a notification for `hook`. A queued, not yet attempted notification for the
    /// same alert and hook is superseded: only the latest state of an alert is sent.
    func enqueue(_ alert: Alert, status: Alert.Status, hook: String, now: Int64) {
        guard let h = configuration.hook(named: hook) else { return }
        if status == .resolved && !h.sendResolved { return }
        for (i, q) in state.queue.enumerated().reversed() where q.alert.fingerprint == alert.fingerprint && q.hook == hook && !inFlight.contains(q.id) {
            var s = q
            s.result = .superseded
            s.finishedUnixNano = now
            state.queue.remove(at: i)
            appendLog(s)
            counters.superseded += 1
        }
        let n = AlertNotification(id: state.nextNotificationID, hook: hook, alert: alert, status: status, createdUnixNano: now, nextAttemptUnixNano: now)
        state.nextNotificationID += 1
        state.queue.append(n)
        stateDirty = true
    }

    /// Notifications whose attempt is due, oldest first, at most one in flight per alert and hook.
    func takeDue(now: Int64) -> [AlertNotification] {
        var busy = Set(state.queue.filter { inFlight.contains($0.id) }.map { "\($0.alert.fingerprint)/\($0.hook)" })
        var due: [AlertNotification] = []
        for i in state.queue.indices where !inFlight.contains(state.queue[i].id) && state.queue[i].nextAttemptUnixNano <= now {
            let key = "\(state.queue[i].alert.fingerprint)/\(state.queue[i].hook)"
            guard !busy.contains(key) else { continue }
            busy.insert(key)
            state.queue[i].attempts += 1
            inFlight.insert(state.queue[i].id)
            due.append(state.queue[i])
            counters.attempts += 1
        }
        if !due.isEmpty {
            stateDirty = true
            // The attempt count is on disk before the attempt is made.
            try? persist(now: now, force: false)
        }
        return due
    }

    /// Records an attempt's outcome: delivered and refused notifications go to the log;
    /// transient failures are retried with exponential backoff until the deadline.
    public func finish(_ id: Int64, _ outcome: DeliveryOutcome, now: Int64) {
        inFlight.remove(id)
        guard let i = state.queue.firstIndex(where: { $0.id == id }) else { return }
        var n = state.queue[i]
        let d = configuration.delivery
        switch outcome {
        case .delivered(let status):
            n.result = .delivered
            n.httpStatus = status
            n.lastError = nil
            counters.delivered += 1
        case .refused(let status, let reason):
            n.result = .failed
            n.httpStatus = status
            n.lastError = reason
            counters.failed += 1
            logger.error("alert notification refused; not retried", metadata: ["hook": "\(n.hook)", "fingerprint": "\(n.alert.fingerprint)", "reason": "\(reason)"])
        case .transient(let status, let reason):
            n.httpStatus = status
            n.lastError = reason
            let backoff = min(d.retryMaxNano, d.retryInitialNano.multipliedReportingOverflow(by: Int64(1) << Int64(min(n.attempts - 1, 40))).partialValue)
            let next = now + max(backoff, 1)
            if next > n.createdUnixNano + d.retryDeadlineNano {
                n.result = .failed
                n.lastError = "gave up after \(n.attempts) attempts: \(reason)"
                counters.failed += 1
                logger.error("alert notification failed", metadata: ["hook": "\(n.hook)", "fingerprint": "\(n.alert.fingerprint)", "reason": "\(n.lastError!)"])
            } else {
                n.nextAttemptUnixNano = next
                state.queue[i] = n
                logger.warning("alert notification will be retried", metadata: ["hook": "\(n.hook)", "attempt": "\(n.attempts)", "reason": "\(reason)"])
                stateDirty = true
                try? persist(now: now, force: false)
                return
            }
        }
        n.finishedUnixNano = now
        state.queue.remove(at: i)
        appendLog(n)
        stateDirty = true
        try? persist(now: now, force: false)
    }

    func appendLog(_ n: AlertNotification) {
        state.log.append(n)
        let limit = configuration.delivery.historyLimit
        if state.log.count > limit { state.log.removeFirst(state.log.count - limit) }
    }

    /// Writes the alert state when it changed, and the series history with it or, when
    /// only steps closed, at most every 5 s.
    func persist(now: Int64, force: Bool) throws {
        // The windows that decided an alert's state are written with it, so a restart
        // does not resolve (and later re-fire) an alert whose evidence was not yet saved.
        let writeState = stateDirty || force
        if seriesDirty && (writeState || now - lastSeriesSave >= 5_000_000_000) {
            do {
                try store.save(series, to: store.seriesPath)
                seriesDirty = false
                lastSeriesSave = now
            } catch {
                logger.error("cannot write alert series history", metadata: ["error": "\(error)"])
                throw error
            }
        }
        if writeState {
            do {
                try store.save(state, to: store.statePath)
                stateDirty = false
            } catch {
                logger.error("cannot write alert state", metadata: ["error": "\(error)"])
                throw error
            }
        }
    }

    public func shutdown(now: Int64) {
        try? persist(now: now, force: true)
    }

    public func hookConfiguration(_ name: String) -> HookConfiguration? { configuration.hook(named: name) }
    public var baseURL: String { externalURL }
}

/// Numbers for alert summaries.
enum Format {
    static func int(_ v: Double) -> String {
        guard v.isFinite else { return "∞" }
        let n = Int64(v.rounded())
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func ratio(_ v: Double) -> String { v.isFinite ? String(format: "%.1f", v) : "∞" }
    static func percent(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }
}

/// Durations for summaries: the largest unit that divides evenly (`5m`, `90s`, `1h`, `7d`).
enum DurationFormat {
    static func text(_ ns: Int64) -> String {
        for (unit, name) in [(Int64(86_400_000_000_000), "d"), (3_600_000_000_000, "h"), (60_000_000_000, "m"), (1_000_000_000, "s"), (1_000_000, "ms")]
        where ns >= unit && ns % unit == 0 {
            return "\(ns / unit)\(name)"
        }
        return "\(ns)ns"
    }
}
