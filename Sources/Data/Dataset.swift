import TensorCore

/// A labelled image set held in memory: images `[N, C, H, W]` in [0, 1] and one label each.
public struct Dataset {
    /// The catalog name, e.g. "cifar10"; written into checkpoint metadata.
    public var name: String
    /// Pixels scaled to [0, 1]; `[N, C, H, W]`. Normalisation is the model's job (design.md §1).
    public var images: Tensor
    /// Class index of each image; `[N]`, each in `0..<numClasses`.
    public var labels: [Int32]
    /// Number of classes the labels range over.
    public var numClasses: Int
    /// Whether mirroring an image keeps its label: true for natural images (CIFAR-10, clothes),
    /// false for digits, where a mirrored 2 or 7 is not a 2 or 7.
    public var allowsHorizontalFlip: Bool

    /// Wraps already-validated arrays; mismatched shapes are programmer errors and stop.
    public init(name: String, images: Tensor, labels: [Int32], numClasses: Int, allowsHorizontalFlip: Bool) {
        precondition(images.rank == 4, "Dataset \(name): images must be [N, C, H, W], got \(images.shape)")
        precondition(
            images.shape[0] == labels.count,
            "Dataset \(name): images \(images.shape) but \(labels.count) labels")
        precondition(numClasses > 0, "Dataset \(name): numClasses must be positive, got \(numClasses)")
        self.name = name
        self.images = images
        self.labels = labels
        self.numClasses = numClasses
        self.allowsHorizontalFlip = allowsHorizontalFlip
    }

    /// Number of samples.
    public var count: Int { labels.count }
    /// Channels per image (1 for grey, 3 for RGB).
    public var channels: Int { images.shape[1] }
    /// Image height in pixels.
    public var height: Int { images.shape[2] }
    /// Image width in pixels.
    public var width: Int { images.shape[3] }
    /// `[C, H, W]` of one image, e.g. for a model's input shape.
    public var imageShape: [Int] { Array(images.shape.dropFirst()) }

    /// The samples `range` (a copy), e.g. to cut a quick-run subset or a validation split.
    public func slice(_ range: Range<Int>) -> Dataset {
        precondition(
            range.lowerBound >= 0 && range.upperBound <= count,
            "Dataset \(name): slice \(range) out of 0..<\(count)")
        let per = channels * height * width
        var out = Tensor(uninitializedShape: [range.count, channels, height, width])  // [n, C, H, W]
        let n = range.count * per
        images.withUnsafePointer { src in
            out.withUnsafeMutablePointer { $0.update(from: src + range.lowerBound * per, count: n) }
        }
        return Dataset(
            name: name, images: out, labels: Array(labels[range]), numClasses: numClasses,
            allowsHorizontalFlip: allowsHorizontalFlip)
    }

    /// The first `n` samples (all when `n` is nil or at least `count`).
    public func prefix(_ n: Int?) -> Dataset {
        guard let n, n < count else { return self }
        return slice(0..<max(0, n))
    }

    /// How many samples each class has; `[numClasses]`.
    public func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: numClasses)
        for l in labels { counts[Int(l)] += 1 }
        return counts
    }
}
