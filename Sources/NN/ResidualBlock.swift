import Kernels
import TensorCore

/// A residual block whose branch ends in a convolution and a BatchNorm: `out = act(bn(conv(
/// main(x))) + shortcut(x))`, `act` a ReLU (ResNet) or nothing (MobileNetV2). The residual-add
/// variant of `ConvBNReLU`: the sum and its ReLU are done in the last convolution-BatchNorm
/// pair's last pass (the convolution's epilogue in inference, the normalisation in training),
/// and in backward the ReLU's mask is applied inside that BatchNorm's passes.
///
/// State is named as PyTorch's blocks name it: the branch's layers at the block's own level
/// (`conv1`, `bn1`, … then `tailNames`), the shortcut's under `shortcut.`. A nil shortcut is
/// the identity. Bit-identical to running every layer on its own (FusedLayersTests).
public final class ResidualBlock: Layer {
    /// The branch before its last convolution-BatchNorm pair.
    public let main: Sequential
    /// The skip branch; nil is the identity.
    public let shortcut: Layer?
    /// Whether a ReLU follows the sum.
    public let reluAfterSum: Bool
    /// Names of the last convolution's and BatchNorm's state.
    public let tailNames: (conv: String, bn: String)

    private let tail: ConvBNStage
    private var output: Tensor?  // the block's output, which the ReLU after the sum masks by

    /// A block from its branches: `main`, then `conv` and `bn` (named `tailNames`), plus `shortcut`.
    public init(
        main: Sequential, conv: Conv2d, bn: BatchNorm2d, tailNames: (conv: String, bn: String),
        shortcut: Layer?, reluAfterSum: Bool
    ) {
        self.main = main
        self.shortcut = shortcut
        self.reluAfterSum = reluAfterSum
        self.tailNames = tailNames
        tail = ConvBNStage(conv: conv, bn: bn)
    }

    /// The branch's last convolution and BatchNorm.
    public var conv: Conv2d { tail.conv }
    /// The BatchNorm after `conv`.
    public var bn: BatchNorm2d { tail.bn }

    public func outputShape(for shape: [Int]) -> [Int] { conv.outputShape(for: main.outputShape(for: shape)) }

    public func multiplyAccumulates(for shape: [Int]) -> Int {
        main.multiplyAccumulates(for: shape) + conv.multiplyAccumulates(for: main.outputShape(for: shape))
            + (shortcut?.multiplyAccumulates(for: shape) ?? 0)
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        main.visitState(prefix: prefix, visit)
        conv.visitState(prefix: prefix + tailNames.conv + ".", visit)
        bn.visitState(prefix: prefix + tailNames.bn + ".", visit)
        shortcut?.visitState(prefix: prefix + "shortcut.", visit)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let skip = shortcut?.forward(x, mode: mode) ?? x
        let h = main.forward(x, mode: mode)
        let y = tail.forward(h, mode: mode, then: .add(skip, reluAfterSum: reluAfterSum))
        output = y
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        guard let y = output else { preconditionFailure("ResidualBlock: backward called before forward") }
        if shortcut == nil && reluAfterSum {
            // The ReLU's gradient goes into the branch's last BatchNorm and into the final sum,
            // never written out as a tensor of its own.
            let dh = tail.backward(dy, mask: .output(y), parameterGradients: parameterGradients)
            var dx = main.backward(dh, parameterGradients: parameterGradients)
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
        let dSum = reluAfterSum ? ReLU.backward(dy, output: y) : dy
        let dh = tail.backward(dSum, mask: .none, parameterGradients: parameterGradients)
        var dx = main.backward(dh, parameterGradients: parameterGradients)
        let dSkip = shortcut?.backward(dSum, parameterGradients: parameterGradients) ?? dSum
        let n = dx.count
        dx.withUnsafeMutablePointer { dp in
            dSkip.withUnsafePointer { kp in
                Compute.parallelFor(n, minChunk: 1 << 15) { r in
                    Vector.add(dp + r.lowerBound, kp + r.lowerBound, dp + r.lowerBound, r.count)
                }
            }
        }
        return dx
    }
}
