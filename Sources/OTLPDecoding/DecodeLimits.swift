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

    /// Depth counts AnyValues nested in one another: a plain value is depth 1, an array of
    /// plain values depth 2. Beyond the AnyValue count, a safety bound on all message
    /// nesting: the OTLP structure (request → resource spans → scope spans → span → event
    /// → key-value) plus three messages (AnyValue, key-value list, key-value) per level.
    /// JSON nesting bound for the parser: the OTLP structure plus four JSON levels per
    /// AnyValue level (value object, kvlistValue object, values array, key-value object);
    /// the exact AnyValue depth is checked while mapping.
    var jsonDepth: Int { 16 + 4 * maxAnyValueDepth }
}
