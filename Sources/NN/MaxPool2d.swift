import Kernels
import TensorCore

/// Max pooling over windows of NCHW input (`nn.MaxPool2d`, implicit -infinity padding).
public final class MaxPool2d: Layer {
    /// Window size, step and padding.
    public let window: PoolingWindow
    private var inputShape: [Int] = []
    private var argmax: [Int32] = []  // [N, C, OH, OW]: flat index of the winner within its plane

    /// Pooling with `stride` defaulting to the window size, as in PyTorch.
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) {
        window = PoolingWindow(kernel: kernel, stride: stride, padding: padding, layer: "MaxPool2d")
    }

    public func outputShape(for shape: [Int]) -> [Int] { window.outputShape(for: shape) }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        expectRank(x, 4, "MaxPool2d")
        inputShape = x.shape
        let g = window.geometry(x.shape)
        let oh = g.outH
        let ow = g.outW
        precondition(
            oh > 0 && ow > 0, "MaxPool2d: input \(x.shape) is smaller than the \(window.kernel)x\(window.kernel) window"
        )
        let planes = x.dim(0) * x.dim(1)
        let h = g.height
        let w = g.width
        var y = Tensor(uninitializedShape: [x.dim(0), x.dim(1), oh, ow])
        if argmax.count != y.count { argmax = [Int32](repeating: 0, count: y.count) }
        let (k, s, p) = (window.kernel, window.stride, window.padding)
        if k == 2 && s == 2 && p == 0 {
            forward2x2(x, &y)
            return y
        }
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                argmax.withUnsafeMutableBufferPointer { am in
                    Compute.parallelFor(planes) { range in
                        for pl in range {
                            let src = xp + pl * h * w
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    var best = -Float.infinity
                                    var bestIndex = -1
                                    for ky in 0..<k {
                                        let iy = oy * s - p + ky
                                        if iy < 0 || iy >= h { continue }
                                        for kx in 0..<k {
                                            let ix = ox * s - p + kx
                                            if ix < 0 || ix >= w { continue }
                                            let v = src[iy * w + ix]
                                            // First maximum wins, as in PyTorch; NaN propagates.
                                            if v > best || v.isNaN || bestIndex < 0 {
                                                best = v
                                                bestIndex = iy * w + ix
                                                if v.isNaN { break }
                                            }
                                        }
                                    }
                                    let o = (pl * oh + oy) * ow + ox
                                    yp[o] = best
                                    am[o] = Int32(bestIndex)
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The 2x2, stride-2 window (VGG's), without the general loop's bounds checks: the same
    /// candidates in the same order under the same rule, so the same winners.
    private func forward2x2(_ x: Tensor, _ y: inout Tensor) {
        let planes = x.dim(0) * x.dim(1)
        let h = x.dim(2)
        let w = x.dim(3)
        let oh = y.dim(2)
        let ow = y.dim(3)
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                argmax.withUnsafeMutableBufferPointer { am in
                    Compute.parallelFor(planes) { range in
                        for pl in range {
                            let src = xp + pl * h * w
                            for oy in 0..<oh {
                                let top = 2 * oy * w
                                let bottom = top + w
                                for ox in 0..<ow {
                                    let i0 = top + 2 * ox
                                    var best = src[i0]
                                    var index = i0
                                    // First maximum wins; a NaN ends its row's scan and wins
                                    // unless a later row has a NaN too (the general loop's rule).
                                    if !best.isNaN, src[i0 + 1] > best || src[i0 + 1].isNaN {
                                        best = src[i0 + 1]
                                        index = i0 + 1
                                    }
                                    let i2 = bottom + 2 * ox
                                    let c = src[i2]
                                    if c > best || c.isNaN {
                                        best = c
                                        index = i2
                                    }
                                    if !c.isNaN, src[i2 + 1] > best || src[i2 + 1].isNaN {
                                        best = src[i2 + 1]
                                        index = i2 + 1
                                    }
                                    let o = (pl * oh + oy) * ow + ox
                                    yp[o] = best
                                    am[o] = Int32(index)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        precondition(!inputShape.isEmpty, "MaxPool2d: backward called before forward")
        dy.expectShape(outputShape(for: inputShape), "MaxPool2d.backward")
        var dx = Tensor(shape: inputShape)
        let plane = inputShape[2] * inputShape[3]
        let outPlane = dy.dim(2) * dy.dim(3)
        let planes = inputShape[0] * inputShape[1]
        dx.withUnsafeMutablePointer { dxp in
            dy.withUnsafePointer { dyp in
                argmax.withUnsafeBufferPointer { am in
                    Compute.parallelFor(planes) { range in
                        for pl in range {
                            let d = dxp + pl * plane
                            for o in 0..<outPlane { d[Int(am[pl * outPlane + o])] += dyp[pl * outPlane + o] }
                        }
                    }
                }
            }
        }
        return dx
    }
}
