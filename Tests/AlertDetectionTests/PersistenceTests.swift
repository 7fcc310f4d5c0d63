import AlertDetection
import Foundation
import Testing

@Test func codableRoundTripMidSeriesContinuesIdentically() throws {
    var noise = TestNoise(seed: 8)
    var original = SpikeDetector(settings: SpikeSettings(stepsPerDay: 240))
    // Four days with the ramp (seasonality on from day 3), stopped two steps into a spike: firing.
    let stop: Int64 = 4 * 240 + 100
    _ = original.feed(from: 0, (0..<stop).map { step in
        noise.around(dailyRamp(step), relative: 0.05) * (step >= stop - 2 ? 3 : 1)
    })
    #expect(original.state == .firing)

    let data = try JSONEncoder().encode(original)
    var restored = try JSONDecoder().decode(SpikeDetector.self, from: data)
    #expect(restored.settings == original.settings && restored.lastStep == stop - 1 && restored.state == .firing)
    #expect(restored.expected(atStep: stop) == original.expected(atStep: stop))

    // A gap, a spike and a day boundary (profile recomputed) after the restart.
    var steps: [(Int64, Double)] = []
    for step in stop..<(stop + 400) where !(stop + 50..<stop + 55).contains(step) {
        steps.append((step, noise.around(dailyRamp(step), relative: 0.05) * ((stop + 200..<stop + 205).contains(step) ? 3 : 1)))
    }
    let a = steps.compactMap { original.observe(step: $0.0, value: $0.1) }
    let b = steps.compactMap { restored.observe(step: $0.0, value: $0.1) }
    #expect(a.count == steps.count)
    #expect(a == b)
    #expect(resolved(a) == [stop + 1, stop + 206])
    #expect(fired(a) == [stop + 201])
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    #expect(try encoder.encode(original) == encoder.encode(restored))
}

@Test func decodingRejectsStateThatContradictsItsSettings() throws {
    let detector = SpikeDetector(settings: SpikeSettings())
    var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(detector)) as! [String: Any]
    var settings = json["settings"] as! [String: Any]
    settings["windowSteps"] = 90
    json["settings"] = settings
    let tampered = try JSONSerialization.data(withJSONObject: json)
    #expect(throws: DecodingError.self) { try JSONDecoder().decode(SpikeDetector.self, from: tampered) }
}
