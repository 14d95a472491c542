// swift-tools-version:6.0
// The package shows the architecture of design.md §2: each target owns one concern and imports
// only the targets below it. C libraries are system-library shims.
import PackageDescription

/// Numeric targets are always built with optimisation: a debug build of the training loops is
/// tens of times slower and would make `swift test` (debug by default) crawl. Haswell (AVX2 +
/// FMA) is the baseline of every machine this project runs on; SIMD16 code compiles to it.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "haswell"])]

/// Kernels that need AVX-512 (SIMD16 in one zmm register) live in their own target compiled for
/// it; `Kernels` calls them only after checking the CPU, so the binary still runs on AVX2 alone.
let avx512: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "skylake-avx512"])]

let package = Package(
    name: "rrmd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rrmd", targets: ["rrmd"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C shims (Debian: libopenblas-dev, zlib1g-dev, libzstd-dev, libinotifytools0-dev, libsystemd-dev).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CInotifyTools", path: "Sources/CInotifyTools"),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),

        // Compute core.
        .target(name: "KernelsAVX512", swiftSettings: avx512),
        .target(name: "Kernels", dependencies: ["CBLAS", "CMalloc", "KernelsAVX512"], swiftSettings: optimised),
        .target(name: "TensorCore", dependencies: ["Kernels"], swiftSettings: optimised),
        .target(name: "NN", dependencies: ["TensorCore", "Kernels"], swiftSettings: optimised),
        .target(name: "Models", dependencies: ["NN", "TensorCore", "Kernels"], swiftSettings: optimised),
        .target(name: "Attacks", dependencies: ["NN", "Models", "TensorCore", "Kernels"], swiftSettings: optimised),
        .target(
            name: "Data", dependencies: ["TensorCore", "Kernels", "CZlib", "CTurboJPEG", "CPNG", "FileSystem"],
            swiftSettings: optimised),
        // Durable files: atomic replacement, fsync, bounded reads, SHA-256, one errno-carrying error.
        .target(name: "FileSystem"),
        .target(name: "Checkpoint", dependencies: ["FileSystem", "TensorCore", "Kernels", "CZstd"]),
        // Models to and from checkpoints: the rrm.* metadata schema, the loader, state dicts.
        .target(
            name: "ModelIO", dependencies: ["Models", "NN", "Attacks", "Data", "Checkpoint", "TensorCore", "Kernels"]),
        .target(
            name: "Training",
            dependencies: ["NN", "Models", "ModelIO", "Attacks", "Data", "Checkpoint", "TensorCore", "Kernels"],
            swiftSettings: optimised),
        .target(
            name: "Evaluation",
            dependencies: [
                "ModelIO", "Attacks", "Models", "Data", "Checkpoint", "FileSystem", "NN", "TensorCore", "Kernels",
            ],
            swiftSettings: optimised),
        // One student from teacher to report (distil, save, attack, write the report): the steps
        // `rrmd distill` and the daemon share, and the stop flag the CLI's long commands honour.
        .target(
            name: "Pipeline",
            dependencies: ["Training", "Evaluation", "ModelIO", "Models", "NN", "Data", "Checkpoint", "FileSystem"]),
        // `rrmd bench`: the workloads, their timing and peak memory.
        .target(
            name: "Bench", dependencies: ["Training", "Attacks", "Models", "NN", "TensorCore", "Kernels"],
            swiftSettings: optimised),

        // The daemon: the spool state machine (no ML) and the service around the job pipeline.
        .target(name: "Spool", dependencies: ["FileSystem"]),
        .target(
            name: "Service",
            dependencies: [
                "Spool", "Pipeline", "Evaluation", "Training", "ModelIO", "Attacks", "Models", "Data", "Checkpoint",
                "FileSystem", "Kernels", "CInotifyTools", "CSystemd",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),

        // The one executable.
        .executableTarget(
            name: "rrmd",
            dependencies: [
                "Service", "Pipeline", "Spool", "Evaluation", "Bench", "Training", "ModelIO", "Attacks", "Models",
                "Data", "Checkpoint", "FileSystem", "NN", "TensorCore", "Kernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: optimised),

        // What many test targets share: fixture locations, the digits set and models, temporary
        // directories, tolerance checks. Used only by tests.
        .target(
            name: "TestSupport", dependencies: ["Data", "Models", "Checkpoint", "TensorCore", "CPNG", "CTurboJPEG"],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "NNTests", dependencies: ["TestSupport", "NN", "Checkpoint", "TensorCore"]),
        .testTarget(
            name: "ModelsTests",
            dependencies: [
                "TestSupport", "Models", "NN", "Checkpoint", "ModelIO", "Training", "TensorCore", "Kernels",
            ], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "DataTests", dependencies: ["Data", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FileSystemTests", dependencies: ["FileSystem"]),
        .testTarget(name: "CheckpointTests", dependencies: ["TestSupport", "Checkpoint", "FileSystem", "TensorCore"]),
        .testTarget(
            name: "AttacksTests",
            dependencies: ["TestSupport", "Attacks", "Models", "NN", "TensorCore", "Training", "ModelIO", "Data"]),
        .testTarget(
            name: "EvaluationTests",
            dependencies: [
                "TestSupport", "Evaluation", "FileSystem", "ModelIO", "Training", "Attacks", "Models", "Data", "NN",
                "TensorCore",
            ]),
        .testTarget(name: "SpoolTests", dependencies: ["Spool", "FileSystem"]),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "TestSupport", "Pipeline", "Training", "ModelIO", "Models", "Data", "NN", "Checkpoint", "TensorCore",
            ]),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "TestSupport", "Service", "Pipeline", "Spool", "Evaluation", "Training", "ModelIO", "Models", "Data",
                "Checkpoint", "FileSystem",
            ]),
        .testTarget(
            name: "TrainingTests",
            dependencies: [
                "TestSupport", "Training", "ModelIO", "Attacks", "Models", "Data", "NN", "Checkpoint", "TensorCore",
                "Kernels",
            ]),
        .testTarget(
            name: "ModelIOTests",
            dependencies: ["TestSupport", "ModelIO", "Attacks", "Models", "NN", "Checkpoint", "TensorCore"],
            exclude: ["Fixtures"]),
        .testTarget(name: "BenchTests", dependencies: ["Bench"]),
    ],
    swiftLanguageModes: [.v5]
)
