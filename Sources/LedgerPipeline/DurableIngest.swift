import LedgerCore
import WriteAheadLog

/// The stage between the receivers and the ledger that makes an acknowledgement mean
/// "durable" (../shared/DESIGN.md "Nothing acknowledged is lost"): admit, append the
/// batch to the write-ahead log (group commit), then hand it to assembly. A refusal or a
/// log failure (disk full) travels back to the receiver as a retryable error, and
/// nothing is consumed that the log does not hold.
public struct DurableIngest: SpanConsumer {
    let ledger: Ledger
    let wal: WriteAheadLog

    public init(ledger: Ledger, wal: WriteAheadLog) {
        self.ledger = ledger
        self.wal = wal
    }

    public func consume(_ spans: consuming [SpanRecord]) async throws(IngestRefusal) {
        guard !spans.isEmpty else { return }
        // The log's record is encoded from the batch as received (feedback spans keep their
        // verdicts there); grouping then moves the spans out of it.
        let payload = SpanBatchCodec.encode(spans)
        let batch = TraceGroups(consume spans)
        await ledger.backlog.waitForRelease()
        let reservation = try await ledger.admit(batch)
        let floor = wal.upcomingSequence
        ledger.inflight.begin(floor: floor)
        defer { ledger.inflight.end(floor: floor) }
        let sequence: UInt64
        do {
            sequence = try await wal.append(payload)
        } catch let e as WALError where e.code == .diskFull {
            await ledger.cancel(reservation)
            throw IngestRefusal(message: "the data disk is full; spans are not accepted until space is freed (\(e.message))", retryAfterSeconds: 10)
        } catch {
            await ledger.cancel(reservation)
            throw IngestRefusal(message: "write-ahead log append failed: \(error)", retryAfterSeconds: 5)
        }
        await ledger.consume(batch, sequence: sequence, reservation: reservation)
    }
}

/// Verdicts that arrive on their own (`POST /v1/outcomes`), refused as a whole when one
/// names a run older than the correction window, else logged and applied. With
/// `unknownRuns` `.refuse`, verdicts for runs this node does not have are answered
/// `.notFound` and neither logged nor held.
public protocol OutcomeConsumer: Sendable {
    func record(_ outcomes: [OutcomeRecord], unknownRuns: UnknownRuns) async throws -> [OutcomeResult]
}

/// A batch of verdicts refused before anything was logged.
public struct OutcomeRejection: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "; ") }
}

extension DurableIngest: OutcomeConsumer {
    public func record(_ outcomes: [OutcomeRecord], unknownRuns: UnknownRuns = .hold) async throws -> [OutcomeResult] {
        guard !outcomes.isEmpty else { return [] }
        // Runs on disk are read off the ledger first, so requests are not held meanwhile.
        let reads = await ledger.readRuns(of: outcomes)
        // Only verdicts for runs known here are logged: a replay must not hold what was refused.
        var here: [Bool]?
        var kept = outcomes
        if unknownRuns == .refuse {
            let known = await ledger.knownRuns(outcomes.map(\.traceID), reads: reads)
            here = outcomes.map { known.contains($0.traceID) }
            kept = outcomes.filter { known.contains($0.traceID) }
            if kept.isEmpty { return outcomes.map { _ in .notFound } }
        }
        let problems = await ledger.verdictProblems(kept, reads: reads)
        guard problems.isEmpty else { throw OutcomeRejection(problems: problems) }
        let floor = wal.upcomingSequence
        ledger.inflight.begin(floor: floor)
        defer { ledger.inflight.end(floor: floor) }
        let sequence: UInt64
        do {
            sequence = try await wal.append(OutcomeBatchCodec.encode(kept))
        } catch let e as WALError where e.code == .diskFull {
            throw IngestRefusal(message: "the data disk is full; verdicts are not accepted until space is freed (\(e.message))", retryAfterSeconds: 10)
        } catch {
            throw IngestRefusal(message: "write-ahead log append failed: \(error)", retryAfterSeconds: 5)
        }
        let applied = await ledger.applyOutcomes(kept, sequence: sequence, reads: reads)
        guard let here else { return applied }
        var next = applied.makeIterator()
        return here.map { $0 ? next.next()! : .notFound }
    }
}
