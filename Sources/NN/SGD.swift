import Kernels
import TensorCore

/// Stochastic gradient descent with PyTorch's semantics (`torch.optim.SGD`): weight decay is
/// added to the gradient, the momentum buffer starts as the first gradient, then
/// `buf = momentum * buf + (1 - dampening) * g`; Nesterov steps along `g + momentum * buf`.
public final class SGD {
    /// Hyper-parameters other than the learning rate (which the schedule supplies per step).
    public struct Settings: Equatable, Sendable {
        /// Momentum factor (0 disables the buffer).
        public var momentum: Float
        /// Dampening of the gradient in the momentum update.
        public var dampening: Float
        /// L2 penalty added to every gradient.
        public var weightDecay: Float
        /// Use Nesterov momentum.
        public var nesterov: Bool

        /// Settings with PyTorch's defaults for everything not given.
        public init(momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
            precondition(
                !nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov needs momentum > 0 and dampening 0")
            self.momentum = momentum
            self.dampening = dampening
            self.weightDecay = weightDecay
            self.nesterov = nesterov
        }
    }

    /// The optimised parameters, by name.
    public let parameters: [(name: String, parameter: Parameter)]
    /// Hyper-parameters.
    public var settings: Settings
    /// Momentum buffers by parameter index; empty until the first step.
    public private(set) var momentumBuffers: [Tensor] = []

    /// An optimiser over `parameters`.
    public init(parameters: [(String, Parameter)], settings: Settings) {
        self.parameters = parameters.map { (name: $0.0, parameter: $0.1) }
        self.settings = settings
    }

    /// Replaces the momentum buffers (when resuming); they must match the parameters' shapes.
    public func restoreMomentum(_ buffers: [Tensor]) {
        precondition(
            buffers.isEmpty || buffers.count == parameters.count,
            "SGD: \(buffers.count) buffers for \(parameters.count) parameters")
        for (b, p) in zip(buffers, parameters) {
            b.expectShape(p.parameter.value.shape, "SGD momentum buffer of \(p.name)")
        }
        momentumBuffers = buffers
    }

    /// Applies one update with learning rate `lr` using the accumulated gradients.
    public func step(lr: Float) {
        let s = settings
        let first = momentumBuffers.isEmpty && s.momentum != 0
        if first { momentumBuffers = parameters.map { Tensor(shape: $0.parameter.value.shape) } }
        for (i, entry) in parameters.enumerated() {
            let p = entry.parameter
            let n = p.value.count
            p.grad.withUnsafePointer { gp in
                p.value.withUnsafeMutablePointer { wp in
                    if s.momentum == 0 {
                        for j in 0..<n { wp[j] -= lr * (gp[j] + s.weightDecay * wp[j]) }
                        return
                    }
                    momentumBuffers[i].withUnsafeMutablePointer { bp in
                        for j in 0..<n {
                            let g = gp[j] + s.weightDecay * wp[j]
                            let b = first ? g : s.momentum * bp[j] + (1 - s.dampening) * g
                            bp[j] = b
                            wp[j] -= lr * (s.nesterov ? g + s.momentum * b : b)
                        }
                    }
                }
            }
        }
    }

    /// Zeroes every parameter's gradient.
    public func zeroGradients() { for e in parameters { e.parameter.zeroGrad() } }
}
