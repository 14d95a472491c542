import TensorCore

/// Flattens every dimension after the batch: `[N, C, H, W]` to `[N, C*H*W]`.
public final class Flatten: Layer {
    private var inputShape: [Int] = []

    /// Creates the layer.
    public init() {}

    public func outputShape(for shape: [Int]) -> [Int] { [shape[0], shape.dropFirst().reduce(1, *)] }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        inputShape = x.shape
        return x.reshaped(outputShape(for: x.shape))
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        dy.reshaped(inputShape)
    }
}
