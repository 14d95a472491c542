import Kernels
import TensorCore

/// Per-channel input normalisation `(x - mean[c]) / std[c]`, kept inside the model so that
/// everything outside it (data, attacks) works on [0, 1] pixels. Holds no saved state: the
/// statistics travel in checkpoint metadata.
public final class Normalize: Layer {
    /// Per-channel mean and standard deviation.
    public let mean, std: [Float]

    /// Normalisation with the given statistics (one value per channel).
    public init(mean: [Float], std: [Float]) {
        precondition(
            mean.count == std.count && !mean.isEmpty && std.allSatisfy { $0 > 0 },
            "Normalize: need one positive std per mean, got mean \(mean) std \(std)")
        self.mean = mean
        self.std = std
    }

    public func outputShape(for shape: [Int]) -> [Int] { shape }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        expectRank(x, 4, "Normalize")
        precondition(x.dim(1) == mean.count, "Normalize: expected \(mean.count) channels, got shape \(x.shape)")
        return map(x) { c in (1 / self.std[c], -self.mean[c] / self.std[c]) }
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        map(dy) { c in (1 / self.std[c], 0) }
    }

    /// Applies `x * a + b` with per-channel `(a, b)`.
    private func map(_ x: Tensor, _ coefficients: (Int) -> (Float, Float)) -> Tensor {
        let c = x.dim(1)
        let plane = x.dim(2) * x.dim(3)
        let planes = x.dim(0) * c
        let coef = (0..<c).map(coefficients)
        var y = Tensor(uninitializedShape: x.shape)
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                for p in 0..<planes {
                    let (a, b) = coef[p % c]
                    Vector.affine(xp + p * plane, a, b, yp + p * plane, plane)
                }
            }
        }
        return y
    }
}
