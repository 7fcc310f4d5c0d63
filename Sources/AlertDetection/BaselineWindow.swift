/// Ring buffer of the last `capacity` baseline values with their steps. `adjusted` holds each value
/// divided by the seasonal factor of its step; it is a cache, rebuilt after decoding.
struct BaselineWindow: Sendable, Codable, Equatable {
    private(set) var capacity: Int
    private(set) var values: [Double] = []
    private(set) var steps: [Int64] = []
    /// Index of the oldest element once the ring is full.
    private(set) var head: Int = 0
    private(set) var adjusted: [Double] = []

    private enum CodingKeys: String, CodingKey { case capacity, values, steps, head }

    init(capacity: Int) {
        self.capacity = capacity
        values.reserveCapacity(capacity)
        steps.reserveCapacity(capacity)
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        capacity = try c.decode(Int.self, forKey: .capacity)
        values = try c.decode([Double].self, forKey: .values)
        steps = try c.decode([Int64].self, forKey: .steps)
        head = try c.decode(Int.self, forKey: .head)
        guard capacity >= 1, values.count == steps.count, values.count <= capacity,
              head >= 0, head < max(1, values.count)
        else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "inconsistent baseline window"))
        }
    }

    var count: Int { values.count }

    /// True when `adjusted` is in step with `values`.
    var isAdjusted: Bool { adjusted.count == values.count }

    mutating func append(step: Int64, value: Double, adjusted adj: Double) {
        if values.count < capacity {
            values.append(value)
            steps.append(step)
            if adjusted.count == values.count - 1 { adjusted.append(adj) } else { adjusted = [] }
        } else {
            values[head] = value
            steps[head] = step
            if adjusted.count == values.count { adjusted[head] = adj } else { adjusted = [] }
            head = (head + 1) % capacity
        }
    }

    /// Recomputes every adjusted value with `factor(step)`.
    mutating func readjust(_ factor: (Int64) -> Double) {
        adjusted = Self.adjustedValues(values: values, steps: steps, factor)
    }

    static func adjustedValues(values: [Double], steps: [Int64], _ factor: (Int64) -> Double) -> [Double] {
        var out = [Double](repeating: 0, count: values.count)
        for i in 0..<values.count { out[i] = adjust(values[i], by: factor(steps[i])) }
        return out
    }

    /// The single formula for a deseasonalised value, so cached and recomputed values agree bit for bit.
    static func adjust(_ value: Double, by factor: Double) -> Double { value / factor }

    /// Keeps the newest `newCapacity` elements in chronological order.
    mutating func resize(to newCapacity: Int) {
        guard newCapacity != capacity else { return }
        let ordered = chronological()
        let kept = ordered.suffix(newCapacity)
        capacity = newCapacity
        values = kept.map(\.value)
        steps = kept.map(\.step)
        head = 0
        adjusted = []
    }

    mutating func removeAll() {
        values.removeAll(keepingCapacity: true)
        steps.removeAll(keepingCapacity: true)
        adjusted.removeAll(keepingCapacity: true)
        head = 0
    }

    private func chronological() -> [(step: Int64, value: Double)] {
        (0..<values.count).map { i in
            let j = values.count < capacity ? i : (head + i) % capacity
            return (steps[j], values[j])
        }
    }
}
