import TensorCore

/// Convolution → BatchNorm (→ ReLU) as one layer, with the forward and backward of all three
/// fused (`ConvBNStage`): the BatchNorm work happens in the convolution's per-image epilogue,
/// and the ReLU's backward inside BatchNorm's. The model registry builds every conv-BN pair of
/// its networks as one of these.
///
/// Its state is named as the separate layers would be (`conv1.weight`, `bn1.running_mean`, or
/// `0.weight`, `1.weight` in an indexed sequence), so checkpoints are PyTorch's. Outputs,
/// gradients and running statistics are the bits of running the three layers one by one
/// (FusedLayersTests).
public final class ConvBNReLU: Layer {
    /// The convolution.
    public var conv: Conv2d { stage.conv }
    /// The BatchNorm after the convolution.
    public var bn: BatchNorm2d { stage.bn }
    /// Whether a ReLU follows the BatchNorm.
    public let relu: Bool
    /// The names the convolution's and the BatchNorm's state go under.
    public let convName, bnName: String

    private let stage: ConvBNStage
    private var output: Tensor?  // an inference forward's output, which the ReLU's backward masks by

    /// `relu(bn(conv(x)))`, or `bn(conv(x))` when `relu` is false; the two layers' state is
    /// named `convName.*` and `bnName.*`.
    public init(_ conv: Conv2d, _ bn: BatchNorm2d, relu: Bool, names: (conv: String, bn: String)) {
        stage = ConvBNStage(conv: conv, bn: bn)
        self.relu = relu
        convName = names.conv
        bnName = names.bn
    }

    public func outputShape(for shape: [Int]) -> [Int] { conv.outputShape(for: shape) }

    public func multiplyAccumulates(for shape: [Int]) -> Int { conv.multiplyAccumulates(for: shape) }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        conv.visitState(prefix: prefix + convName + ".", visit)
        bn.visitState(prefix: prefix + bnName + ".", visit)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = stage.forward(x, mode: mode, then: relu ? .relu : .none)
        // A training forward's ReLU mask is recomputed from BatchNorm's input; an inference
        // forward keeps no such input, so its output is the mask.
        output = relu && mode == .inference ? y : nil
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        let mask: ReLUMask
        if !relu {
            mask = .none
        } else if stage.trainedLast {
            mask = .affineOfInput
        } else {
            guard let y = output else { preconditionFailure("ConvBNReLU: backward called before forward") }
            mask = .output(y)
        }
        return stage.backward(dy, mask: mask, parameterGradients: parameterGradients)
    }
}

extension ConvBNReLU {
    /// `children` with every convolution → BatchNorm (→ ReLU) run replaced by one `ConvBNReLU`
    /// under the children's own names, and everything else kept: how a network written as
    /// PyTorch's flat `nn.Sequential` (VGG's `features`) gets fused layers with unchanged
    /// state names. Children without state keep an empty name.
    public static func fusing(_ children: [(String, Layer)]) -> [(String, Layer)] {
        var out: [(String, Layer)] = []
        var i = 0
        while i < children.count {
            if i + 1 < children.count, let conv = children[i].1 as? Conv2d, let bn = children[i + 1].1 as? BatchNorm2d {
                let relu = i + 2 < children.count && children[i + 2].1 is ReLU
                out.append(("", ConvBNReLU(conv, bn, relu: relu, names: (children[i].0, children[i + 1].0))))
                i += relu ? 3 : 2
            } else {
                out.append(children[i])
                i += 1
            }
        }
        return out
    }

    /// `fusing` for children named by position, as `nn.Sequential` names them.
    public static func fusing(indexed layers: [Layer]) -> [(String, Layer)] {
        fusing(layers.enumerated().map { (String($0.offset), $0.element) })
    }
}
