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
    /// Width P of a trained projection head `Linear(D -> P)` between the body and the classifier,
    /// or nil for none. An RRM student gets one when its natural representation width D differs
    /// from its teacher's (design.md §1, "Width mismatch"); the representation is then P wide.
    public var projection: Int?
    /// Whether the projection head has a bias (`projection.bias`). rrmd's students have none; the
    /// paper's extra layer in ResNet-50 had one, and docs/rrm-study.md compares the two.
    public var projectionBias: Bool

    /// A configuration; `mean`/`std` default to the identity normalisation, `projection` to none.
    public init(
        channels: Int, height: Int, width: Int, numClasses: Int, widthMultiplier: Double = 1,
        mean: [Float]? = nil, std: [Float]? = nil, projection: Int? = nil, projectionBias: Bool = false
    ) {
        self.channels = channels
        self.height = height
        self.width = width
        self.numClasses = numClasses
        self.widthMultiplier = widthMultiplier
        self.mean = mean ?? [Float](repeating: 0, count: channels)
        self.std = std ?? [Float](repeating: 1, count: channels)
        self.projection = projection
        self.projectionBias = projectionBias
    }

    /// `c` scaled by the width multiplier, rounded half-to-even like Python's `round`, at least 1.
    public func scaled(_ c: Int) -> Int {
        max(1, Int((Double(c) * widthMultiplier).rounded(.toNearestOrEven)))
    }

    /// `[C, H, W]`.
    public var inputShape: [Int] { [channels, height, width] }
}

/// A classifier network: a body that maps `[N, C, H, W]` pixels in [0, 1] to features `[N, D]`,
/// an optional projection head to `[N, P]`, and a final linear classifier from the penultimate
/// representation (the projected features when there is a projection) to logits `[N, K]`.
public final class Network: Layer {
    /// Registry name of the architecture.
    public let architecture: String
    /// What the network was built for.
    public let config: ModelConfig
    /// Pixels to features `[N, D]` (starts with the input normalisation); the representation
    /// itself when there is no projection.
    public let body: Sequential
    /// Body features `[N, D]` to the representation `[N, P]` (weight `[P, D]`, no bias), state
    /// name `projection`; nil when `config.projection` is nil.
    public let projection: Linear?
    /// Representation to logits.
    public let classifier: Linear
    /// State-dict name of the classifier (`fc`, `classifier`).
    public let classifierName: String
    /// The representation of the last forward `[N, representationWidth]`.
    public private(set) var representation: Tensor?

    /// Assembles a network; the body's children carry their PyTorch names. `projection` must be
    /// present exactly when `config.projection` is set, with that many outputs.
    public init(
        architecture: String, config: ModelConfig, body: Sequential, classifier: Linear, classifierName: String,
        projection: Linear? = nil
    ) {
        precondition(
            projection?.outFeatures == config.projection,
            "\(architecture): config.projection is \(config.projection.map(String.init) ?? "nil") but the projection "
                + "layer has \(projection.map { "\($0.outFeatures)" } ?? "no") outputs"
        )
        if let projection {
            precondition(
                (projection.bias != nil) == config.projectionBias,
                "\(architecture): config.projectionBias is \(config.projectionBias) but the projection layer "
                    + "\(projection.bias == nil ? "has no" : "has a") bias"
            )
            precondition(
                classifier.inFeatures == projection.outFeatures,
                "\(architecture): classifier expects \(classifier.inFeatures) features but the projection gives "
                    + "\(projection.outFeatures)"
            )
        }
        self.architecture = architecture
        self.config = config
        self.body = body
        self.projection = projection
        self.classifier = classifier
        self.classifierName = classifierName
    }

    /// Width of the penultimate representation: the projection's output P when there is one,
    /// otherwise the body's D.
    public var representationWidth: Int { classifier.inFeatures }

    /// Width D of the body's features, before any projection.
    public var bodyWidth: Int { projection?.inFeatures ?? classifier.inFeatures }

    /// Logits for `x`; the representation is kept in `representation`.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        forwardWithRepresentation(x, mode: mode).logits
    }

    /// Logits `[N, K]` and representation `[N, representationWidth]` (projected, if there is a
    /// projection) for `x` `[N, C, H, W]`.
    public func forwardWithRepresentation(_ x: Tensor, mode: Mode) -> (logits: Tensor, representation: Tensor) {
        precondition(
            x.rank == 4 && Array(x.shape.dropFirst()) == config.inputShape,
            "\(architecture): expected input [N, \(config.inputShape.map(String.init).joined(separator: ", "))], got "
                + "\(x.shape)"
        )
        let features = body.forward(x, mode: mode)  // [N, D]
        let z = projection?.forward(features, mode: mode) ?? features  // [N, P] or [N, D]
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
        precondition(
            logitsGradient != nil || representationGradient != nil, "\(architecture): backward needs a gradient")
        var dz: Tensor
        if let g = logitsGradient {
            dz = classifier.backward(g, parameterGradients: parameterGradients)
            if let extra = representationGradient {
                extra.expectShape(dz.shape, "\(architecture) representation gradient")
                let n = dz.count
                dz.withUnsafeMutablePointer { dp in extra.withUnsafePointer { ep in for i in 0..<n { dp[i] += ep[i] } }
                }
            }
        } else {
            let g = representationGradient!
            g.expectShape(
                representation?.shape ?? [g.dim(0), representationWidth], "\(architecture) representation gradient")
            dz = g
        }
        // The feature loss acts on the projected representation, so its gradient reaches the
        // body only through the projection.
        let dFeatures = projection?.backward(dz, parameterGradients: parameterGradients) ?? dz
        return body.backward(dFeatures, parameterGradients: parameterGradients)
    }

    /// Body, then `projection.weight` (if any), then the classifier: the registration order of
    /// the PyTorch twin, so state_dict keys come out in the same order.
    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        body.visitState(prefix: prefix, visit)
        projection?.visitState(prefix: prefix + "projection.", visit)
        classifier.visitState(prefix: prefix + classifierName + ".", visit)
    }

    public func outputShape(for shape: [Int]) -> [Int] { [shape[0], config.numClasses] }

    public func multiplyAccumulates(for shape: [Int]) -> Int {
        let features = body.outputShape(for: shape)
        let projected = projection?.outputShape(for: features) ?? features
        return body.multiplyAccumulates(for: shape) + (projection?.multiplyAccumulates(for: features) ?? 0)
            + classifier.multiplyAccumulates(for: projected)
    }

    /// Forward FLOPs (2 x multiply-accumulates of convolutions and linear layers) for one image.
    public var forwardFLOPsPerImage: Int { 2 * multiplyAccumulates(for: [1] + config.inputShape) }
}

extension ModelConfig: CustomStringConvertible {
    /// The configuration as training-state fingerprints show it (`Trainer.fingerprint`). It
    /// spells out what Swift's default description printed before `projectionBias` existed, and
    /// adds that field only when set, so state files saved by an earlier rrmd still match.
    public var description: String {
        let p = projection.map { "Optional(\($0))" } ?? "nil"
        return "ModelConfig(channels: \(channels), height: \(height), width: \(width), numClasses: \(numClasses), "
            + "widthMultiplier: \(widthMultiplier), mean: \(mean), std: \(std), projection: \(p)"
            + (projectionBias ? ", projectionBias: true)" : ")")
    }
}
