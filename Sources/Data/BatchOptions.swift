/// How a `BatchIterator` cuts and augments an epoch.
public struct BatchOptions: Equatable, Sendable {
    /// Samples per batch; at least 1.
    public var batchSize: Int
    /// Visit samples in a seeded random order (training) or in file order (evaluation).
    public var shuffle: Bool
    /// Skip the last batch when it would be smaller than `batchSize`, so every step sees the
    /// same batch size (as PyTorch's `drop_last`).
    public var dropLast: Bool
    /// Random-crop padding p: each image is shifted by a uniform offset in [-p, p] per axis with
    /// zeros filling the border (CIFAR-10 recipe: 4). 0 disables cropping.
    public var cropPadding: Int
    /// Mirror each image with probability 0.5, but only for datasets that allow it.
    public var horizontalFlip: Bool

    /// Options with the given values; the defaults are plain shuffled batches.
    public init(
        batchSize: Int, shuffle: Bool = true, dropLast: Bool = false,
        cropPadding: Int = 0, horizontalFlip: Bool = false
    ) {
        precondition(batchSize >= 1, "BatchOptions: batchSize must be at least 1, got \(batchSize)")
        precondition(cropPadding >= 0, "BatchOptions: cropPadding must be non-negative, got \(cropPadding)")
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
    }

    /// File order, every sample once, no augmentation: for measuring accuracy.
    public static func evaluation(batchSize: Int) -> BatchOptions {
        BatchOptions(batchSize: batchSize, shuffle: false, dropLast: false)
    }

    /// Number of batches an epoch of `samples` samples yields.
    public func batchCount(samples: Int) -> Int {
        dropLast ? samples / batchSize : (samples + batchSize - 1) / batchSize
    }
}
