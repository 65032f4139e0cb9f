// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Sluice", targets: ["Sluice"]),
        .library(name: "SluiceML", targets: ["SluiceML"]),
        .library(name: "SluiceTesting", targets: ["SluiceTesting"]),
        .library(name: "SluiceComponents", targets: ["SluiceComponents"]),
        .library(name: "SluiceServer", targets: ["SluiceServer"]),
        .library(name: "SluiceServerGRPC", targets: ["SluiceServerGRPC"]),
        .library(name: "SluiceDashboard", targets: ["SluiceDashboard"]),
        .library(name: "SluiceStoreSQLite", targets: ["SluiceStoreSQLite"]),
        .library(name: "SluiceStorePostgres", targets: ["SluiceStorePostgres"]),
        .library(name: "SluiceStack", targets: ["SluiceStack"]),
        .library(name: "SluiceOrchestrators", targets: ["SluiceOrchestrators"]),
        .library(name: "SluiceErrors", targets: ["SluiceErrors"]),
        .library(name: "SluiceFeatures", targets: ["SluiceFeatures"]),
        .library(name: "SluiceStoreRedis", targets: ["SluiceStoreRedis"]),
        .library(name: "SluiceTracking", targets: ["SluiceTracking"]),
        .executable(name: "sluice", targets: ["sluice"]),
        .executable(name: "sluice-step", targets: ["sluice-step"]),
        .executable(name: "sluice-example", targets: ["PricePipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/JohnSundell/Ink", from: "0.6.0"),
    ],
    targets: [
        // The one error protocol (problem, fix, exit status) every module's errors conform to. No dependencies.
        .target(name: "SluiceErrors"),
        // Steps, pipelines, artifacts, materializers, caching, config and the run engine. No SQL, no HTTP, no ML.
        .target(
            name: "SluiceCore",
            dependencies: [
                "SluiceErrors", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Tables, CSV ingest, statistics: no pipeline imports, so a model server can use it alone.
        .target(
            name: "SluiceData",
            dependencies: [
                "SluiceErrors", .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Transforms, learners, metrics and evaluation over tables: imports the data module only, so a model server
        // loads a model without orchestration.
        .target(name: "SluiceML", dependencies: ["SluiceData"]),
        // Built-in pipeline steps over the data and ML modules: ingest, statistics, schema, validate, split,
        // transform, train, evaluate, register, and the standard pipeline made of them.
        .target(name: "SluiceComponents", dependencies: ["SluiceCore", "SluiceData", "SluiceML", "SluiceFeatures"]),
        // The feature store: definitions (features.yaml), their versions, point-in-time joins out of core, over the
        // core's stores and the data module's tables.
        .target(
            name: "SluiceFeatures",
            dependencies: [
                "SluiceCore", "SluiceData", "SluiceErrors", .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The model server: KServe V2 and MLflow-style invocations over HTTP (Hummingbird), Prometheus metrics,
        // hot promotion. Imports ML and Data only, so it embeds anywhere a bundle loads.
        .target(
            name: "SluiceServer",
            dependencies: [
                "SluiceML", "SluiceData", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The model server's gRPC front end: the V2 GRPCInferenceService on its own HTTP/2 connection handler
        // (swift-nio-http2), answering from the same model slots, metrics and promotions as the HTTP one. Its protobuf
        // code is generated once and committed (Scripts/generate-grpc.sh), so no build runs protoc. grpc-swift's NIO
        // transport (and BoringSSL through it) is not a dependency: only the benchmark's peer below uses it.
        .target(
            name: "SluiceServerGRPC",
            dependencies: [
                "SluiceServer", "SluiceErrors", .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // MLflow's tracking REST protocol over a tracking store and an artifact store (Hummingbird routes that `sluice
        // ui` and `sluice tracking serve` mount), so existing `mlflow` client code records into Sluice.
        .target(
            name: "SluiceTracking",
            dependencies: [
                "SluiceCore", "SluiceData", "SluiceErrors", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // The team's window (`sluice ui`): server-rendered pages and a JSON API over a stack's stores (Hummingbird,
        // Mustache templates, Ink for model cards), with access tokens (hummingbird-auth) beyond loopback.
        .target(
            name: "SluiceDashboard",
            dependencies: [
                "SluiceCore", "SluiceData", "SluiceML", "SluiceFeatures", "SluiceTracking",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Mustache", package: "swift-mustache"), .product(name: "Ink", package: "Ink"),
            ]
        ),
        // The SQL both metadata stores run for run and experiment searches: one translation of the filter language.
        .target(name: "SluiceStoreSQL", dependencies: ["SluiceCore"]),
        // The embedded metadata store: SQLite through GRDB, WAL mode, versioned migrations.
        .target(
            name: "SluiceStoreSQLite",
            dependencies: ["SluiceCore", "SluiceStoreSQL", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The team store: the same schema and semantics on PostgreSQL, through postgres-nio's connection pool.
        .target(
            name: "SluiceStorePostgres",
            dependencies: [
                "SluiceCore", "SluiceStoreSQL", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The feature store's online store on Redis: a small RESP client over SwiftNIO (no Redis client is in the
        // package mirror).
        .target(
            name: "SluiceStoreRedis",
            dependencies: [
                "SluiceCore", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Where step runs execute beyond this process: child processes, containers (podman), Slurm jobs; each an
        // `Orchestrator` the core's run engine hands ready steps (or whole runs) to. Needs only the core.
        .target(name: "SluiceOrchestrators", dependencies: ["SluiceCore"]),
        // The one place a stack file becomes opened stores and an orchestrator (`Stack.open`): knows every store
        // and orchestrator implementation.
        .target(
            name: "SluiceStack",
            dependencies: [
                "SluiceCore", "SluiceOrchestrators", "SluiceStoreSQLite", "SluiceStorePostgres", "SluiceStoreRedis",
            ]),
        // The `sluice` command line, one file per command group: everything a pipeline executable needs. `serve`, `ui`
        // and `profile` are stand-ins here that run the `sluice` tool (SluiceServeCommands has the real ones).
        .target(
            name: "SluiceCLI",
            dependencies: [
                "SluiceCore", "SluiceStack", "SluiceOrchestrators", "SluiceStoreSQLite", "SluiceStorePostgres",
                "SluiceData", "SluiceML", "SluiceComponents", "SluiceFeatures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The `sluice` tool's serving commands (serve, ui, profile): the model server, its gRPC front end and the
        // dashboard, which pipeline executables (the step processes) do not link.
        .target(
            name: "SluiceServeCommands",
            dependencies: [
                "SluiceCLI", "SluiceCore", "SluiceComponents", "SluiceML", "SluiceServer", "SluiceServerGRPC",
                "SluiceDashboard", "SluiceFeatures", "SluiceStack",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // What users import: `Sluice.main(pipelines:)` plus the core API.
        .target(
            name: "Sluice", dependencies: ["SluiceCore", "SluiceStack", "SluiceStoreSQLite", "SluiceData", "SluiceCLI"]),
        .executableTarget(name: "sluice", dependencies: ["Sluice", "SluiceServeCommands"]),
        // The `sluice` tool's step processes: its command line without the serving commands.
        .executableTarget(name: "sluice-step", dependencies: ["Sluice"]),
        // Temporary projects and the metadata-store contract suite, for Sluice's tests and for users'.
        .target(name: "SluiceTesting", dependencies: ["SluiceCore"]),
        .executableTarget(name: "PricePipeline", dependencies: ["Sluice"], path: "Examples/PricePipeline"),
        .executableTarget(
            name: "EngineOverhead", dependencies: ["Sluice", "SluiceOrchestrators", "SluiceStorePostgres"],
            path: "Benchmarks/EngineOverhead"
        ),
        .executableTarget(
            name: "MLBenchmark", dependencies: ["SluiceML", "SluiceData"], path: "Benchmarks/MLBenchmark"
        ),
        // 16 writers mixing runs, when_blessed registrations, promotions, rollbacks and gc; invariants checked.
        .executableTarget(
            name: "RegistrySoak",
            dependencies: ["Sluice", "SluiceComponents", "SluiceStorePostgres", "SluiceStoreSQLite"],
            path: "Benchmarks/RegistrySoak"
        ),
        // The load benchmark's peer: the same gRPC methods on grpc-swift 2's GRPCServer and NIO transport.
        .target(
            name: "SluiceGRPCSwiftPeer",
            dependencies: [
                "SluiceServerGRPC", "SluiceServer", .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/GRPCSwiftPeer"
        ),
        // The gRPC load generator serve_load.sh drives: unary ModelInfer calls over a few HTTP/2 connections.
        .executableTarget(
            name: "GRPCLoad",
            dependencies: [
                "SluiceServerGRPC", "SluiceGRPCSwiftPeer", "SluiceServer", "SluiceML",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            path: "Benchmarks/GRPCLoad"
        ),
        .testTarget(
            name: "SluiceComponentsTests",
            dependencies: ["Sluice", "SluiceComponents", "SluiceML", "SluiceStoreSQLite", "SluiceTesting"]),
        .testTarget(
            name: "SluiceServerTests",
            dependencies: [
                "SluiceServer", "SluiceServerGRPC", "SluiceGRPCSwiftPeer", "SluiceML", "SluiceComponents",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]),
        .testTarget(
            name: "SluiceDashboardTests",
            dependencies: [
                "SluiceDashboard", "SluiceCore", "SluiceStack", "SluiceStorePostgres", "SluiceTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore", "SluiceTesting"]),
        .testTarget(
            name: "SluiceOrchestratorsTests", dependencies: ["SluiceOrchestrators", "SluiceCore", "SluiceTesting"]),
        .testTarget(name: "SluiceDataTests", dependencies: ["SluiceData", "SluiceTesting"]),
        .testTarget(
            name: "SluiceFeaturesTests",
            dependencies: [
                "SluiceFeatures", "SluiceData", "SluiceCore", "SluiceTesting", "SluiceStoreSQLite",
                "SluiceStorePostgres",
            ]),
        .testTarget(
            name: "SluiceMLTests", dependencies: ["SluiceML", .product(name: "Yams", package: "Yams")],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "SluiceStoreSQLiteTests",
            dependencies: ["SluiceStoreSQLite", "SluiceTesting"]
        ),
        .testTarget(
            name: "SluiceStorePostgresTests",
            dependencies: ["SluiceStorePostgres", "SluiceStack", "SluiceTesting"]
        ),
        // Pipelines the CLI tests drive as real processes (killed, interrupted, resumed).
        .executableTarget(name: "FixturePipelines", dependencies: ["Sluice"], path: "Tests/FixturePipelines"),
        .testTarget(
            name: "SluiceCLITests",
            dependencies: [
                "Sluice", "SluiceComponents", "SluiceML", "SluiceServer", "SluiceStoreSQLite", "SluiceStorePostgres",
                "SluiceOrchestrators", "SluiceTesting",
            ],
            // Scripts the tests run (read from the source tree, not built): the browser test's Playwright script and
            // the MLflow client scripts.
            exclude: ["dashboard_browser.py", "Python"]),
    ],
    swiftLanguageModes: [.v6]
)
