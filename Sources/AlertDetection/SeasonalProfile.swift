/// Hourly seasonal factors, interpolated linearly between slot centres, circularly across midnight.
struct SeasonalProfile: Sendable, Equatable {
    static let minFactor = 0.05

    let factors: [Double]
    let stepsPerDay: Int

    func factor(atStep step: Int64) -> Double {
        let slotSteps = Double(stepsPerDay / SeasonalHistory.slotsPerDay)
        let inDay = Double(floorMod(step, Int64(stepsPerDay))) + 0.5
        let u = inDay / slotSteps - 0.5
        let lowerSlot = u.rounded(.down)
        let frac = u - lowerSlot
        let n = factors.count
        let i = (Int(lowerSlot) + n) % n
        let j = (i + 1) % n
        return factors[i] * (1 - frac) + factors[j] * frac
    }
}
