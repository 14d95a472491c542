import TensorCore

/// One batch: images `[B, C, H, W]` and their labels `[B]`.
public struct Batch {
    /// Augmented images, `[B, C, H, W]` in [0, 1] (shifted-in borders are 0).
    public var images: Tensor
    /// Labels, `[B]`.
    public var labels: [Int32]
    /// Epoch this batch belongs to.
    public var epoch: Int
    /// Position of this batch in its epoch, from 0.
    public var index: Int
}

/// Deterministic batches of one epoch: the same (dataset, options, seed, epoch) always yields
/// the same batches, and iteration can start at any batch index.
///
/// Randomness: `RNG(seed: seed).fork(UInt64(epoch))` is the epoch's generator `E`; the sample
/// order is a Fisher–Yates shuffle driven by `E.fork(0)`, and batch b's augmentation draws come
/// from `E.fork(b + 1)`. Because no stream depends on earlier batches, a run resumed at
/// (epoch, batchIndex) sees exactly the batches an uninterrupted run would.
///
/// Buffers: images go into a tensor the iterator keeps and reuses, so once warm no batch
/// allocates. `next()` hands out that tensor copy-on-write: drop the previous batch before
/// asking for the next one (a `for` loop does) or the iterator must copy. `next(into:labels:)`
/// fills buffers the caller owns instead.
public struct BatchIterator: IteratorProtocol, Sequence {
    /// The samples being batched.
    public let dataset: Dataset
    /// Batch size, order and augmentation settings.
    public let options: BatchOptions
    /// The run's seed.
    public let seed: UInt64
    /// The epoch being iterated (selects the order and augmentation streams).
    public let epoch: Int
    /// Sample indices in this epoch's visiting order; `[N]`.
    public let order: [Int]
    /// Number of batches in this epoch.
    public let batchCount: Int
    /// The index of the batch `next()` returns next; equals `batchCount` at the end.
    public private(set) var batchIndex: Int
    /// Whether images are mirrored: the option is on and the dataset allows it.
    public var flipsImages: Bool { options.horizontalFlip && dataset.allowsHorizontalFlip }
    /// The augmentation applied to each image of the most recent batch; `[B]`.
    public private(set) var lastDraws: [AugmentationDraw] = []

    private let epochRNG: RNG
    private var fullBuffer: Tensor  // [batchSize, C, H, W]
    private var tailBuffer: Tensor?  // [N % batchSize, C, H, W], made on first use
    private var labelBuffer: [Int32] = []

    /// An iterator over `epoch` (from 0) starting at batch `startBatch`.
    public init(dataset: Dataset, options: BatchOptions, seed: UInt64, epoch: Int, startBatch: Int = 0) {
        precondition(epoch >= 0, "BatchIterator: epoch must be non-negative, got \(epoch)")
        let count = options.batchCount(samples: dataset.count)
        precondition(
            startBatch >= 0 && startBatch <= count,
            "BatchIterator: startBatch \(startBatch) not in 0...\(count)")
        self.dataset = dataset
        self.options = options
        self.seed = seed
        self.epoch = epoch
        batchCount = count
        batchIndex = startBatch
        epochRNG = RNG(seed: seed).fork(UInt64(epoch))
        var order = Array(0..<dataset.count)
        if options.shuffle {
            var rng = epochRNG.fork(0)
            order.seededShuffle(using: &rng)
        }
        self.order = order
        fullBuffer = Tensor(uninitializedShape: [options.batchSize] + dataset.imageShape)
        labelBuffer.reserveCapacity(options.batchSize)
        lastDraws.reserveCapacity(options.batchSize)
    }

    /// Where the iterator stands, for saving training state; recreate with
    /// `BatchIterator(…, epoch: position.epoch, startBatch: position.batchIndex)`.
    public var position: (epoch: Int, batchIndex: Int) { (epoch, batchIndex) }

