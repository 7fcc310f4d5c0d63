/// Limits against hostile input, the same for every transport. A request over a
/// request-level limit is refused (400); a span over a span-level limit is dropped alone
/// and reported as partial success.
public struct DecodeLimits: Sendable {
    /// Nesting of AnyValue arrays and key-value lists (`--max-attribute-depth`, default 32).
    public var maxAnyValueDepth = 32
    /// Attributes on one span (`--max-span-attributes`, default 1,024).
    public var maxAttributesPerSpan = 1024
    /// Bytes of one attribute's string value (`--max-attribute-bytes`, default 65,536).
    public var maxAttributeValueBytes = 65_536
    /// Spans in one request (`--max-spans-per-request`, default 100,000).
    public var maxSpansPerRequest = 100_000

    public init() {}
    public static let `default` = DecodeLimits()

    /// Message nesting allowed for a whole ExportTraceServiceRequest: request → resource
    /// spans → scope spans → span → event → key-value, then two messages (AnyValue and
    /// its array/list) per AnyValue level.
    var protobufMessageDepth: UInt32 { UInt32(8 + 2 * maxAnyValueDepth) }
    /// JSON nesting allowed: the OTLP structure above plus three JSON levels
    /// (value object, arrayValue/kvlistValue object, values array) per AnyValue level.
    var jsonDepth: Int { 16 + 3 * maxAnyValueDepth }
}
