import Kernels
import TensorCore

/// A pre-activation residual block (He et al. 2016, "Identity Mappings"): `a = relu(bn1(x))`,
/// `out = conv2(relu(bn2(conv1(a)))) + skip`, nothing after the sum. The skip is `x` itself,
/// or a 1x1 convolution when the shape changes, applied to `a` (wide ResNets, and PreActResNet
/// with `out_shortcut`) or to `x` (PreActResNet's default).
///
/// State is named as the public definitions name it: `bn1`, `conv1`, `bn2`, `conv2`, and the
/// projection under `shortcutName` (`shortcut.0` in PreActResNet, `convShortcut` in WideResNet).
public final class PreActBlock: Layer {
    /// What the projection shortcut reads.
    public enum ShortcutInput: Sendable {
        /// The pre-activated input `relu(bn1(x))`.
        case preActivated
        /// The block's raw input `x`.
        case raw
    }

    let bn1: BatchNorm2d
    let relu1 = ReLU()
    let conv1: Conv2d
    let bn2: BatchNorm2d
    let relu2 = ReLU()
    let conv2: Conv2d
    /// The 1x1 projection; nil is the identity.
    let shortcut: Conv2d?
    let shortcutInput: ShortcutInput
    let shortcutName: String

    /// A block from `cin` to `cout` channels; a projection shortcut is made when `stride` is
    /// not 1 or the channel count changes.
    public init(
        _ cin: Int, _ cout: Int, stride: Int, shortcutInput: ShortcutInput, shortcutName: String, rng: inout RNG
    ) {
        bn1 = BatchNorm2d(cin)
        conv1 = Conv2d(cin, cout, kernel: 3, stride: stride, padding: 1, bias: false, rng: &rng)
        bn2 = BatchNorm2d(cout)
        conv2 = Conv2d(cout, cout, kernel: 3, padding: 1, bias: false, rng: &rng)
        shortcut =
            stride != 1 || cin != cout ? Conv2d(cin, cout, kernel: 1, stride: stride, bias: false, rng: &rng) : nil
        self.shortcutInput = shortcutInput
        self.shortcutName = shortcutName
    }

    public func outputShape(for shape: [Int]) -> [Int] { conv2.outputShape(for: conv1.outputShape(for: shape)) }

    public func multiplyAccumulates(for shape: [Int]) -> Int {
        conv1.multiplyAccumulates(for: shape) + conv2.multiplyAccumulates(for: conv1.outputShape(for: shape))
            + (shortcut?.multiplyAccumulates(for: shape) ?? 0)
    }

    /// Construction order of the public definitions, which is also their state_dict order.
    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        bn1.visitState(prefix: prefix + "bn1.", visit)
        conv1.visitState(prefix: prefix + "conv1.", visit)
        bn2.visitState(prefix: prefix + "bn2.", visit)
        conv2.visitState(prefix: prefix + "conv2.", visit)
        shortcut?.visitState(prefix: prefix + shortcutName + ".", visit)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let a = relu1.forward(bn1.forward(x, mode: mode), mode: mode)
        let skip = shortcut.map { $0.forward(shortcutInput == .raw ? x : a, mode: mode) } ?? x
        var h = conv1.forward(a, mode: mode)
        h = relu2.forward(bn2.forward(h, mode: mode), mode: mode)
        var y = conv2.forward(h, mode: mode)
        Self.accumulate(skip, into: &y)
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        var d = conv2.backward(dy, parameterGradients: parameterGradients)
        d = bn2.backward(
            relu2.backward(d, parameterGradients: parameterGradients), parameterGradients: parameterGradients)
        var da = conv1.backward(d, parameterGradients: parameterGradients)
        var dxDirect: Tensor? = dy  // the gradient that reaches x without passing bn1
        if let shortcut {
            let dSkip = shortcut.backward(dy, parameterGradients: parameterGradients)
            switch shortcutInput {
            case .preActivated:
                Self.accumulate(dSkip, into: &da)
                dxDirect = nil
            case .raw:
                dxDirect = dSkip
            }
        }
        var dx = bn1.backward(
            relu1.backward(da, parameterGradients: parameterGradients), parameterGradients: parameterGradients)
        if let dxDirect { Self.accumulate(dxDirect, into: &dx) }
        return dx
    }

    /// `y += x`, elementwise.
    static func accumulate(_ x: Tensor, into y: inout Tensor) {
        precondition(x.shape == y.shape, "PreActBlock: shapes \(x.shape) and \(y.shape) differ")
        let n = y.count
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                Compute.parallelFor(n, minChunk: 1 << 15) { r in
                    Vector.add(yp + r.lowerBound, xp + r.lowerBound, yp + r.lowerBound, r.count)
                }
            }
        }
    }
}
