// swift-tools-version:6.0
import PackageDescription

// Stage boundaries of ../shared/DESIGN.md are visible as targets:
// receive (HTTPServing, OTLPReceiver) → decode (OTLPDecoding) → assemble (TraceAssembly)
// → attribute (Attribution) → roll up (Rollups) → store (LedgerStore), joined by
// LedgerPipeline; read side QueryAPI; executable `spanledger`.
let package = Package(
    name: "SpanLedger",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "spanledger", targets: ["SpanLedgerCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        // C libraries and generated code.
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "OTLPProtoC", dependencies: ["CProtobufC"]),
        .target(name: "CDecodeSupport", dependencies: ["CProtobufC", "OTLPProtoC"]),
        // The daemon's allocator: tcmalloc in place of glibc malloc (README "Memory").
        .target(name: "CAllocator", linkerSettings: [.linkedLibrary("tcmalloc_minimal", .when(platforms: [.linux]))]),

        // Domain and wire helpers.
        .target(name: "LedgerCore"),
        .target(name: "ProtoWire"),
        .target(name: "ZlibCodec", dependencies: ["CZlib"]),
        .target(name: "DurableFiles"),

        // Pipeline stages.
        .target(name: "OTLPDecoding", dependencies: ["LedgerCore", "OTLPProtoC", "CDecodeSupport", "CProtobufC", "ProtoWire"]),
        .target(name: "TraceAssembly", dependencies: ["LedgerCore", .product(name: "DequeModule", package: "swift-collections")]),
        .target(name: "Attribution", dependencies: ["LedgerCore"]),
        .target(name: "Rollups", dependencies: ["LedgerCore"]),
        .target(name: "LedgerStore", dependencies: ["LedgerCore", "Rollups", "ProtoWire", "ZlibCodec", "DurableFiles"]),
        .target(name: "WriteAheadLog", dependencies: ["ZlibCodec", "DurableFiles", .product(name: "CoreMetrics", package: "swift-metrics")]),
        .target(name: "LedgerPipeline", dependencies: [
            "LedgerCore", "TraceAssembly", "Attribution", "Rollups", "LedgerStore", "WriteAheadLog", "ProtoWire", "DurableFiles",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"), // System.coreCount: cores the cgroup allows
        ]),

        // Receivers and read side.
        .target(name: "HTTPServing", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "OTLPReceiver", dependencies: ["HTTPServing", "OTLPDecoding", "LedgerPipeline", "LedgerCore"]),
        .target(name: "OTLPGRPCReceiver", dependencies: [
            "HTTPServing", "OTLPDecoding", "LedgerPipeline", "LedgerCore", "ZlibCodec",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "OutcomeRegistry", dependencies: ["LedgerCore", "Rollups", "Attribution", .product(name: "Yams", package: "Yams")]),
        .target(name: "QueryAPI", dependencies: ["HTTPServing", "LedgerPipeline", "Rollups", "LedgerStore", "LedgerCore", "OutcomeRegistry"]),

        // Alerts: the pure spike detector, and the engine that evaluates rules over the
        // ledger and delivers notifications to webhooks, Slack and commands.
        .target(name: "AlertDetection", dependencies: ["LedgerCore"]),
        .target(name: "Alerting", dependencies: [
            "AlertDetection", "LedgerPipeline", "Rollups", "LedgerCore", "DurableFiles", "Attribution",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "PrometheusExport", dependencies: [
            "LedgerPipeline", "LedgerCore",
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
        .target(name: "OTLPFixtures", dependencies: ["ProtoWire", "LedgerCore"]),
        .target(name: "LoadGenerator", dependencies: [
            "OTLPFixtures", "LedgerCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHPACK", package: "swift-nio-http2"),
        ]),

        .executableTarget(name: "SpanLedgerCLI", dependencies: [
            "LedgerCore", "TraceAssembly", "OTLPReceiver", "QueryAPI", "LedgerPipeline", "LedgerStore", "Attribution", "Rollups",
            "OTLPDecoding", "OTLPFixtures", "HTTPServing", "LoadGenerator", "WriteAheadLog", "OTLPGRPCReceiver", "DurableFiles",
            "Alerting", "AlertDetection", "OutcomeRegistry", "PrometheusExport", "CAllocator",
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Yams", package: "Yams"),
        ]),

        // Tests: one target per module, plus the in-process pipeline tests.
        .testTarget(name: "OTLPDecodingTests", dependencies: ["OTLPDecoding", "OTLPFixtures", "LedgerCore", "ProtoWire"]),
        .testTarget(name: "AlertDetectionTests", dependencies: ["AlertDetection", "LedgerCore"]),
        .testTarget(name: "OutcomeRegistryTests", dependencies: ["OutcomeRegistry", "Rollups", "LedgerCore"]),
        .testTarget(name: "AlertingTests", dependencies: ["Alerting", "AlertDetection", "LedgerCore"]),
        .testTarget(name: "ZlibCodecTests", dependencies: ["ZlibCodec"]),
        .testTarget(name: "OTLPGRPCReceiverTests", dependencies: [
            "OTLPGRPCReceiver", "OTLPDecoding",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "HTTPServingTests", dependencies: [
            "HTTPServing", "LoadGenerator",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "TraceAssemblyTests", dependencies: ["TraceAssembly", "LedgerCore"]),
        .testTarget(name: "AttributionTests", dependencies: ["Attribution", "LedgerCore"]),
        .testTarget(name: "RollupsTests", dependencies: ["Rollups", "LedgerCore"]),
        .testTarget(name: "WriteAheadLogTests", dependencies: ["WriteAheadLog", "DurableFiles"]),
        .testTarget(name: "LedgerStoreTests", dependencies: ["LedgerStore", "Rollups", "LedgerCore", "ProtoWire", "DurableFiles"]),
        .testTarget(name: "LedgerPipelineTests", dependencies: ["LedgerPipeline", "OTLPDecoding", "OTLPFixtures", "Attribution", "Rollups", "LedgerStore", "LedgerCore", "WriteAheadLog", "ProtoWire", "TraceAssembly"]),
    ],
    swiftLanguageModes: [.v6]
)

// Settings of every target of this package in release builds.
let linuxRelease = BuildSettingCondition.when(platforms: [.linux], configuration: .release)
for target in package.targets where target.type == .regular || target.type == .executable {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        // Release builds skip the run-time exclusivity checks on class and actor
        // properties (about 1.5% of the daemon's CPU, nearly all in the ledger's commit);
        // debug builds, which the test suite runs, keep them, so an overlapping access
        // still fails a test.
        .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
        // Release builds on Linux link the Swift runtime, Foundation and Dispatch in
        // (compiled and linked with -static-stdlib, as `--static-swift-stdlib` would): the
        // daemon spends a fifth of its CPU in the runtime, and its calls then skip
        // libswiftCore.so's PLT and GOT (README, "How it works"). Static Foundation
        // networking links against libcurl, whose development files scripts/install-deps
        // installs. Debug builds stay dynamic.
        .unsafeFlags(["-static-stdlib"], linuxRelease),
    ]
    if target.type == .executable {
        target.linkerSettings = (target.linkerSettings ?? []) + [.unsafeFlags(["-static-stdlib"], linuxRelease)]
    }
}
