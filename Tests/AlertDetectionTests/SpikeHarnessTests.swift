import AlertDetection
import Testing

@Test func harnessMeetsTargetsOnReducedScenario() {
    let scenario = SpikeScenario(series: 20, days: 3, warmupDays: 2)
    let report = SpikeHarness.run(scenario, settings: SpikeSettings())
    #expect(report.stepsEvaluated == 20 * 5 * 1440)
    #expect(report.injected >= 20 && report.injected <= 40)
    #expect(report.detectionRate >= 0.95)
    #expect(report.falsePositives == 0)
    #expect(report.medianDelaySeconds == 120)
    #expect(report.meetsTargets())
    #expect(report.lines.count == 6 && report.lines[4].hasSuffix("met"))
}

@Test func harnessDoesNotCreditUnspikedTraffic() {
    // Same scenario with spikes of factor 1: nothing to detect, so the rate must collapse.
    let scenario = SpikeScenario(series: 10, days: 2, warmupDays: 1, spikeFactor: 1)
    let report = SpikeHarness.run(scenario, settings: SpikeSettings())
    #expect(report.injected > 0)
    #expect(report.detected == 0 && report.detectionRate == 0)
    #expect(!report.meetsTargets())
}
