import TensorCore

/// Per-channel mean and standard deviation of a set of images, for the model's normalisation.
public struct ChannelStatistics: Equatable, Sendable {
    /// Mean of each channel over all images and pixels; `[C]`.
    public var mean: [Float]
    /// Population standard deviation of each channel (as NumPy's `std`); `[C]`.
    public var std: [Float]

    /// Computes the statistics of `images` (`[N, C, H, W]`); accumulates in Double so 47 million
    /// Fashion-MNIST pixels do not lose precision.
    public init(images: Tensor) {
        precondition(images.rank == 4, "ChannelStatistics: images must be [N, C, H, W], got \(images.shape)")
        let (n, c, plane) = (images.shape[0], images.shape[1], images.shape[2] * images.shape[3])
        var sum = [Double](repeating: 0, count: c)
        var sumSq = [Double](repeating: 0, count: c)
        images.withUnsafePointer { p in
            for i in 0..<n {
                for ch in 0..<c {
                    let base = p + (i * c + ch) * plane
                    var s: Float = 0
                    var s2: Float = 0  // one plane is small: Float is exact enough
                    for k in 0..<plane {
                        s += base[k]
                        s2 += base[k] * base[k]
                    }
                    sum[ch] += Double(s)
                    sumSq[ch] += Double(s2)
                }
            }
        }
        let total = Double(max(n * plane, 1))
        mean = sum.map { Float($0 / total) }
        std = zip(sum, sumSq).map { s, s2 in
            let m = s / total
            return Float(max(s2 / total - m * m, 0).squareRoot())
        }
    }
}

extension Dataset {
    /// Per-channel mean and std of this dataset's images (use the training split's).
    public func channelStatistics() -> ChannelStatistics { ChannelStatistics(images: images) }
}
