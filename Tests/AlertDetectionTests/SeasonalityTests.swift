import AlertDetection
import Foundation
import Testing

/// 240 steps per day (10 per hourly slot): 100 at night, a ramp to 800 over steps 60..<90,
/// 800 until step 170, back down to 100 by step 200.
func dailyRamp(_ step: Int64) -> Double {
    let t = Double(step % 240)
    switch t {
    case ..<60: return 100
    case ..<90: return 100 + 700 * (t - 60) / 30
    case ..<170: return 800
    case ..<200: return 800 - 700 * (t - 170) / 30
    default: return 100
    }
}

let seasonalSettings = SpikeSettings(stepsPerDay: 240)

@Test func morningRampFiresOnlyWithoutSeasonality() {
    var noise = TestNoise(seed: 7)
    var detector = SpikeDetector(settings: seasonalSettings)
    let spikeStart: Int64 = 5 * 240 + 75
    let values = (0..<(7 * 240)).map { step -> Double in
        let spiked = (spikeStart..<(spikeStart + 5)).contains(Int64(step))
        return noise.around(dailyRamp(Int64(step)), relative: 0.05) * (spiked ? 3 : 1)
    }
    let evaluations = detector.feed(from: 0, values)
    let firings = fired(evaluations)
    // Days 1 and 2 (three complete days not yet seen): the trailing median lags the ramp, so it fires.
    #expect(firings.contains { (240 + 60)..<(240 + 90) ~= $0 })
    #expect(firings.contains { (480 + 60)..<(480 + 90) ~= $0 })
    #expect(!detector.isSeasonal(atStep: 719) && detector.isSeasonal(atStep: 720))
    // From day 3 the profile absorbs the ramp; only the injected 3× spike fires, at its second step.
    #expect(firings.filter { $0 >= 720 } == [spikeStart + 1])
    #expect(evaluations[Int(spikeStart) + 1].firingSince == spikeStart)
    // Expected follows the daily shape: high plateau vs night, about 8×.
    let plateau = detector.expected(atStep: 7 * 240 + 130)!
    let night = detector.expected(atStep: 7 * 240 + 20)!
    #expect(plateau / night > 6 && plateau / night < 10)
}
