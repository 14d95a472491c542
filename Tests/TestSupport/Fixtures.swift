import Data
import Foundation
import Models

/// Where the committed test fixtures and the checkout's own files are, found from this file's
/// place in the repository so that any test target can reach them without copying.
public enum TestFixtures {
    /// The repository's root (holding Package.swift, Config/, Systemd/).
    public static let checkout: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The Data tests' fixtures: UCI digits as IDX (1,500 train / 297 test, 8x8), a CIFAR-10 sample, gzipped copies.
    public static var dataDirectory: String { checkout.appendingPathComponent("Tests/DataTests/Fixtures").path }

    /// The PyTorch golden fixtures written by `Tools/pytorch/make_golden.py`.
    public static var goldenDirectory: String { checkout.appendingPathComponent("Tests/ModelsTests/Fixtures").path }
}

/// The digits set (1,500 train / 297 test, 8x8 grey images, 10 classes).
public func digits() throws -> (train: Dataset, test: Dataset) {
    try DatasetCatalog.load("digits", directory: TestFixtures.dataDirectory)
}

/// A fresh `arch` for digits images, normalised with `train`'s statistics, at `width` (0.5 keeps tests fast).
public func digitsModel(_ arch: String, _ train: Dataset, seed: UInt64, width: Double = 0.5) throws -> Network {
    let stats = train.channelStatistics()
    return try ModelRegistry.make(
        arch,
        config: ModelConfig(
            channels: 1, height: 8, width: 8, numClasses: 10,
            widthMultiplier: width, mean: stats.mean, std: stats.std), seed: seed)
}
