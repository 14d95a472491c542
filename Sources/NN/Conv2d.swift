import Kernels
import TensorCore

/// 2-D convolution over NCHW input (`nn.Conv2d`): weight `[Cout, Cin/groups, kh, kw]`, optional
/// bias `[Cout]`, stride, zero padding and groups (depthwise when groups == Cin == Cout).
///
/// Each image is one GEMM per group on its im2col columns (1x1 stride-1 convolutions use the
/// image itself); images are spread over the cores with OpenBLAS single-threaded. The input
/// gradient of a stride-1 window is computed the same way, as a convolution of dy. 3x3,
/// stride-1, padding-1 windows without groups (most of a ResNet) run on `DirectConv3x3`
/// instead (forward, input and weight gradient) where the CPU has AVX-512, and 3x3 stride-2
/// windows on `StridedConv3x3` (the same three passes).
public final class Conv2d: Layer {
    /// Channel counts, window and grouping.
    public let inChannels, outChannels, kernelH, kernelW, stride, padding, groups: Int
    /// `[Cout, Cin/groups, kh, kw]`.
    public let weight: Parameter
    /// `[Cout]`, or nil for `bias=False`.
    public let bias: Parameter?
    private var input: Tensor?  // [N, Cin, H, W] of the last forward

    /// The shape of the last forward's input, or nil before any.
    var inputShapeOfLastForward: [Int]? { input?.shape }

