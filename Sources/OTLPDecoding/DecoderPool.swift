import Foundation

/// Reusable decoders (each protobuf decoder owns an arena), so concurrent requests never
/// share one. A decoder is used by one caller at a time: it leaves the pool while in use.
public final class DecoderPool: @unchecked Sendable {
    private let lock = NSLock()
    private var protobuf: [OTLPProtobufDecoder] = []
    private var json: [OTLPJSONDecoder] = []
    public let limits: DecodeLimits
    static let kept = 16

    public init(limits: DecodeLimits) {
        self.limits = limits
    }

    public func withDecoder<T>(_ body: (OTLPProtobufDecoder) throws -> T) rethrows -> T {
        let decoder = lock.withLock { protobuf.popLast() } ?? OTLPProtobufDecoder(limits: limits)
        defer { lock.withLock { if protobuf.count < Self.kept { protobuf.append(decoder) } } }
        return try body(decoder)
    }

    public func withJSONDecoder<T>(_ body: (OTLPJSONDecoder) throws -> T) rethrows -> T {
        let decoder = lock.withLock { json.popLast() } ?? OTLPJSONDecoder(limits: limits)
        defer { lock.withLock { if json.count < Self.kept { json.append(decoder) } } }
        return try body(decoder)
    }
}
