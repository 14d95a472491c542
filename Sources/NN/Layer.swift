import TensorCore

/// Whether a forward pass trains (BatchNorm uses and updates batch statistics) or infers.
public enum Mode: Sendable {
    /// Batch statistics; BatchNorm running statistics are updated.
    case training
    /// Running statistics; nothing in the layer changes.
    case inference
}

/// A trainable tensor and its gradient accumulator.
public final class Parameter {
    /// Current value.
    public var value: Tensor
    /// Accumulated gradient, same shape as `value`; `backward` adds into it.
    public var grad: Tensor

    /// A parameter with a zero gradient.
    public init(_ value: Tensor) {
        self.value = value
        grad = Tensor(shape: value.shape)
    }

    /// Sets the gradient to zero.
    public func zeroGrad() { grad.fill(0) }
}

/// A non-trainable Float state tensor saved with the model (BatchNorm running statistics).
public final class Buffer {
    /// Current value.
    public var value: Tensor
    /// Wraps `value`.
    public init(_ value: Tensor) { self.value = value }
}

/// A non-trainable integer counter saved with the model (BatchNorm `num_batches_tracked`).
public final class Counter {
    /// Current value.
    public var value: Int64
    /// Starts at `value`.
    public init(_ value: Int64 = 0) { self.value = value }
}

/// One named piece of layer state, as a PyTorch state_dict entry would be.
public enum StateEntry {
    /// A trainable parameter (`weight`, `bias`).
    case parameter(Parameter)
    /// A Float buffer (`running_mean`, `running_var`).
    case buffer(Buffer)
    /// An Int64 scalar buffer (`num_batches_tracked`).
    case counter(Counter)
}

/// A network layer with a hand-written forward and backward pass.
///
/// `forward` caches exactly what `backward` needs; `backward` takes dL/d(output), returns
/// dL/d(input) and, when `parameterGradients` is true, *adds* into the parameters' `grad`.
/// Backward is valid after a forward in either mode; it uses the mode of that forward.
public protocol Layer: AnyObject {
    /// Computes the output for `x` and caches what backward needs.
    func forward(_ x: Tensor, mode: Mode) -> Tensor
    /// Propagates `dy` back to the input of the last forward.
    func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor
    /// Calls `visit` with every state entry and its PyTorch-style name, `prefix` prepended.
    func visitState(prefix: String, _ visit: (String, StateEntry) -> Void)
    /// The output shape for an input of `shape` (batch dimension included).
    func outputShape(for shape: [Int]) -> [Int]
    /// Multiply-accumulates of one forward pass for one input of `shape` (batch included).
    func multiplyAccumulates(for shape: [Int]) -> Int
}

extension Layer {
    /// Stateless layers have no entries.
    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {}
    /// Most layers do no multiply-accumulates worth counting (only Conv2d and Linear do).
    public func multiplyAccumulates(for shape: [Int]) -> Int { 0 }

    /// Every trainable parameter with its name.
    public func namedParameters(prefix: String = "") -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        visitState(prefix: prefix) { name, entry in
            if case .parameter(let p) = entry { out.append((name, p)) }
        }
        return out
    }

    /// Number of trainable scalars.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.value.count } }

    /// Zeroes every parameter gradient.
    public func zeroGradients() { for (_, p) in namedParameters() { p.zeroGrad() } }
}

/// Checks the input has `rank` dimensions, with a message naming the layer.
@inline(__always)
func expectRank(_ x: Tensor, _ rank: Int, _ layer: String) {
    precondition(x.rank == rank, "\(layer): expected a rank-\(rank) input, got shape \(x.shape)")
}
