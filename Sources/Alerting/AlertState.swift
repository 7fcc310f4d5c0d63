import AlertDetection
import DurableFiles
import Foundation

/// The alert engine's memory, in two files under `<data>/alerts/`, each replaced
/// atomically: `state.json` (alerts, the notification queue and log: written on every
/// change, so a restart neither re-sends nor forgets) and `series.json` (detector history
/// and sliding windows: written when steps close, at most every few seconds).
struct AlertStateFile: Codable {
    var version = 1
    var alerts: [String: Alert] = [:]
    var resolved: [Alert] = []
    var queue: [AlertNotification] = []
    var log: [AlertNotification] = []
    var nextNotificationID: Int64 = 1
}

struct SpikeSeries: Codable {
    var workflow: String
    var model: String?
    var detector: SpikeDetector
    /// Tokens per step not yet closed.
    var open: [Int64: Double] = [:]
    var lastDataStep: Int64
    var last: SpikeEvaluation.Snapshot?
}

struct SeriesStateFile: Codable {
    var version = 1
    /// Rule name → series id → series.
    var spikes: [String: [String: SpikeSeries]] = [:]
    /// Workflow → (retries, LLM calls) per second.
    var retries: [String: WindowCounter] = [:]
    /// Model → (unpriced calls, unpriced tokens) per second.
    var unpriced: [String: WindowCounter] = [:]
    /// Model → workflows that used it unpriced recently.
    var unpricedWorkflows: [String: [String]] = [:]
}

extension SpikeEvaluation {
    /// The numbers of the last evaluation kept for summaries and the API.
    struct Snapshot: Codable, Equatable {
        var step: Int64
        var value: Double
        var expected: Double?
        var threshold: Double?
        var firingSince: Int64?
    }

    var snapshot: Snapshot { Snapshot(step: step, value: value, expected: expected, threshold: threshold, firingSince: firingSince) }
}

struct AlertStore {
    let directory: String
    var statePath: String { directory + "/state.json" }
    var seriesPath: String { directory + "/series.json" }

    func prepare() throws {
        try FileIO.makeDirectories(directory)
    }

    func load<T: Decodable>(_ type: T.Type, from path: String) throws -> T? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let bytes = try FileIO.readAll(path)
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    }

    func save<T: Encodable>(_ value: T, to path: String) throws {
        let data = try JSONEncoder().encode(value)
        try FileIO.writeAtomically(Array(data), to: path)
    }
}