    /// Samples in batch `index` (the last one may be short unless `dropLast`).
    public func size(ofBatch index: Int) -> Int {
        Swift.min(options.batchSize, dataset.count - index * options.batchSize)
    }

    /// The next batch, or nil at the end of the epoch. Its images share the iterator's buffer
    /// copy-on-write (see the type's notes).
    public mutating func next() -> Batch? {
        guard batchIndex < batchCount else { return nil }
        let index = batchIndex
        let b = size(ofBatch: index)
        if b == options.batchSize {
            Self.fill(
                index, of: self.dataset, order: order, options: options, epochRNG: epochRNG,
                flips: flipsImages, images: &fullBuffer, labels: &labelBuffer, draws: &lastDraws)
            batchIndex = index + 1
            return Batch(images: fullBuffer, labels: labelBuffer, epoch: epoch, index: index)
        }
        var tail = tailBuffer ?? Tensor(uninitializedShape: [b] + dataset.imageShape)
        tailBuffer = nil  // keep `tail` uniquely referenced while it is filled
        Self.fill(
            index, of: dataset, order: order, options: options, epochRNG: epochRNG,
            flips: flipsImages, images: &tail, labels: &labelBuffer, draws: &lastDraws)
        batchIndex = index + 1
        tailBuffer = tail
        return Batch(images: tail, labels: labelBuffer, epoch: epoch, index: index)
    }

    /// Fills caller-owned buffers with the next batch and returns true, or returns false at the
    /// end of the epoch. `images` is replaced only when its shape does not fit the batch.
    public mutating func next(into images: inout Tensor, labels: inout [Int32]) -> Bool {
        guard batchIndex < batchCount else { return false }
        let shape = [size(ofBatch: batchIndex)] + dataset.imageShape
        if images.shape != shape { images = Tensor(uninitializedShape: shape) }
        Self.fill(
            batchIndex, of: dataset, order: order, options: options, epochRNG: epochRNG,
            flips: flipsImages, images: &images, labels: &labels, draws: &lastDraws)
        batchIndex += 1
        return true
    }

    /// Writes batch `index` into `images` (already sized `[b, C, H, W]`), `labels` and `draws`.
    /// Static so the iterator can pass its own stored buffers inout without overlapping access.
    private static func fill(
        _ index: Int, of dataset: Dataset, order: [Int], options: BatchOptions, epochRNG: RNG, flips: Bool,
        images: inout Tensor, labels: inout [Int32], draws lastDraws: inout [AugmentationDraw]
    ) {
        let b = images.shape[0]
        let (c, h, w) = (dataset.channels, dataset.height, dataset.width)
        let per = c * h * w
        let first = index * options.batchSize
        var rng = epochRNG.fork(UInt64(index) + 1)
        let p = options.cropPadding
        labels.removeAll(keepingCapacity: true)
        lastDraws.removeAll(keepingCapacity: true)
        for k in 0..<b {
            var draw = AugmentationDraw.identity
            if p > 0 {
                draw.dy = rng.below(2 * p + 1) - p
                draw.dx = rng.below(2 * p + 1) - p
            }
            if flips { draw.flip = rng.uniform() < 0.5 }
            lastDraws.append(draw)
            labels.append(dataset.labels[order[first + k]])
        }
        dataset.images.withUnsafePointer { src in
            images.withUnsafeMutablePointer { dst in
                for k in 0..<b {
                    Augmentation.shiftAndFlip(
                        src + order[first + k] * per, dst + k * per,
                        channels: c, height: h, width: w, draw: lastDraws[k])
                }
            }
        }
    }
}

extension Dataset {
    /// The batches of `epoch`, starting at `startBatch` (see `BatchIterator`).
    public func batches(options: BatchOptions, seed: UInt64, epoch: Int, startBatch: Int = 0) -> BatchIterator {
        BatchIterator(dataset: self, options: options, seed: seed, epoch: epoch, startBatch: startBatch)
    }
}
