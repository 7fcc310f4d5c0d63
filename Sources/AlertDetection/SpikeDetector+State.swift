extension SpikeDetector {
    /// Moves the alert state machine by one step; true when the series fired at this step.
    mutating func advance(step: Int64, exceeding: Bool) -> Bool {
        guard exceeding else {
            settle(normalSteps: 1)
            return false
        }
        if exceedStreak == 0 { streakStart = step }
        exceedStreak += 1
        normalStreak = 0
        switch state {
        case .firing:
            return false
        case .normal, .pending:
            if exceedStreak >= settings.forSteps {
                state = .firing
                firingSince = streakStart
                return true
            }
            state = .pending
            return false
        }
    }

    /// Applies `count` consecutive non-exceeding steps to the state machine.
    mutating func settle(normalSteps count: Int) {
        exceedStreak = 0
        streakStart = nil
        switch state {
        case .firing:
            normalStreak += count
            if normalStreak >= settings.resolveSteps {
                state = .normal
                normalStreak = 0
                firingSince = nil
            }
        case .pending:
            state = .normal
        case .normal:
            break
        }
    }

    /// Treats `first...last` as observed 0-valued steps. A zero never exceeds, so this costs
    /// O(windowSteps + slots in the gap) whatever the gap's length.
    mutating func skipZeros(from first: Int64, through last: Int64) {
        settle(normalSteps: Int(last - first + 1))
        let windowStart = max(first, last - Int64(settings.windowSteps) + 1)
        var step = windowStart
        while step <= last {
            window.append(step: step, value: 0, adjusted: BaselineWindow.adjust(0, by: 1))
            step += 1
        }
        history.addZeros(from: first, through: last)
    }

    /// Forgets the baseline, the seasonal history and any alert (after a gap too long to replay).
    mutating func resetHistory() {
        window.removeAll()
        history.removeAll()
        exceedStreak = 0
        streakStart = nil
        normalStreak = 0
        firingSince = nil
        state = .normal
        profileDay = nil
        profile = nil
    }

    /// Adapts stored state after `settings` changed.
    mutating func reconcile(with old: SpikeSettings) {
        if settings.windowSteps != old.windowSteps { window.resize(to: settings.windowSteps) }
        if settings.stepsPerDay != old.stepsPerDay || settings.seasonalDays != old.seasonalDays {
            history = SeasonalHistory(stepsPerDay: settings.stepsPerDay, seasonalDays: settings.seasonalDays)
        }
        profileDay = nil
        profile = nil
    }
}
