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

    public func consume(_ spans: [SpanRecord]) async throws(IngestRefusal) {
        guard !spans.isEmpty else { return }
        let reservation = try await ledger.admit(spans)
        let payload = SpanBatchCodec.encode(spans)
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
        await ledger.consume(spans, sequence: sequence, reservation: reservation)
    }
}
