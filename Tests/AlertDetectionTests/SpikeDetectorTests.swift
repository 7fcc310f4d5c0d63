import AlertDetection
import Foundation
import Testing

@Test func flatNoisySeriesNeverFires() {
    var noise = TestNoise(seed: 1)
    var detector = SpikeDetector(settings: SpikeSettings())
    let values = (0..<20_000).map { _ in 1000 * exp(0.2 * noise.normal()) }
    let evaluations = detector.feed(from: 0, values)
    #expect(fired(evaluations).isEmpty)
    #expect(evaluations.allSatisfy { $0.state != .firing })
    let last = evaluations.last!
    #expect(abs(last.expected! - 1000) < 40)
    // Lognormal σ 0.2: 4 robust σ stay below 2 × expected, so the factor sets the threshold.
    #expect(abs(last.threshold! - 2 * last.expected!) < 1e-9)
    #expect(evaluations[29].expected == nil && evaluations[30].expected != nil)
}

@Test func spikeFiresAtSecondStepAndResolves() {
    var noise = TestNoise(seed: 2)
    var detector = SpikeDetector(settings: SpikeSettings())
    let values = (0..<160).map { step in noise.around(1000, relative: 0.05) * ((100..<105).contains(step) ? 3 : 1) }
    let evaluations = detector.feed(from: 0, values)
    #expect(evaluations[100].exceeding && evaluations[100].state == .pending && evaluations[100].transition == nil)
    #expect(evaluations[101].state == .firing && evaluations[101].transition == .fired && evaluations[101].firingSince == 100)
    #expect(evaluations[102...104].allSatisfy { $0.state == .firing && $0.transition == nil && $0.firingSince == 100 })
    #expect(evaluations[105].state == .firing && !evaluations[105].exceeding)
    #expect(evaluations[106].state == .normal && evaluations[106].transition == .resolved && evaluations[106].firingSince == 100)
    #expect(fired(evaluations) == [101])
    #expect(resolved(evaluations) == [106])
    #expect(detector.state == .normal && detector.lastStep == 159)
}

@Test func minVolumeSuppressesSpikeOnTinySeries() {
    var noise = TestNoise(seed: 3)
    let values = (0..<120).map { step in noise.around(10, relative: 0.05) * ((80..<85).contains(step) ? 3 : 1) }
    var quiet = SpikeDetector(settings: SpikeSettings(minVolume: 1000))
    let suppressed = quiet.feed(from: 0, values)
    #expect(suppressed.allSatisfy { !$0.exceeding && $0.state == .normal })
    #expect(suppressed[80].threshold == 1000)
    var plain = SpikeDetector(settings: SpikeSettings())
    #expect(fired(plain.feed(from: 0, values)) == [81])
}

@Test func noFiringBeforeMinHistory() {
    var detector = SpikeDetector(settings: SpikeSettings())
    let early = detector.feed(from: 0, Array(repeating: 100, count: 29) + [10_000])
    #expect(early.allSatisfy { $0.expected == nil && !$0.exceeding && $0.state == .normal })
    let next = detector.feed(from: 30, [10_000, 10_000])
    #expect(next[0].expected == 100 && next[0].exceeding && next[0].state == .pending)
    #expect(next[1].transition == .fired && next[1].firingSince == 30)
}

@Test func stepsAtOrBeforeTheLastAreIgnored() {
    var detector = SpikeDetector(settings: SpikeSettings())
    #expect(detector.observe(step: 10, value: 1) != nil)
    #expect(detector.observe(step: 10, value: 1) == nil)
    #expect(detector.observe(step: 3, value: 1) == nil)
    #expect(detector.lastStep == 10)
}

