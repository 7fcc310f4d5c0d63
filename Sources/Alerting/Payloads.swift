import Foundation
import LedgerCore

/// The bodies hooks receive.
enum Payloads {
    static let zeroTime = "0001-01-01T00:00:00Z"

    static func time(_ ns: Int64?) -> String {
        guard let ns else { return zeroTime }
        return RFC3339.format(unixNano: ns, fractional: true)
    }

    /// One alert in the Alertmanager webhook shape.
    static func alertmanagerAlert(_ a: Alert, status: Alert.Status, generatorURL: String) -> [String: Any] {
        [
            "status": status == .resolved ? "resolved" : "firing",
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": time(a.startsAtUnixNano),
            "endsAt": status == .resolved ? time(a.endsAtUnixNano) : zeroTime,
            "generatorURL": generatorURL,
            "fingerprint": a.fingerprint,
        ]
    }

    /// The Prometheus Alertmanager webhook payload, version 4: one group per alert
    /// (the group key names the rule and the fingerprint), so receivers written for
    /// Alertmanager work unchanged.
    static func alertmanager(_ n: AlertNotification, receiver: String, externalURL: String) -> [String: Any] {
        let a = n.alert
        return [
            "version": "4",
            "groupKey": "{}/{rule=\"\(a.rule)\"}:{fingerprint=\"\(a.fingerprint)\"}",
            "truncatedAlerts": 0,
            "status": n.status == .resolved ? "resolved" : "firing",
            "receiver": receiver,
            "groupLabels": ["alertname": a.labels["alertname"] ?? a.rule],
            "commonLabels": a.labels,
            "commonAnnotations": a.annotations,
            "externalURL": externalURL,
            "alerts": [alertmanagerAlert(a, status: n.status, generatorURL: a.annotations["query"] ?? externalURL)],
        ]
    }

    /// A Slack incoming-webhook body: a one-line `text` and an attachment with the details.
    static func slack(_ n: AlertNotification) -> [String: Any] {
        let a = n.alert
        let firing = n.status != .resolved
        let head = "[\(firing ? "FIRING" : "RESOLVED")] \(a.rule) (\(a.labels["severity"] ?? "warning")): \(a.annotations["summary"] ?? "")"
        var fields: [[String: Any]] = []
        for k in a.labels.keys.sorted() where k != "alertname" { fields.append(["title": k, "value": a.labels[k]!, "short": true]) }
        return [
            "text": head,
            "attachments": [[
                "color": firing ? (a.labels["severity"] == "critical" ? "danger" : "warning") : "good",
                "title": a.rule,
                "title_link": a.annotations["query"] ?? "",
                "text": a.annotations["description"] ?? "",
                "fields": fields,
                "footer": "SpanLedger · fingerprint \(a.fingerprint)",
            ] as [String: Any]],
        ]
    }

    static func encode(_ object: [String: Any]) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Array(data)
    }
}