    /// A convolution initialised like PyTorch's default (uniform, bound 1/sqrt(fan-in)).
    public init(
        _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
        groups: Int = 1, bias: Bool = true, rng: inout RNG
    ) {
        precondition(
            groups >= 1 && inChannels % groups == 0 && outChannels % groups == 0,
            "Conv2d: channels \(inChannels)->\(outChannels) not divisible by groups \(groups)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        kernelH = kernel
        kernelW = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        let fanIn = inChannels / groups * kernel * kernel
        let bound = 1 / Float(fanIn).squareRoot()
        weight = Parameter(
            .uniform(shape: [outChannels, inChannels / groups, kernel, kernel], bound: bound, rng: &rng))
        self.bias = bias ? Parameter(.uniform(shape: [outChannels], bound: bound, rng: &rng)) : nil
    }

    /// Geometry of one group of one image of height `h` and width `w`.
    func geometry(_ h: Int, _ w: Int) -> ConvGeometry {
        ConvGeometry(
            channels: inChannels / groups, height: h, width: w, kernelH: kernelH, kernelW: kernelW,
            strideH: stride, strideW: stride, padH: padding, padW: padding)
    }

    /// True when the input itself is the column matrix (1x1, stride 1, no padding).
    var isPointwise: Bool { kernelH == 1 && kernelW == 1 && stride == 1 && padding == 0 }

    /// Whether 3x3 windows use `DirectConv3x3` (default: when the CPU can). Tests switch it off
    /// to compare against the im2col + GEMM path; set it only while no convolution is running.
    public nonisolated(unsafe) static var useDirectKernel = DirectConv3x3.isAvailable

    /// `[N, Cout, OH, OW]`.
    public func outputShape(for shape: [Int]) -> [Int] {
        let g = geometry(shape[2], shape[3])
        return [shape[0], outChannels, g.outH, g.outW]
    }

    /// `N * Cout * OH * OW * (Cin/groups) * kh * kw`.
    public func multiplyAccumulates(for shape: [Int]) -> Int {
        let o = outputShape(for: shape)
        return o.reduce(1, *) * (inChannels / groups) * kernelH * kernelW
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(prefix + "weight", .parameter(weight))
        if let bias { visit(prefix + "bias", .parameter(bias)) }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        forward(x, epilogue: nil)
    }

    /// The convolution; `epilogue(image, output)` runs on each image's finished output planes
    /// `[Cout, OH*OW]` (bias added) on the worker that computed them, while they are still in
    /// cache. Images are disjoint, so epilogues may write per-image results without locking.
    func forward(_ x: Tensor, epilogue: ((Int, UnsafeMutablePointer<Float>) -> Void)?) -> Tensor {
        var out = Tensor(uninitializedShape: outputShape(for: x.shape))
        out.withUnsafeMutablePointer { convolve(x, into: $0, epilogue: epilogue) }
        return out
    }

    /// The convolution with each image's output planes in per-worker scratch, handed to
    /// `epilogue` and then dropped: for a caller that needs only what the epilogue makes of them
    /// (an inference-mode BatchNorm + ReLU), which saves writing and re-reading a whole tensor.
    func forwardDiscardingOutput(_ x: Tensor, epilogue: @escaping (Int, UnsafeMutablePointer<Float>) -> Void) {
        convolve(x, into: nil, epilogue: epilogue)
    }

    /// Where image `i`'s output planes go: `out` when given, else worker scratch (`ScratchSlot.images`).
    @inline(__always)
    func outputImage(
        _ out: UnsafeMutablePointer<Float>?, _ i: Int, worker: Int, count: Int
    ) -> UnsafeMutablePointer<Float> {
        if let out { return out + i * count }
        return Scratch.buffer(worker: worker, slot: .images, count: count)
    }

    /// `forward` into `out` (`[N, Cout, OH, OW]`), or into scratch when `out` is nil.
    private func convolve(
        _ x: Tensor, into out: UnsafeMutablePointer<Float>?,
        epilogue: ((Int, UnsafeMutablePointer<Float>) -> Void)?
    ) {
        expectRank(x, 4, "Conv2d")
        precondition(x.dim(1) == inChannels, "Conv2d: expected \(inChannels) input channels, got shape \(x.shape)")
        input = x
        let n = x.dim(0)
        let g = geometry(x.dim(2), x.dim(3))
        let cinG = inChannels / groups
        let coutG = outChannels / groups
        let k = g.colRows
        let ohw = g.colCols
        let inPlane = x.dim(2) * x.dim(3)
        if let plan = directPlan(x.dim(2), x.dim(3)), plan.usesWinograd {
            forwardWinograd(x, plan, into: out, outImage: outChannels * ohw, epilogue)
            return
        }
        if let plan = forwardPlan(x.dim(2), x.dim(3)) {
            forwardDirect(x, plan, into: out, outImage: outChannels * ohw, epilogue)
            return
        }
        let pointwise = isPointwise
        let biasValues = bias?.value.array
        x.withUnsafePointer { xp in
            weight.value.withUnsafePointer { wp in
                _ = Compute.parallelChunks(n) { worker, images in
                    let col = pointwise ? nil : Scratch.buffer(worker: worker, slot: .columns, count: k * ohw)
                    for i in images {
                        let image = outputImage(out, i, worker: worker, count: outChannels * ohw)
                        for gi in 0..<groups {
                            let src = xp + (i * inChannels + gi * cinG) * inPlane
                            let cols: UnsafePointer<Float>
                            if let col {
                                im2col(src, g, col)
                                cols = UnsafePointer(col)
                            } else {
                                cols = src
                            }
                            gemm(
                                transA: false, transB: false, m: coutG, n: ohw, k: k,
                                alpha: 1, a: wp + gi * coutG * k, lda: k, b: cols, ldb: ohw,
                                beta: 0, c: image + gi * coutG * ohw, ldc: ohw)
                        }
                        if let biasValues {
                            for c in 0..<outChannels { Vector.addScalar(image + c * ohw, biasValues[c], ohw) }
                        }
                        epilogue?(i, image)
                    }
                }
            }
        }
    }

    /// True when dL/dx is itself a stride-1 convolution of dy (with the window flipped and the
    /// channel roles swapped), so it can be one im2col + GEMM like the forward pass instead of a
    /// GEMM into a 9x-larger column matrix folded back by `col2im`.
    var inputGradientIsConvolution: Bool {
        stride == 1 && !isPointwise && padding <= kernelH - 1 && padding <= kernelW - 1
    }

    /// `W'[g][ci, co, a, b] = W[g*coutG + co, ci, kh-1-a, kw-1-b]`: the flipped, channel-swapped
    /// weights of the input-gradient convolution, group by group.
    func flippedWeights() -> [Float] {
        let cinG = inChannels / groups
        let coutG = outChannels / groups
        let kk = kernelH * kernelW
        var out = [Float](repeating: 0, count: weight.value.count)
        weight.value.withUnsafePointer { wp in
            for gi in 0..<groups {
                for co in 0..<coutG {
                    for ci in 0..<cinG {
                        let src = wp + ((gi * coutG + co) * cinG + ci) * kk
                        let dst = (gi * cinG + ci) * coutG * kk + co * kk
                        for t in 0..<kk { out[dst + t] = src[kk - 1 - t] }
                    }
                }
            }
        }
        return out
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2d: backward called before forward") }
        let n = x.dim(0)
        let g = geometry(x.dim(2), x.dim(3))
        dy.expectShape([n, outChannels, g.outH, g.outW], "Conv2d.backward")
        let cinG = inChannels / groups
        let coutG = outChannels / groups
        let k = g.colRows
        let ohw = g.colCols
        let inPlane = x.dim(2) * x.dim(3)
        let wCount = weight.value.count
        var dx = Tensor(uninitializedShape: x.shape)
        var chunksUsed = 0
        if let plan = directPlan(x.dim(2), x.dim(3)) {
            chunksUsed = backwardDirect(x, dy, plan, &dx, parameterGradients: parameterGradients)
            finishParameterGradients(dy, chunks: chunksUsed, parameterGradients: parameterGradients)
            return dx
        }
        if let plan = stridedPlan(x.dim(2), x.dim(3)) {
            chunksUsed = backwardStrided(x, dy, plan, &dx, parameterGradients: parameterGradients)
            finishParameterGradients(dy, chunks: chunksUsed, parameterGradients: parameterGradients)
            return dx
        }
        let pointwise = isPointwise
        // dL/dx as a convolution of dy: window flipped, padding kernel-1-padding, output [H, W].
        let transposed = inputGradientIsConvolution
        let gT =
            transposed
            ? ConvGeometry(
                channels: coutG, height: g.outH, width: g.outW, kernelH: kernelH, kernelW: kernelW,
                padH: kernelH - 1 - padding, padW: kernelW - 1 - padding)
            : g
        let flipped = transposed ? flippedWeights() : []
        let colCount = max(k * ohw, gT.colRows * gT.colCols)
        dx.withUnsafeMutablePointer { dxp in
            x.withUnsafePointer { xp in
                dy.withUnsafePointer { dyp in
                    weight.value.withUnsafePointer { wp in
                        flipped.withUnsafeBufferPointer { fp in
                            chunksUsed = Compute.parallelChunks(n) { worker, images in
                                let col = Scratch.buffer(worker: worker, slot: .columns, count: colCount)
                                let dW =
                                    parameterGradients
                                    ? Scratch.buffer(worker: worker, slot: .weightGradient, count: wCount) : nil
                                dW?.update(repeating: 0, count: wCount)
                                for i in images {
                                    for gi in 0..<groups {
                                        let src = xp + (i * inChannels + gi * cinG) * inPlane
                                        let dsrc = dxp + (i * inChannels + gi * cinG) * inPlane
                                        let dyg = dyp + (i * outChannels + gi * coutG) * ohw
                                        let wg = wp + gi * coutG * k
                                        if let dW {
                                            let cols: UnsafePointer<Float>
                                            if pointwise {
                                                cols = src
                                            } else {
                                                im2col(src, g, col)
                                                cols = UnsafePointer(col)
                                            }
                                            // dW_g += dY_g [coutG, ohw] x cols^T [ohw, k]
                                            gemm(
                                                transA: false, transB: true, m: coutG, n: k, k: ohw,
                                                alpha: 1, a: dyg, lda: ohw, b: cols, ldb: ohw,
                                                beta: 1, c: dW + gi * coutG * k, ldc: k)
                                        }
                                        if pointwise {
                                            gemm(
                                                transA: true, transB: false, m: k, n: ohw, k: coutG,
                                                alpha: 1, a: wg, lda: k, b: dyg, ldb: ohw, beta: 0, c: dsrc, ldc: ohw)
                                        } else if transposed {
                                            // dx_g [cinG, H*W] = W'_g [cinG, coutG*kh*kw] x im2col(dY_g).
                                            im2col(dyg, gT, col)
                                            gemm(
                                                transA: false, transB: false, m: cinG, n: inPlane, k: gT.colRows,
                                                alpha: 1, a: fp.baseAddress! + gi * cinG * gT.colRows, lda: gT.colRows,
                                                b: col, ldb: inPlane, beta: 0, c: dsrc, ldc: inPlane)
                                        } else {
                                            // dcol = W_g^T [k, coutG] x dY_g [coutG, ohw], folded back onto dx.
                                            gemm(
                                                transA: true, transB: false, m: k, n: ohw, k: coutG,
                                                alpha: 1, a: wg, lda: k, b: dyg, ldb: ohw, beta: 0, c: col, ldc: ohw)
                                            dsrc.update(repeating: 0, count: cinG * inPlane)
                                            col2im(col, g, dsrc)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        finishParameterGradients(dy, chunks: chunksUsed, parameterGradients: parameterGradients)
        return dx
    }

    /// Adds the per-worker weight-gradient partial sums (the `.weightGradient` scratch slot of the first `chunks`
    /// workers) to `weight.grad` in a fixed order, so results do not depend on timing, and dy's
    /// sums to `bias.grad`.
    func finishParameterGradients(_ dy: Tensor, chunks: Int, parameterGradients: Bool) {
        guard parameterGradients else { return }
        let wCount = weight.value.count
        let n = dy.dim(0)
        let ohw = dy.dim(2) * dy.dim(3)
        weight.grad.withUnsafeMutablePointer { gp in
            for w in 0..<chunks {
                Vector.add(gp, Scratch.buffer(worker: w, slot: .weightGradient, count: wCount), gp, wCount)
            }
        }
        if let bias {
            bias.grad.withUnsafeMutablePointer { bp in
                dy.withUnsafePointer { dyp in
                    for i in 0..<n {
                        for c in 0..<outChannels { bp[c] += Vector.sum(dyp + (i * outChannels + c) * ohw, ohw) }
                    }
                }
            }
        }
    }
}
