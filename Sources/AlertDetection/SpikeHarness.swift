import LedgerCore

/// Runs synthetic series through real `SpikeDetector`s on a simulated clock and scores the alerts.
public enum SpikeHarness {
    public static let targetDelaySeconds = 120

    /// Simulates every series for warmupDays + days and scores the measured days. Single-threaded
    /// and deterministic for a seed. `settings.stepsPerDay` should equal `scenario.stepsPerDay`.
    public static func run(_ scenario: SpikeScenario, settings: SpikeSettings) -> SpikeReport {
        let clock = ContinuousClock()
        let started = clock.now
        let stepsPerDay = scenario.stepsPerDay
        let measuredStart = max(0, scenario.warmupDays) * stepsPerDay
        let totalSteps = measuredStart + max(0, scenario.days) * stepsPerDay
        let effective = SpikeDetector(settings: settings).settings
        var seeds = SplitMix64(seed: scenario.seed)

        var totals = SeriesOutcome()
        for _ in 0..<max(0, scenario.series) {
            var paramsRandom = SeededRandom(seed: seeds.next())
            var scheduleRandom = SeededRandom(seed: seeds.next())
            var trafficRandom = SeededRandom(seed: seeds.next())
            let model = SyntheticSeries(random: &paramsRandom, stepsPerDay: stepsPerDay, exactSums: scenario.exactTokenSums)
            let spikes = schedule(scenario, settings: effective, from: measuredStart, to: totalSteps, random: &scheduleRandom)
            totals.add(runSeries(model, spikes: spikes, scenario: scenario, settings: effective,
                                 measuredStart: measuredStart, totalSteps: totalSteps, random: &trafficRandom))
        }

        let seconds = (clock.now - started) / .seconds(1)
        let delays = totals.delaysSeconds.sorted()
        let seriesDays = Double(max(0, scenario.series) * max(0, scenario.days))
        return SpikeReport(
            series: scenario.series, days: scenario.days, stepsEvaluated: totals.steps,
            injected: totals.injected, detected: delays.count,
            detectedWithinTarget: delays.filter { $0 <= Double(targetDelaySeconds) }.count,
            targetDelaySeconds: targetDelaySeconds,
            medianDelaySeconds: delays.isEmpty ? nil : RobustStatistics.median(of: delays),
            p90DelaySeconds: delays.isEmpty ? nil : delays[Int((0.9 * Double(delays.count)).rounded(.up)) - 1],
            falsePositives: totals.falsePositives,
            falsePositivesPerSeriesPerDay: seriesDays > 0 ? Double(totals.falsePositives) / seriesDays : 0,
            detectionRate: totals.injected > 0
                ? Double(delays.filter { $0 <= Double(targetDelaySeconds) }.count) / Double(totals.injected) : 1,
            seconds: seconds
        )
    }

    /// Spike start steps, uniformly placed in the measured steps with each scoring interval inside
    /// the run and starts at least spikeSteps + 2 × windowSteps apart.
    static func schedule(
        _ scenario: SpikeScenario, settings: SpikeSettings, from first: Int, to end: Int, random: inout SeededRandom
    ) -> [Int] {
        let expected = max(0, scenario.spikesPerSeriesPerWeek) * Double(max(0, scenario.days)) / 7
        var count = Int(expected.rounded(.down)) + (random.uniform() < expected - expected.rounded(.down) ? 1 : 0)
        let spacing = max(1, scenario.spikeSteps) + 2 * settings.windowSteps
        let lastStart = end - 1 - scoringTail(scenario, settings)
        guard lastStart >= first else { return [] }
        while count > 0 && (count - 1) * spacing > lastStart - first { count -= 1 }
        let slack = lastStart - first - max(0, count - 1) * spacing
        let offsets = (0..<count).map { _ in Int(random.uniform() * Double(slack + 1)) }.sorted()
        return offsets.enumerated().map { first + $0.element + $0.offset * spacing }
    }

    /// Steps after a spike's start that still belong to its scoring interval.
    static func scoringTail(_ scenario: SpikeScenario, _ settings: SpikeSettings) -> Int {
        max(1, scenario.spikeSteps) - 1 + settings.resolveSteps + settings.forSteps
    }

    static func runSeries(
        _ model: SyntheticSeries, spikes: [Int], scenario: SpikeScenario, settings: SpikeSettings,
        measuredStart: Int, totalSteps: Int, random: inout SeededRandom
    ) -> SeriesOutcome {
        var detector = SpikeDetector(settings: settings)
        let tail = scoringTail(scenario, settings)
        let spikeSteps = max(1, scenario.spikeSteps)
        var detectedAt = [Int?](repeating: nil, count: spikes.count)
        var outcome = SeriesOutcome()
        outcome.injected = spikes.count
        var next = 0  // first spike whose scoring interval has not ended
        for step in 0..<totalSteps {
            while next < spikes.count && spikes[next] + tail < step { next += 1 }
            var rate = model.rate(atStep: step)
            if next < spikes.count && step >= spikes[next] && step < spikes[next] + spikeSteps { rate *= scenario.spikeFactor }
            let value = model.tokens(rate: rate, random: &random)
            guard let evaluation = detector.observe(step: Int64(step), value: value) else { continue }
            outcome.steps += 1
            guard evaluation.state == .firing else { continue }
            // Scoring intervals may overlap only with extreme settings; check every open one.
            var inSpike = false
            var k = next
            while k < spikes.count && spikes[k] <= step {
                if step <= spikes[k] + tail {
                    inSpike = true
                    if detectedAt[k] == nil { detectedAt[k] = step }
                }
                k += 1
            }
            if evaluation.transition == .fired && step >= measuredStart && !inSpike { outcome.falsePositives += 1 }
        }
        for (k, at) in detectedAt.enumerated() {
            if let at { outcome.delaysSeconds.append(Double((at + 1 - spikes[k]) * scenario.stepSeconds)) }
        }
        return outcome
    }

    struct SeriesOutcome {
        var steps = 0
        var injected = 0
        var falsePositives = 0
        var delaysSeconds: [Double] = []

        mutating func add(_ other: SeriesOutcome) {
            steps += other.steps
            injected += other.injected
            falsePositives += other.falsePositives
            delaysSeconds += other.delaysSeconds
        }
    }
}
