import TensorCore

/// Layers applied in order; children are named like the entries of a PyTorch module
/// (`"0"`, `"1"` for an `nn.Sequential`, or attribute names such as `"conv1"`).
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

    /// Runs every child in order. A convolution followed by a BatchNorm (and a ReLU) runs as
    /// one: each image's output planes are worked on right after their GEMM, while they are in
    /// cache, instead of in more passes over the whole activation. In inference mode they get
    /// the BatchNorm's affine map and the ReLU there; in training mode their moments for the
    /// batch statistics, and normalisation and ReLU then share one pass. Each layer keeps what
    /// its own forward would have kept, and the results are bit-identical to running the layers
    /// one by one (FusedLayersTests).
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var h = x
        var i = 0
        while i < children.count {
            if i + 1 < children.count, let conv = children[i].layer as? Conv2d, let bn = children[i + 1].layer as? BatchNorm2d {
                let relu = i + 2 < children.count ? children[i + 2].layer as? ReLU : nil
                h = mode == .inference ? ConvBatchNorm.inference(h, conv, bn, relu) : ConvBatchNorm.training(h, conv, bn, relu)
                i += relu == nil ? 2 : 3
                continue
            }
            h = children[i].layer.forward(h, mode: mode)
            i += 1
        }
        return h
    }

    /// `act(forward(x) + residual)` when the last children are a convolution and a BatchNorm,
    /// with the sum (and `act`, a ReLU when `reluAfterSum`) fused into their last pass: the
    /// convolution's epilogue in inference mode, BatchNorm's normalisation in training mode.
    /// Nil otherwise, having run nothing. Bit-identical to the forward followed by the sum
    /// (FusedResidualTests).
    func forward(_ x: Tensor, mode: Mode, addingResidual residual: Tensor, reluAfterSum: Bool) -> Tensor? {
        let n = children.count
        guard n >= 2, let conv = children[n - 2].layer as? Conv2d, let bn = children[n - 1].layer as? BatchNorm2d,
              residual.shape == outputShape(for: x.shape) else { return nil }
        let head = Sequential(Array(children[..<(n - 2)]).map { ($0.name, $0.layer) })
        let h = head.forward(x, mode: mode)
        return mode == .inference
            ? ConvBatchNorm.inference(h, conv, bn, nil, residual: residual, reluAfterSum: reluAfterSum)
            : ConvBatchNorm.training(h, conv, bn, nil, residual: residual, reluAfterSum: reluAfterSum)
    }

    /// Runs every child's backward in reverse order; a BatchNorm followed by a ReLU takes the
    /// ReLU's backward into its own passes (bit-identical, one pass over the activation fewer),
    /// and in an attack's backward both go into the convolution before them.
    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        backward(dy, through: children.count - 1, parameterGradients: parameterGradients)
    }

    /// The backward of this sequence followed by a ReLU whose output was `reluOutput`, when the
    /// last child is a BatchNorm: it masks `dy` as it reads it (see `BatchNorm2d.backward(_:
    /// reluOutput:parameterGradients:)`), so the ReLU's gradient is never written out. Nil
    /// otherwise, having run nothing.
    func backward(_ dy: Tensor, maskedBy reluOutput: Tensor, parameterGradients: Bool) -> Tensor? {
        guard children.last?.layer is BatchNorm2d else { return nil }
        let (g, next) = maskedBatchNormBackward(dy, at: children.count - 1, reluOutput: reluOutput,
                                                parameterGradients: parameterGradients)
        return backward(g, through: next, parameterGradients: parameterGradients)
    }

    /// The backward of the BatchNorm at `index` followed by a ReLU with output `y`; in an
    /// attack's backward (inference mode, no parameter gradients) after a convolution, that
    /// convolution's too, with BatchNorm and ReLU applied as it reads dy
    /// (`Conv2d.inputGradient(maskedScaled:mask:factors:)`). Returns the gradient and the index
    /// of the next child to run backward.
    private func maskedBatchNormBackward(_ dy: Tensor, at index: Int, reluOutput y: Tensor,
                                         parameterGradients: Bool) -> (Tensor, next: Int) {
        let bn = children[index].layer as! BatchNorm2d
        if !parameterGradients, index >= 1, let conv = children[index - 1].layer as? Conv2d,
           let factors = bn.inferenceGradientFactor(),
           let dx = conv.inputGradient(maskedScaled: dy, mask: y, factors: factors) {
            return (dx, index - 2)
        }
        return (bn.backward(dy, reluOutput: y, parameterGradients: parameterGradients), index - 1)
    }

    /// Backward through children `0...last`, in reverse.
    private func backward(_ dy: Tensor, through last: Int, parameterGradients: Bool) -> Tensor {
        var g = dy
        var j = last
        while j >= 0 {
            if j >= 1, let relu = children[j].layer as? ReLU, children[j - 1].layer is BatchNorm2d,
               let y = relu.lastOutput {
                (g, j) = maskedBatchNormBackward(g, at: j - 1, reluOutput: y, parameterGradients: parameterGradients)
                continue
            }
            g = children[j].layer.backward(g, parameterGradients: parameterGradients)
            j -= 1
        }
        return g
    }

    /// Visits children with `prefix + name + "."`.
    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        for c in children { c.layer.visitState(prefix: prefix + c.name + ".", visit) }
    }

    /// Shape after every child.
    public func outputShape(for shape: [Int]) -> [Int] {
        children.reduce(shape) { $1.layer.outputShape(for: $0) }
    }

    /// Sum over children, each at its own input shape.
    public func multiplyAccumulates(for shape: [Int]) -> Int {
        var s = shape, total = 0
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
