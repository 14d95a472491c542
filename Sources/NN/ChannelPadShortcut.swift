import Kernels
import TensorCore

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
        precondition(
            outChannels >= inChannels, "ChannelPadShortcut: cannot shrink \(inChannels) to \(outChannels) channels")
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
        let s = stride
        let pb = padBefore
        let plane = oh * ow
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
        let s = stride
        let pb = padBefore
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
