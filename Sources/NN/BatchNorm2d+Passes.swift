import Foundation
import Kernels
import TensorCore

/// The statistics one BatchNorm forward normalised with, and the affine map they give:
/// `y = scale[c] * x + shift[c]`. Its backward needs exactly these.
struct BatchNormStatistics {
    /// Per channel: the mean and `1 / sqrt(variance + eps)` used.
    var mean, invStd: [Float]
    /// `scale = gamma * invStd`, `shift = beta - mean * scale`.
    var scale, shift: [Float]
    /// True for batch statistics (training mode), false for the running ones.
    var training: Bool
}

/// What a BatchNorm's normalisation pass does to each value besides the affine map: nothing, a
/// ReLU, or a residual block's sum (and the ReLU after it).
enum AffineEpilogue {
    /// `y = scale * x + shift`.
    case none
    /// `max(scale * x + shift, 0)`.
    case relu
    /// `act(scale * x + shift + residual)`, `act` a ReLU when `reluAfterSum`; `residual` has the
    /// output's shape.
    case add(Tensor, reluAfterSum: Bool)

    /// Applies the map and this epilogue to one plane of `n` values; `residual` points at the
    /// same plane of the residual (only `.add` reads it).
    @inline(__always)
    func apply(
        _ x: UnsafePointer<Float>, _ scale: Float, _ shift: Float, residual: UnsafePointer<Float>?,
        _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        switch self {
        case .none: Vector.affine(x, scale, shift, out, n)
        case .relu: Vector.affineRelu(x, scale, shift, out, n)
        case .add(_, let reluAfterSum): Vector.affineAdd(x, scale, shift, residual!, relu: reluAfterSum, out, n)
        }
    }

    /// Calls `body` with the residual's values, or nil when there is none.
    func withResidual<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        if case .add(let residual, _) = self { return residual.withUnsafePointer { body($0) } }
        return body(nil)
    }
}

/// How the gradient reaching a BatchNorm's output is masked by a ReLU right after it, whose
/// backward is folded into BatchNorm's own passes instead of being a pass of its own.
enum ReLUMask {
    /// No ReLU after the BatchNorm.
    case none
    /// The ReLU's output (mask `y > 0`).
    case output(Tensor)
    /// The ReLU was applied in the normalisation pass of a training-mode forward: its mask is
    /// `scale * x + shift > 0`, recomputed from BatchNorm's input exactly as the forward
    /// computed it (the same bits), so the output need not be read.
    case affineOfInput
}

extension BatchNorm2d {
    /// One plane's contribution to the batch statistics: `Vector.shiftedMoments` about the
    /// plane's own first value, which is close enough to its values that one pass keeps the
    /// variance's digits. A convolution before this layer calls it on each output plane while
    /// the plane is in cache.
    @inline(__always)
    static func planeMoments(_ plane: UnsafePointer<Float>, _ count: Int) -> (sum: Float, squares: Float) {
        Vector.shiftedMoments(plane, count, shift: plane[0])
    }

