extension Tensor {
    /// Uniform samples in `[-bound, bound)`: PyTorch's default Conv/Linear initialisation uses
    /// `bound = 1/sqrt(fanIn)` for weights and biases.
    public static func uniform(shape: [Int], bound: Float, rng: inout RNG) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let n = t.count
        t.withUnsafeMutablePointer { p in
            for i in 0..<n { p[i] = rng.uniform(-bound, bound) }
        }
        return t
    }

    /// Normal samples with standard deviation `std`.
    public static func normal(shape: [Int], std: Float, rng: inout RNG) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let n = t.count
        t.withUnsafeMutablePointer { p in
            for i in 0..<n { p[i] = std * rng.normal() }
        }
        return t
    }
}
