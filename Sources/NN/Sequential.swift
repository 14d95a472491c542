import TensorCore

/// Layers applied in order; children are named like the entries of a PyTorch module
/// (`"0"`, `"1"` for an `nn.Sequential`, or attribute names such as `"conv1"`); a layer that
/// stands for several of them (`ConvBNReLU`) has an empty name and names its parts itself.
public final class Sequential: Layer {
    /// The children with their names; nameless layers hold no state.
    public private(set) var children: [(name: String, layer: Layer)]

    /// Children with explicit names.
    public init(_ children: [(String, Layer)]) {
        self.children = children.map { (name: $0.0, layer: $0.1) }
    }

    /// Children named by position, as `nn.Sequential` does.
    public init(indexed layers: [Layer]) {
        children = layers.enumerated().map { (name: String($0.offset), layer: $0.element) }
    }

    /// Runs every child in order. (Fusion is not planned here: the model registry builds fused
    /// layers, `ConvBNReLU` and `ResidualBlock`, that own their combined passes.)
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        children.reduce(x) { $1.layer.forward($0, mode: mode) }
    }

    /// Runs every child's backward in reverse order.
    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        children.reversed().reduce(dy) { $1.layer.backward($0, parameterGradients: parameterGradients) }
    }

    /// Visits children with `prefix + name + "."`; a child with an empty name (a fused layer that
    /// names its parts itself, see `ConvBNReLU.fusing`) with `prefix` alone.
    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        for c in children { c.layer.visitState(prefix: c.name.isEmpty ? prefix : prefix + c.name + ".", visit) }
    }

    /// Shape after every child.
    public func outputShape(for shape: [Int]) -> [Int] {
        children.reduce(shape) { $1.layer.outputShape(for: $0) }
    }

    /// Sum over children, each at its own input shape.
    public func multiplyAccumulates(for shape: [Int]) -> Int {
        var s = shape
        var total = 0
        for c in children {
            total += c.layer.multiplyAccumulates(for: s)
            s = c.layer.outputShape(for: s)
        }
        return total
    }
}

/// Passes its input through unchanged (stands in for a layer that a configuration drops, so
/// that positional names of the others stay put).
public final class Identity: Layer {
    /// Creates the layer.
    public init() {}
    /// Returns `x`.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor { x }
    /// Returns `dy`.
    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor { dy }
    /// Same shape.
    public func outputShape(for shape: [Int]) -> [Int] { shape }
}
