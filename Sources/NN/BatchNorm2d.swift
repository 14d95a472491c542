import Foundation
import Kernels
import TensorCore

/// Batch normalisation over the channels of NCHW input (`nn.BatchNorm2d`, affine, tracking
/// running statistics with PyTorch's momentum rule and unbiased running variance).
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

    private var input: Tensor?          // [N, C, H, W] of the last forward, unless fused away
    private var inputShape: [Int] = []  // its shape, always
    /// Recomputes an input that a fused inference forward did not keep (`adoptInference(shape:
    /// recompute:)`); only parameter gradients in inference mode need it.
    private var recomputeInput: (() -> Tensor)?
    private var mean: [Float] = []      // [C] statistics used by the last forward
    private var invStd: [Float] = []    // [C]
    private var lastMode: Mode = .inference
    // The affine map a ReLU fused into the last training forward was applied to (nil when none
    // was, or a residual sum came between): its backward can take the mask from x.
    private var reluAffine: (scale: [Float], shift: [Float])?

    /// A BatchNorm with weight 1, bias 0, running mean 0 and variance 1.
    public init(_ channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        self.channels = channels; self.momentum = momentum; self.epsilon = epsilon
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
        if mode == .training {
            let n = x.dim(0), plane = x.dim(2) * x.dim(3), c = channels
            var moments = [Float](repeating: 0, count: 2 * n * c)
            x.withUnsafePointer { xp in
                moments.withUnsafeMutableBufferPointer { mp in
                    Compute.parallelFor(n * c) { planes in
                        for p in planes {
                            let part = Self.planeMoments(xp + p * plane, plane)
                            mp[2 * p] = part.sum; mp[2 * p + 1] = part.squares
                        }
                    }
                }
            }
            return forwardTraining(x, moments: moments, relu: false)
        }
        adoptInference(input: x)
        return normalize(x, relu: false)
    }

    /// One plane's contribution to the batch statistics: `Vector.shiftedMoments` about the
    /// plane's own first value, which is close enough to its values that one pass keeps the
    /// variance's digits. A convolution before this layer calls it on each output plane while
    /// the plane is in cache.
    @inline(__always)
    static func planeMoments(_ plane: UnsafePointer<Float>, _ count: Int) -> (sum: Float, squares: Float) {
        Vector.shiftedMoments(plane, count, shift: plane[0])
    }

    /// The training-mode forward given each plane's `planeMoments` (`moments[2p]`, `[2p+1]` for
    /// plane `p = image * C + channel` of `x`). Folds them per channel in image order, in
    /// Double, moving each to a common shift (so the result depends on neither the thread
    /// that computed a plane nor any state), updates the running statistics, and normalises,
    /// with a ReLU after it when `relu` is true.
    /// With `residual`, returns `act(bn(x) + residual)` instead (`act` a ReLU when
    /// `reluAfterSum`, and `relu` must be false): a residual block's sum in the same pass.
    func forwardTraining(_ x: Tensor, moments: [Float], relu: Bool,
                         residual: Tensor? = nil, reluAfterSum: Bool = false) -> Tensor {
        precondition(x.rank == 4 && x.dim(1) == channels, "BatchNorm2d: expected \(channels) channels, got shape \(x.shape)")
        let n = x.dim(0), plane = x.dim(2) * x.dim(3), c = channels
        let m = n * plane
        precondition(m > 1, "BatchNorm2d: training needs more than one value per channel, got shape \(x.shape)")
        input = x; inputShape = x.shape; recomputeInput = nil
        lastMode = .training
        mean = [Float](repeating: 0, count: c)
        invStd = [Float](repeating: 0, count: c)
        var batchVar = [Float](repeating: 0, count: c)
        x.withUnsafePointer { xp in
            for ch in 0..<c {
                // About the first plane's shift: sum(x - S) = s + np*d, sum((x - S)^2) = q + 2*d*s + np*d^2
                // for a plane with moments (s, q) about its own shift S + d.
                let common = Double(xp[ch * plane]), np = Double(plane)
                var sum = 0.0, squares = 0.0
                for i in 0..<n {
                    let p = i * c + ch
                    let d = Double(xp[p * plane]) - common
                    let s = Double(moments[2 * p]), q = Double(moments[2 * p + 1])
                    sum += s + np * d
                    squares += q + 2 * d * s + np * d * d
                }
                let d = sum / Double(m)
                mean[ch] = Float(common + d)
                batchVar[ch] = Float(max(0, squares / Double(m) - d * d))
                invStd[ch] = 1 / (batchVar[ch] + epsilon).squareRoot()
            }
        }
        let unbias = Float(m) / Float(m - 1)
        runningMean.value.withUnsafeMutablePointer { rm in
            runningVar.value.withUnsafeMutablePointer { rv in
                for ch in 0..<c {
                    rm[ch] = (1 - momentum) * rm[ch] + momentum * mean[ch]
                    rv[ch] = (1 - momentum) * rv[ch] + momentum * batchVar[ch] * unbias
                }
            }
        }
        batchesTracked.value += 1
        return normalize(x, relu: relu, residual: residual, reluAfterSum: reluAfterSum)
    }

    /// `y = scale[c] * x + shift[c]` with the statistics of the last forward, then a ReLU if asked.
    /// With `residual`: `act(y + residual)` in the same pass (`Vector.affineAdd`, bit-identical
    /// to the sum as a pass of its own).
    private func normalize(_ x: Tensor, relu: Bool, residual: Tensor? = nil, reluAfterSum: Bool = false) -> Tensor {
        let n = x.dim(0), plane = x.dim(2) * x.dim(3), c = channels
        precondition(residual == nil || (!relu && residual!.shape == x.shape),
                     "BatchNorm2d: a residual of shape \(residual?.shape ?? []) does not fit \(x.shape)")
        let (scale, shift) = affine(mean: mean, invStd: invStd)
        let skip = residual ?? Tensor(shape: [0])
        let fuseSum = residual != nil
        reluAffine = relu && !fuseSum ? (scale, shift) : nil
        var out = Tensor(uninitializedShape: x.shape)
        out.withUnsafeMutablePointer { op in
          skip.withUnsafePointer { sp in
            x.withUnsafePointer { xp in
                Compute.parallelFor(n * c) { planes in
                    for p in planes {
                        let ch = p % c
                        if fuseSum {
                            Vector.affineAdd(xp + p * plane, scale[ch], shift[ch], sp + p * plane, relu: reluAfterSum,
                                             op + p * plane, plane)
                        } else if relu {
                            Vector.affineRelu(xp + p * plane, scale[ch], shift[ch], op + p * plane, plane)
                        } else {
                            Vector.affine(xp + p * plane, scale[ch], shift[ch], op + p * plane, plane)
                        }
                    }
                }
            }
          }
        }
        return out
    }

    /// The inference-mode map `y = scale[c] * x + shift[c]` (running statistics), which a
    /// convolution before this layer can apply to each image while it is still in cache.
    func inferenceAffine() -> (scale: [Float], shift: [Float]) {
        affine(mean: runningMean.value.array, invStd: runningInvStd())
    }

    /// `1 / sqrt(running_var + eps)`, the inference-mode scale before gamma.
    private func runningInvStd() -> [Float] {
        runningVar.value.array.map { 1 / ($0 + epsilon).squareRoot() }
    }

    /// `scale = gamma * invStd`, `shift = beta - mean * scale`: the one place both the layer's
    /// own forward and a fused neighbour compute them, so the two agree to the bit.
    private func affine(mean: [Float], invStd: [Float]) -> (scale: [Float], shift: [Float]) {
        let gamma = weight.value.array, beta = bias.value.array
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for ch in 0..<channels {
            scale[ch] = gamma[ch] * invStd[ch]
            shift[ch] = beta[ch] - mean[ch] * scale[ch]
        }
        return (scale, shift)
    }

    /// Records `x` as the input of an inference-mode forward that a neighbour computed (see
    /// `inferenceAffine`), so `backward` works exactly as after `forward(x, mode: .inference)`.
    func adoptInference(input x: Tensor) {
        precondition(x.rank == 4 && x.dim(1) == channels, "BatchNorm2d: expected \(channels) channels, got shape \(x.shape)")
        input = x; inputShape = x.shape; recomputeInput = nil
        adoptInferenceStatistics()
    }

    /// As `adoptInference(input:)` for a fused forward that did not keep its input of `shape`:
    /// the input-gradient backward (an attack's) does not read it, and a parameter-gradient
    /// backward gets it from `recompute`, which must return exactly what the input was.
    func adoptInference(shape: [Int], recompute: @escaping () -> Tensor) {
        precondition(shape.count == 4 && shape[1] == channels, "BatchNorm2d: expected \(channels) channels, got shape \(shape)")
        input = nil; inputShape = shape; recomputeInput = recompute
        adoptInferenceStatistics()
    }

    private func adoptInferenceStatistics() {
        lastMode = .inference
        reluAffine = nil
        mean = runningMean.value.array
        invStd = runningInvStd()
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        backward(dy, reluOutput: nil, parameterGradients: parameterGradients)
    }

    /// After an inference-mode forward, the per-channel factor `gamma * invstd` that is this
    /// layer's whole input gradient without parameter gradients (`dx = factor * dy`); nil after
    /// a training-mode forward or before any. A convolution before this layer applies it (and
    /// a ReLU's mask) while it reads dy, bit-identically to `backward`.
    func inferenceGradientFactor() -> [Float]? {
        guard lastMode == .inference, !inputShape.isEmpty else { return nil }
        let gamma = weight.value.array
        return (0..<channels).map { gamma[$0] * invStd[$0] }
    }

    /// The backward of this layer and, when `reluOutput` is given, of the ReLU after it whose
    /// output that was: `dy` is masked by `reluOutput > 0` as it is read, instead of in a pass
    /// of its own. The result is bit-identical to `ReLU.backward` followed by `backward`.
    func backward(_ dy: Tensor, reluOutput: Tensor?, parameterGradients: Bool) -> Tensor {
        let shape = inputShape
        precondition(!shape.isEmpty, "BatchNorm2d: backward called before forward")
        dy.expectShape(shape, "BatchNorm2d.backward")
        reluOutput?.expectShape(shape, "BatchNorm2d.backward (ReLU output)")
        let n = shape[0], plane = shape[2] * shape[3], c = channels
        let m = Float(n * plane)
        let gamma = weight.value.array, mu = mean, inv = invStd
        let training = lastMode == .training
        let needsSums = training || parameterGradients
        // x feeds only the sums and the training-mode terms; an inference-mode input gradient
        // (an attack's) is `gamma * invstd * dy` and reads neither.
        guard let x = needsSums ? (input ?? recomputeInput?()) : dy else {
            preconditionFailure("BatchNorm2d: backward called before forward")
        }
        let mask = reluOutput ?? dy  // unused when reluOutput is nil
        let masked = reluOutput != nil
        // A ReLU this layer applied itself in training: its mask is `x * scale + shift > 0`,
        // computed as the forward computed it, so y need not be read (the same bits).
        let fromInput = training && masked ? reluAffine : nil
        let reluScale = fromInput?.scale ?? [], reluShift = fromInput?.shift ?? []
        // Per channel: sum(dy) and sum(dy * xhat) = invstd * (sum(dy * x) - mean * sum(dy)).
        var sumDy = [Float](repeating: 0, count: c), sumDyXhat = [Float](repeating: 0, count: c)
        var dx = Tensor(uninitializedShape: shape)
        dx.withUnsafeMutablePointer { dxp in
            x.withUnsafePointer { xp in
                dy.withUnsafePointer { dyp in
                    mask.withUnsafePointer { yp in
                        sumDy.withUnsafeMutableBufferPointer { sdy in
                            sumDyXhat.withUnsafeMutableBufferPointer { sdx in
                                Compute.parallelFor(c) { range in
                                    for ch in range {
                                        var s = 0.0, sx = 0.0
                                        // The sums feed only the training-mode terms and the
                                        // parameter gradients: an attack's backward (inference,
                                        // input gradient only) skips that pass over dy and x.
                                        for i in 0..<(needsSums ? n : 0) {
                                            let off = (i * c + ch) * plane
                                            let part = fromInput != nil
                                                ? Vector.affineMaskedSumAndDot(xp + off, reluScale[ch], reluShift[ch], dyp + off, plane)
                                                : masked
                                                ? Vector.maskedSumAndDot(yp + off, dyp + off, xp + off, plane)
                                                : Vector.sumAndDot(dyp + off, xp + off, plane)
                                            s += Double(part.sum); sx += Double(part.dot)
                                        }
                                        let sd = Float(s), sdxh = inv[ch] * (Float(sx) - mu[ch] * Float(s))
                                        sdy[ch] = sd
                                        sdx[ch] = sdxh
                                        // dx = k1 * dy + k2 * x + k3
                                        let k1 = gamma[ch] * inv[ch]
                                        var k2: Float = 0, k3: Float = 0
                                        if training {
                                            k2 = -k1 * inv[ch] * sdxh / m
                                            k3 = -k1 * sd / m - mu[ch] * k2
                                        }
                                        for i in 0..<n {
                                            let off = (i * c + ch) * plane
                                            switch (masked, training) {
                                            case (true, true) where fromInput != nil:
                                                Vector.affineMaskedCombine(xp + off, reluScale[ch], reluShift[ch], dyp + off,
                                                                           k1, k2, k3, dxp + off, plane)
                                            case (true, true):
                                                Vector.maskedCombine(yp + off, dyp + off, k1, xp + off, k2, k3, dxp + off, plane)
                                            case (false, true):
                                                Vector.combine(dyp + off, k1, xp + off, k2, k3, dxp + off, plane)
                                            case (true, false):
                                                Vector.maskedScale(yp + off, dyp + off, k1, dxp + off, plane)
                                            case (false, false):
                                                Vector.scale(dyp + off, k1, dxp + off, plane)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if parameterGradients {
            weight.grad.withUnsafeMutablePointer { g in for ch in 0..<c { g[ch] += sumDyXhat[ch] } }
            bias.grad.withUnsafeMutablePointer { g in for ch in 0..<c { g[ch] += sumDy[ch] } }
        }
        return dx
    }
}
