import AlertDetection
import Testing

@Test func defaultSettingsValidate() throws {
    let s = try SpikeSettings().validated()
    #expect(s.factor == 2 && s.sigmas == 4 && s.forSteps == 2 && s.resolveSteps == 2 && s.minVolume == 0)
    #expect(s.windowSteps == 60 && s.minHistorySteps == 30 && s.stepsPerDay == 1440)
    #expect(s.seasonalDays == 7 && s.minSeasonalDays == 3)
}

@Test(arguments: [
    (SpikeSettings(factor: 1), "factor"),
    (SpikeSettings(factor: .nan), "factor"),
    (SpikeSettings(sigmas: -1), "sigmas"),
    (SpikeSettings(forSteps: 0), "forSteps"),
    (SpikeSettings(resolveSteps: 0), "resolveSteps"),
    (SpikeSettings(minVolume: -5), "minVolume"),
    (SpikeSettings(windowSteps: 2, minHistorySteps: 2), "windowSteps"),
    (SpikeSettings(windowSteps: 20), "minHistorySteps"),
    (SpikeSettings(stepsPerDay: 1000), "stepsPerDay"),
    (SpikeSettings(stepsPerDay: 12), "stepsPerDay"),
    (SpikeSettings(seasonalDays: 0, minSeasonalDays: 0), "seasonalDays"),
    (SpikeSettings(seasonalDays: 2), "minSeasonalDays"),
])
func nonsenseSettingsAreRejected(settings: SpikeSettings, field: String) {
    let error = #expect(throws: SpikeSettingsError.self) { try settings.validated() }
    #expect(error?.message.contains(field) == true)
    #expect(error?.description == error?.message)
}

@Test func everyProblemIsNamed() {
    do {
        _ = try SpikeSettings(factor: 0.5, forSteps: 0, stepsPerDay: 100).validated()
        Issue.record("expected an error")
    } catch {
        #expect(error.message.contains("factor") && error.message.contains("forSteps") && error.message.contains("stepsPerDay"))
        #expect(error.message.split(separator: ";").count == 3)
    }
}

@Test func detectorClampsInvalidSettings() {
    var detector = SpikeDetector(settings: SpikeSettings(factor: 0, windowSteps: 1, stepsPerDay: 100))
    #expect(detector.settings.factor == 2 && detector.settings.windowSteps == 3 && detector.settings.stepsPerDay == 96)
    #expect(detector.settings.minHistorySteps == 3)
    detector.settings.forSteps = -3
    #expect(detector.settings.forSteps == 1)
}
