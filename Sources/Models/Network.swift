import NN
import TensorCore

/// What a model is built for: input geometry, classes, width and input normalisation.
public struct ModelConfig: Equatable, Sendable {
    /// Input channels, height and width of one image.
    public var channels, height, width: Int
    /// Number of classes.
    public var numClasses: Int
    /// Multiplier applied to every layer width (a teacher may be wider than its students).
    public var widthMultiplier: Double
    /// Per-channel statistics of the input normalisation inside the model.
    public var mean, std: [Float]

    /// A configuration; `mean`/`std` default to the identity normalisation.
    public init(channels: Int, height: Int, width: Int, numClasses: Int, widthMultiplier: Double = 1,
                mean: [Float]? = nil, std: [Float]? = nil) {
        self.channels = channels; self.height = height; self.width = width
        self.numClasses = numClasses; self.widthMultiplier = widthMultiplier
        self.mean = mean ?? [Float](repeating: 0, count: channels)
        self.std = std ?? [Float](repeating: 1, count: channels)
    }

    /// `c` scaled by the width multiplier, rounded half-to-even like Python's `round`, at least 1.
    public func scaled(_ c: Int) -> Int {
        max(1, Int((Double(c) * widthMultiplier).rounded(.toNearestOrEven)))
    }

    /// `[C, H, W]`.
    public var inputShape: [Int] { [channels, height, width] }
}

/// A classifier network: a body that maps `[N, C, H, W]` pixels in [0, 1] to the penultimate
/// representation `[N, D]`, and a final linear classifier from it to logits `[N, K]`.
public final class Network: Layer {
    /// Registry name of the architecture.
    public let architecture: String
    /// What the network was built for.
    public let config: ModelConfig
    /// Pixels to representation (starts with the input normalisation).
    public let body: Sequential
    /// Representation to logits.
    public let classifier: Linear
    /// State-dict name of the classifier (`fc`, `classifier`).
    public let classifierName: String
    /// The representation of the last forward `[N, D]`.
    public private(set) var representation: Tensor?

    /// Assembles a network; the body's children carry their PyTorch names.
    public init(architecture: String, config: ModelConfig, body: Sequential, classifier: Linear, classifierName: String) {
        self.architecture = architecture; self.config = config
        self.body = body; self.classifier = classifier; self.classifierName = classifierName
    }

    /// Width D of the penultimate representation.
    public var representationWidth: Int { classifier.inFeatures }

    /// Logits for `x`; the representation is kept in `representation`.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        forwardWithRepresentation(x, mode: mode).logits
    }

    /// Logits `[N, K]` and representation `[N, D]` for `x` `[N, C, H, W]`.
    public func forwardWithRepresentation(_ x: Tensor, mode: Mode) -> (logits: Tensor, representation: Tensor) {
        precondition(x.rank == 4 && Array(x.shape.dropFirst()) == config.inputShape,
                     "\(architecture): expected input [N, \(config.inputShape.map(String.init).joined(separator: ", "))], got \(x.shape)")
        let z = body.forward(x, mode: mode)
        representation = z
        return (classifier.forward(z, mode: mode), z)
    }

    /// Backward from dL/dlogits only.
    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        backward(logitsGradient: dy, representationGradient: nil, parameterGradients: parameterGradients)
    }

    /// Backward from gradients at the logits and/or directly at the representation (RRM's
    /// feature loss enters there); returns dL/dx.
    public func backward(logitsGradient: Tensor?, representationGradient: Tensor?, parameterGradients: Bool) -> Tensor {
        precondition(logitsGradient != nil || representationGradient != nil, "\(architecture): backward needs a gradient")
        var dz: Tensor
        if let g = logitsGradient {
            dz = classifier.backward(g, parameterGradients: parameterGradients)
            if let extra = representationGradient {
                extra.expectShape(dz.shape, "\(architecture) representation gradient")
                let n = dz.count
                dz.withUnsafeMutablePointer { dp in extra.withUnsafePointer { ep in for i in 0..<n { dp[i] += ep[i] } } }
            }
        } else {
            dz = representationGradient!
        }
        return body.backward(dz, parameterGradients: parameterGradients)
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        body.visitState(prefix: prefix, visit)
        classifier.visitState(prefix: prefix + classifierName + ".", visit)
    }

    public func outputShape(for shape: [Int]) -> [Int] { [shape[0], config.numClasses] }

    public func multiplyAccumulates(for shape: [Int]) -> Int {
        body.multiplyAccumulates(for: shape) + classifier.multiplyAccumulates(for: body.outputShape(for: shape))
    }

    /// Forward FLOPs (2 x multiply-accumulates of convolutions and linear layers) for one image.
    public var forwardFLOPsPerImage: Int { 2 * multiplyAccumulates(for: [1] + config.inputShape) }
}
