import Kernels

/// The square window shared by the pooling layers: size, step and padding, with PyTorch's
/// defaults (stride = kernel) and its floor rule for the output size.
public struct PoolingWindow: Equatable, Sendable {
    /// Window size, step and padding.
    public let kernel, stride, padding: Int

    /// A window; `layer` names the owner in the message when the values are invalid.
    init(kernel: Int, stride: Int?, padding: Int, layer: String) {
        precondition(
            kernel > 0 && (stride ?? kernel) > 0 && padding >= 0 && padding * 2 <= kernel,
            "\(layer): kernel \(kernel) stride \(stride ?? kernel) padding \(padding) is invalid")
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
    }

    /// The window's geometry over the planes of an `[N, C, H, W]` input.
    func geometry(_ shape: [Int]) -> ConvGeometry {
        ConvGeometry(
            channels: shape[1], height: shape[2], width: shape[3], kernelH: kernel, kernelW: kernel,
            strideH: stride, strideW: stride, padH: padding, padW: padding)
    }

    /// `[N, C, OH, OW]`.
    func outputShape(for shape: [Int]) -> [Int] {
        let g = geometry(shape)
        return [shape[0], shape[1], g.outH, g.outW]
    }
}
