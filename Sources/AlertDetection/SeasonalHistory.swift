/// Per-day hourly slot sums and counts for the last `seasonalDays` days plus the current one,
/// in a ring indexed by day number (step / stepsPerDay, floored).
struct SeasonalHistory: Sendable, Codable, Equatable {
    static let slotsPerDay = 24

    private(set) var stepsPerDay: Int
    private(set) var ringDays: Int
    /// Day number held by each ring entry, nil when empty.
    private(set) var days: [Int64?]
    /// `ringDays` × 24 slot sums and counts.
    private(set) var sums: [Double]
    private(set) var counts: [Int32]

    init(stepsPerDay: Int, seasonalDays: Int) {
        self.stepsPerDay = stepsPerDay
        ringDays = seasonalDays + 1
        days = Array(repeating: nil, count: ringDays)
        sums = Array(repeating: 0, count: ringDays * Self.slotsPerDay)
        counts = Array(repeating: 0, count: ringDays * Self.slotsPerDay)
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stepsPerDay = try c.decode(Int.self, forKey: .stepsPerDay)
        ringDays = try c.decode(Int.self, forKey: .ringDays)
        days = try c.decode([Int64?].self, forKey: .days)
        sums = try c.decode([Double].self, forKey: .sums)
        counts = try c.decode([Int32].self, forKey: .counts)
        guard stepsPerDay >= Self.slotsPerDay, stepsPerDay % Self.slotsPerDay == 0, ringDays >= 2, days.count == ringDays,
              sums.count == ringDays * Self.slotsPerDay, counts.count == sums.count
        else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "inconsistent seasonal history"))
        }
    }

    var slotSteps: Int { stepsPerDay / Self.slotsPerDay }

    func day(of step: Int64) -> Int64 { floorDiv(step, Int64(stepsPerDay)) }

    /// Adds `count` steps of `value` each, all in the same slot as `step`.
    mutating func add(step: Int64, value: Double, count: Int = 1) {
        let day = day(of: step)
        let slot = Int(step - day * Int64(stepsPerDay)) / slotSteps
        let entry = entryIndex(for: day)
        sums[entry * Self.slotsPerDay + slot] += value * Double(count)
        counts[entry * Self.slotsPerDay + slot] += Int32(count)
    }

    /// Adds zeros for every step in `first...last`, one slot run at a time.
    mutating func addZeros(from first: Int64, through last: Int64) {
        var step = first
        let slot = Int64(slotSteps)
        while step <= last {
            let slotEnd = floorDiv(step, slot) * slot + slot - 1
            let runEnd = min(slotEnd, last)
            add(step: step, value: 0, count: Int(runEnd - step + 1))
            step = runEnd + 1
        }
    }

    mutating func removeAll() {
        self = SeasonalHistory(stepsPerDay: stepsPerDay, seasonalDays: ringDays - 1)
    }

    /// The seasonal profile in force on `day`: per slot, the median over the complete days before
    /// `day` (at most `ringDays - 1` back, zero-volume days skipped) of slot mean / day mean,
    /// floored at 0.05. Nil with fewer than `minDays` such days.
    func profile(forDay day: Int64, minDays: Int) -> SeasonalProfile? {
        let slots = Self.slotsPerDay
        let fullSlot = Int32(slotSteps)
        var usable: [(entry: Int, total: Double)] = []
        for e in 0..<ringDays {
            guard let d = days[e], d < day, d >= day - Int64(ringDays - 1) else { continue }
            var complete = true
            var total = 0.0
            for s in 0..<slots {
                if counts[e * slots + s] != fullSlot { complete = false; break }
                total += sums[e * slots + s]
            }
            if complete && total > 0 { usable.append((e, total)) }
        }
        guard usable.count >= minDays else { return nil }
        var factors = [Double](repeating: 1, count: slots)
        var ratios = [Double](repeating: 0, count: usable.count)
        for s in 0..<slots {
            for (k, day) in usable.enumerated() {
                ratios[k] = sums[day.entry * slots + s] / day.total * Double(slots)
            }
            factors[s] = max(RobustStatistics.median(of: ratios), SeasonalProfile.minFactor)
        }
        return SeasonalProfile(factors: factors, stepsPerDay: stepsPerDay)
    }

    private mutating func entryIndex(for day: Int64) -> Int {
        let e = Int(floorMod(day, Int64(ringDays)))
        if days[e] != day {
            days[e] = day
            let base = e * Self.slotsPerDay
            for s in 0..<Self.slotsPerDay {
                sums[base + s] = 0
                counts[base + s] = 0
            }
        }
        return e
    }
}