@Test func skippedStepsCountAsZeros() throws {
    var noise = TestNoise(seed: 4)
    let before = (0..<100).map { _ in noise.around(1000, relative: 0.05) }
    let after = (0..<200).map { _ in noise.around(1000, relative: 0.05) }
    var explicit = SpikeDetector(settings: SpikeSettings())
    var skipping = SpikeDetector(settings: SpikeSettings())
    _ = explicit.feed(from: 0, before + Array(repeating: 0, count: 20))
    _ = skipping.feed(from: 0, before)
    // Silent for 20 steps, then back at the usual level: no alert, and the gap equals explicit zeros.
    let a = explicit.feed(from: 120, after)
    let b = skipping.feed(from: 120, after)
    #expect(a == b)
    #expect(fired(b).isEmpty)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    #expect(try encoder.encode(explicit) == encoder.encode(skipping))
    // The zeros are in the window: after 40 silent steps of 60 the median is 0.
    _ = skipping.observe(step: 359, value: 0)
    #expect(skipping.expected(atStep: 360) == 0)
}

@Test func gapResolvesFiringAndLongGapResets() {
    var detector = SpikeDetector(settings: SpikeSettings(stepsPerDay: 240, seasonalDays: 2, minSeasonalDays: 1))
    _ = detector.feed(from: 0, Array(repeating: 1000, count: 60) + [5000, 5000])
    #expect(detector.state == .firing)
    let back = detector.observe(step: 70, value: 1000)!
    #expect(back.transition == .resolved && back.state == .normal && back.firingSince == 60)
    #expect(detector.expected(atStep: 71) == 1000)
    // A gap longer than seasonalDays × stepsPerDay (480 steps) forgets everything.
    let reset = detector.observe(step: 70 + 482, value: 1000)!
    #expect(reset.expected == nil && reset.state == .normal && reset.transition == nil)
    #expect(detector.expected(atStep: 553) == nil)
}

@Test func spikeDoesNotLiftBaseline() {
    var noise = TestNoise(seed: 5)
    var detector = SpikeDetector(settings: SpikeSettings())
    _ = detector.feed(from: 0, (0..<200).map { _ in noise.around(1000, relative: 0.1) })
    let before = detector.observe(step: 200, value: 3000)!
    let during = detector.feed(from: 201, (0..<19).map { _ in noise.around(3000, relative: 0.1) })
    #expect(during.allSatisfy { $0.exceeding })
    let afterEval = detector.observe(step: 220, value: 1000)!
    // Had the 20 spiked steps entered the 60-step window, the median would sit about 0.67 σ (~7%) higher.
    #expect(abs(afterEval.expected! / before.expected! - 1) < 0.02)
    #expect(abs(afterEval.sigma! / before.sigma! - 1) < 0.2)
}

@Test func sustainedLevelShiftEventuallyResolves() {
    var noise = TestNoise(seed: 6)
    var detector = SpikeDetector(settings: SpikeSettings())
    let values = (0..<800).map { step in noise.around(step < 200 ? 1000 : 4000, relative: 0.05) }
    let evaluations = detector.feed(from: 0, values)
    #expect(fired(evaluations) == [201])
    // Exceeding steps join the window after 60 in a row (from step 260); once 30 have, the median moves.
    let resolution = resolved(evaluations)
    #expect(resolution.count == 1)
    #expect((285...300).contains(resolution.first ?? 0))
    #expect(abs(evaluations[799].expected! - 4000) < 200)
}

@Test func sigmaTermGuardsNoisySeries() {
    var noise = TestNoise(seed: 9)
    var detector = SpikeDetector(settings: SpikeSettings())
    // Uniform in [400, 1600]: MAD 300, robust σ ≈ 445, so expected + 4σ ≈ 2780 > 2 × expected.
    _ = detector.feed(from: 0, (0..<200).map { _ in 400 + 1200 * noise.uniform() })
    let near = detector.feed(from: 200, [2500, 2500, 2500])
    #expect(near.allSatisfy { !$0.exceeding && $0.state == .normal })
    let e = near[0]
    #expect(abs(e.sigma! - 445) < 60)
    #expect(abs(e.threshold! - (e.expected! + 4 * e.sigma!)) < 1e-9)
    #expect(fired(detector.feed(from: 203, [3200, 3200])) == [204])
}
