import Foundation
import LedgerCore

extension AlertEngine {
    /// `GET /api/v1/alerts`: firing and pending alerts, recently resolved ones, the
    /// notification queue and log (newest first), and the configured rules and hooks.
    public func reportJSON(historyLimit: Int = 200) -> String {
        func alertObject(_ a: Alert) -> [String: Any] {
            var o: [String: Any] = [
                "fingerprint": a.fingerprint, "rule": a.rule, "type": a.kind, "status": a.status.rawValue,
                "labels": a.labels, "annotations": a.annotations, "value": a.value,
                "active_since": Payloads.time(a.activeSinceUnixNano), "starts_at": Payloads.time(a.startsAtUnixNano),
                "updated_at": Payloads.time(a.updatedUnixNano),
            ]
            if let t = a.threshold { o["threshold"] = t }
            if let b = a.baseline { o["baseline"] = b }
            if let e = a.endsAtUnixNano { o["ends_at"] = Payloads.time(e) }
            return o
        }
        func notificationObject(_ n: AlertNotification) -> [String: Any] {
            var o: [String: Any] = [
                "id": n.id, "hook": n.hook, "rule": n.alert.rule, "fingerprint": n.alert.fingerprint, "status": n.status.rawValue,
                "result": n.result.rawValue, "attempts": n.attempts, "created_at": Payloads.time(n.createdUnixNano),
                "summary": n.alert.annotations["summary"] ?? "",
            ]
            if n.result == .pending { o["next_attempt_at"] = Payloads.time(n.nextAttemptUnixNano) }
            if let f = n.finishedUnixNano { o["finished_at"] = Payloads.time(f) }
            if let s = n.httpStatus { o["http_status"] = s }
            if let e = n.lastError { o["error"] = e }
            return o
        }
        let active = state.alerts.values.sorted { ($0.startsAtUnixNano, $0.fingerprint) < ($1.startsAtUnixNano, $1.fingerprint) }
        let notifications = (state.queue + state.log.suffix(historyLimit)).sorted { $0.id > $1.id }
        let object: [String: Any] = [
            "firing": active.filter { $0.status == .firing }.map(alertObject),
            "pending": active.filter { $0.status == .pending }.map(alertObject),
            "resolved": state.resolved.map(alertObject),
            "notifications": notifications.map(notificationObject),
            "rules": configuration.rules.map { ["name": $0.name, "type": $0.kind.rawValue, "hooks": configuration.hooks(for: $0)] as [String: Any] },
            "hooks": configuration.hooks.map { ["name": $0.name, "type": $0.kind.rawValue] },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Alert self-metrics: (name, type, help, value) for the metrics registry.
    public func metricSamples() -> [(name: String, type: String, help: String, value: Int64)] {
        var out: [(name: String, type: String, help: String, value: Int64)] = []
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int64) { out.append((name, type, help, value)) }
        metric("spanledger_alerts_firing", "gauge", "Alerts firing now.", Int64(state.alerts.values.filter { $0.status == .firing }.count))
        metric("spanledger_alerts_pending", "gauge", "Alerts whose condition holds but whose `for` has not passed.", Int64(state.alerts.values.filter { $0.status == .pending }.count))
        metric("spanledger_alerts_fired_total", "counter", "Alerts that started firing since start.", counters.fired)
        metric("spanledger_alerts_resolved_total", "counter", "Alerts that resolved since start.", counters.resolved)
        metric("spanledger_alert_evaluations_total", "counter", "Evaluations of the rollup-based rules.", counters.evaluations)
        metric("spanledger_alert_notifications_queued", "gauge", "Notifications waiting for delivery or a retry.", Int64(state.queue.count))
        metric("spanledger_alert_notification_attempts_total", "counter", "Delivery attempts made.", counters.attempts)
        metric("spanledger_alert_notifications_delivered_total", "counter", "Notifications delivered.", counters.delivered)
        metric("spanledger_alert_notifications_failed_total", "counter", "Notifications refused (4xx) or given up at the retry deadline.", counters.failed)
        metric("spanledger_alert_notifications_superseded_total", "counter", "Queued notifications replaced by a newer state of the same alert.", counters.superseded)
        metric("spanledger_alert_series", "gauge", "Token-spike series tracked.", Int64(series.spikes.values.reduce(0) { $0 + $1.count }))
        metric("spanledger_alert_series_dropped_total", "counter", "Token-spike series not tracked because a rule reached max_series.", counters.droppedSeries)
        return out
    }
}
