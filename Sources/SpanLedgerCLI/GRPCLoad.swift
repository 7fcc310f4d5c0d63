import LedgerCore
import LoadGenerator
import OTLPGRPCReceiver

/// Sends pre-encoded ExportTraceServiceRequest messages over OTLP/gRPC with the load
/// generator's own HTTP/2 client (`connections` connections, one call in flight on each,
/// a thread each) and returns each call's latency in ms. grpc-swift's client cost about
/// 1.4 CPU-s per million spans on the same two cores, which the daemon was then short of.
enum GRPCLoad {
    static func send(_ messages: [[UInt8]], port: Int, connections: Int) async throws -> [Double] {
        let path = "/" + OTLPTraceService.export.fullyQualifiedMethod
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for c in 0..<connections {
                group.addTask {
                    try await BlockingThread.run(name: "bench-grpc-\(c)") {
                        let client = try LoopbackGRPCClient(port: port, path: path)
                        var lat: [Double] = []
                        var i = c
                        while i < messages.count {
                            let t0 = WallClock.monotonicNano()
                            let (status, message) = try client.call(messages[i])
                            guard status == 0 else { throw LoadError("export answered grpc-status \(status): \(message ?? "")") }
                            lat.append(Double(WallClock.monotonicNano() - t0) / 1e6)
                            i += connections
                        }
                        return lat
                    }
                }
            }
            var all: [Double] = []
            for try await l in group { all += l }
            return all
        }
    }
}
