import LedgerCore
import Synchronization

/// Lets the receivers refuse a batch before decoding it while assembly is full of live
/// traces. Admission refuses such a batch only after it was decoded, logged-encoded and
/// grouped (about half a millisecond of CPU for 512 spans); under a flood of retries that
/// was CPU taken from the release that would make room. After a refusal the hint stands
/// until assembly lets traces go (the clock released some, or a reservation was given
/// back) or `holdNano` passes, whichever is first; then a batch goes the whole way again
/// and admission decides afresh. A batch refused here gets the same retryable answer.
public final class AssemblyFullHint: Sendable {
    struct State {
        var refusal: IngestRefusal?
        var untilNano: UInt64 = 0
        var refusedUndecoded: Int64 = 0
    }

    /// Longest a refusal stands without admission being asked again.
    public let holdNano: UInt64
    private let now: @Sendable () -> UInt64
    private let state = Mutex(State())

    public init(holdNano: UInt64 = 100_000_000, now: @escaping @Sendable () -> UInt64 = WallClock.monotonicNano) {
        self.holdNano = holdNano
        self.now = now
    }

    /// Admission refused a batch because assembly is full.
    func refused(_ refusal: IngestRefusal) {
        let until = now() + holdNano
        state.withLock {
            $0.refusal = refusal
            $0.untilNano = until
        }
    }

    /// Assembly let traces go: the next batch is decoded and admission asked again.
    func reopened() {
        state.withLock { $0.refusal = nil }
    }

    /// The refusal for a batch not yet decoded, while one stands (counted).
    public func check() -> IngestRefusal? {
        let t = now()
        return state.withLock { s in
            guard let r = s.refusal else { return nil }
            guard t < s.untilNano else {
                s.refusal = nil
                return nil
            }
            s.refusedUndecoded += 1
            return r
        }
    }

    /// Batches refused by `check` so far.
    public var refusedUndecoded: Int64 { state.withLock { $0.refusedUndecoded } }
}
