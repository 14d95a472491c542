import Foundation
import Kernels
import TensorCore

/// Batch normalisation over the channels of NCHW input (`nn.BatchNorm2d`, affine, tracking
/// running statistics with PyTorch's momentum rule and unbiased running variance).
///
/// The arithmetic (batch statistics, the affine map, the backward pass) lives in
/// BatchNorm2d+Passes.swift, where `ConvBNReLU` and `ResidualBlock` run the same passes fused
/// with a convolution; this file is the plain layer.
public final class BatchNorm2d: Layer {
    /// Number of channels.
    public let channels: Int
    /// Weight of the running-statistics update: `running = (1 - m) * running + m * batch`.
    public let momentum: Float
    /// Added to the variance before the square root.
    public let epsilon: Float
    /// Scale `[C]` (`weight`) and shift `[C]` (`bias`).
    public let weight, bias: Parameter
    /// Running mean and (unbiased) variance `[C]`.
    public let runningMean, runningVar: Buffer
    /// Number of training batches seen (`num_batches_tracked`).
    public let batchesTracked: Counter

    private var input: Tensor?  // [N, C, H, W] of the last forward
    private var statistics: BatchNormStatistics?  // what that forward normalised with

    /// A BatchNorm with weight 1, bias 0, running mean 0 and variance 1.
    public init(_ channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        weight = Parameter(Tensor(shape: [channels], repeating: 1))
        bias = Parameter(Tensor(shape: [channels]))
        runningMean = Buffer(Tensor(shape: [channels]))
        runningVar = Buffer(Tensor(shape: [channels], repeating: 1))
        batchesTracked = Counter(0)
    }

    public func outputShape(for shape: [Int]) -> [Int] { shape }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(prefix + "weight", .parameter(weight))
        visit(prefix + "bias", .parameter(bias))
        visit(prefix + "running_mean", .buffer(runningMean))
        visit(prefix + "running_var", .buffer(runningVar))
        visit(prefix + "num_batches_tracked", .counter(batchesTracked))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        expectRank(x, 4, "BatchNorm2d")
        precondition(x.dim(1) == channels, "BatchNorm2d: expected \(channels) channels, got shape \(x.shape)")
        let s: BatchNormStatistics
        if mode == .training {
            let n = x.dim(0)
            let plane = x.dim(2) * x.dim(3)
            let c = channels
            var moments = [Float](repeating: 0, count: 2 * n * c)
            x.withUnsafePointer { xp in
                moments.withUnsafeMutableBufferPointer { mp in
                    Compute.parallelFor(n * c) { planes in
                        for p in planes {
                            let part = Self.planeMoments(xp + p * plane, plane)
                            mp[2 * p] = part.sum
                            mp[2 * p + 1] = part.squares
                        }
                    }
                }
            }
            s = batchStatistics(x, moments: moments)
        } else {
            s = runningStatistics()
        }
        input = x
        statistics = s
        return normalize(x, s, then: .none)
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        guard let x = input, let s = statistics else {
            preconditionFailure("BatchNorm2d: backward called before forward")
        }
        return backward(
            dy, input: x, shape: x.shape, statistics: s, mask: .none, parameterGradients: parameterGradients)
    }
}
