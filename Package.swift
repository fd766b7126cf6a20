// swift-tools-version: 6.1
import PackageDescription

/// One set of settings for every target, so the whole package follows the same language rules.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Chimera",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chimera", targets: ["chimera"]),
        .executable(name: "chimera-fuzz", targets: ["ChimeraFuzz"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "ChimeraWire", targets: ["ChimeraWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Layer 0: the C library, as Debian's libzmq3-dev installs it.
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // OpenBLAS's CBLAS (Debian's libopenblas-dev): the matrix products of neural-network passes.
        .systemLibrary(
            name: "COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Layer 1: transport. A Swift API over libzmq; no C type is public.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"], swiftSettings: swiftSettings),
        // Layer 2: wire protocol. Generated protobuf + multipart codec with a strict decoder.
        .target(
            name: "ChimeraWire",
            dependencies: ["ZeroMQ", "CKernels", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Generated/proto.sha256"],
            swiftSettings: swiftSettings
        ),
        // Pure ML and synchronisation logic: no I/O; its dependencies are the C kernel below and OpenBLAS.
        .target(name: "ChimeraML", dependencies: ["CKernels", "COpenBLAS"], swiftSettings: swiftSettings),
        // The BlockedRows gradient pass in AVX2 + FMA, used only when the CPU has them (checked at run time).
        .target(name: "CKernels"),
        // Process supervision needs prctl, which is variadic in C.
        .target(name: "CProcessShims"),
        // Layer 3: cluster processes (master, worker) built on transport + wire.
        .target(
            name: "ChimeraCluster",
            dependencies: [
                "ZeroMQ", "ChimeraWire", "ChimeraML", "CProcessShims",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        // SSP tuning runs: sweep configuration, runner, tables and SVG/HTML reports.
        .target(
            name: "ChimeraSweep",
            dependencies: [
                "ChimeraCluster", "ChimeraML", "ChimeraWire", .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        // The predict body's reader: a strict single-pass JSON reader straight into float32 rows (kept
        // where it beats JSONDecoder and JSONSerialization: `chimera bench json`).
        .target(
            name: "ChimeraPredictBody", dependencies: ["ChimeraWire", "ZeroMQ", "CKernels", "ChimeraCluster"],
            swiftSettings: swiftSettings),
        // HTTP gateway (Hummingbird): the Python Chimera's REST API bridged to the master over ZeroMQ.
        .target(
            name: "ChimeraGateway",
            dependencies: [
                "ChimeraCluster", "ChimeraWire", "ZeroMQ", "CKernels", "ChimeraPredictBody",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings),
        // Benchmarks live apart from tests; the CLI exposes them as `chimera bench`.
        .target(
            name: "ChimeraBenchmarks", dependencies: ["ZeroMQ", "ChimeraWire", "ChimeraCluster", "ChimeraML", "ChimeraPredictBody"],
            swiftSettings: swiftSettings),
        // A seeded mutation fuzzer for the wire decoders and the predict-body reader (CI runs it for 60 s).
        .executableTarget(
            name: "ChimeraFuzz", dependencies: ["ChimeraWire", "ZeroMQ", "ChimeraPredictBody", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings),
        // Helpers shared by the test targets: endpoints per transport, blocking bodies off the pool.
        .target(name: "ChimeraTestSupport", dependencies: ["ZeroMQ", "ChimeraCluster", "ChimeraWire"], swiftSettings: swiftSettings),
        // Thin executable.
        .executableTarget(
            name: "chimera",
            dependencies: [
                "ZeroMQ", "ChimeraWire", "ChimeraML", "ChimeraCluster", "ChimeraBenchmarks", "ChimeraSweep",
                "ChimeraGateway", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ChimeraMLTests", dependencies: ["ChimeraML"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ChimeraClusterTests", dependencies: ["ChimeraCluster", "ChimeraML", "ZeroMQ", "ChimeraWire"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ChimeraGatewayTests",
            dependencies: [
                "ChimeraGateway", "ChimeraTestSupport", "ChimeraCluster", "chimera", "ChimeraWire", "ChimeraPredictBody",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "ChimeraSweepTests", dependencies: ["ChimeraSweep", "ChimeraML", "ChimeraCluster"], swiftSettings: swiftSettings),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ", "ChimeraTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ChimeraWireTests", dependencies: [
                "ChimeraWire", "ZeroMQ", "ChimeraTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ], swiftSettings: swiftSettings),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "chimera", "ZeroMQ", "ChimeraWire", "ChimeraML", "ChimeraCluster", "ChimeraSweep", "ChimeraTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"), .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
