import GRPCCore
import GRPCNIOTransportHTTP2Posix
import LedgerCore
import OTLPGRPCReceiver

/// Sends pre-encoded ExportTraceServiceRequest messages over OTLP/gRPC (one HTTP/2
/// connection, `concurrency` calls in flight) and returns each call's latency in ms.
enum GRPCLoad {
    struct Bytes: MessageSerializer, MessageDeserializer {
        func serialize<B: GRPCContiguousBytes>(_ message: [UInt8]) throws -> B { B(message) }
        func deserialize<B: GRPCContiguousBytes>(_ bytes: B) throws -> [UInt8] { bytes.withUnsafeBytes { Array($0) } }
    }

    static func send(_ messages: [[UInt8]], port: Int, concurrency: Int) async throws -> [Double] {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        return try await withGRPCClient(transport: transport) { client in
            try await withThrowingTaskGroup(of: [Double].self) { group in
                for c in 0..<concurrency {
                    group.addTask {
                        var lat: [Double] = []
                        var i = c
                        while i < messages.count {
                            let t0 = WallClock.monotonicNano()
                            _ = try await client.unary(request: ClientRequest(message: messages[i]), descriptor: OTLPTraceService.export,
                                                       serializer: Bytes(), deserializer: Bytes(), options: .defaults) { try $0.message }
                            lat.append(Double(WallClock.monotonicNano() - t0) / 1e6)
                            i += concurrency
                        }
                        return lat
                    }
                }
                var all: [Double] = []
                for try await l in group { all += l }
                return all
            }
        }
    }
}
