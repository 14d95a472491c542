import Kernels
import TensorCore

/// A residual block: `out = act(main(x) + shortcut(x))`.
///
/// `main`'s children are named at the block's own level (`conv1`, `bn1`, …) as in the PyTorch
/// modules; the shortcut's state is named under `shortcut.` (`shortcut.0.weight`). A nil
/// shortcut is the identity.
public final class Residual: Layer {
    /// The residual branch.
    public let main: Sequential
    /// The skip branch; nil is the identity.
    public let shortcut: Layer?
    /// Apply ReLU after the sum (ResNet) or not (MobileNetV2).
    public let activation: ReLU?

    /// A block from its branches.
    public init(main: Sequential, shortcut: Layer?, reluAfterSum: Bool) {
        self.main = main; self.shortcut = shortcut
        activation = reluAfterSum ? ReLU() : nil
    }

    public func outputShape(for shape: [Int]) -> [Int] { main.outputShape(for: shape) }

    public func multiplyAccumulates(for shape: [Int]) -> Int {
        main.multiplyAccumulates(for: shape) + (shortcut?.multiplyAccumulates(for: shape) ?? 0)
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        main.visitState(prefix: prefix, visit)
        shortcut?.visitState(prefix: prefix + "shortcut.", visit)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let skip = shortcut?.forward(x, mode: mode) ?? x
        // The sum and its ReLU go into the last conv -> BatchNorm's last pass when there is one.
        if let fused = main.forward(x, mode: mode, addingResidual: skip, reluAfterSum: activation != nil) {
            activation?.adopt(output: fused)
            return fused
        }
        var sum = main.forward(x, mode: mode)
        precondition(sum.shape == skip.shape, "Residual: branch shapes differ: main \(sum.shape), shortcut \(skip.shape)")
        let n = sum.count
        let relu = activation != nil
        // The sum and its ReLU in one pass over the (large, cold) activations, split over cores.
        sum.withUnsafeMutablePointer { sp in
            skip.withUnsafePointer { kp in
                Compute.parallelFor(n, minChunk: 1 << 15) { r in
                    let a = sp + r.lowerBound, b = kp + r.lowerBound
                    if relu { Vector.addRelu(a, b, a, r.count) } else { Vector.add(a, b, a, r.count) }
                }
            }
        }
        activation?.adopt(output: sum)
        return sum
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        // An identity shortcut after a ReLU: the ReLU's gradient is folded into the branch's last
        // BatchNorm and into the final sum, instead of a pass of its own (bit-identical).
        if shortcut == nil, let y = activation?.lastOutput,
           var dx = main.backward(dy, maskedBy: y, parameterGradients: parameterGradients) {
            let count = dx.count
            dx.withUnsafeMutablePointer { dp in
                y.withUnsafePointer { yp in
                    dy.withUnsafePointer { gp in
                        Compute.parallelFor(count, minChunk: 1 << 15) { r in
                            Vector.maskedAdd(yp + r.lowerBound, gp + r.lowerBound, dp + r.lowerBound, r.count)
                        }
                    }
                }
            }
            return dx
        }
        let dSum = activation?.backward(dy, parameterGradients: parameterGradients) ?? dy
        var dx = main.backward(dSum, parameterGradients: parameterGradients)
        let dSkip = shortcut?.backward(dSum, parameterGradients: parameterGradients) ?? dSum
        let n = dx.count
        dx.withUnsafeMutablePointer { dp in
            dSkip.withUnsafePointer { kp in
                Compute.parallelFor(n, minChunk: 1 << 15) { r in Vector.add(dp + r.lowerBound, kp + r.lowerBound, dp + r.lowerBound, r.count) }
            }
        }
        return dx
    }
}

/// The parameter-free "option A" ResNet shortcut: keep every `stride`-th pixel and pad the
/// channels with zeros, `padBefore` in front and the rest behind (He et al. 2016, §4.2).
public final class ChannelPadShortcut: Layer {
    /// Spatial subsampling step.
    public let stride: Int
    /// Zero channels added in front and behind.
    public let padBefore, padAfter: Int
    private var inputShape: [Int] = []

    /// A shortcut from `inChannels` to `outChannels` subsampling by `stride`; the padding is
    /// split as PyTorch's `F.pad(x, (0,0,0,0, p//2, p - p//2))`.
    public init(inChannels: Int, outChannels: Int, stride: Int) {
        precondition(outChannels >= inChannels, "ChannelPadShortcut: cannot shrink \(inChannels) to \(outChannels) channels")
        self.stride = stride
        padBefore = (outChannels - inChannels) / 2
        padAfter = outChannels - inChannels - padBefore
    }

    public func outputShape(for shape: [Int]) -> [Int] {
        [shape[0], shape[1] + padBefore + padAfter, (shape[2] + stride - 1) / stride, (shape[3] + stride - 1) / stride]
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        expectRank(x, 4, "ChannelPadShortcut")
        inputShape = x.shape
        let o = outputShape(for: x.shape)
        let (cin, h, w, oh, ow) = (x.dim(1), x.dim(2), x.dim(3), o[2], o[3])
        var y = Tensor(uninitializedShape: o)
        let s = stride, pb = padBefore, plane = oh * ow
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                // Images are independent: split them over the cores, each written exactly once.
                Compute.parallelFor(o[0]) { images in
                    for n in images {
                        let image = yp + n * o[1] * plane
                        image.update(repeating: 0, count: pb * plane)
                        (image + (pb + cin) * plane).update(repeating: 0, count: (o[1] - pb - cin) * plane)
                        for c in 0..<cin {
                            let src = xp + (n * cin + c) * h * w
                            let dst = image + (c + pb) * plane
                            for oy in 0..<oh { for ox in 0..<ow { dst[oy * ow + ox] = src[oy * s * w + ox * s] } }
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        precondition(!inputShape.isEmpty, "ChannelPadShortcut: backward called before forward")
        let o = outputShape(for: inputShape)
        dy.expectShape(o, "ChannelPadShortcut.backward")
        let (cin, h, w, oh, ow) = (inputShape[1], inputShape[2], inputShape[3], o[2], o[3])
        var dx = Tensor(uninitializedShape: inputShape)
        let s = stride, pb = padBefore
        // Images are independent: zeroed and filled on the cores like the forward (it was a
        // serial pass the other core waited on).
        dx.withUnsafeMutablePointer { dxp in
            dy.withUnsafePointer { dyp in
                Compute.parallelFor(o[0]) { images in
                    for n in images {
                        (dxp + n * cin * h * w).update(repeating: 0, count: cin * h * w)
                        for c in 0..<cin {
                            let dst = dxp + (n * cin + c) * h * w
                            let src = dyp + (n * o[1] + c + pb) * oh * ow
                            for oy in 0..<oh { for ox in 0..<ow { dst[oy * s * w + ox * s] = src[oy * ow + ox] } }
                        }
                    }
                }
            }
        }
        return dx
    }
}
