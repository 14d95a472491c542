import Kernels
import TensorCore

/// Average pooling over windows of NCHW input (`nn.AvgPool2d`, zero padding counted in the
/// divisor as with PyTorch's default `count_include_pad=True`).
public final class AvgPool2d: Layer {
    /// Window size, step and padding.
    public let window: PoolingWindow
    private var inputShape: [Int] = []

    /// Pooling with `stride` defaulting to the window size, as in PyTorch.
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) {
        window = PoolingWindow(kernel: kernel, stride: stride, padding: padding, layer: "AvgPool2d")
    }

    public func outputShape(for shape: [Int]) -> [Int] { window.outputShape(for: shape) }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        expectRank(x, 4, "AvgPool2d")
        inputShape = x.shape
        let g = window.geometry(x.shape)
        let oh = g.outH
        let ow = g.outW
        let h = g.height
        let w = g.width
        precondition(
            oh > 0 && ow > 0, "AvgPool2d: input \(x.shape) is smaller than the \(window.kernel)x\(window.kernel) window"
        )
        var y = Tensor(uninitializedShape: [x.dim(0), x.dim(1), oh, ow])
        let (k, s, p) = (window.kernel, window.stride, window.padding)
        let scale = 1 / Float(k * k)
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                Compute.parallelFor(x.dim(0) * x.dim(1)) { range in
                    for pl in range {
                        let src = xp + pl * h * w
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                var acc: Float = 0
                                for ky in 0..<k {
                                    let iy = oy * s - p + ky
                                    if iy < 0 || iy >= h { continue }
                                    for kx in 0..<k {
                                        let ix = ox * s - p + kx
                                        if ix >= 0 && ix < w { acc += src[iy * w + ix] }
                                    }
                                }
                                yp[(pl * oh + oy) * ow + ox] = acc * scale
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        precondition(!inputShape.isEmpty, "AvgPool2d: backward called before forward")
        dy.expectShape(outputShape(for: inputShape), "AvgPool2d.backward")
        let g = window.geometry(inputShape)
        let oh = g.outH
        let ow = g.outW
        let h = g.height
        let w = g.width
        var dx = Tensor(shape: inputShape)
        let (k, s, p) = (window.kernel, window.stride, window.padding)
        let scale = 1 / Float(k * k)
        dx.withUnsafeMutablePointer { dxp in
            dy.withUnsafePointer { dyp in
                Compute.parallelFor(inputShape[0] * inputShape[1]) { range in
                    for pl in range {
                        let d = dxp + pl * h * w
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                let gv = dyp[(pl * oh + oy) * ow + ox] * scale
                                for ky in 0..<k {
                                    let iy = oy * s - p + ky
                                    if iy < 0 || iy >= h { continue }
                                    for kx in 0..<k {
                                        let ix = ox * s - p + kx
                                        if ix >= 0 && ix < w { d[iy * w + ix] += gv }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// Global average pooling that also flattens: `[N, C, H, W]` to `[N, C]`
/// (PyTorch's `adaptive_avg_pool2d(x, 1).flatten(1)`).
public final class GlobalAvgPool: Layer {
    private var inputShape: [Int] = []

    /// Creates the layer.
    public init() {}

    public func outputShape(for shape: [Int]) -> [Int] { [shape[0], shape[1]] }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        expectRank(x, 4, "GlobalAvgPool")
        inputShape = x.shape
        let planes = x.dim(0) * x.dim(1)
        let plane = x.dim(2) * x.dim(3)
        var y = Tensor(uninitializedShape: [x.dim(0), x.dim(1)])
        let scale = 1 / Float(plane)
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                for p in 0..<planes { yp[p] = Vector.sum(xp + p * plane, plane) * scale }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        precondition(!inputShape.isEmpty, "GlobalAvgPool: backward called before forward")
        dy.expectShape([inputShape[0], inputShape[1]], "GlobalAvgPool.backward")
        let planes = inputShape[0] * inputShape[1]
        let plane = inputShape[2] * inputShape[3]
        var dx = Tensor(uninitializedShape: inputShape)
        let scale = 1 / Float(plane)
        dx.withUnsafeMutablePointer { dxp in
            dy.withUnsafePointer { dyp in
                for p in 0..<planes { (dxp + p * plane).update(repeating: dyp[p] * scale, count: plane) }
            }
        }
        return dx
    }
}