    /// Batch statistics of `x` from each plane's `planeMoments` (`moments[2p]`, `[2p+1]` for
    /// plane `p = image * C + channel`), folded per channel in image order, in Double, after
    /// moving each to a common shift (so they depend on neither the thread that computed a
    /// plane nor any state). Updates the running statistics and the batch counter.
    func batchStatistics(_ x: Tensor, moments: [Float]) -> BatchNormStatistics {
        precondition(
            x.rank == 4 && x.dim(1) == channels, "BatchNorm2d: expected \(channels) channels, got shape \(x.shape)")
        let n = x.dim(0)
        let plane = x.dim(2) * x.dim(3)
        let c = channels
        let m = n * plane
        precondition(m > 1, "BatchNorm2d: training needs more than one value per channel, got shape \(x.shape)")
        var mean = [Float](repeating: 0, count: c)
        var invStd = mean
        var batchVar = mean
        x.withUnsafePointer { xp in
            for ch in 0..<c {
                // About the first plane's shift: sum(x - S) = s + np*d, sum((x - S)^2) = q + 2*d*s + np*d^2
                // for a plane with moments (s, q) about its own shift S + d.
                let common = Double(xp[ch * plane])
                let np = Double(plane)
                var sum = 0.0
                var squares = 0.0
                for i in 0..<n {
                    let p = i * c + ch
                    let d = Double(xp[p * plane]) - common
                    let s = Double(moments[2 * p])
                    let q = Double(moments[2 * p + 1])
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
        return statistics(mean: mean, invStd: invStd, training: true)
    }

    /// The running statistics, as an inference-mode forward uses them.
    func runningStatistics() -> BatchNormStatistics {
        statistics(
            mean: runningMean.value.array, invStd: runningVar.value.array.map { 1 / ($0 + epsilon).squareRoot() },
            training: false)
    }

    /// The one place the affine map is computed, so the layer and a fused neighbour agree to the bit.
    private func statistics(mean: [Float], invStd: [Float], training: Bool) -> BatchNormStatistics {
        let gamma = weight.value.array
        let beta = bias.value.array
        var scale = [Float](repeating: 0, count: channels)
        var shift = scale
        for ch in 0..<channels {
            scale[ch] = gamma[ch] * invStd[ch]
            shift[ch] = beta[ch] - mean[ch] * scale[ch]
        }
        return BatchNormStatistics(mean: mean, invStd: invStd, scale: scale, shift: shift, training: training)
    }

    /// `x` normalised with `s`, then `epilogue`, in one pass split over the planes.
    func normalize(_ x: Tensor, _ s: BatchNormStatistics, then epilogue: AffineEpilogue) -> Tensor {
        let n = x.dim(0)
        let plane = x.dim(2) * x.dim(3)
        let c = channels
        if case .add(let residual, _) = epilogue {
            precondition(
                residual.shape == x.shape, "BatchNorm2d: a residual of shape \(residual.shape) does not fit \(x.shape)")
        }
        let (scale, shift) = (s.scale, s.shift)
        var out = Tensor(uninitializedShape: x.shape)
        out.withUnsafeMutablePointer { op in
            x.withUnsafePointer { xp in
                epilogue.withResidual { rp in
                    Compute.parallelFor(n * c) { planes in
                        for p in planes {
                            epilogue.apply(
                                xp + p * plane, scale[p % c], shift[p % c], residual: rp.map { $0 + p * plane },
                                op + p * plane, plane)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The backward of a forward that normalised `x` (of `shape`) with `s`, with the backward of a
    /// ReLU after it folded in as `mask` says. `x` is read only for batch statistics or parameter
    /// gradients: an attack's backward (inference, input gradient only) may pass nil. Parameter
    /// gradients are added when asked. Bit-identical to `ReLU.backward` then the plain backward.
    func backward(
        _ dy: Tensor, input x: Tensor?, shape: [Int], statistics s: BatchNormStatistics, mask: ReLUMask,
        parameterGradients: Bool
    ) -> Tensor {
        dy.expectShape(shape, "BatchNorm2d.backward")
        if case .output(let y) = mask { y.expectShape(shape, "BatchNorm2d.backward (ReLU output)") }
        let needsInput = s.training || parameterGradients
        precondition(!needsInput || x != nil, "BatchNorm2d: this backward needs the forward's input")
        let c = channels
        let sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2 * c)  // sum(dy), sum(dy * xhat)
        defer { sums.deallocate() }
        var dx = Tensor(uninitializedShape: shape)
        let pass = BackwardPass(
            shape: shape, statistics: s, gamma: weight.value.array, mask: mask, needsSums: needsInput)
        dx.withUnsafeMutablePointer { dxp in
            dy.withUnsafePointer { dyp in
                (x ?? dy).withUnsafePointer { xp in
                    pass.maskValues.withUnsafePointer { yp in
                        Compute.parallelFor(c) { range in
                            for ch in range { pass.channel(ch, x: xp, dy: dyp, y: yp, dx: dxp, sums: sums) }
                        }
                    }
                }
            }
        }
        if parameterGradients {
            weight.grad.withUnsafeMutablePointer { g in for ch in 0..<c { g[ch] += sums[2 * ch + 1] } }
            bias.grad.withUnsafeMutablePointer { g in for ch in 0..<c { g[ch] += sums[2 * ch] } }
        }
        return dx
    }
}

/// One BatchNorm backward's constants and its per-channel work: the sums, then
/// `dx = k1 * dy + k2 * x + k3` (k2 = k3 = 0 in inference), with the ReLU's mask applied to dy
/// as it is read.
private struct BackwardPass {
    let images, channels, plane: Int
    let s: BatchNormStatistics
    let gamma: [Float]
    let mask: ReLUMask
    /// The sums feed only the training-mode terms and the parameter gradients: an attack's
    /// backward (inference, input gradient only) skips that pass over dy and x.
    let needsSums: Bool

    init(shape: [Int], statistics: BatchNormStatistics, gamma: [Float], mask: ReLUMask, needsSums: Bool) {
        images = shape[0]
        channels = shape[1]
        plane = shape[2] * shape[3]
        s = statistics
        self.gamma = gamma
        self.mask = mask
        self.needsSums = needsSums
    }

    /// The ReLU output to mask by, or an empty tensor when the mask is not read from one.
    var maskValues: Tensor {
        if case .output(let y) = mask { return y }
        return Tensor(shape: [0])
    }

    func channel(
        _ ch: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, sums: UnsafeMutableBufferPointer<Float>
    ) {
        let (mu, inv) = (s.mean[ch], s.invStd[ch])
        let (a, b) = (s.scale[ch], s.shift[ch])  // the forward's affine map, for `.affineOfInput`
        var sum = 0.0
        var dot = 0.0
        for i in 0..<(needsSums ? images : 0) {
            let off = (i * channels + ch) * plane
            let part: (sum: Float, dot: Float)
            switch mask {
            case .affineOfInput: part = Vector.affineMaskedSumAndDot(x + off, a, b, dy + off, plane)
            case .output: part = Vector.maskedSumAndDot(y + off, dy + off, x + off, plane)
            case .none: part = Vector.sumAndDot(dy + off, x + off, plane)
            }
            sum += Double(part.sum)
            dot += Double(part.dot)
        }
        let sd = Float(sum)
        let sdxh = inv * (Float(dot) - mu * Float(sum))
        sums[2 * ch] = sd
        sums[2 * ch + 1] = sdxh
        let k1 = gamma[ch] * inv
        var k2: Float = 0
        var k3: Float = 0
        if s.training {
            let m = Float(images * plane)
            k2 = -k1 * inv * sdxh / m
            k3 = -k1 * sd / m - mu * k2
        }
        for i in 0..<images {
            let off = (i * channels + ch) * plane
            switch (mask, s.training) {
            case (.affineOfInput, true):
                Vector.affineMaskedCombine(x + off, a, b, dy + off, k1, k2, k3, dx + off, plane)
            case (.output, true): Vector.maskedCombine(y + off, dy + off, k1, x + off, k2, k3, dx + off, plane)
            case (.none, true): Vector.combine(dy + off, k1, x + off, k2, k3, dx + off, plane)
            case (.output, false): Vector.maskedScale(y + off, dy + off, k1, dx + off, plane)
            case (.none, false): Vector.scale(dy + off, k1, dx + off, plane)
            case (.affineOfInput, false):
                preconditionFailure("BatchNorm2d: an inference forward keeps its ReLU's output as the mask")
            }
        }
    }
}
